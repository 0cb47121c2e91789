"""The rows behind a number, in the caller's scope (``saleskpi.engine.drill``).

The scope is applied as ``SalesKpiService._compute`` applies it to a scorecard: its
filters are added to the query's, and reps named in filters are resolved to the
people the rows belong to. So the rows a caller gets are exactly the ones their
scorecard counted, and never anyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from saleskpi.catalog.spec import Measure
from saleskpi.domain.query import KpiQuery, Scope
from saleskpi.engine.drill import measure_behind
from saleskpi.engine.drill import rows_behind as engine_rows_behind
from saleskpi.service.core import SalesKpiService


@dataclass(frozen=True)
class RowsBehind:
    """One page of the rows behind a KPI value, and how many there are in all."""

    kpi: str
    part: str  # value (a simple KPI), numerator or denominator (a ratio)
    measure: Measure  # what was aggregated over the rows
    uses: str | None  # the KPI the part is, when it names one (win_rate's numerator: deals_won)
    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int


def rows_behind(service: SalesKpiService, query: KpiQuery, scope: Scope, kpi: str,
                part: str | None, limit: int | None, offset: int) -> RowsBehind:
    """The rows of ``kpi`` (its ``part`` for a ratio) for ``query`` within ``scope``."""
    found_part, measure, uses = measure_behind(service.catalog, kpi, part)
    scoped = replace(query, where=(*query.where, *scope.as_filters()))
    scoped = service._resolve_names(scoped, scope)
    with service.engine() as engine:
        columns, rows, total = engine_rows_behind(
            engine.store, engine.catalog, kpi, scoped, part=found_part, limit=limit,
            offset=offset, timezone=engine.zone, currency=engine.currency)
    return RowsBehind(kpi, found_part, measure, uses, columns, rows, total)
