"""The one object every surface calls: CLI today, API, web and alerts later.

It owns the caller's scope: the scope's filters are added to every query before
the engine sees it, so no surface can forget them.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from saleskpi.catalog.load import Catalog, load_catalog
from saleskpi.engine.query import (
    EVERYTHING,
    KpiQuery,
    KpiValue,
    ResultRow,
    Scope,
    Scorecard,
)
from saleskpi.engine.scorecard import Engine
from saleskpi.ingest.load import Progress
from saleskpi.ingest.mapping import Mapping
from saleskpi.ingest.report import ImportReport
from saleskpi.ingest.run import import_path
from saleskpi.settings import Settings
from saleskpi.store import AnalyticsStore


class SalesKpiService:
    def __init__(self, settings: Settings, *, shared_writer: bool = False) -> None:
        """``shared_writer``: inside the server, which also writes (imports, syncs).

        DuckDB lets one process hold a file read-write and refuses a read-only
        connection next to it, so the server opens every connection read-write.
        """
        self.settings = settings
        self.shared_writer = shared_writer
        self._catalog: Catalog | None = None
        # Many people open the same page: a scorecard is kept for ``cache_seconds``
        # and only while the stored data is unchanged (its files' modification times).
        self._cache: OrderedDict[tuple[object, ...], tuple[float, Scorecard]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.cache_hits = 0

    def reload_catalog(self) -> None:
        """After the user's kpis.yaml changed (the web catalogue editor)."""
        self._catalog = None
        with self._cache_lock:
            self._cache.clear()

    def _data_version(self) -> tuple[int, ...]:
        path = self.settings.analytics_path
        wal = path.with_name(path.name + ".wal")
        return tuple(p.stat().st_mtime_ns if p.exists() else 0 for p in (path, wal))

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.user_kpis_path)
        return self._catalog

    @contextmanager
    def engine(self, *, read_only: bool = True) -> Iterator[Engine]:
        read_only = read_only and not self.shared_writer
        with AnalyticsStore(self.settings.analytics_path, read_only=read_only) as store:
            yield Engine(store, self.catalog, timezone=self.settings.timezone,
                         currency=self.settings.currency)

    def scorecard(self, query: KpiQuery, scope: Scope = EVERYTHING, *, totals: bool = True,
                  now: dt.datetime | None = None) -> Scorecard:
        """KPIs for ``query`` within ``scope``, with total and team-average rows."""
        ttl = self.settings.cache_seconds
        key = (query, scope, totals, now, self._data_version())
        if ttl > 0 and now is None:
            with self._cache_lock:
                hit = self._cache.get(key)
                if hit is not None and hit[0] > time.monotonic():
                    self.cache_hits += 1
                    return copy.deepcopy(hit[1])
        scoped = replace(query, where=(*query.where, *scope.as_filters()))
        with self.engine() as engine:
            scoped = self._resolve_rep_names(engine, scoped)
            result = engine.scorecard(scoped, totals=totals, now=now)
        result.query = query
        if ttl > 0 and now is None:
            with self._cache_lock:
                self._cache[key] = (time.monotonic() + ttl, copy.deepcopy(result))
                while len(self._cache) > 256:
                    self._cache.popitem(last=False)
        return result

    def import_path(self, path: Path, *, mapping: Mapping | None, source: str | None,
                    dry_run: bool, progress: Progress | None = None) -> ImportReport:
        return import_path(self.settings, path, mapping=mapping, source=source,
                           dry_run=dry_run, progress=progress)

    @staticmethod
    def _resolve_rep_names(engine: Engine, query: KpiQuery) -> KpiQuery:
        """Let users filter by a rep's name as well as by id."""
        if "rep" not in query.where_dims():
            return query
        by_name = {name: person for person, name in engine.store.fetch(
            "SELECT DISTINCT person, name FROM rep_people JOIN reps "
            "ON reps.id = rep_people.rep_id AND reps.datasource = rep_people.datasource")}
        where = tuple(
            (dim, tuple(by_name.get(v, v) for v in values)) if dim == "rep" else (dim, values)
            for dim, values in query.where
        )
        return replace(query, where=where)


def averages(scorecard: Scorecard) -> list[ResultRow]:
    """The team-average row(s): the mean of the rows' values, per period."""
    groups: dict[str | None, list[ResultRow]] = {}
    for row in scorecard.rows:
        groups.setdefault(row.keys.get("period"), []).append(row)
    result = []
    for period, rows in groups.items():
        keys: dict[str, str | None] = {"period": period} if "period" in rows[0].keys else {}
        average = ResultRow(keys)
        for key, unit in scorecard.units.items():
            values = [v for r in rows if (v := r.values[key].value) is not None]
            mean = sum(values) / len(values) if values else None
            average.values[key] = KpiValue(mean, unit)
        result.append(average)
    return result
