"""Column conditions of KPI definitions (``saleskpi.domain.conditions``) as Ibis predicates.

Examples: ``type == 'call'``, ``status in ('won', 'lost')``, ``response_s <= 300``,
``has_deal == true``, ``lost_reason is null``. ``!=`` and ``not in`` treat NULL
as "not equal", which is what a user means by "direction != 'in'" when some
activities have no direction.
"""

from __future__ import annotations

import ibis.expr.types as ir

from saleskpi.domain.conditions import ColumnCondition


def predicate(table: ir.Table, condition: ColumnCondition) -> ir.BooleanValue:
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
