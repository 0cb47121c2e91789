"""Rollup tables kept in the transaction of every write (design: docs/rollups.md).

A write marks the days it touches as dirty (``mark``): the old and new days of
each changed or deleted row, and the days of the rows whose slices it may change
(activities of a changed lead, account or deal). ``refresh`` then recomputes those
days from the raw rows, with the rollup's own fill query, before the transaction
commits: a failed write leaves the rollups as they were, a repeated one changes
nothing. A stored UTC date is within a day of the company-local day (zones are
within ±14 h), so the UTC date ±1 day covers it without converting zones here.

ClickHouse has no transactions: there are no rollups, it scans the raw tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from saleskpi.domain.i18n import _
from saleskpi.engine.compile import CompiledSqlFiles
from saleskpi.engine.context import ViewContext
from saleskpi.engine.database import Database
from saleskpi.engine.rollups import (
    DIRTY_TABLE,
    META_EXISTS,
    META_SELECT,
    META_TABLE,
    SLICE_SOURCES,
    RollupSpec,
    parse_meta,
    wanted_specs,
)
from saleskpi.engine.shape import Compiled
from saleskpi.store.rollup_fills import fill_digest, shipped_fill

if TYPE_CHECKING:
    from saleskpi.domain.settings import Settings


class FactStore(Database, Protocol):
    """What rollups need of a store (``store.facts.FactStore`` is one)."""

    def transaction(self) -> AbstractContextManager[Any]: ...


RATES = "fx_rates"
Specs = dict[tuple[str, str], RollupSpec]
OFFSETS = "CROSS JOIN (VALUES (-1), (0), (1)) AS k(k)"
META_DDL = (f"CREATE TABLE IF NOT EXISTS {META_TABLE} (table_name VARCHAR PRIMARY KEY, "
            "view_name VARCHAR, time_column VARCHAR, zone VARCHAR, currency VARCHAR, "
            "format INTEGER, measures VARCHAR)")
DIRTY_DDL = f"CREATE TABLE IF NOT EXISTS {DIRTY_TABLE} (rollup VARCHAR, day DATE)"
_FILLS: dict[tuple[RollupSpec, str, bool], str] = {}


def kept(store: FactStore) -> Specs:
    """The rollups the store keeps (none on ClickHouse or before the first build)."""
    if store.dialect.name == "clickhouse":
        return {}
    rows = store.fetch(META_EXISTS)
    if not rows or not rows[0][0]:
        return {}
    return parse_meta(tuple(r) for r in store.fetch(META_SELECT))


def _fill(store: FactStore, spec: RollupSpec, *, dirty_only: bool) -> str:
    """The rollup's fill query: from memory, else as compiled by an earlier process and
    kept with the engine's compiled SQL (the workspace's ``cache/sql``), else as shipped
    for the built-in catalogue (``rollup_fills.py``), else compiled with Ibis and kept
    there. Every import and sync runs in a new process, and importing Ibis and
    compiling the fills cost about 1 s, more than a small import itself."""
    key = (spec, store.dialect.name, dirty_only)
    if key in _FILLS:
        return _FILLS[key]
    files = _sql_files(store)
    digest = fill_digest(spec, store.dialect.name, dirty_only)
    found = files.get(digest) if files is not None else None
    if found is None:
        shipped = shipped_fill(spec, store.dialect.name, dirty_only=dirty_only)
        if shipped is not None:
            _FILLS[key] = shipped
            return shipped
        from saleskpi.engine.rollup_build import fill_sql  # Ibis: only when compiling

        ctx = ViewContext(tables=lambda name: store.ibis.table(name), currency=spec.currency,
                          zone=spec.zone)
        found = Compiled(fill_sql(ctx, spec, store.dialect.name, dirty_only=dirty_only),
                         (), ())
        if files is not None:
            files.put(digest, found)
    _FILLS[key] = found.sql
    return found.sql


def _sql_files(store: FactStore) -> CompiledSqlFiles | None:
    """The workspace's folder of compiled SQL (``Settings.compiled_sql_dir``: ``cache/sql``
    beside the store's ``analytics.duckdb``), if the store knows its workspace."""
    path = getattr(store, "path", None)
    return CompiledSqlFiles(Path(path).parent / "cache" / "sql") if path is not None else None


def build(store: FactStore, wanted: Sequence[RollupSpec],
          progress: Callable[[str], object] = lambda _m: None, *,
          force: bool = False) -> list[RollupSpec]:
    """Make the ``wanted`` rollups that are missing or differ (``force``: all of them)
    from the raw rows, in one transaction; the rollups rebuilt."""
    if store.dialect.name == "clickhouse":
        return []
    tables = {str(r[0]) for r in store.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema()")}
    if not {META_TABLE, DIRTY_TABLE} <= tables:
        # Only when missing: a write with nothing to write would still change the
        # data version on some backends (and every cached answer with it).
        with store.transaction() as con:
            con.execute(META_DDL)
            con.execute(DIRTY_DDL)
    present = kept(store)
    stale = [s for s in wanted
             if force or present.get((s.view, s.time)) != s or s.name not in tables]
    if not stale:
        return []
    fills = [(spec, _fill(store, spec, dirty_only=False)) for spec in stale]
    with store.transaction() as con:
        for spec, sql in fills:
            progress(_("building the rollup of {view} by {time}", view=spec.view,
                       time=spec.time))
            con.execute(f'DROP TABLE IF EXISTS "{spec.name}"')
            # In day order: a question's date range then skips most of the table.
            con.execute(f'CREATE TABLE "{spec.name}" AS SELECT * FROM ({sql}) f ORDER BY day')
            con.execute(f"DELETE FROM {META_TABLE} WHERE table_name = ?", [spec.name])
            con.execute(f"INSERT INTO {META_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [spec.name, spec.view, spec.time, spec.zone, spec.currency,
                         spec.format, spec.measures_json()])
    return stale


def mark(con: Any, specs: Specs, entity: str, rows_sql: str,
         params: list[Any] | None = None, *, references: bool = True) -> None:
    """Mark dirty the days of ``rows_sql`` (rows of ``entity`` about to change or go)
    and, with ``references``, of the facts whose slices those rows give."""
    for spec in specs.values():
        name = f"'{spec.name}'"
        day = f'CAST(r."{spec.time}" AS DATE) + k.k'
        if entity == RATES and spec.uses_rates:
            mark_all(con, spec)
            continue
        if spec.view == entity:
            con.execute(f"INSERT INTO {DIRTY_TABLE} SELECT DISTINCT {name}, {day} "
                        f'FROM ({rows_sql}) r {OFFSETS} WHERE r."{spec.time}" IS NOT NULL',
                        params)
            continue
        if not references:
            continue
        for source, column in SLICE_SOURCES[spec.view]:
            if source != entity:
                continue
            con.execute(
                f"INSERT INTO {DIRTY_TABLE} SELECT DISTINCT {name}, {day} "
                f'FROM "{spec.view}" r JOIN (SELECT DISTINCT datasource, id FROM ({rows_sql}) c) c '
                f'ON r.datasource = c.datasource AND r."{column}" = c.id {OFFSETS} '
                f'WHERE r."{spec.time}" IS NOT NULL', params)


def mark_all(con: Any, spec: RollupSpec) -> None:
    """Every day of ``spec`` is dirty (a rate can change the money of any later day)."""
    con.execute(f"INSERT INTO {DIRTY_TABLE} VALUES (?, NULL)", [spec.name])


def refresh(store: FactStore, specs: Specs) -> None:
    """Recompute the dirty days of every rollup (inside the caller's transaction)."""
    if not specs:
        return
    con = store.con
    dirty: dict[str, bool] = {}  # rollup -> every day dirty
    for name, everything in con.execute(
            f"SELECT DISTINCT rollup, day IS NULL FROM {DIRTY_TABLE}").fetchall():
        dirty[str(name)] = dirty.get(str(name), False) or bool(everything)
    if not dirty:
        return  # a write that changed nothing writes nothing here either
    for spec in specs.values():
        if spec.name not in dirty:
            continue
        if dirty[spec.name]:
            con.execute(f'DELETE FROM "{spec.name}"')
            con.execute(f'INSERT INTO "{spec.name}" {_fill(store, spec, dirty_only=False)}')
            continue
        con.execute(f'DELETE FROM "{spec.name}" WHERE day IN '
                    f"(SELECT day FROM {DIRTY_TABLE} WHERE rollup = ?)", [spec.name])
        con.execute(f'INSERT INTO "{spec.name}" {_fill(store, spec, dirty_only=True)}')
    con.execute(f"DELETE FROM {DIRTY_TABLE}")


def forget_source(store: FactStore, specs: Specs, source: str) -> None:
    """Every fact of ``source`` is gone: so are its rollup rows (slices never cross
    sources); rates are not per source, so rollups of converted money are redone."""
    for spec in specs.values():
        store.con.execute(f'DELETE FROM "{spec.name}" WHERE datasource = ?', [source])
        if spec.uses_rates:
            mark_all(store.con, spec)
    refresh(store, specs)


def ensure(store: FactStore, settings: Settings,
           progress: Callable[[str], object] = lambda _m: None) -> list[RollupSpec]:
    """Build the rollups the workspace's catalogue needs and the store lacks (a new
    workspace, an upgrade, a new custom KPI, another time zone); the rollups built."""
    from saleskpi.catalog.load import CatalogError, load_catalog

    if store.dialect.name == "clickhouse":
        return []
    try:
        catalog = load_catalog(settings.user_kpis_path, keep_in=settings.kept_yaml_dir)
    except CatalogError:
        return []  # a broken kpis.yaml is reported where it is used; keep what is there
    return build(store, wanted_specs(catalog, settings.timezone, settings.currency), progress)
