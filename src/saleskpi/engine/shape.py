"""A query's shape: everything its SQL text depends on (values bound later are not)."""

from __future__ import annotations

from dataclasses import dataclass

from saleskpi.catalog.spec import Measure
from saleskpi.domain.query import Period


@dataclass(frozen=True)
class Shape:
    """Everything that changes the SQL text; values bound later are not part of it."""

    view: str
    time: str
    until: str | None
    window_days: int | None
    at: str
    measures: tuple[Measure, ...]
    dims: tuple[str, ...]  # every slice the view carries: shown and filtered on
    filter_arity: tuple[tuple[str, int], ...]
    period: Period
    has_start: bool
    has_end: bool
    zone: str
    by: tuple[str, ...] | None = None  # the slices rows are grouped by; None: all of dims


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[str, ...]  # parameter names in binding order
    columns: tuple[str, ...]  # measure column names m0, m1, ...


AS_OF_TABLE = "saleskpi_as_of"


def measure_column(index: int) -> str:
    return f"m{index}"
