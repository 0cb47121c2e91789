"""A sync: a CRM's batches into the store, each one journaled write, resumable."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from saleskpi.domain.faults import fault_point
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportReport
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings
from saleskpi.sources.connectors.base import REGISTRY, Batch, ClientOptions, Connector
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.http import ConnectorError
from saleskpi.store import rollups
from saleskpi.store.backend import open_store
from saleskpi.store.facts import FactStore
from saleskpi.store.journal import StateChanges, journaled
from saleskpi.store.loader import Loader, frames_to_tables
from saleskpi.store.state.sync_seen import begin_full, full_running, seen
from saleskpi.store.state.sync_state import forget, load_cursor

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


def with_dependents(store: FactStore, crm: str, ids: dict[str, list[str]],
                    follow: frozenset[str]) -> dict[str, list[str]]:
    """``ids`` plus the stored rows of the ``follow`` entities that belong to a deleted deal.

    A CRM that deletes a deal's activities with the deal (Bitrix24) lists them
    nowhere afterwards: without this they would stay until the next full sync.
    """
    deals = ids.get("deals") or []
    if not deals or not follow:
        return ids
    out = {entity: list(chosen) for entity, chosen in ids.items()}
    for entity in sorted(follow):
        rows = store.fetch(f'SELECT CAST("id" AS VARCHAR) FROM "{entity}" WHERE datasource = ? '
                           'AND CAST(deal_id AS VARCHAR) IN (SELECT unnest(?::VARCHAR[]))',
                           [crm, list(deals)])
        owned = [str(row[0]) for row in rows]
        if owned:
            out[entity] = list(dict.fromkeys([*out.get(entity, []), *owned]))
    return out


def store_batch(settings: Settings, crm: str, batch: Batch, store: FactStore,
                follow: frozenset[str] = frozenset(), *,
                full: bool = False) -> tuple[ImportReport, dict[str, int]]:
    """Store one batch as one journaled write; raise if its rows are invalid.

    The batch's deletions, its rows (DuckDB), the ids it lists (for a full sync) and
    the cursor after it (SQLite) are stored together or not at all
    (``store/journal.py``), so a sync killed at any point resumes from the last
    batch stored, and nothing of a batch is kept without its cursor.
    Deletions go first so a batch can replace rows (a deal's whole stage history).

    ``follow``: entities whose rows go with their deleted deal (``with_dependents``).

    Returns the import report and the number of rows actually deleted per entity.
    """
    changes = StateChanges(crm=crm, cursor=dict(batch.cursor),
                           seen=listed_ids(batch) if full else None)
    report = ImportReport(source=crm)
    deleted: dict[str, int] = {}
    with journaled(store.con, store.path, "sync_batch", crm, changes):
        if batch.deleted:
            deleted = store.delete_ids(crm, with_dependents(store, crm, batch.deleted, follow),
                                       in_transaction=True)
        if batch.frames:
            # Staged and counted after the deletions, in the same transaction.
            loader = Loader(store, crm, report)
            try:
                if not loader.prepare(frames_to_tables(batch.frames)):
                    first = report.errors[0]
                    raise ConnectorError(_(
                        "{crm} sent data that does not fit ({where}: {message}); nothing "
                        "from this batch was stored", crm=crm, where=first.location(),
                        message=first.message))
                loader.write_staged(changes)
            finally:
                loader.drop_staged()
    return report, deleted


def listed_ids(batch: Batch) -> dict[str, list[str]]:
    """The ids a batch lists, per entity keyed by ``id`` (stage changes follow their deal)."""
    listed: dict[str, list[str]] = {}
    for entity, frame in batch.frames.items():
        if entity in ENTITIES and ENTITIES[entity].key == ("id",) and "id" in frame:
            listed[entity] = [str(v) for v in frame["id"].dropna()]
    return listed


def _stored_ids(store: FactStore, crm: str, entity: str, column: str = "id") -> set[str]:
    rows = store.fetch(f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{entity}" '
                       f'WHERE datasource = ? AND "{column}" IS NOT NULL', [crm])
    return {str(row[0]) for row in rows}


def last_moves(store: FactStore, crm: str) -> dict[str, dt.datetime]:
    """Deal id -> when it last entered a stage, for deals of ``crm`` that ever moved."""
    rows = store.fetch('SELECT CAST(deal_id AS VARCHAR), max(entered_at) FROM stage_changes '
                       'WHERE datasource = ? GROUP BY deal_id HAVING count(*) > 1', [crm])
    return {str(deal): moved for deal, moved in rows if moved is not None}


def unseen_ids(store: FactStore, crm: str,
               listed: dict[str, set[str]]) -> dict[str, list[str]]:
    """Rows of ``crm`` a complete full sync did not list, for the entities it listed.

    Stage changes go with their deal (also those of deals never stored). A rep who
    is not listed but still owns a row of ``crm`` stays: CRMs deactivate users
    rather than delete them, and their deals keep their names.
    """
    gone: dict[str, list[str]] = {}
    for entity, ids in listed.items():
        if entity == "reps":
            continue
        missing = _stored_ids(store, crm, entity) - ids
        if missing:
            gone[entity] = sorted(missing)
    if "deals" in listed:
        orphans = _stored_ids(store, crm, "stage_changes", "deal_id") - listed["deals"]
        if orphans:
            gone["stage_changes"] = sorted(orphans)
    if "reps" in listed:
        missing = _stored_ids(store, crm, "reps") - listed["reps"]
        removed = {entity: set(ids) for entity, ids in gone.items()}
        for entity, spec in ENTITIES.items():
            if entity == "reps" or "rep_id" not in [c.name for c in spec.columns] \
                    or spec.key != ("id",):
                continue
            rows = store.fetch(f'SELECT DISTINCT "id", "rep_id" FROM "{entity}" '
                               'WHERE datasource = ? AND rep_id IS NOT NULL', [crm])
            missing -= {str(rep) for row_id, rep in rows
                        if str(row_id) not in removed.get(entity, set())}
        if missing:
            gone["reps"] = sorted(missing)
    return gone


def sync(settings: Settings, crm: str, *, full: bool = False,
         options: ClientOptions | None = None, progress: Progress | None = None,
         hints: dict[str, list[str]] | None = None) -> SyncReport:
    """Fetch what changed since the last stored batch (everything with ``full``).

    A full sync (asked for, a first sync, or the resume of either) records every id
    the CRM lists; once the CRM has listed everything, the rows of ``crm`` it did
    not list are removed. ``hints`` are ids a webhook said the CRM deleted: they are
    removed first.
    """
    connector = connector_for(settings, crm, options)
    if full:
        forget(settings, crm)
    cursor = load_cursor(settings, crm)
    if not cursor:
        begin_full(settings, crm)
    # SQLite only so far (a killed run is simply started again, as full).
    fault_point("sync_started")
    report = SyncReport(crm, full=not cursor or full_running(settings, crm))

    def count(deleted: dict[str, int]) -> None:
        for entity, number in deleted.items():
            if number:
                report.deleted[entity] = report.deleted.get(entity, 0) + number

    notify = progress or (lambda _msg: None)
    # One store for the whole sync: opening DuckDB per batch would dominate small pages.
    with open_store(settings, waiting=notify) as store:
        if hasattr(connector, "known_moves"):
            # A connector that reads stage history deal by deal skips the deals whose
            # stored history already ends with their last move.
            connector.known_moves = last_moves(store, crm)
        # Entities the CRM deletes together with their deal.
        follow = frozenset(getattr(connector, "deleted_with_deal", ()))
        if hints:
            # DuckDB only (no SQLite side to agree with): its own transaction.
            count(store.delete_ids(crm, with_dependents(
                store, crm, {k: v for k, v in hints.items() if v}, follow)))
            fault_point("hints_deleted")
        for batch in connector.batches(cursor):
            notify(_("{crm}: {label} ({rows} rows)", crm=crm, label=batch.label,
                     rows=batch.rows()))
            stored, deleted = store_batch(settings, crm, batch, store, follow,
                                          full=report.full)
            report.add(stored)
            count(deleted)
            report.batches += 1
        if report.full:
            # A connector may name entities whose rows stay when no longer listed.
            kept = frozenset(getattr(connector, "kept_when_unlisted", ()))
            listed = {e: ids for e, ids in seen(settings, crm).items() if e not in kept}
            gone = unseen_ids(store, crm, listed)
            # The removal and the end of the full sync: one journaled write, so a crash
            # in between repeats the removal (idempotent) rather than skipping it.
            with journaled(store.con, store.path, "sync_end", crm,
                           StateChanges(crm=crm, end_full=True)):
                if gone:
                    count(store.delete_ids(crm, gone, in_transaction=True))
        rollups.ensure(store, settings, notify)
    return report
