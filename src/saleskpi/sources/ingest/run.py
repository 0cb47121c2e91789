"""An import from start to finish: read, map, validate, load, log.

A written import is logged in the same journaled write as its facts (the Loader);
an import refused before writing is logged here.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pandas as pd

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportReport, Progress
from saleskpi.domain.settings import Settings
from saleskpi.domain.tables import TypedTable
from saleskpi.sources.ingest.files import read_path
from saleskpi.sources.ingest.mapping import Mapping, apply_mapping
from saleskpi.sources.ingest.validate import validate_table
from saleskpi.store.backend import open_store
from saleskpi.store.facts import FactStore
from saleskpi.store.loader import Loader, frames_to_tables

GENERATED = "<generated>"  # the import log's origin of frames made in code


def import_path(
    settings: Settings,
    path: Path,
    *,
    mapping: Mapping | None = None,
    source: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a folder of CSV files or a workbook; nothing is written if anything is wrong."""
    source = source or (mapping.source or mapping.name if mapping else "files")
    report = ImportReport(source=source, dry_run=dry_run)
    notify = progress or (lambda _msg: None)
    notify(_("reading {path}", path=path))
    raw = read_path(path, report)
    mapped = apply_mapping(raw, mapping, report)
    typed: list[TypedTable] = []
    for table in mapped:
        notify(_("validating {file}", file=table.name))
        result = validate_table(table, settings.timezone, report)
        if result is not None:
            typed.append(result)
    if not report.ok:
        for table in mapped:
            counts = report.entities.setdefault(table.entity, EntityCounts())
            counts.rejected += len(table.frame)
        return _finish(settings, report, str(path))
    with open_store(settings, waiting=progress) as store:
        loader = Loader(store, source, report, progress)
        loader.run(typed, dry_run=dry_run, log_origin=str(path))
    return report if loader.logged else _finish(settings, report, str(path))


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
    return _finish(settings, report, GENERATED) if log and not loader.logged else report


def _finish(settings: Settings, report: ImportReport, origin: str) -> ImportReport:
    if not report.dry_run:
        from saleskpi.store.state import record_import  # Alembic is slow to import: only here

        record_import(settings, origin, report)
    return report
