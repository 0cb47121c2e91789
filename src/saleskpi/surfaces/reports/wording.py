"""Values, days and scopes as a digest's reader writes them."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from babel.dates import format_date

from saleskpi.domain.i18n import _, current_language
from saleskpi.views.text import format_value, unit_name

DASH = "—"
_DOUBLE_STOP = re.compile(r"(?<=\.)\.(?=\s|$)")


def sentence(text: str) -> str:
    """One full stop after a date that ends with an abbreviation ("19 бер. 2026 р.")."""
    return _DOUBLE_STOP.sub("", text)


def is_money(unit: str | None) -> bool:
    return unit is not None and len(unit) == 3 and unit.isupper()


def value_text(value: Any, unit: str | None) -> str:
    """A KPI value ({value, unit} of a view, or a number) with its unit where it needs one."""
    number = value.get("value") if isinstance(value, dict) else value
    if isinstance(value, dict):
        unit = value.get("unit") or unit
    if number is None or unit is None:
        return DASH if number is None else str(number)
    text = format_value(float(number), unit)
    if is_money(unit):
        return f"{text} {unit}"
    if unit in ("days", "hours", "minutes", "seconds"):
        return f"{text} {unit_name(unit)}"
    return text


def day_text(day: dt.date | str) -> str:
    """A day as the reader's language writes it: "Mar 19, 2026", "19 бер. 2026 р."."""
    when = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return str(format_date(when, format="medium", locale=current_language()))


def range_text(first: str, last: str) -> str:
    if first == last:
        return day_text(first)
    return f"{day_text(first)} – {day_text(last)}"


def percent_text(value: float | None) -> str:
    return DASH if value is None else f"{value * 100:.0f}%"


def role_text(role: str) -> str:
    return {"admin": _("admin"), "head": _("head of sales"), "team_lead": _("team lead"),
            "rep": _("rep")}.get(role, role)
