"""Numbers, money, dates and periods as the reader's locale writes them (Babel)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from fractions import Fraction
from functools import cache, lru_cache

from babel import Locale
from babel.dates import format_date, format_skeleton
from babel.numbers import (
    NumberPattern,
    format_compact_currency,
    format_compact_decimal,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)

from saleskpi.surfaces.web.i18n import _

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


INTEGER = "#,##0"
PERCENT = "#,##0.0%"


def _decimal_pattern(digits: int) -> str:
    return "#,##0." + "0" * digits if digits else INTEGER


class CompiledNumber:
    """One Babel number pattern for one locale (and currency), applied without Babel.

    ``format_decimal``/``format_currency`` parse the pattern, look the locale up and
    read its symbols on every call (25-50 µs): thousands of cells made that most of
    a large table's time. This does the same steps as ``NumberPattern.apply`` (the
    value through ``Decimal(str(value))``, scaled, rounded half-even by ``quantize``,
    grouped, the locale's symbols and the pattern's prefix and suffix) with all of
    that looked up once, for the patterns the dashboard uses: fixed decimals, no
    exponent, no significant digits, no quoted text. Others (``fast`` is False) go
    through Babel itself. tests/test_web.py checks both give the same text.
    """

    def __init__(self, pattern: str, lang: str, currency: str | None = None) -> None:
        locale = Locale.parse(lang)
        self.parsed: NumberPattern = parse_pattern(pattern)
        self.locale = locale
        self.currency = currency
        parsed = self.parsed
        low, high = parsed.frac_prec
        symbol = get_currency_symbol(currency, locale) if currency else ""

        def affix(text: str) -> str:
            if currency:
                text = text.replace("¤¤", currency.upper()).replace("¤", symbol)
            return text

        self.prefix = (affix(parsed.prefix[0]), affix(parsed.prefix[1]))
        self.suffix = (affix(parsed.suffix[0]), affix(parsed.suffix[1]))
        raw_affixes = "".join(parsed.prefix + parsed.suffix)
        # ¤¤¤ (the currency's plural name) depends on the value, and Babel strips
        # quotes from the whole text: both are left to Babel.
        self.fast = (low == high and not parsed.exp_prec and "@" not in parsed.pattern
                     and bool(parsed.number_pattern) and "¤¤¤" not in raw_affixes
                     and "'" not in "".join(self.prefix + self.suffix))
        self.digits = high
        self.quantum = decimal.Decimal(10) ** -high
        self.min_int = parsed.int_prec[0]
        self.first_group, self.next_group = parsed.grouping
        self.group = get_group_symbol(locale)
        self.point = get_decimal_symbol(locale)

    def __call__(self, number: float) -> str:
        """``number`` (finite) as Babel writes it with this pattern."""
        if not self.fast:
            return str(self.parsed.apply(number, self.locale, currency=self.currency,
                                         currency_digits=False))
        value = decimal.Decimal(str(number)).scaleb(self.parsed.scale)
        negative = int(value.is_signed())
        rounded = abs(value).normalize().quantize(self.quantum)
        whole, _point, fraction = f"{rounded:f}".partition(".")
        whole = whole.rjust(self.min_int, "0")
        size, grouped = self.first_group, ""
        while len(whole) > size:
            grouped = self.group + whole[-size:] + grouped
            whole = whole[:-size]
            size = self.next_group
        text = whole + grouped
        if self.digits:
            text += self.point + fraction.ljust(self.digits, "0")
        return self.prefix[negative] + text + self.suffix[negative]


@cache
def compiled(pattern: str, lang: str, currency: str | None = None) -> CompiledNumber:
    """Compiled once per process for each (pattern, locale, currency): a few dozen."""
    return CompiledNumber(pattern, lang, currency)


@lru_cache(maxsize=4096)
def _date(day: dt.date, lang: str) -> str:
    # Tables repeat the same few dates (periods' first and last days) many times.
    return str(format_date(day, "medium", locale=lang))


_DOUBLE_STOP = re.compile(r"(?<=\.)\.(?=\s|$)")


def sentence(text: str) -> str:
    """One full stop at the end of a sentence whose last word is an abbreviation: a
    Russian date ends with "г.", so "… – 2 дек. 2026 г.." loses its second stop."""
    return _DOUBLE_STOP.sub("", text)


def unit_name(unit: str) -> str:
    names = {"count": _("count"), "ratio": _("ratio"), "days": _("days"),
             "hours": _("hours"), "minutes": _("minutes"), "seconds": _("seconds"),
             "number": _("number"), "money": _("money"), "months": _("months")}
    return names.get(unit, unit)


def is_money(unit: str) -> bool:
    """The scorecard labels money KPIs with the currency code (USD, UAH)."""
    return len(unit) == 3 and unit.isalpha() and unit.isupper()


class Formatter:
    """Formats values of one request's locale; ``currency`` is the reporting currency.

    The same text as Babel's ``format_decimal``/``format_percent``/``format_currency``,
    with each pattern compiled once (``CompiledNumber``): a page of thousands of
    cells calls these thousands of times.
    """

    def __init__(self, lang: str, currency: str) -> None:
        self.lang = lang
        self.currency = currency
        self._integer = compiled(INTEGER, lang)
        self._percent = compiled(PERCENT, lang)

    def integer(self, value: Number | None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return self._integer(number)

    def decimal(self, value: Number | None, digits: int = 1) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return compiled(_decimal_pattern(digits), self.lang)(number)

    def percent(self, value: Number | None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return self._percent(number)

    def money(self, value: Number | None, currency: str | None = None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return compiled(_money_pattern(self.lang), self.lang, currency or self.currency)(number)

    def compact_money(self, value: Number | None) -> str:
        """An axis label: "$1.25M", "1,25 млн $" (the locale's short form, not "000 000 $")."""
        number = _finite(value)
        if number is None:
            return DASH
        return str(format_compact_currency(number, self.currency, locale=self.lang,
                                           fraction_digits=2))

    def compact(self, value: Number | None) -> str:
        number = _finite(value)
        if number is None:
            return DASH
        return str(format_compact_decimal(number, locale=self.lang, fraction_digits=2))

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
        return _date(day, self.lang)

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
