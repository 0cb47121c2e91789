"""The funnel from stage history: Ibis expressions compiled once per shape, run with bound values.

Every deal's history becomes one ordered list of events: its stage entries
(``stage_changes``) and its closes (entries into a won or lost stage, or, when
the history has none after the last stage entry, the deal's own status and
``closed_at``). Consecutive entries into the same stage are one stay. From it:

- stage conversion: of the deals whose first entry into stage k is in range,
  those that afterwards entered a later stage (k+1 or beyond: skipping a stage
  is progress) or were won;
- drop-off: of the same deals, those finally lost while in stage k (a deal lost
  and then reopened is not lost there unless it is lost there again);
- time in stage: each finished stay in k that began in range, from entering k to
  the next event (another stage, won or lost); open stays are not durations;
- the open pipeline at an instant: each deal is in the stage of its latest event
  at or before it, unless that event closed it.

Slices use the deal's rep (the owner), like the scorecard. The expressions are in
``saleskpi.engine.funnel_build``; their SQL is kept like the KPIs' (in memory and in
the workspace's files, keyed by shape and dialect), so a funnel whose SQL was
compiled before imports no Ibis. The stage order, which changes with the data and
funnel.yaml, is a temporary table filled before each run rather than part of the SQL.
Only the deals that can count in the question (a stage entry in the date range, or
possibly open at the as-of instant) have their events ordered.

A funnel asked without a scope (the head of sales's, with any filters) can instead
read every deal's ordered events kept in two Parquet files per data version
(``keep_events``, ``kept_key``): the server builds them in the background after each
write, and a question then reads only its deals, range and instant of them. Built on
DuckDB only; PostgreSQL and ClickHouse order the events per question.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from saleskpi.catalog.funnel import FunnelConfig, FunnelError, load_funnel_config
from saleskpi.domain.files import private_dir, private_file
from saleskpi.domain.filter_names import product_ids_by_name, with_ids, with_people
from saleskpi.domain.funnel import (
    FunnelOptions,
    FunnelReport,
    FunnelSlice,
    PipelineFunnel,
    StageRow,
)
from saleskpi.domain.i18n import _
from saleskpi.domain.query import DIMENSIONS, EVERYTHING, Scope, local_midnight_utc
from saleskpi.domain.settings import Settings
from saleskpi.engine.compile import (
    Compiled,
    CompiledSqlFiles,
    SqlCache,
    StoredSql,
    code_fingerprint,
    key_text,
)
from saleskpi.engine.context import ViewContext
from saleskpi.engine.database import Database
from saleskpi.engine.people import people_in_filter, rep_names
from saleskpi.engine.scorecard import SCHEMA_SQL
from saleskpi.engine.shape import (
    FUNNEL_DEALS_TABLE,
    FUNNEL_EVENTS_TABLE,
    FUNNEL_ORDER_TABLE,
    FunnelShape,
)

Where = tuple[tuple[str, tuple[str, ...]], ...]
# Per pipeline: its stages in order, and where the order came from ("data", "funnel.yaml").
StageOrders = dict[str | None, tuple[list[str], str]]
_CACHE = SqlCache()
# The kept tables' files in a folder of kept events (``keep_events``).
KEPT_FILES = {FUNNEL_DEALS_TABLE: "deals.parquet", FUNNEL_EVENTS_TABLE: "events.parquet"}


def _check_dimension(dim: str) -> None:
    """The scorecard's slices, or a custom field name (letters, digits, underscores)."""
    if dim in DIMENSIONS:
        return
    if not dim.removeprefix("rep.").replace("_", "").isalnum():
        raise FunnelError(_("unknown filter {dim!r}: use one of {known} or a custom field name",
                            dim=dim, known=", ".join(DIMENSIONS)))


def _resolve_names(store: Database, where: Where, scope: Scope) -> Where:
    """Let users filter by a rep's or a product's name as well as by id (as the
    scorecard does: ``SalesKpiService._resolve_names``); a rep's name or any source's rep
    id means the person."""
    dims = {dim for dim, _values in where}
    if "rep" in dims:
        where = with_people(where, rep_names(store), scope)
    if "product" in dims:
        where = with_ids(where, {"product": product_ids_by_name(
            {str(i): str(n) for i, n in store.fetch("SELECT id, name FROM products")})})
    return where


def stage_orders(store: Database, config: FunnelConfig, *, stored: Path | None = None
                 ) -> StageOrders:
    """Per pipeline: its stages in order and where the order came from.

    From the data: stages sorted by the median position at which deals first
    enter them (1 = a deal's first stage), over every deal in the store, so the
    order is the pipeline's and not the viewer's. A pipeline listed in
    funnel.yaml keeps that order; stages the data has and the file does not
    follow it, in data order.
    """
    shape = FunnelShape("order", tuple(config.won_names()), tuple(config.lost_names()))
    # The order reads no amounts: the currency does not matter.
    rows = _run(store, compiled(store, shape, currency="", stored=stored), {})
    learned: dict[str | None, list[tuple[float, float, int, str]]] = {}
    for row in rows:
        learned.setdefault(row["pipeline"], []).append(
            (float(row["median"]), float(row["mean"]), -int(row["deals"]), row["stage"]))
    orders: dict[str | None, tuple[list[str], str]] = {
        pipeline: ([s for *_keys, s in sorted(found)], "data")
        for pipeline, found in learned.items()
    }
    for pipeline, listed in config.pipelines.items():
        from_data = orders.get(pipeline, ([], "data"))[0]
        spelled = {s.casefold(): s for s in from_data}
        chosen = [spelled.get(s.strip().casefold(), s.strip()) for s in listed
                  if not config.is_terminal(s)]
        chosen = list(dict.fromkeys(chosen))
        orders[pipeline] = (chosen + [s for s in from_data if s not in chosen], "funnel.yaml")
    return orders


def _timestamp(moment: dt.datetime) -> str:
    return moment.isoformat(sep=" ")


def compiled(store: Database, shape: FunnelShape, *, currency: str, zone: str = "UTC",
             stored: Path | None = None, dialect: str | None = None,
             several_sources: bool | None = None) -> Compiled:
    """The SQL of a funnel shape for ``dialect`` (the store's if none): from memory, else
    the workspace's files, else compiled.

    ``currency``: the reporting currency open amounts are in, converted with the rate
    of the company's calendar day in ``zone`` (as the scorecard converts them).
    ``stored``: the workspace's folder of compiled SQL (none: memory only).
    ``several_sources``: whether reps come from several sources (None: asked of the
    store); a rep is then a person matched across them.
    """
    ctx = _context(store, currency, zone, several_sources)
    files = None if stored is None else StoredSql(
        CompiledSqlFiles(stored),
        lambda: json.dumps([list(row) for row in store.fetch(SCHEMA_SQL)]))
    return _CACHE.get(ctx, shape, dialect or store.dialect.name, files)


def _context(store: Database, currency: str, zone: str,
             several_sources: bool | None = None) -> ViewContext:
    """What the funnel's SQL is compiled against: the store's tables, the reporting
    currency, the zone of the rates' days and whether a rep is a person matched
    across sources (as the scorecard's)."""
    if several_sources is None:
        several_sources = store.sources_of_reps() > 1
    return ViewContext(tables=lambda name: store.ibis.table(name), currency=currency,
                       zone=zone, several_sources=several_sources)


def _run(store: Database, query: Compiled, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The query's rows as {column: value}, binding the values its SQL names."""
    rows = store.fetch(query.sql, {name: values[name] for name in query.params})
    return [dict(zip(query.columns, row, strict=True)) for row in rows]


def _fill_order(store: Database, orders: StageOrders) -> None:
    """The stage order the funnel query sorts same-instant events and conversions by."""
    store.con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {FUNNEL_ORDER_TABLE} "
                      "(pipeline VARCHAR, stage VARCHAR, pos BIGINT)")
    store.con.execute(f"DELETE FROM {FUNNEL_ORDER_TABLE}")
    rows = [[pipeline, stage, pos] for pipeline, (stages, _f) in orders.items()
            for pos, stage in enumerate(stages, start=1)]
    if rows:
        store.con.executemany(f"INSERT INTO {FUNNEL_ORDER_TABLE} VALUES (?, ?, ?)", rows)


def _parts(store: Database, shape: FunnelShape) -> tuple[list[FunnelShape], list[FunnelShape]]:
    """The queries that keep the deals and their events first (none but on ClickHouse),
    and the funnel's: one query, or on ClickHouse one per part.

    ClickHouse does not compute a query's shared subqueries once: each part of the
    union recomputed the deals and their events, all at the same time, and their
    joins' and windows' memory added up (the funnel of 1M deals did not fit in 6 GB).
    So there the deals (with their history summed up) and the ordered events of the
    ones that can count are kept in two temporary tables, and each part reads them.
    """
    if store.dialect.name != "clickhouse":
        return [], [shape]
    return ([replace(shape, stage="deals"), replace(shape, stage="events")],
            [replace(shape, part=part) for part in range(shape.part_count())])


def _renamed(query: Compiled, names: dict[str, str]) -> Compiled:
    """``query`` reading the kept tables by their names in this run."""
    sql = query.sql
    for table, name in names.items():
        sql = re.sub(rf"\b{table}\b", name, sql)
    return replace(query, sql=sql)


@contextmanager
def _kept(store: Database, stages: list[FunnelShape], values: dict[str, Any],
          compile_shape: Callable[[FunnelShape], Compiled]) -> Iterator[dict[str, str]]:
    """Fill a temporary table from each staging query; drop them after.

    Named anew for every run: chdb's temporary tables are shared by the connections
    of one process, and two funnels may run at once (the server's threads).
    """
    names: dict[str, str] = {}
    try:
        for shape in stages:
            table = FUNNEL_DEALS_TABLE if shape.stage == "deals" else FUNNEL_EVENTS_TABLE
            query = _renamed(compile_shape(shape), names)
            names[table] = f"{table}_{secrets.token_hex(6)}"
            store.con.execute(f'CREATE TEMPORARY TABLE "{names[table]}" ENGINE = Memory AS '
                              f"{query.sql}", {name: values[name] for name in query.params})
        yield names
    finally:
        for name in names.values():
            store.con.execute(f'DROP TEMPORARY TABLE IF EXISTS "{name}"')


def reads_kept(store: Database, scope: Scope) -> bool:
    """Whether the question reads the kept events: on a store whose events can be kept,
    asked without a scope (the head of sales's, with any filters; a team's or a rep's
    few deals are ordered faster than the kept events are read)."""
    return store.dialect.name == "duckdb" and not scope.as_filters()


def _kept_shapes(config: FunnelConfig) -> list[FunnelShape]:
    """The queries whose rows are kept: every deal with its history summed up, and
    every deal's events (no filter, no date range, no parameters)."""
    won, lost = tuple(config.won_names()), tuple(config.lost_names())
    return [FunnelShape("funnel", won, lost, stage="kept_deals"),
            FunnelShape("funnel", won, lost, stage="all_events")]


def kept_key(store: Database, settings: Settings, config: FunnelConfig, orders: StageOrders,
             version: tuple[int, ...]) -> str:
    """The name of the kept events of this data: everything their rows depend on.

    The data version; what the SQL that builds them depends on (funnel.yaml's won and
    lost names, the reporting currency and zone, the dialect, the engine's code and
    libraries: the compiled SQL's own cache key); the stage order. Nothing is compiled
    to work it out.
    """
    ctx = _context(store, settings.currency, settings.timezone)
    shapes = [key_text((shape, store.dialect.name, ctx.currency, ctx.zone,
                        ctx.several_sources)) for shape in _kept_shapes(config)]
    stages = [[pipeline, found] for pipeline, (found, _from) in orders.items()]
    text = json.dumps([list(version), code_fingerprint(), shapes, stages])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def keep_events(store: Database, settings: Settings, config: FunnelConfig,
                orders: StageOrders, folder: Path) -> None:
    """Write every deal's summary and ordered events into ``folder`` (``KEPT_FILES``).

    Written in a folder aside and renamed into place: a reader finds both files or
    none. The events are sorted by time, so that a question's date range skips the
    files' other row groups.
    """
    _fill_order(store, orders)
    aside = folder.with_name(f"{folder.name}.{secrets.token_hex(4)}.part")
    private_dir(aside)  # deals and amounts: only the workspace's owner reads them
    try:
        for file, shape in zip(KEPT_FILES.values(), _kept_shapes(config), strict=True):
            query = compiled(store, shape, currency=settings.currency, zone=settings.timezone,
                             stored=settings.compiled_sql_dir)
            assert not query.params, "kept rows depend on no question"
            rows = query.sql
            if shape.stage == "all_events":
                rows = f"SELECT * FROM ({rows}) ORDER BY ts"
            target = str(aside / file).replace("'", "''")
            store.con.execute(f"COPY ({rows}) TO '{target}' (FORMAT parquet)")
            private_file(aside / file)
        aside.rename(folder)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def _read_kept(store: Database, folder: Path) -> None:
    """The kept tables the question's SQL names, as this connection's views of the files."""
    for table, file in KEPT_FILES.items():
        path = str(folder / file).replace("'", "''")
        store.con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS "
                          f"SELECT * FROM read_parquet('{path}')")


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def compute_funnel(store: Database, settings: Settings, scope: Scope = EVERYTHING,
                   options: FunnelOptions | None = None, *, now: dt.datetime | None = None,
                   config: FunnelConfig | None = None,
                   orders: StageOrders | None = None,
                   kept: Path | None = None) -> FunnelReport:
    """The funnel of every pipeline (or ``options.pipeline``) for the deals in ``scope``.

    ``orders``: ``stage_orders(store, config)`` when the caller keeps it (it depends on
    every deal in the store and funnel.yaml, never on the viewer or the filters), so
    that it is not learned again for every funnel; read, not changed.
    ``kept``: the folder ``keep_events`` wrote for this data and ``orders`` (named by
    ``kept_key``), read when the question has no scope (``reads_kept``).
    """
    options = options or FunnelOptions()
    config = config or load_funnel_config(settings.workspace)
    if options.start and options.end and options.start > options.end:
        raise FunnelError(_("--from {start} is after --to {end}: swap the two dates",
                            start=options.start.isoformat(), end=options.end.isoformat()))
    for dim, _values in options.where:
        _check_dimension(dim)
    # The user's filters may name reps; the scope holds ids and is added as it is.
    where = (*_resolve_names(store, options.where, scope), *scope.as_filters())
    zone = settings.timezone
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    as_of = now
    if options.as_of is not None:
        as_of = min(now, local_midnight_utc(options.as_of + dt.timedelta(days=1), zone))

    if orders is None:
        orders = stage_orders(store, config, stored=settings.compiled_sql_dir)
    if options.pipeline is not None and options.pipeline not in orders:
        known = ", ".join(sorted(p for p in orders if p is not None)) or "—"
        raise FunnelError(_("no stage history for pipeline {pipeline!r}; pipelines: {known}",
                            pipeline=options.pipeline, known=known))

    shape = FunnelShape(
        "funnel", tuple(config.won_names()), tuple(config.lost_names()),
        dims=tuple(dict.fromkeys(d for d, _v in where)),
        filter_arity=tuple((d, len(v)) for d, v in where),
        has_start=options.start is not None, has_end=options.end is not None,
        has_pipeline=options.pipeline is not None, by_rep=options.by_rep,
        kept=kept is not None and reads_kept(store, scope))
    values: dict[str, Any] = {f"f{index}_{i}": value for index, (_d, found) in enumerate(where)
                              for i, value in enumerate(found)}
    values["as_of"] = _timestamp(as_of)
    values["pipeline"] = options.pipeline
    if options.start:
        values["start"] = _timestamp(local_midnight_utc(options.start, zone))
    if options.end:
        values["end"] = _timestamp(local_midnight_utc(options.end + dt.timedelta(days=1), zone))
    _fill_order(store, orders)
    if shape.kept and kept is not None:
        _read_kept(store, kept)

    several_sources = store.sources_of_reps() > 1

    def compile_shape(part: FunnelShape) -> Compiled:
        return compiled(store, part, currency=settings.currency, zone=zone,
                        stored=settings.compiled_sql_dir, several_sources=several_sources)

    staging, parts = _parts(store, shape)
    found = []
    with _kept(store, staging, values, compile_shape) as names:
        for part in parts:
            found += _run(store, _renamed(compile_shape(part), names), values)
    without = sum(int(r["open_deals"]) for r in found if r["part"] == "without")

    # {(pipeline, rep or None for the team)}: {stage: row}
    slices: dict[tuple[str | None, str | None], dict[str, StageRow]] = {}

    def row(pipeline: str | None, rep: str | None, team_row: bool, stage: str) -> StageRow:
        key = (pipeline, None if team_row else rep)
        return slices.setdefault(key, {}).setdefault(stage, StageRow(stage))

    for found_row in found:
        if found_row["part"] == "without":
            continue
        if found_row["part"] == "seen":  # a funnel even if none of its figures is counted
            rep = None if found_row["team_row"] else found_row["rep"]
            slices.setdefault((found_row["pipeline"], rep), {})
            continue
        target = row(found_row["pipeline"], found_row["rep"], found_row["team_row"],
                     found_row["stage"])
        if found_row["part"] == "flow":
            target.entered, target.converted, target.dropped = (
                int(found_row["entered"]), int(found_row["converted"]),
                int(found_row["dropped"]))
            target.finished, target.median_days, target.p90_days = (
                int(found_row["finished"]), _number(found_row["median_days"]),
                _number(found_row["p90_days"]))
        else:
            target.open_deals = int(found_row["open_deals"])
            target.open_amount = _number(found_row["open_amount"])

    names = people_in_filter(store, where) if options.by_rep else {}
    pipelines: list[PipelineFunnel] = []
    for pipeline, (stages, order_from) in orders.items():
        if options.pipeline is not None and pipeline != options.pipeline:
            continue
        if (pipeline, None) not in slices:
            continue  # nothing in scope
        team = _slice(stages, slices[(pipeline, None)], None, None)
        reps = []
        for rep_id, name in names.items():
            if (pipeline, rep_id) in slices:
                rep = _slice(stages, slices[(pipeline, rep_id)], rep_id, name)
                for mine, theirs in zip(rep.stages, team.stages, strict=True):
                    mine.compare(theirs)
                reps.append(rep)
        pipelines.append(PipelineFunnel(pipeline, list(stages), order_from, team, reps))
    pipelines.sort(key=lambda p: (p.pipeline is None, p.pipeline or ""))
    return FunnelReport(options, as_of, zone, settings.currency, pipelines, int(without))


def _slice(stages: list[str], rows: dict[str, StageRow], rep: str | None,
           name: str | None) -> FunnelSlice:
    return FunnelSlice(rep, name, [rows.get(stage) or StageRow(stage) for stage in stages])
