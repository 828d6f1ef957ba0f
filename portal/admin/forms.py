"""Admin forms."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from portal.domain.workflow import ROLE_LABELS, ROLES

ROLE_CHOICES = [(r, ROLE_LABELS[r]) for r in ROLES]


class NewUserForm(FlaskForm):
    """Create an account."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="requester")
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=256)],
                             description="At least 10 characters; share it with the person privately.")


class RoleForm(FlaskForm):
    """Change a user's role."""

    role = SelectField("Role", choices=ROLE_CHOICES)
