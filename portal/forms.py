"""Forms every area uses."""

from flask_wtf import FlaskForm
from wtforms import DecimalField

from portal.services.numbers import finite_decimal


class EmptyForm(FlaskForm):
    """A form with only the CSRF token, for POST-only buttons."""


class FiniteDecimalField(DecimalField):
    """A DecimalField that reads only finite numbers.

    WTForms' own takes "sNaN", "NaN" and "Infinity" as Decimals, and its NumberRange then fails on
    a signalling NaN with a ValueError (a 500); here they are "Not a valid decimal value." like
    any other text that is not a number.
    """

    def process_formdata(self, valuelist):
        if not valuelist:
            return
        self.data = finite_decimal(valuelist[0])
        if self.data is None:
            raise ValueError(self.invalid_value_message or self.gettext("Not a valid decimal value."))


def place_errors(form: FlaskForm, exc) -> None:
    """Put a ServiceError's field messages on the form's fields (the rest, and a conflict's message, on
    the form itself), so the page shows each where it belongs."""
    from portal.services.errors import Conflict

    for name, message in exc.fields.items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)
    if not exc.fields or isinstance(exc, Conflict):
        # A conflict may name a field the form does not show (the edit row has no category/priority).
        form.form_errors.append(exc.message)
