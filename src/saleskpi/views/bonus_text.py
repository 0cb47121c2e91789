"""A bonus explanation line in words, the same on every surface (CLI, web, XLSX).

The surface passes its own number and money formatting (the web's follows the
reader's language; the CLI's and the workbook's are plain).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from saleskpi.domain.i18n import _
from saleskpi.views.bonus import BonusLine

Number = Callable[[float | None], str]
Money = Callable[[Decimal | None], str]


def plain(value: float | None) -> str:
    """A number as few digits as it needs: 80, 0.5, 133.333333."""
    if value is None:
        return "—"
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", " ")
    return f"{value:,}".replace(",", " ")


def plain_money(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,}".replace(",", " ")


def _measure(value: float | None, percent: bool, number: Number) -> str:
    return f"{number(value)} %" if percent else number(value)


def line_text(line: BonusLine, number: Number = plain, money: Money = plain_money) -> str:
    """What a line did: a slice and its rate, the decelerator, a cap, a one-off."""
    if line.kind == "slice":
        span = f"{_measure(line.low, line.percent, number)} – " \
               f"{_measure(line.high, line.percent, number)}"
        text = _("{span} of the target at rate {rate}", span=span, rate=number(line.rate)) \
            if line.percent else _("{span} at {rate} a unit", span=span,
                                   rate=number(line.rate))
        if line.multiplier is not None and line.multiplier != 1:
            text += _(", accelerator × {multiplier}", multiplier=number(line.multiplier))
        return text
    if line.kind == "no_target":
        return _("no target set for the period: nothing paid")
    if line.kind == "no_value":
        return _("no value for the period: nothing paid")
    if line.kind == "decelerator":
        return _("below {floor}: paid × {multiplier}",
                 floor=_measure(line.threshold, line.percent, number),
                 multiplier=number(line.multiplier))
    if line.kind == "cap":
        return _("capped at {cap}", cap=money(line.cap))
    if line.kind == "total_cap":
        return _("the plan's cap: at most {cap}", cap=money(line.cap))
    threshold = number(line.threshold)
    condition = {
        "at_least": _("at least {value}", value=threshold),
        "attainment_at_least": _("attainment at least {value} %", value=threshold),
        "growth_at_least": _("growth on the period before at least {value} %",
                             value=threshold),
    }.get(line.condition or "", threshold)
    if line.condition == "growth_at_least":
        condition += " " + _("(the period before: {value})", value=number(line.previous))
    return _("met: {condition}", condition=condition) if line.met \
        else _("not met: {condition}", condition=condition)


def step_text(kind: str) -> str:
    return {"tier": _("next tier"), "accelerator": _("accelerator"),
            "decelerator": _("out of the decelerator"), "one_off": _("one-off")}.get(kind, kind)
