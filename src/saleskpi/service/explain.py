"""What a KPI runs as: the SQL the engine compiles for its measures.

For the catalogue's "explain": the simplest question about one KPI (all time, no
slices, no filters), one statement per group of measures the engine computes
together (same view, time column and snapshot kind), as the workspace's store runs
it (DuckDB's SQL, or PostgreSQL's).
"""

from __future__ import annotations

from dataclasses import dataclass

from saleskpi.catalog.spec import Measure
from saleskpi.domain.errors import Busy
from saleskpi.engine.compile import Shape, measure_column
from saleskpi.service.core import SalesKpiService


@dataclass(frozen=True)
class MeasureSql:
    """One compiled statement: its view and time column, and which measure is which column."""

    entity: str
    time: str
    columns: dict[str, Measure]  # m0, m1, ... -> the measure computed in that column
    sql: str


def kpi_sql(service: SalesKpiService, key: str) -> list[MeasureSql] | None:
    """The SQL of ``key`` over all time (``CatalogError`` for an unknown KPI).

    None when the analytics store cannot be opened now (another process writes it,
    or nothing was imported yet): the definition does not need it.
    """
    catalog = service.catalog
    catalog.get(key)
    groups: dict[tuple[str, str, str | None, int | None, str], list[Measure]] = {}
    for m in dict.fromkeys(catalog.measures(key)):
        groups.setdefault((m.entity, m.time, m.until, m.window_days, m.at), []).append(m)
    found: list[MeasureSql] = []
    try:
        with service.engine() as engine:
            for (view, time, until, window_days, at), members in groups.items():
                shape = Shape(view=view, time=time, until=until, window_days=window_days,
                              at=at, measures=tuple(members), dims=(), filter_arity=(),
                              period="all", has_start=False, has_end=False, zone=engine.zone)
                compiled = engine.compiled(shape)
                columns = {measure_column(i): m for i, m in enumerate(members)}
                found.append(MeasureSql(view, time, columns, compiled.sql))
    except Busy:
        return None
    return found
