"""Numbers, money, dates and periods as the reader's locale writes them (Babel)."""

from __future__ import annotations

import datetime as dt
import math
from fractions import Fraction
from functools import cache

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import format_currency, format_decimal, format_percent

from saleskpi.web.i18n import _

DURATIONS = ("days", "hours", "minutes", "seconds", "months")
DASH = "—"
Number = float | Fraction  # ints are floats to mypy; the planner computes with fractions


def _finite(value: Number | None) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@cache
def _money_pattern(lang: str) -> str:
    """The locale's currency pattern without decimals: KPIs are whole amounts."""
    pattern: str = Locale.parse(lang).currency_formats["standard"].pattern
    return pattern.split(";")[0].replace(".00", "")


def unit_name(unit: str) -> str:
    names = {"count": _("count"), "ratio": _("ratio"), "days": _("days"),
             "hours": _("hours"), "minutes": _("minutes"), "seconds": _("seconds"),
             "number": _("number"), "money": _("money"), "months": _("months")}
    return names.get(unit, unit)


def is_money(unit: str) -> bool:
    """The scorecard labels money KPIs with the currency code (USD, UAH)."""
    return len(unit) == 3 and unit.isalpha() and unit.isupper()


class Formatter:
    """Formats values of one request's locale; ``currency`` is the reporting currency."""

    def __init__(self, lang: str, currency: str) -> None:
        self.lang = lang
        self.currency = currency

    def integer(self, value: Number | None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return str(format_decimal(number, "#,##0", locale=self.lang))

    def decimal(self, value: Number | None, digits: int = 1) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        pattern = "#,##0." + "0" * digits if digits else "#,##0"
        return str(format_decimal(number, pattern, locale=self.lang))

    def percent(self, value: Number | None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return str(format_percent(number, "#,##0.0%", locale=self.lang))

    def money(self, value: Number | None, currency: str | None = None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return str(format_currency(number, currency or self.currency,
                                   format=_money_pattern(self.lang), locale=self.lang,
                                   currency_digits=False))

    def value(self, raw: Number | None, unit: str) -> str:
        """A KPI value in its unit: 42.5%, $1,200, 3.2 hours, 17."""
        value = _finite(raw)
        if value is None:
            return DASH
        if unit == "ratio":
            return self.percent(value)
        if is_money(unit) or unit == "money":
            return self.money(value, unit if is_money(unit) else None)
        if unit in DURATIONS:
            return f"{self.decimal(value)} {unit_name(unit)}"
        if unit == "number":
            return self.decimal(value)
        return self.integer(value) if float(value).is_integer() else self.decimal(value)

    def change(self, raw: Number | None, unit: str) -> str:
        """A signed difference: +5.0 pp for rates, +$300, −2.0 hours."""
        difference = _finite(raw)
        if difference is None:
            return DASH
        sign = "+" if difference > 0 else ("−" if difference < 0 else "±")
        size = abs(difference)
        if unit == "ratio":
            return _("{sign}{value} pp", sign=sign, value=self.decimal(size * 100))
        return sign + self.value(size, unit)

    def date(self, day: dt.date | None) -> str:
        if day is None:
            return DASH
        return str(format_date(day, "medium", locale=self.lang))

    def period(self, start: str | None, grain: str) -> str:
        """A period's label from its first day: 'Jan 2024', 'Q2 2024', 'week of …'."""
        if not start:
            return DASH
        day = dt.date.fromisoformat(start)
        if grain == "month":
            return str(format_skeleton("yMMM", day, locale=self.lang))
        if grain == "quarter":
            return str(format_skeleton("yQQQ", day, locale=self.lang))
        if grain == "year":
            return str(day.year)
        if grain == "week":
            return _("week of {day}", day=self.date(day))
        return self.date(day)
