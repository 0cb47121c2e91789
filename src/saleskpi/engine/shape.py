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
    # Answered from this rollup table (``engine/rollups.py``), each measure from its slot.
    rollup: str | None = None
    rollup_slots: tuple[int, ...] = ()


@dataclass(frozen=True)
class Compiled:
    sql: str
    params: tuple[str, ...]  # parameter names in binding order
    columns: tuple[str, ...]  # measure column names m0, m1, ...


AS_OF_TABLE = "saleskpi_as_of"


def measure_column(index: int) -> str:
    return f"m{index}"


@dataclass(frozen=True)
class FunnelShape:
    """What the SQL text of a funnel query depends on (``saleskpi.engine.funnel``).

    ``query`` is "order" (each stage's entry positions, over every deal) or "funnel"
    (conversion, drop-off, time in stage, the open pipeline and the deals without
    history, for the deals in scope). Dates, the as-of instant, the pipeline and
    filter values are bound later; the stage order is a temporary table.
    """

    query: str
    won: tuple[str, ...]
    lost: tuple[str, ...]
    dims: tuple[str, ...] = ()
    filter_arity: tuple[tuple[str, int], ...] = ()
    has_start: bool = False
    has_end: bool = False
    has_pipeline: bool = False
    by_rep: bool = False
    # Only this one of the funnel query's parts (``funnel_build.part_count``); None: all
    # of them in one query. ClickHouse runs each part alone (``engine.funnel``), over
    # the deals and events the two staging queries kept (``stage``: "deals" or
    # "events", the SELECT whose rows go into ``FUNNEL_DEALS_TABLE`` or
    # ``FUNNEL_EVENTS_TABLE``). "kept_deals" and "all_events" are every deal's summary
    # and stage entries with their slices, for keeping between questions (``kept``).
    part: int | None = None
    stage: str | None = None
    # A funnel without a scope answered from every deal's events and summaries kept per data
    # version (``FUNNEL_DEALS_TABLE`` and ``FUNNEL_EVENTS_TABLE``, filled from the
    # "kept_deals" and "all_events" stages of the unfiltered shape without a date range).
    kept: bool = False

    def part_count(self) -> int:
        """How many parts the funnel query unites: flow, open and seen for the team (and
        for each rep when by rep), and the open deals without history."""
        return 3 * (2 if self.by_rep else 1) + 1


FUNNEL_ORDER_TABLE = "saleskpi_funnel_order"
FUNNEL_DEALS_TABLE = "saleskpi_funnel_deals"
FUNNEL_EVENTS_TABLE = "saleskpi_funnel_events"
