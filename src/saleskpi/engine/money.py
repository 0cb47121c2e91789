"""Money in the reporting currency, added up as decimals.

A float sum depends on the order its rows are added in, which a parallel scan
changes from run to run: the same question gave figures a few units in the last
place apart, and a total at exactly a half rounded apart on the page. Each row's
float (an amount times a rate) is rounded to a millionth first; the sum is then
exact, on every backend, and a float again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saleskpi.catalog.spec import Measure
from saleskpi.domain.schema import REPORTING_MONEY

if TYPE_CHECKING:  # no Ibis to import: the rollups' direct SQL reads this module too
    import ibis.expr.types as ir

MONEY_SQL = "DECIMAL(38, 6)"  # as Ibis writes "decimal(38, 6)" for DuckDB
EXACT_MONEY = "decimal(38, 6)"


def exact_money(measure: Measure) -> bool:
    """Whether ``measure`` adds up money in the reporting currency (a sum or mean)."""
    return (measure.agg in ("sum", "avg")
            and measure.column in REPORTING_MONEY.get(measure.entity, frozenset()))


def exact_sum(value: ir.Value, where: ir.BooleanValue | None = None) -> ir.FloatingScalar:
    """The sum of the money ``value``, added up as decimals, as a float."""
    total: ir.FloatingScalar = value.cast(EXACT_MONEY).sum(where=where).cast("float64")
    return total


def exact_mean(value: ir.Value, where: ir.BooleanValue | None = None) -> ir.FloatingScalar:
    """The mean of the money ``value``: its exact sum, as a float, over its count.

    As a rollup's mean is worked out (the days' exact sums over their counts), so that
    both paths, and every backend, give the same float, not only nearly the same.
    """
    known = value.count(where=where)
    mean: ir.FloatingScalar = exact_sum(value, where) / known.nullif(0)
    return mean
