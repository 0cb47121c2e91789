"""A sync: a CRM's batches into the store, each in its own transaction, resumable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportReport
from saleskpi.domain.settings import Settings
from saleskpi.sources.connectors.base import REGISTRY, Batch, ClientOptions, Connector
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.http import ConnectorError
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.state.sync_state import forget, load_cursor, save_cursor

Progress = Callable[[str], None]


@dataclass
class SyncReport:
    crm: str
    full: bool
    batches: int = 0
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, report: ImportReport) -> None:
        for name, counts in report.entities.items():
            total = self.entities.setdefault(name, EntityCounts())
            total.inserted += counts.inserted
            total.updated += counts.updated
            total.unchanged += counts.unchanged
        self.warnings += [w.message for w in report.warnings]

    def to_dict(self) -> dict[str, object]:
        return {
            "crm": self.crm, "full": self.full, "batches": self.batches,
            "entities": {k: vars(v) for k, v in self.entities.items()},
            "deleted": self.deleted, "warnings": self.warnings,
        }


def connector_for(settings: Settings, crm: str,
                  options: ClientOptions | None = None) -> Connector:
    import saleskpi.sources.connectors.crms  # noqa: F401  (registers the connectors)

    if crm not in REGISTRY:
        raise ConnectorError(_("unknown CRM {crm!r}; known: {known}", crm=crm,
                               known=", ".join(sorted(REGISTRY))))
    credentials = CredentialStore(settings).get(crm)
    if credentials is None:
        raise ConnectorError(_("{crm} is not connected: run 'saleskpi connect {crm}' first",
                               crm=crm))
    return REGISTRY[crm](credentials, options or ClientOptions())


def store_batch(settings: Settings, crm: str, batch: Batch,
                store: AnalyticsStore) -> tuple[ImportReport, dict[str, int]]:
    """Apply the batch's deletions, then upsert its rows; raise if the rows are invalid.

    Deletions go first so a batch can replace rows (a deal's whole stage history).
    Both steps are idempotent and the cursor is saved only after both, so a crash
    between them is repaired by re-reading the batch.

    Returns the import report and the number of rows actually deleted per entity.
    """
    deleted = store.delete_ids(crm, batch.deleted) if batch.deleted else {}
    report = import_frames(settings, batch.frames, source=crm, store=store, log=False) \
        if batch.frames else ImportReport(source=crm)
    if not report.ok:
        first = report.errors[0]
        raise ConnectorError(_(
            "{crm} sent data that does not fit ({where}: {message}); nothing from this "
            "batch was stored", crm=crm, where=first.location(), message=first.message))
    return report, deleted


def sync(settings: Settings, crm: str, *, full: bool = False,
         options: ClientOptions | None = None, progress: Progress | None = None) -> SyncReport:
    """Fetch what changed since the last stored batch (everything with ``full``)."""
    connector = connector_for(settings, crm, options)
    if full:
        forget(settings, crm)
    cursor = load_cursor(settings, crm)
    report = SyncReport(crm, full=not cursor)
    notify = progress or (lambda _msg: None)
    # One store for the whole sync: opening DuckDB per batch would dominate small pages.
    with AnalyticsStore(settings.analytics_path) as store:
        for batch in connector.batches(cursor):
            notify(_("{crm}: {label} ({rows} rows)", crm=crm, label=batch.label,
                     rows=batch.rows()))
            stored, deleted = store_batch(settings, crm, batch, store)
            report.add(stored)
            for entity, count in deleted.items():
                report.deleted[entity] = report.deleted.get(entity, 0) + count
            # Only now is the batch safe: a crash before this line re-reads it next time.
            save_cursor(settings, crm, batch.cursor)
            report.batches += 1
    return report
