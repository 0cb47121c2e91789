"""Running a KPI query: measures grouped into few SQL queries, then KPIs from measures.

Plain Python over the rows DuckDB returns (no pandas), and SQL from the caches
(``saleskpi.engine.compile``): a scorecard whose shapes were compiled before, in
this process or another, imports neither Ibis nor pandas.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import operator
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import product
from pathlib import Path
from typing import Any

from saleskpi.catalog.load import Catalog, CatalogError
from saleskpi.catalog.spec import SECONDS_PER_UNIT, KpiSpec, Measure
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.query import (
    DIMENSIONS,
    KpiQuery,
    KpiValue,
    ResultRow,
    Scorecard,
    Sums,
    check_cells,
    check_periods,
    local_midnight_utc,
    next_period,
    periods_between,
)
from saleskpi.engine.compile import (
    AS_OF_TABLE,
    Compiled,
    CompiledSqlFiles,
    Shape,
    SqlCache,
    StoredSql,
)
from saleskpi.engine.context import ViewContext, supports
from saleskpi.engine.database import Database
from saleskpi.engine.people import filtered_people
from saleskpi.engine.rollups import META_EXISTS, META_SELECT, RollupSpec, parse_meta, usable
from saleskpi.engine.store_facts import StoreFacts

ADDITIVE = {"count", "count_distinct", "sum"}
FROM_DATA = "_from_data"  # False on the rows only the grid completion added
_CACHE = SqlCache()
# The tables and columns of the store, as compiled SQL depends on them.
SCHEMA_SQL = ("SELECT table_name, column_name, data_type FROM information_schema.columns "
              "WHERE table_catalog = current_database() AND table_schema = current_schema() "
              "ORDER BY 1, 2, 3")
Record = dict[str, Any]


class QueryError(InvalidQuery):
    """A query the user can fix: unknown KPI, slice or filter."""
    default_code = "bad_query"


@dataclass(frozen=True)
class _Group:
    """Measures computed by one SQL query: same view, time column and snapshot kind."""

    view: str
    time: str
    until: str | None
    window_days: int | None
    at: str


@dataclass
class _Plan:
    measures: list[Measure]
    column_of: dict[Measure, str]
    # measure -> why it has no values here: "by:<slice>" or "data:<entity>"
    unavailable: dict[Measure, str]
    # id(measure) -> (measure, column, why not): hashing a pydantic model for every
    # row and KPI was most of the Python of a large scorecard. The measure is kept
    # in the value so that a reused id cannot match another measure.
    _located: dict[int, tuple[Measure, str | None, str | None]] = field(
        default_factory=dict)

    def locate(self, measure: Measure) -> tuple[str | None, str | None]:
        """The measure's column in the merged frame, or None and why it has no values."""
        found = self._located.get(id(measure))
        if found is None or found[0] is not measure:
            if measure in self.unavailable:
                found = (measure, None, self.unavailable[measure])
            else:
                found = (measure, self.column_of[measure], None)
            self._located[id(measure)] = found
        return found[1], found[2]


def _check_dimension(dim: str) -> None:
    if dim in DIMENSIONS:
        return
    custom = dim.removeprefix("rep.")
    if not custom.replace("_", "").isalnum():
        raise QueryError(_("unknown slice {dim!r}: use one of {known} or a custom field name",
                           dim=dim, known=", ".join(DIMENSIONS)))


class Engine:
    """Computes KPI scorecards on one analytical store."""

    def __init__(self, store: Database, catalog: Catalog, *, timezone: str,
                 currency: str, cache: SqlCache | None = None,
                 compiled_sql: Path | None = None, use_rollups: bool = True,
                 facts: StoreFacts | None = None) -> None:
        """``compiled_sql``: the workspace's folder of compiled SQL (none: memory only).
        ``facts``: what is known of this version of the store's data (``StoreFacts``).

        ``use_rollups``: answer from the rollups where they can (``engine/rollups.py``);
        off, every answer is computed from the raw rows (``saleskpi verify`` compares).
        """
        self.store = store
        self.catalog = catalog
        self.zone = timezone
        self.currency = currency
        self.cache = cache or _CACHE
        self.facts = facts or StoreFacts()
        if self.facts.sources is None:
            self.facts.sources = store.sources_of_reps()
        # Ibis tables are looked up only when a shape is compiled.
        self.ctx = ViewContext(tables=lambda name: store.ibis.table(name), currency=currency,
                               zone=timezone, several_sources=self.facts.sources > 1)
        self.stored = None if compiled_sql is None else StoredSql(
            CompiledSqlFiles(compiled_sql), self._schema)
        self._measures: dict[str, Measure] = {}
        self._proportions: dict[str, bool] = {}
        self.use_rollups = use_rollups
        # What each group of measures was read from: a rollup table or the view.
        self.answered_from: list[str] = []
        store.con.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {AS_OF_TABLE} (period DATE, as_of TIMESTAMP)"
        )

    # -- public -----------------------------------------------------------------
    def scorecard(self, query: KpiQuery, *, totals: bool = True,
                  now: dt.datetime | None = None) -> Scorecard:
        specs = self._specs(query)
        for dim in query.dims():
            _check_dimension(dim)
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        # A share needs the KPI it is a share of, in every row and in the totals.
        bases = [self.catalog.get(s.of) for s in specs if s.kind == "share" and s.of]
        computed = list({s.key: s for s in [*specs, *bases]}.values())
        rows = self._rows(query, computed, now)
        total_rows: list[ResultRow] = []
        if (totals or bases) and query.by:
            total_query = KpiQuery(query.kpis, (), query.period, query.start, query.end,
                                   query.where)
            total_rows = self._rows(total_query, computed, now)
        for spec in specs:
            if spec.kind == "share" and spec.of:
                _fill_share(spec, self.unit_label(spec), rows, total_rows or rows)
                if total_rows:  # the total is all of the whole: 1 (none of nothing)
                    _fill_share(spec, self.unit_label(spec), total_rows, total_rows)
        wanted = {s.key for s in specs}
        for row in [*rows, *total_rows]:
            row.values = {k: v for k, v in row.values.items() if k in wanted}
        if not totals:
            total_rows = []
        units = {s.key: self.unit_label(s) for s in specs}
        return Scorecard(query, rows, total_rows, units)

    def unit_label(self, spec: KpiSpec) -> str:
        return self.currency if spec.unit == "money" else spec.unit

    def compiled(self, shape: Shape, dialect: str | None = None) -> Compiled:
        """The SQL of ``shape`` for ``dialect`` (the store's if none): from memory, else
        from the workspace's files, else compiled."""
        return self.cache.get(self.ctx, shape, dialect or self.store.dialect.name, self.stored)

    def _schema(self) -> str:
        if self.facts.schema is None:
            self.facts.schema = json.dumps([list(row) for row in self.store.fetch(SCHEMA_SQL)])
        return self.facts.schema

    # -- planning ------------------------------------------------------------------
    def _specs(self, query: KpiQuery) -> list[KpiSpec]:
        try:
            return [self.catalog.get(k) for k in dict.fromkeys(query.kpis)]
        except CatalogError as exc:
            raise QueryError(str(exc)) from None

    def sums(self, query: KpiQuery, *, now: dt.datetime | None = None) -> Sums:
        """KPIs that add up (``adds_up``) by the query's keys, as plain numbers.

        What a plan's days need (each rep's calls on each day of a month: 14,198 rows of
        a 1M-deal company), without a scorecard's rows: no grid of the keys without data
        (their values are zeros), no ``ResultRow`` or ``KpiValue`` per key, no sort.
        Building those was nine tenths of the time of such a question (issue 12). A KPI
        whose measure cannot be computed here counts as zero, as a day without data.
        """
        specs = self._specs(query)
        for dim in query.dims():
            _check_dimension(dim)
        for spec in specs:
            if not adds_up(spec):
                raise ValueError(f"{spec.key} does not add up: ask for a scorecard")
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        measures = list(dict.fromkeys(self._measure(spec) for spec in specs))
        key_columns, table, plan = self._table(query, measures, now)
        located = [(spec.key, plan.locate(self._measure(spec))[0],
                    SECONDS_PER_UNIT.get(spec.unit)) for spec in specs]
        values: dict[tuple[str | None, ...], dict[str, float]] = {}
        texts: dict[tuple[type, Any], str | None] = {}  # each day's text made once
        for key, record in table.items():
            found: dict[str, float] = {}
            for kpi, column, seconds in located:
                number = _number(record.get(column)) if column is not None else None
                number = number or 0.0
                found[kpi] = number / seconds if seconds else number
            text_key: list[str | None] = []
            for value in key:
                typed = (type(value), value)
                if typed not in texts:
                    texts[typed] = _key_text(value)
                text_key.append(texts[typed])
            values[tuple(text_key)] = found
        return Sums(tuple(key_columns), values)

    def _table(self, query: KpiQuery, measures: list[Measure], now: dt.datetime
               ) -> tuple[list[str], dict[tuple[Any, ...], Record], _Plan]:
        """The measures by the query's key columns (by and period): one record per
        combination of key values the data has, the groups' measures side by side."""
        groups: dict[_Group, list[Measure]] = {}
        for m in measures:
            groups.setdefault(_Group(m.entity, m.time, m.until, m.window_days, m.at),
                              []).append(m)
        key_columns = [*dict.fromkeys(query.by)] + (["period"] if query.period != "all" else [])
        # One record per combination of key values: the groups' measures side by side.
        table: dict[tuple[Any, ...], Record] = {}
        column_of: dict[Measure, str] = {}
        unavailable: dict[Measure, str] = {}
        ran = False
        for gi, (group, members) in enumerate(groups.items()):
            columns = [f"g{gi}_m{i}" for i in range(len(members))]
            for m, column in zip(members, columns, strict=True):
                column_of[m] = column
            lacking = [d for d in query.dims() if not supports(group.view, d)]
            if lacking or not self._has_rows(group.view):
                for m in members:
                    unavailable[m] = f"by:{lacking[0]}" if lacking else f"data:{group.view}"
                continue
            ran = True
            labels, found = self._run_group(query, group, tuple(members), now)
            where = {name: i for i, name in enumerate(labels)}
            keys_at = [where["period" if k == "period" else f"dim_{k}"] for k in key_columns]
            values_at = [where[f"m{i}"] for i in range(len(members))]
            for found_row in found:
                key = tuple(_null_if_nan(found_row[i]) for i in keys_at)
                record = table.get(key)
                if record is None:
                    record = table[key] = dict(zip(key_columns, key, strict=True))
                for column, i in zip(columns, values_at, strict=True):
                    record[column] = found_row[i]
        if not ran and not key_columns:
            table[()] = {}  # a total over nothing is still one row (of zeros)
        return key_columns, table, _Plan(measures, column_of, unavailable)

    def _rows(self, query: KpiQuery, specs: list[KpiSpec], now: dt.datetime) -> list[ResultRow]:
        measures = list(dict.fromkeys(m for s in specs for m in self.catalog.measures(s.key)))
        key_columns, table, plan = self._table(query, measures, now)
        column_of = plan.column_of
        records = self._complete_grid(query, table, key_columns)
        if not key_columns and not records:
            records = [{}]
        names = self._rep_names() if "rep" in query.by else {}
        rows: list[ResultRow] = []
        adding = [c for m, c in column_of.items() if m.agg in ADDITIVE]
        other = [c for m, c in column_of.items() if m.agg not in ADDITIVE]
        evaluated = [(spec.key, self._evaluator(spec, plan)) for spec in specs
                     if spec.kind != "share"]
        # The rows only the grid added (an idle rep's day) all hold zeros and NULLs, so
        # their KPI values are equal: computed once (a month of days by rep is 14,000
        # rows; the KPI values are read, never changed).
        blank: dict[str, KpiValue] | None = None
        # A grid repeats each key value (a day by rep: each day 458 times): its text
        # is made once. Keyed with the type, as 1 and 1.0 are equal but read apart.
        texts: dict[tuple[type, Any], str | None] = {}

        def text_of(value: Any) -> str | None:
            key = (type(value), value)
            try:
                if key not in texts:
                    texts[key] = _key_text(value)
                return texts[key]
            except TypeError:  # an unhashable value: not kept
                return _key_text(value)

        for record in records:
            for column in adding:
                if _number(record.get(column)) is None:
                    record[column] = 0
            for column in other:
                if column not in record:
                    record[column] = None
            keys = {k: text_of(record[k]) for k in key_columns}
            from_data = record.get(FROM_DATA) is not False
            row = ResultRow(keys, from_data=from_data)
            if "rep" in keys:
                row.labels["rep_name"] = names.get(keys["rep"] or "", keys["rep"] or "")
            if from_data:
                row.values = {key: evaluate(record) for key, evaluate in evaluated}
            else:
                if blank is None:
                    blank = {key: evaluate(record) for key, evaluate in evaluated}
                row.values = dict(blank)
            rows.append(row)
        rows.sort(key=lambda r: tuple((v is None, v or "") for v in r.keys.values()))
        return rows

    def _has_rows(self, view: str) -> bool:
        counts = self.facts.row_counts
        if view not in counts:
            counts[view] = self.store.count(view)
        return counts[view] > 0

    def _run_group(self, query: KpiQuery, group: _Group, measures: tuple[Measure, ...],
                   now: dt.datetime) -> tuple[list[str], list[tuple[Any, ...]]]:
        """The group's column names and rows: keys (dim_<slice>, period) and m0, m1, ..."""
        snapshot = group.until is not None or group.window_days is not None
        if snapshot:
            self.store.con.execute(f"DELETE FROM {AS_OF_TABLE}")
            instants = self._as_of(query, group, now)
            if instants:
                self.store.con.executemany(f"INSERT INTO {AS_OF_TABLE} VALUES (?, ?)",
                                           [list(i) for i in instants])
        shape = Shape(
            view=group.view, time=group.time, until=group.until,
            window_days=group.window_days, at=group.at, measures=measures,
            dims=query.dims(), filter_arity=tuple((d, len(v)) for d, v in query.where),
            period=query.period,
            has_start=query.start is not None and not snapshot,
            has_end=query.end is not None and not snapshot,
            zone=self.zone, by=tuple(dict.fromkeys(query.by)),
        )
        if not snapshot and self.use_rollups:
            spec = self.rollups().get((group.view, group.time))
            slots = usable(spec, measures, query.dims(), self.zone, self.currency)
            if spec is not None and slots is not None:
                shape = replace(shape, rollup=spec.name, rollup_slots=slots)
        self.answered_from.append(shape.rollup or group.view)
        compiled = self.compiled(shape)
        values: dict[str, Any] = {}
        for index, (_dim, options) in enumerate(query.where):
            for i, option in enumerate(options):
                values[f"f{index}_{i}"] = option
        if shape.has_start and query.start:
            values["start"] = query.start.isoformat()
        if shape.has_end and query.end:
            values["end"] = (query.end + dt.timedelta(days=1)).isoformat()
        cursor = self.store.con.execute(compiled.sql, values)
        names = [column[0] for column in cursor.description]
        return names, cursor.fetchall()

    def rollups(self) -> dict[tuple[str, str], RollupSpec]:
        """The rollups the store keeps, read once per engine (none on ClickHouse)."""
        facts = self.facts
        if facts.rollups is None:
            if facts.rollup_meta is None:
                meta: list[list[Any]] = []
                if self.store.dialect.name != "clickhouse":
                    found = self.store.fetch(META_EXISTS)
                    if found and found[0][0]:
                        meta = [list(row) for row in self.store.fetch(META_SELECT)]
                facts.rollup_meta = meta
            facts.rollups = parse_meta(tuple(row) for row in facts.rollup_meta)
        return facts.rollups

    def _as_of(self, query: KpiQuery, group: _Group,
               now: dt.datetime) -> tuple[tuple[dt.date | None, dt.datetime], ...]:
        """The instants at which snapshot measures are taken: each period's end (or start)."""
        at_start = group.at == "start"
        if query.period == "all":
            if at_start:
                if query.start is None:
                    return ()
                return ((None, min(now, local_midnight_utc(query.start, self.zone))),)
            if query.end is None:
                return ((None, now),)
            return ((None, min(now, local_midnight_utc(query.end + dt.timedelta(days=1),
                                                        self.zone))),)
        first, last = query.start, query.end
        if first is None or last is None:
            low, high = self._data_range(group)
            first = first or low
            last = last or min(high, self._local_date(now))
        if first is None or last is None:
            return ()
        check_periods(first, last, query.period)  # the data's range, when none was asked
        instants = []
        for start in periods_between(first, last, query.period):
            edge = start if at_start else next_period(start, query.period)
            instants.append((start, min(local_midnight_utc(edge, self.zone), now)))
        return tuple(instants)

    def _local_date(self, moment: dt.datetime) -> dt.date:
        zone = zoneinfo.ZoneInfo(self.zone)
        return moment.replace(tzinfo=dt.UTC).astimezone(zone).date()

    def _data_range(self, group: _Group) -> tuple[dt.date | None, dt.date]:
        time = f'"{group.time}"'
        latest = f'coalesce("{group.until}", {time})' if group.until else time
        found = self.store.fetch(f'SELECT min({time}), max({latest}) FROM "{group.view}"')
        row = found[0] if found else None
        if not row or row[0] is None:
            today = self._local_date(dt.datetime.now(dt.UTC).replace(tzinfo=None))
            return None, today
        return self._local_date(row[0]), self._local_date(row[1])

    # -- rows ------------------------------------------------------------------------
    def _rep_names(self) -> dict[str, str]:
        """Person key -> name of every rep, read once per engine (the data cannot change
        under an open store)."""
        if self.facts.names is None:
            self.facts.names = {str(p): str(n) for p, n in self.store.fetch(
                "SELECT DISTINCT person, person_name FROM rep_people")}
        return self.facts.names

    def _complete_grid(self, query: KpiQuery, table: dict[tuple[Any, ...], Record],
                       key_columns: list[str]) -> list[Record]:
        """Every rep and every period of the range is a row, zeros included.

        A scorecard that hides an idle rep or a month without sales misleads. The
        rows the data has are kept (also those outside the grid, such as facts with
        no rep); the grid's other rows are added, marked as not from the data.
        """
        axes: list[list[tuple[Any, ...]]] = []  # each: value tuples of axis_columns' part
        axis_columns: list[str] = []
        # A rep's team goes with the rep: by rep and team, each rep is listed with
        # their own team, not crossed with every team (458 reps × 70 teams of zeros).
        with_team = "rep" in key_columns and "team" in key_columns
        others = [k for k in key_columns if k not in ("rep", "period")
                  and not (with_team and k == "team")]
        records = list(table.values())
        if others:
            axes.append(list(dict.fromkeys(tuple(r[k] for k in others) for r in records)))
            axis_columns += others
        if with_team:
            pairs = [tuple(p) for p in self._reps_in_filter(query, with_team=True)]
            present = [(r["rep"], r["team"]) for r in records if r["rep"] is not None]
            axes.append(list(dict.fromkeys([*pairs, *present])))
            axis_columns += ["rep", "team"]
        elif "rep" in key_columns:
            axes.append([(rep,) for rep in dict.fromkeys(self._reps_in_filter(query))])
            axis_columns.append("rep")
        if "period" in key_columns:
            periods = {r["period"] for r in records if r["period"] is not None}
            if query.start and query.end:
                periods |= set(periods_between(query.start, query.end, query.period))
            axes.append([(p,) for p in sorted(periods)])
            axis_columns.append("period")
        for record in records:
            record[FROM_DATA] = True
        if not axes:
            return records
        check_cells(math.prod(len(axis) for axis in axes), len(query.kpis))
        order = [axis_columns.index(k) for k in key_columns]
        for combination in product(*axes):
            flat = [value for part in combination for value in part]
            key = tuple(flat[i] for i in order)
            if key not in table:
                table[key] = {**dict(zip(key_columns, key, strict=True)), FROM_DATA: False}
        return list(table.values())

    def _reps_in_filter(self, query: KpiQuery, *, with_team: bool = False) -> list[Any]:
        """The reps the filters let through (person keys), or (person, team) pairs."""
        if not with_team and not {"rep", "team"} & set(query.where_dims()):
            # Every rep: the names' one read (a by-rep scorecard needs both) serves the
            # grid too; each read of the rep_people view cost 8-10 ms (issue 12).
            return list(self._rep_names())
        sql, params = filtered_people("person, team" if with_team else "person",
                                      query.where)
        found = self.store.fetch(sql, params)
        if with_team:
            return [(str(r[0]), r[1]) for r in found]
        return [str(r[0]) for r in found]

    def _evaluator(self, spec: KpiSpec, plan: _Plan) -> Callable[[Record], KpiValue]:
        """The value of ``spec`` for a row, with what is the same for every row (the
        measures' columns, the unit, whether a ratio gets an interval) worked out
        once: per row and KPI it was a tenth of a `saleskpi kpi` (issue 12)."""
        unit = self.unit_label(spec)
        if spec.kind == "simple":
            column, reason = plan.locate(self._measure(spec))
            if column is None:
                gaps = [reason or ""]
                return lambda record: KpiValue(None, unit, unavailable=list(gaps))
            return lambda record: KpiValue(_convert(_number(record[column]), spec), unit)
        if spec.kind == "share":
            return lambda record: KpiValue(None, unit)  # filled in from the totals later
        if spec.kind == "ratio":
            return self._ratio_evaluator(spec, unit, plan)
        return self._formula_evaluator(spec, unit, plan)

    def _ratio_evaluator(self, spec: KpiSpec, unit: str, plan: _Plan
                         ) -> Callable[[Record], KpiValue]:
        assert spec.numerator is not None and spec.denominator is not None
        numerator = self._part_reader(spec.numerator, plan)
        denominator = self._part_reader(spec.denominator, plan)
        proportion = self._is_proportion(spec)

        def ratio(record: Record) -> KpiValue:
            num, num_gaps = numerator(record)
            den, den_gaps = denominator(record)
            if num_gaps or den_gaps:
                return KpiValue(None, unit, num, den, is_ratio=True,
                                unavailable=sorted({*num_gaps, *den_gaps}))
            value = num / den if num is not None and den else None
            result = KpiValue(value, unit, num, den, is_ratio=True)
            # An interval only makes sense for successes out of trials, not seconds or money.
            if proportion and num is not None and den and 0 <= num <= den:
                result.ci_low, result.ci_high = wilson_interval(num, den)
            return result

        return ratio

    def _formula_evaluator(self, spec: KpiSpec, unit: str, plan: _Plan
                           ) -> Callable[[Record], KpiValue]:
        formula = spec.formula or ""
        parts = [(ref, self._evaluator(self.catalog.get(ref), plan))
                 for ref in formula_names(formula)]

        def derived(record: Record) -> KpiValue:
            values = {ref: evaluate(record) for ref, evaluate in parts}
            gaps = sorted({g for part in values.values() for g in part.unavailable})
            if gaps:
                return KpiValue(None, unit, unavailable=gaps)
            return KpiValue(_formula(formula, {k: v.value for k, v in values.items()}), unit)

        return derived

    def _part_reader(self, part: str | Measure, plan: _Plan
                     ) -> Callable[[Record], tuple[float | None, list[str]]]:
        """A ratio part's value for a row and why it is missing, its column located once."""
        if isinstance(part, Measure):
            column, reason = plan.locate(part)
            if column is None:
                gaps = [reason or ""]
                return lambda record: (None, gaps)
            return lambda record: (_number(record[column]), [])
        evaluate = self._evaluator(self.catalog.get(part), plan)

        def kpi_part(record: Record) -> tuple[float | None, list[str]]:
            value = evaluate(record)
            return value.value, value.unavailable

        return kpi_part

    def _measure(self, spec: KpiSpec) -> Measure:
        # Evaluated once per row and KPI: building the pydantic model each time
        # was a fifth of a large scorecard's time.
        measure = self._measures.get(spec.key)
        if measure is None:
            measure = self._measures[spec.key] = spec.measure()
        return measure

    def _is_proportion(self, spec: KpiSpec) -> bool:
        """A ratio of counts (successes out of trials): it gets a confidence interval."""
        known = self._proportions.get(spec.key)
        if known is None:
            assert spec.numerator is not None and spec.denominator is not None
            known = self._proportions[spec.key] = bool(
                spec.unit == "ratio" and self._counts(spec.numerator)
                and self._counts(spec.denominator))
        return known

    def _counts(self, part: str | Measure) -> bool:
        """Whether a ratio part counts things (so the ratio is a proportion of cases)."""
        if isinstance(part, str):
            spec = self.catalog.get(part)
            if spec.kind != "simple":
                return False
            part = self._measure(spec)
        return part.agg in ("count", "count_distinct")


def adds_up(spec: KpiSpec) -> bool:
    """A count or sum of a simple KPI, not a snapshot: its value over days is the sum of
    its days' (``Engine.sums`` answers these only). The service's ``is_cumulative``."""
    return spec.kind == "simple" and spec.agg in ("count", "sum") and spec.until is None


def _fill_share(spec: KpiSpec, unit: str, rows: list[ResultRow],
                totals: list[ResultRow]) -> None:
    """Each row's part of the total of ``spec.of``, per period."""
    assert spec.of is not None
    total_by_period = {t.keys.get("period"): t.values[spec.of] for t in totals}
    for row in rows:
        part = row.values[spec.of]
        whole = total_by_period.get(row.keys.get("period"))
        if part.unavailable or whole is None or whole.unavailable:
            row.values[spec.key] = KpiValue(None, unit, unavailable=part.unavailable)
            continue
        value = part.value / whole.value if part.value is not None and whole.value else None
        row.values[spec.key] = KpiValue(value, unit, part.value, whole.value, is_ratio=True)


def wilson_interval(successes: float, trials: float, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion: honest on small samples, unlike p ± 2σ."""
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _null_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _key_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> float | None:
    """A measure's value as a float (DuckDB gives int, float or Decimal); None for NULL."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _convert(raw: float | None, spec: KpiSpec) -> float | None:
    if raw is None:
        return None
    return raw / SECONDS_PER_UNIT[spec.unit] if spec.unit in SECONDS_PER_UNIT else raw


def formula_names(formula: str) -> list[str]:
    """The KPI names a derived formula refers to."""
    return sorted({n.id for n in ast.walk(ast.parse(formula, mode="eval"))
                   if isinstance(n, ast.Name)})


_OPS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _formula(formula: str, values: dict[str, float | None]) -> float | None:
    """Arithmetic over KPI values; None (undefined) when any input is or a divisor is 0."""

    def walk(node: ast.AST) -> float | None:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values.get(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = walk(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div) and right == 0:
                return None
            return _OPS[type(node.op)](left, right)
        raise QueryError(f"formula {formula!r}: only + - * / numbers and KPI names allowed")

    return walk(ast.parse(formula, mode="eval"))
