"""The one parse of a decimal number a person or client sends (SLA hours, exemption lengths).

`Decimal(text)` accepts "NaN", "sNaN", "-sNaN", "Infinity" and "1e999"; JSON brings floats that
may be inf or nan. A signalling NaN then raises on any comparison or float() ("cannot convert
signaling NaN to float"), which was a 500. Everything that reads such a number goes through
finite_decimal() first, so anything that is not a finite number is refused like any other
bad value.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

MAX_TEXT = 64  # no real number of hours is longer; a longer string is refused before parsing
# Plain ASCII decimal notation only: Decimal() itself also takes "sNaN", "Infinity", "1_0" and
# non-ASCII digits.
NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def finite_decimal(value: Any) -> Decimal | None:
    """`value` (a str, int, float or Decimal) as a finite Decimal; None when it is not one.

    None for: None, "", booleans, text that is not a number, NaN, sNaN, -sNaN, ±Infinity (also as
    floats, e.g. JSON's 1e999).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_TEXT or not NUMBER_TEXT.fullmatch(text):
            return None
        number = Decimal(text)
    else:
        return None
    return number if number.is_finite() else None
