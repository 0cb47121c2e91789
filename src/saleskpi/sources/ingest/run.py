"""An import from start to finish: read, map, validate, load, log.

A written import is logged in the same journaled write as its facts (the Loader);
an import refused before writing is logged here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from saleskpi.domain.fx import missing_rates_text
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportReport, Progress
from saleskpi.domain.settings import Settings
from saleskpi.domain.tables import TypedTable
from saleskpi.sources.ingest.fast import fast_import
from saleskpi.sources.ingest.files import read_path
from saleskpi.sources.ingest.mapping import Mapping, apply_mapping
from saleskpi.sources.ingest.validate import validate_table
from saleskpi.store import rollups
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.backend import open_store
from saleskpi.store.facts import FactStore
from saleskpi.store.loader import Loader, frames_to_tables

if TYPE_CHECKING:
    import pandas as pd

GENERATED = "<generated>"  # the import log's origin of frames made in code


def import_path(
    settings: Settings,
    path: Path,
    *,
    mapping: Mapping | None = None,
    source: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    fast: bool = True,
) -> ImportReport:
    """Import a folder of CSV files or a workbook; nothing is written if anything is wrong.

    ``fast``: canonical CSV files (no mapping) are read, typed and checked in DuckDB
    (``fast.py``); any file it cannot read exactly as the Python path does is read by
    that path. ``report.fast_files`` names the files read the fast way.
    """
    source = source or (mapping.source or mapping.name if mapping else "files")
    report = ImportReport(source=source, dry_run=dry_run)
    notify = progress or (lambda _msg: None)
    notify(_("reading {path}", path=path))
    fast = fast and mapping is None
    with contextlib.ExitStack() as stack:
        # On DuckDB the fast path reads in the store's own connection (no copy of the
        # rows between two databases: 0.9 s of CPU at 2M activities), so the store
        # opens first, made if there is none yet; an import that then stores nothing
        # (refused, or a dry run) deletes the store it made (``AnalyticsStore.discard``).
        same = fast and settings.backend == "duckdb"
        store = stack.enter_context(open_store(settings, waiting=progress)) if same else None
        kept = [False]
        if isinstance(store, AnalyticsStore) and store.created:
            made = store
            # Registered after the store: runs before its close (a second close is a no-op).
            stack.callback(lambda: None if kept[0] else made.discard())
        # A first import's rows are typed straight into tables the store then adopts.
        straight: frozenset[str] = frozenset()
        if isinstance(store, AnalyticsStore) and not dry_run:
            store.drop_left_staging()
            straight = store.empty_tables()
        quick = stack.enter_context(fast_import(
            settings.timezone, enabled=fast, con=store.con if store is not None else None,
            source=source, straight=straight))
        raw = read_path(path, report, take=quick.take if quick is not None else None)
        mapped = apply_mapping(raw, mapping, report)
        typed: list[TypedTable] = list(quick.tables) if quick is not None else []
        report.fast_files = list(quick.files) if quick is not None else []
        for table in mapped:
            notify(_("validating {file}", file=table.name))
            result = validate_table(table, settings.timezone, report)
            if result is not None:
                typed.append(result)
        if not report.ok:
            for table in mapped:
                counts = report.entities.setdefault(table.entity, EntityCounts())
                counts.rejected += len(table.frame)
            for fast_table in quick.tables if quick is not None else []:
                counts = report.entities.setdefault(fast_table.entity, EntityCounts())
                counts.rejected += len(fast_table)
            return _finish(settings, report, str(path))
        if store is None:
            store = stack.enter_context(open_store(settings, waiting=progress))
        loader = Loader(store, source, report, progress)
        loader.run(typed, dry_run=dry_run, log_origin=str(path))
        if not dry_run and report.ok:
            kept[0] = True  # stored: the rollups can be built again if they fail here
            rollups.ensure(store, settings, notify)
            warn_missing_rates(store, settings.currency, report)
    return report if loader.logged else _finish(settings, report, str(path))


def warn_missing_rates(store: FactStore, currency: str, report: ImportReport) -> None:
    """Say at once, not at the first money KPI (which refuses to answer), that stored
    amounts in some currency have no rate to the reporting one: a company that keeps its
    deals in UAH and never set its currency meets this first."""
    missing = store.currencies_without_rates(currency)
    if not missing:
        return
    parts = missing_rates_text(missing)
    # One currency and not a single rate: most likely the company's own currency.
    hint = next(iter(missing)) if len(missing) == 1 else "<CODE>"
    report.warn(
        "currency_without_rates",
        _("Amounts in {parts} have no exchange rate to the reporting currency {currency}: "
          "money KPIs will refuse to answer until you import fx_rates for them or set "
          "the reporting currency with 'saleskpi settings --currency {hint}'",
          parts=parts, currency=currency, hint=hint),
        count=sum(count for count, _first in missing.values()),
        examples=sorted(missing))


def import_frames(
    settings: Settings,
    frames: dict[str, pd.DataFrame],
    *,
    source: str,
    store: FactStore | None = None,
    progress: Progress | None = None,
    log: bool = True,
) -> ImportReport:
    """Import typed frames made in code (the demo generator, CRM connectors).

    ``log``: record the run in the import log; a sync's many small batches do not.
    """
    report = ImportReport(source=source)
    tables = frames_to_tables(frames)
    origin = GENERATED if log else None
    with contextlib.nullcontext(store) if store is not None \
            else open_store(settings, waiting=progress) as opened:
        loader = Loader(opened, source, report, progress)
        loader.run(tables, dry_run=False, log_origin=origin)
        if report.ok and log:  # a sync's batches: once at the sync's end
            rollups.ensure(opened, settings, progress or (lambda _m: None))
    return _finish(settings, report, GENERATED) if log and not loader.logged else report


def _finish(settings: Settings, report: ImportReport, origin: str) -> ImportReport:
    if not report.dry_run:
        from saleskpi.store.state import record_import  # Alembic is slow to import: only here

        record_import(settings, origin, report)
    return report
