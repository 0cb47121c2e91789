"""Rollups: additive measures kept per company-local day, rep and slice (no Ibis here).

A rollup holds, for one (view, time column), every additive measure of the
catalogue that reads only the view's stored columns, per local day, datasource,
raw ``rep_id`` and the slices the view carries (source, segment, product,
pipeline). The rep's person and team are joined at query time (``rep_people``,
``reps``), so a rep moving to another team needs no rebuild. The store keeps the
rollups in the transaction of every write (``saleskpi.store.rollups``); the engine
answers a question from one when it can (``usable``) and from the raw rows
otherwise. See docs/rollups.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from saleskpi.catalog.load import Catalog
from saleskpi.catalog.spec import Measure
from saleskpi.domain.conditions import parse_condition
from saleskpi.domain.schema import DERIVED_COLUMNS
from saleskpi.engine.context import SUPPORTED

# Raised whenever what a rollup row means changes: rollups of another format are
# not read, and ``ensure`` rebuilds them.
FORMAT = 1
META_TABLE = "saleskpi_rollups"
DIRTY_TABLE = "saleskpi_rollup_dirty"
# The views with a rep of their own (revenue's rep is its deal's or account's: not kept).
VIEWS = ("leads", "deals", "activities", "accounts")
ROLLUP_AGGS = frozenset({"count", "sum", "avg"})
SLICES = ("source", "segment", "product", "pipeline")
PER_REP = frozenset({"rep", "team"})  # joined at query time from the raw rep_id
# Derived columns a rollup may hold: computed from the row's own columns and, for
# money in the reporting currency, the fx rates (any change of rates rebuilds the
# rollups that hold such a column, ``store/rollups.py``).
OWN_DERIVED: dict[str, frozenset[str]] = {"deals": frozenset({"close_s"})}
FX_DERIVED: dict[str, frozenset[str]] = {"deals": frozenset({"amount_rc"})}
# Which stored entities a view's slices are looked up in, by which column.
SLICE_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "leads": (("accounts", "account_id"),),
    "deals": (("leads", "lead_id"), ("accounts", "account_id")),
    "activities": (("leads", "lead_id"), ("accounts", "account_id"), ("deals", "deal_id")),
    "accounts": (),
}


@dataclass(frozen=True)
class RollupSpec:
    """One rollup table: its view and time column, measures (slot = index) and slices."""

    view: str
    time: str
    measures: tuple[Measure, ...]
    zone: str
    currency: str
    format: int = FORMAT

    @property
    def name(self) -> str:
        return f"rollup_{self.view}_{self.time}"

    @property
    def slices(self) -> tuple[str, ...]:
        return tuple(d for d in SLICES if d in SUPPORTED[self.view])

    def slot(self, measure: Measure) -> int | None:
        try:
            return self.measures.index(measure)
        except ValueError:
            return None

    @property
    def derived(self) -> set[str]:
        """The derived columns its measures read (the fill query adds them)."""
        return {c for m in self.measures for c in _columns(m)} & set(DERIVED_COLUMNS[self.view])

    @property
    def uses_rates(self) -> bool:
        return bool(self.derived & FX_DERIVED.get(self.view, frozenset()))

    def measures_json(self) -> str:
        return json.dumps([m.model_dump(mode="json") for m in self.measures], sort_keys=True)


def value_columns(slot: int, measure: Measure) -> tuple[str, ...]:
    """The rollup's columns of the measure in ``slot``: an average keeps sum and count."""
    return (f"r{slot}", f"r{slot}_n") if measure.agg == "avg" else (f"r{slot}",)


def keepable(measure: Measure) -> bool:
    """Whether a rollup can hold the measure: additive, not a snapshot, and read from
    the view's own stored columns only (derived columns depend on other tables and
    on fx rates; they are computed from the raw rows)."""
    if measure.is_snapshot or measure.agg not in ROLLUP_AGGS or measure.entity not in VIEWS:
        return False
    view = measure.entity
    derived = (set(DERIVED_COLUMNS[view]) - OWN_DERIVED.get(view, frozenset())
               - FX_DERIVED.get(view, frozenset()))
    return not any(c in derived for c in _columns(measure))


def _columns(measure: Measure) -> list[str]:
    columns = [measure.column, measure.time, *(parse_condition(w).column for w in measure.where)]
    return [c for c in columns if c]


def wanted_specs(catalog: Catalog, zone: str, currency: str) -> list[RollupSpec]:
    """The rollups the catalogue's additive measures need, one per (view, time column)."""
    found: dict[tuple[str, str], list[Measure]] = {}
    for key in catalog.kpis:
        for measure in catalog.measures(key):
            if keepable(measure):
                members = found.setdefault((measure.entity, measure.time), [])
                if measure not in members:
                    members.append(measure)
    return [RollupSpec(view, time, tuple(sorted(ms, key=_order)), zone, currency)
            for (view, time), ms in sorted(found.items())]


def _order(measure: Measure) -> str:
    return json.dumps(measure.model_dump(mode="json"), sort_keys=True)


def parse_meta(rows: Iterable[tuple[object, ...]]) -> dict[tuple[str, str], RollupSpec]:
    """The meta table's rows (view, time, zone, currency, format, measures JSON) as specs."""
    specs: dict[tuple[str, str], RollupSpec] = {}
    for view, time, zone, currency, fmt, measures in rows:
        parsed = tuple(Measure(**m) for m in json.loads(str(measures)))
        specs[(str(view), str(time))] = RollupSpec(str(view), str(time), parsed, str(zone),
                                                   str(currency), int(str(fmt)))
    return specs


META_SELECT = (f"SELECT view_name, time_column, zone, currency, format, measures "
               f"FROM {META_TABLE}")
META_EXISTS = ("SELECT count(*) FROM information_schema.tables "
               f"WHERE table_name = '{META_TABLE}' AND table_schema = current_schema()")


def usable(spec: RollupSpec | None, measures: Iterable[Measure], dims: Iterable[str],
           zone: str, currency: str) -> tuple[int, ...] | None:
    """The slots of ``measures`` if ``spec`` can answer them by ``dims`` in ``zone``
    (and ``currency``, the reporting currency its money was converted to)."""
    if spec is None or spec.format != FORMAT or spec.zone != zone:
        return None
    if spec.currency != currency:
        return None
    if any(d not in PER_REP and d not in spec.slices for d in dims):
        return None
    slots = []
    for measure in measures:
        slot = spec.slot(measure)
        if slot is None:
            return None
        slots.append(slot)
    return tuple(slots)
