"""Admin forms."""

from datetime import time

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TimeField,
)
from wtforms.validators import AnyOf, DataRequired, InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from portal.domain.workflow import PRIORITIES, PRIORITY_LABELS, ROLE_LABELS, ROLES, STATUS_LABELS
from portal.forms import FiniteDecimalField
from portal.services.users import PASSWORD_MIN

WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

ROLE_CHOICES = [(r, ROLE_LABELS[r]) for r in ROLES]


class NewUserForm(FlaskForm):
    """Create an account."""

    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="requester")
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=256)],
                             description=f"At least {PASSWORD_MIN} characters, not a common one; share it with "
                                         "the person privately.")


class ConfirmForm(FlaskForm):
    """A change that asks first: the first post shows the question, the second (confirm=yes) makes it."""

    confirm = HiddenField()

    @property
    def confirmed(self) -> bool:
        return self.confirm.data == "yes"


class RoleForm(ConfirmForm):
    """Change a user's role; `from_role` is the role the confirmation named (a change since is refused)."""

    role = SelectField("Role", choices=ROLE_CHOICES)
    from_role = HiddenField(validators=[Optional(), AnyOf(ROLES)])


class ActiveForm(ConfirmForm):
    """Deactivate (asks first) or reactivate an account or an SLA definition."""

    active = HiddenField(validators=[AnyOf(("true", "false"), message="Choose to activate or deactivate.")])


class MultiCheckboxField(SelectMultipleField):
    """Checkboxes for a multiple choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class DefinitionForm(FlaskForm):
    """Create or edit an SLA definition."""

    category = SelectField("Category")
    priority = SelectField("Priority", choices=[(p, PRIORITY_LABELS[p]) for p in reversed(PRIORITIES)])
    response_time_hours = FiniteDecimalField("Respond within (hours)", places=2,
                                             validators=[InputRequired(), NumberRange(min=0.01, max=8760)])
    resolution_time_hours = FiniteDecimalField("Resolve within (hours)", places=2,
                                               validators=[InputRequired(), NumberRange(min=0.01, max=8760)])
    calendar_id = SelectField("Counts", validate_choice=False,  # the service checks the calendar exists
                              description="Business hours of a calendar, or around the clock.")
    pause_statuses = MultiCheckboxField(
        "Clock pauses while", choices=[(s, STATUS_LABELS[s]) for s in ("waiting_on_customer", "in_progress", "open")],
        default=["waiting_on_customer"])
    at_risk_percent = IntegerField("At risk after (% of window)", default=75,
                                   validators=[InputRequired(), NumberRange(min=1, max=99)])
    is_active = BooleanField("Active", default=True)
    apply_to_open = BooleanField("Apply to open requests now (recalculates their clocks in the background)")


class CalendarForm(FlaskForm):
    """Create or edit a business calendar."""

    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    timezone = StringField("Time zone", default="Europe/London", validators=[DataRequired(), Length(max=64)],
                           description="An IANA zone such as Europe/London, America/New_York, Asia/Singapore.")
    working_days = MultiCheckboxField("Working days", choices=[(str(i), d) for i, d in enumerate(WEEKDAY_NAMES)],
                                      default=["0", "1", "2", "3", "4"])
    opens = TimeField("Opens", default=time(9, 0), validators=[InputRequired()])
    closes = TimeField("Closes", default=time(18, 0), validators=[InputRequired()])
    apply_to_open = BooleanField("Apply to open requests now")


class HolidayForm(FlaskForm):
    """Add a holiday to a calendar."""

    day = DateField("Date", validators=[InputRequired()])
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    apply_to_open = BooleanField("Apply to open requests now")


class HolidayImportForm(FlaskForm):
    """Which public holidays to review: a country, optionally a region, and a range of years.

    A GET form (it only shows a list), so no CSRF token; the choices come from the holidays package
    (the route fills them) and the service checks every value, with a message per field.
    """

    class Meta:
        csrf = False

    country = SelectField("Country", validate_choice=False)
    subdivision = SelectField("Region", validate_choice=False)  # its holidays on top of the national ones
    first_year = StringField("From year")
    last_year = StringField("To year")


class HolidayImportSaveForm(FlaskForm):
    """Add the ticked dates of a reviewed public holiday list (the list is looked up again from its source)."""

    country = HiddenField()
    subdivision = HiddenField()
    first_year = HiddenField()
    last_year = HiddenField()
    days = SelectMultipleField("Dates to add", validate_choice=False)
    apply_to_open = BooleanField("Apply to open requests now")


class CategoryForm(FlaskForm):
    """Add a request category."""

    code = StringField("Code", validators=[DataRequired(), Length(max=40)],
                       description="Lowercase, used in links, the API and SLA definitions (e.g. facilities).")
    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
