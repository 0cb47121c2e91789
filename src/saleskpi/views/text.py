"""Values in words and numbers, the same on every surface: units, formats, JSON."""

from __future__ import annotations

import json
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.domain.query import KpiValue


def unit_name(unit: str) -> str:
    """A unit as the reader says it; currency codes stay as they are."""
    names = {"count": _("count"), "ratio": _("ratio"), "days": _("days"), "hours": _("hours"),
             "minutes": _("minutes"), "seconds": _("seconds"), "number": _("number"),
             "money": _("money")}
    return names.get(unit, unit)


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit in ("count",):
        return f"{value:,.0f}".replace(",", " ")
    if unit in ("days", "hours", "minutes", "seconds", "months", "number"):
        return f"{value:,.1f}".replace(",", " ")
    return f"{value:,.0f}".replace(",", " ")


# Below this many cases a rate is shown with its numerator and denominator, in
# yellow: "100%" that is 1 of 1 must not look like 100% of 300.
SMALL_SAMPLE = 30


def unavailable_text(value: KpiValue) -> str:
    """Why a cell is empty, in words: a missing input, or a slice the KPI lacks."""
    parts = []
    for reason in value.unavailable:
        kind, _sep, what = reason.partition(":")
        parts.append(_("needs {entity}", entity=what) if kind == "data"
                     else _("not by {dim}", dim=what))
    return "; ".join(parts)


def to_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, default=str)
