"""Public holidays by country and subdivision, from the `holidays` package (the one list an admin picks from).

Everything here is read from the package: the countries (`holidays.list_supported_countries()`),
their subdivisions and the holidays themselves. Nothing is stored; `sla_admin` adds the dates an
admin ticks to a business calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import holidays

from portal.paging import whole_number
from portal.services.errors import ValidationFailed

MAX_YEARS = 5  # one import covers at most this many calendar years
YEAR_MIN, YEAR_MAX = 2000, 2100
ENGLISH = ("en_US", "en_GB")


@dataclass(frozen=True)
class HolidayList:
    """The public holidays of one country (and subdivision) over a range of years, by date."""

    country: str
    country_name: str
    subdivision: str | None
    subdivision_name: str | None
    first_year: int
    last_year: int
    holidays: dict[date, str]

    @property
    def place(self) -> str:
        """"United Kingdom (England)", or the country alone for national holidays."""
        return f"{self.country_name} ({self.subdivision_name})" if self.subdivision else self.country_name

    @property
    def years(self) -> str:
        """"2026" or "2026–2027"."""
        return str(self.first_year) if self.first_year == self.last_year else f"{self.first_year}–{self.last_year}"


def _entity(country: str) -> holidays.HolidayBase:
    """The package's holiday class for `country`, unpopulated (no years asked for yet)."""
    return holidays.country_holidays(country)


def _name_of(entity: holidays.HolidayBase) -> str:
    # Each country class's docstring starts "United Kingdom holidays." (the only English name the
    # package carries); a subclass named by code (GB) inherits it from the named class.
    doc = next((c.__doc__ for c in type(entity).__mro__ if c.__doc__), "") or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    if not first.endswith(" holidays."):
        return entity.country
    return first.removesuffix(" holidays.").removesuffix(" (the)")  # "United States of America (the)"


@cache
def countries() -> tuple[tuple[str, str], ...]:
    """Every country the package knows, as (ISO code, English name), by name."""
    codes = holidays.list_supported_countries(include_aliases=False)
    return tuple(sorted(((code, _name_of(_entity(code))) for code in codes), key=lambda c: (c[1].casefold(), c[0])))


@cache
def _country_names() -> dict[str, str]:
    return dict(countries())


@cache
def _subdivision_aliases(country: str) -> dict[str, list[str]]:
    """Each subdivision code of `country` with the names the package gives it ({"ENG": ["England"]})."""
    if country not in _country_names():
        return {}
    codes = holidays.list_supported_countries(include_aliases=False)[country]
    aliases: dict[str, list[str]] = {code: [] for code in codes}
    for alias, code in (getattr(_entity(country), "subdivisions_aliases", None) or {}).items():
        aliases.setdefault(code, []).append(alias)
    return aliases


@cache
def subdivisions(country: str) -> tuple[tuple[str, str], ...]:
    """The subdivisions of `country` (a known code) as (code, name), by name; () for none or an unknown one."""
    def name(code: str) -> str:
        # The first name that is not an abbreviation ("GP", "Bgld" beside "Guadeloupe", "Burgenland").
        aliases = _subdivision_aliases(country)[code]
        return next((a for a in aliases if len(a) > 4), aliases[0] if aliases else code)

    return tuple(sorted(((code, name(code)) for code in _subdivision_aliases(country)),
                        key=lambda s: (s[1].casefold(), s[0])))


def _country(errors: dict[str, str], value: Any) -> str | None:
    code = value.strip().upper() if isinstance(value, str) else ""
    if not code:
        errors["country"] = "Choose a country."
    elif code not in _country_names():
        errors["country"] = "Choose a country from the list; the holiday list does not know that one."
    else:
        return code
    return None


def _subdivision(errors: dict[str, str], country: str, value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    wanted = value.strip().casefold() if isinstance(value, str) else None
    for code, aliases in _subdivision_aliases(country).items():
        if wanted in {code.casefold(), *(a.casefold() for a in aliases)}:  # the code (ENG) or a name (England)
            return code
    country_name = _country_names()[country]
    if subdivisions(country):
        errors["subdivision"] = (f"Choose a region of {country_name} from the list, or the whole country for "
                                 "national holidays only.")
    else:
        errors["subdivision"] = f"The holiday list has no regions for {country_name}; choose the whole country."
    return None


def _year(errors: dict[str, str], name: str, value: Any) -> int | None:
    raw = value.strip() if isinstance(value, str) else value
    if raw in (None, ""):
        errors[name] = "Enter a year such as 2027."
        return None
    year = whole_number(raw, YEAR_MIN, YEAR_MAX)
    if year is None:
        errors[name] = f"Enter a year between {YEAR_MIN} and {YEAR_MAX}."
    return year


def _language(entity: holidays.HolidayBase) -> str | None:
    """English names where the package has them (the portal's language), else the country's own."""
    default = entity.default_language
    if default is None or default.startswith("en"):
        return default
    return next((lang for lang in ENGLISH if lang in entity.supported_languages), default)


def lookup(country: Any, subdivision: Any, first_year: Any, last_year: Any) -> HolidayList:
    """The public holidays of a country (and optionally one subdivision) from `first_year` to `last_year`.

    Raises ValidationFailed, with a message per field, for an unknown country, a subdivision the
    country does not have, a year out of range, a reversed range or one wider than MAX_YEARS.
    """
    errors: dict[str, str] = {}
    code = _country(errors, country)
    subdiv = _subdivision(errors, code, subdivision) if code else None
    first = _year(errors, "first_year", first_year)
    last = _year(errors, "last_year", last_year)
    if first is not None and last is not None:
        if last < first:
            errors["last_year"] = "The last year is before the first year."
        elif last - first + 1 > MAX_YEARS:
            errors["last_year"] = (f"Choose at most {MAX_YEARS} years at a time "
                                   f"(from {first}, up to {first + MAX_YEARS - 1}).")
    if errors:
        raise ValidationFailed(errors)
    entity = _entity(code)
    found = holidays.country_holidays(code, subdiv=subdiv, years=range(first, last + 1), language=_language(entity))
    return HolidayList(country=code, country_name=_country_names()[code], subdivision=subdiv,
                       subdivision_name=dict(subdivisions(code)).get(subdiv) if subdiv else None,
                       first_year=first, last_year=last,
                       holidays={day: name for day, name in sorted(found.items())
                                 if first <= day.year <= last})
