"""Conditions in KPI definitions: ``column op value``, parsed into Ibis predicates.

Examples: ``type == 'call'``, ``status in ('won', 'lost')``, ``response_s <= 300``,
``has_deal == true``, ``lost_reason is null``. ``!=`` and ``not in`` treat NULL
as "not equal", which is what a user means by "direction != 'in'" when some
activities have no direction.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

import ibis.expr.types as ir

_CONDITION = re.compile(
    r"^\s*(?P<column>[a-z_][a-z0-9_]*)\s*"
    r"(?P<op>==|!=|<=|>=|<|>|not\s+in|in|is\s+not\s+null|is\s+null)\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)

Scalar = str | int | float | bool | None


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
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


def parse_condition(text: str) -> Condition:
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
        return Condition(match["column"], op, None)
    value = _literal(raw)
    if op in ("in", "not in") and not isinstance(value, tuple):
        value = (value,)
    return Condition(match["column"], op, value)


def predicate(table: ir.Table, condition: Condition) -> ir.BooleanValue:
    """The condition on ``table``; NULL comparisons become false except for != / not in."""
    column = table[condition.column]
    value = condition.value
    match condition.op:
        case "is null":
            return column.isnull()
        case "is not null":
            return column.notnull()
        case "in":
            assert isinstance(value, tuple)
            return column.isin(list(value)).fill_null(False)
        case "not in":
            assert isinstance(value, tuple)
            return column.isnull() | column.notin(list(value)).fill_null(True)
        case "!=":
            return column.isnull() | (column != value).fill_null(True)
    comparisons = {
        "==": column.__eq__, "<": column.__lt__, "<=": column.__le__,
        ">": column.__gt__, ">=": column.__ge__,
    }
    result: ir.BooleanValue = comparisons[condition.op](value)
    return result.fill_null(False)
