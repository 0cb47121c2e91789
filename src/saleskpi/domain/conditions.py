"""Conditions users write: on a column in a KPI definition, or a threshold on a KPI.

``type == 'call'``, ``status in ('won', 'lost')``, ``response_s <= 300``,
``has_deal == true``, ``lost_reason is null`` are column conditions (the engine
turns them into predicates; ``!=`` and ``not in`` treat NULL as "not equal", which
is what a user means by "direction != 'in'" when some activities have no
direction). ``win_rate<50%`` or ``calls>=20`` is a threshold on a rep's KPI value
(``saleskpi compare --filter``).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _


class ConditionError(InvalidQuery):
    """A condition that cannot be read."""

    default_code = "bad_condition"


_CONDITION = re.compile(
    r"^\s*(?P<column>[a-z_][a-z0-9_]*)\s*"
    r"(?P<op>==|!=|<=|>=|<|>|not\s+in|in|is\s+not\s+null|is\s+null)\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)

Scalar = str | int | float | bool | None




@dataclass(frozen=True)
class ColumnCondition:
    """``column op value`` in a KPI definition."""

    column: str
    op: str
    value: Scalar | tuple[Scalar, ...]


def _literal(text: str) -> Scalar | tuple[Scalar, ...]:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        # A bare word is a string: status == won
        if re.fullmatch(r"[\w.-]+", text):
            return text
        raise ConditionError(f"cannot read the value {text!r}") from None
    if isinstance(value, list | tuple):
        return tuple(value)
    if isinstance(value, str | int | float | bool):
        return value
    raise ConditionError(f"cannot read the value {text!r}")


def parse_condition(text: str) -> ColumnCondition:
    match = _CONDITION.match(text)
    if not match:
        raise ConditionError(
            f"cannot read condition {text!r}; write it as: column op value, "
            "with op one of == != < <= > >= in, not in, is null, is not null"
        )
    op = " ".join(match["op"].lower().split())
    raw = match["value"]
    if op in ("is null", "is not null"):
        if raw:
            raise ConditionError(f"{text!r}: nothing may follow '{op}'")
        return ColumnCondition(match["column"], op, None)
    value = _literal(raw)
    if op in ("in", "not in") and not isinstance(value, tuple):
        value = (value,)
    return ColumnCondition(match["column"], op, value)


_THRESHOLD = re.compile(
    r"^\s*(?P<kpi>[a-z][a-z0-9_]*)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<value>[-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*(?P<percent>%?)\s*$"
)


@dataclass(frozen=True)
class Threshold:
    """``KPI < VALUE`` (or >, <=, >=) on a rep's value, in the KPI's own unit."""

    kpi: str
    op: str  # <, >, <= or >=
    value: float

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        if self.op == "<":
            return value < self.value
        if self.op == ">":
            return value > self.value
        if self.op == "<=":
            return value <= self.value
        return value >= self.value


def parse_threshold(text: str) -> Threshold:
    """``'win_rate<0.5'``, ``'win_rate<50%'``, ``'calls>=20'``, ``'revenue > 1000'``."""
    match = _THRESHOLD.match(text)
    if not match:
        raise ConditionError(_("cannot read the condition {text!r}: write KPI<VALUE or "
                               "KPI>VALUE, e.g. calls>20 or win_rate<50%", text=text))
    number = float(match["value"])
    if match["percent"]:
        number /= 100
    return Threshold(match["kpi"], match["op"], number)
