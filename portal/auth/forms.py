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
