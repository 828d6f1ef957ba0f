"""Sign-in, registration and password-reset forms."""

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from portal.services.users import PASSWORD_MIN


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])
    remember = BooleanField("Keep me signed in on this device")



class RegisterForm(FlaskForm):
    """A requester's own account: name, email, password twice."""

    name = StringField("Your name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)],
                             description=f"At least {PASSWORD_MIN} characters, not a common one. "
                                         "A few unrelated words make a good one.")
    confirm = PasswordField("Password again", validators=[DataRequired(), EqualTo("password",
                                                                                  "The two passwords differ.")])


class ResetRequestForm(FlaskForm):
    """The address to send a reset link to."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    """A new password, twice."""

    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)],
                             description=f"At least {PASSWORD_MIN} characters, not a common one.")
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("password",
                                                                                      "The two passwords differ.")])


class TwoFactorForm(FlaskForm):
    """The 6 digits of the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired(), Length(max=20)],
                       description="From your authenticator app, or one of your recovery codes.")


class ChangePasswordForm(FlaskForm):
    """One's own password: the current one, then the new one twice."""

    current = PasswordField("Current password", validators=[DataRequired(), Length(max=256)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=256)],
                             description=f"At least {PASSWORD_MIN} characters, not a common one.")
    confirm = PasswordField("New password again", validators=[DataRequired(), EqualTo("password",
                                                                                      "The two passwords differ.")])


class EnableTwoFactorForm(FlaskForm):
    """A code from the newly scanned secret, and the password again."""

    code = StringField("Code from the app", validators=[DataRequired(), Length(max=20)])
    password = PasswordField("Your password", validators=[DataRequired(), Length(max=256)])


class DisableTwoFactorForm(FlaskForm):
    """The password and a code (or a recovery code) to turn two-factor off."""

    password = PasswordField("Your password", validators=[DataRequired(), Length(max=256)])
    code = StringField("Code from the app, or a recovery code", validators=[DataRequired(), Length(max=20)])
