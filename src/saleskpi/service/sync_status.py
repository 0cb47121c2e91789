"""Where each CRM's sync stands: connected or not, the last stored batch, the import log.

Read only: the cursor a sync saves after each stored batch (``sync_state``), the
encrypted credentials' names, and the latest import-log entry of the CRM's source.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from saleskpi.domain.settings import Settings
from saleskpi.service.syncs import connected_crms, known_crms
from saleskpi.sources.connectors.credentials import CREDENTIALS_FILE
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import ImportRun
from saleskpi.store.state.sync_state import SyncState


@dataclass(frozen=True)
class LoggedRun:
    """The latest import-log entry whose source is the CRM's name."""

    finished_at: dt.datetime  # UTC
    ok: bool
    entities: dict[str, dict[str, int]]


@dataclass(frozen=True)
class CrmSyncStatus:
    crm: str
    connected: bool
    last_sync: dt.datetime | None  # UTC: when the last batch was stored
    cursor: dict[str, str]
    last_run: LoggedRun | None


def sync_status(settings: Settings, crm: str | None = None) -> list[CrmSyncStatus]:
    """Every known CRM (or only ``crm``), in name order."""
    names = known_crms() if crm is None else [crm]
    # Without stored credentials nothing is connected: do not make a key just to look.
    stored = (settings.workspace / CREDENTIALS_FILE).exists()
    connected = set(connected_crms(settings)) if stored else set()
    result = []
    with Session(engine_for(settings.state_url)) as session:
        states = {s.crm: s for s in session.scalars(
            select(SyncState).where(SyncState.crm.in_(names)))}
        for name in names:
            state = states.get(name)
            run = session.scalar(select(ImportRun).where(ImportRun.source == name)
                                 .order_by(ImportRun.id.desc()).limit(1))
            result.append(CrmSyncStatus(
                crm=name, connected=name in connected,
                last_sync=_utc(state.updated_at) if state else None,
                cursor={str(k): str(v) for k, v in (state.cursor or {}).items()}
                if state else {},
                last_run=None if run is None else LoggedRun(
                    _utc(run.finished_at), bool(run.ok), _entities(run.report))))
    return result


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment


def _entities(report: dict[str, Any]) -> dict[str, dict[str, int]]:
    entities = report.get("entities") if isinstance(report, dict) else None
    if not isinstance(entities, dict):
        return {}
    return {str(name): {str(k): int(v) for k, v in counts.items()}
            for name, counts in entities.items() if isinstance(counts, dict)}
