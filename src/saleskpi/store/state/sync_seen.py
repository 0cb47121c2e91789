"""What a full sync has seen so far: kept across a resume, so the removal at its end is right.

A full sync starts by ``begin_full`` (forgetting what an earlier one saw), records
the ids of every batch with ``add_seen`` before the batch's cursor is saved (a
batch read again adds nothing new), and once the CRM has listed everything the
rows it did not list are removed and ``end_full`` forgets the run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy import JSON, DateTime, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.domain.settings import Settings
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class FullSyncRun(Base):
    __tablename__ = "sync_full_runs"

    crm: Mapped[str] = mapped_column(String(50), primary_key=True)
    entities: Mapped[list[str]] = mapped_column(JSON)  # the entities the CRM listed
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)


class SeenId(Base):
    __tablename__ = "sync_seen"

    crm: Mapped[str] = mapped_column(String(50), primary_key=True)
    entity: Mapped[str] = mapped_column(String(50), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(200), primary_key=True)


def begin_full(settings: Settings, crm: str) -> None:
    """Start a full sync of ``crm``: nothing seen yet."""
    with Session(engine_for(settings.state_url)) as session, session.begin():
        finish_full(session, crm)
        session.add(FullSyncRun(crm=crm, entities=[],
                                started_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))


def full_running(settings: Settings, crm: str) -> bool:
    """True while a full sync of ``crm`` has started and not finished (a resume continues it)."""
    with Session(engine_for(settings.state_url)) as session:
        return session.get(FullSyncRun, crm) is not None


def add_seen(settings: Settings, crm: str, listed: Mapping[str, Iterable[str]]) -> None:
    """Record that the CRM listed these entities and ids (idempotent)."""
    if not listed:
        return
    with Session(engine_for(settings.state_url)) as session, session.begin():
        record_seen(session, crm, listed)


def record_seen(session: Session, crm: str, listed: Mapping[str, Iterable[str]]) -> None:
    """``add_seen`` in the caller's transaction (a sync batch's journaled write)."""
    run = session.get(FullSyncRun, crm)
    if run is None or not listed:
        return
    known = set(run.entities)
    if not known.issuperset(listed):
        run.entities = sorted(known | set(listed))
    for entity, ids in listed.items():
        wanted = {str(record) for record in ids}
        chosen = list(wanted)
        for offset in range(0, len(chosen), 500):  # SQLite's bound-parameter limit
            part = chosen[offset:offset + 500]
            wanted.difference_update(session.scalars(select(SeenId.record_id).where(
                SeenId.crm == crm, SeenId.entity == entity, SeenId.record_id.in_(part))))
        session.add_all(SeenId(crm=crm, entity=entity, record_id=record)
                        for record in sorted(wanted))


def seen(settings: Settings, crm: str) -> dict[str, set[str]]:
    """The ids seen per entity listed (an entity listed with no rows maps to an empty set)."""
    with Session(engine_for(settings.state_url)) as session:
        run = session.get(FullSyncRun, crm)
        if run is None:
            return {}
        result: dict[str, set[str]] = {entity: set() for entity in run.entities}
        for entity, record in session.execute(
                select(SeenId.entity, SeenId.record_id).where(SeenId.crm == crm)):
            result.setdefault(entity, set()).add(record)
        return result


def end_full(settings: Settings, crm: str) -> None:
    """The full sync of ``crm`` is complete: forget what it saw."""
    with Session(engine_for(settings.state_url)) as session, session.begin():
        finish_full(session, crm)


def finish_full(session: Session, crm: str) -> None:
    """``end_full`` in the caller's transaction (the journaled write of a sync's end)."""
    session.execute(delete(SeenId).where(SeenId.crm == crm))
    session.execute(delete(FullSyncRun).where(FullSyncRun.crm == crm))
