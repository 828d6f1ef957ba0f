"""SLA forms."""

from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from portal.forms import FiniteDecimalField

EXEMPTION_TYPE_CHOICES = [("resolution", "Resolution"), ("response", "Response"), ("both", "Both targets")]


class ExemptionForm(FlaskForm):
    """Grant an exemption on a request's SLA."""

    exemption_type = SelectField("Target", choices=EXEMPTION_TYPE_CHOICES, default="resolution")
    duration_hours = FiniteDecimalField(
        "For how many hours", places=2, validators=[Optional(), NumberRange(min=0.01, max=8760)],
        description="Leave empty for an indefinite exemption (until revoked).")
    reason = TextAreaField("Reason", validators=[DataRequired("Say why the exemption is needed."), Length(max=2000)])
