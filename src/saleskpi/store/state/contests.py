"""Contests in the transactional store: their definitions and, once closed, the results.

A closed contest keeps its final standings and winners as they were computed when
it was closed (JSON): data imported later, targets changed, reps moved between
teams or the catalogue edited do not rewrite it. Closing is one conditional
update, so two people closing at once close it once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class ContestRow(Base):
    __tablename__ = "contests"
    __table_args__ = (Index("ix_contests_closed_at", "closed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    final: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    winners: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


@dataclass(frozen=True)
class StoredContest:
    """One contest as stored, detached from the session (JSON as it was written)."""

    id: int
    name: str
    definition: dict[str, Any]
    created_at: dt.datetime
    created_by: str
    closed_at: dt.datetime | None
    closed_by: str | None
    final: dict[str, Any] | None
    winners: list[str] | None


def _stored(row: ContestRow) -> StoredContest:
    return StoredContest(row.id, row.name, dict(row.definition), row.created_at, row.created_by,
                         row.closed_at, row.closed_by,
                         dict(row.final) if row.final is not None else None,
                         list(row.winners) if row.winners is not None else None)


def add(url: str, *, name: str, definition: dict[str, Any], actor: str,
        now: dt.datetime) -> StoredContest:
    with Session(engine_for(url)) as session, session.begin():
        row = ContestRow(name=name, definition=definition, created_at=now, created_by=actor)
        session.add(row)
        session.flush()
        return _stored(row)


def get(url: str, contest_id: int) -> StoredContest | None:
    with Session(engine_for(url)) as session:
        row = session.get(ContestRow, contest_id)
        return None if row is None else _stored(row)


def all_contests(url: str) -> list[StoredContest]:
    """Every contest, the latest first."""
    with Session(engine_for(url)) as session:
        rows = session.scalars(select(ContestRow).order_by(ContestRow.id.desc()))
        return [_stored(r) for r in rows]


def close(url: str, contest_id: int, *, actor: str, now: dt.datetime, final: dict[str, Any],
          winners: list[str]) -> bool:
    """Keep ``final`` and ``winners`` for an open contest; False when it was closed already."""
    with Session(engine_for(url)) as session, session.begin():
        done = session.execute(
            update(ContestRow).where(ContestRow.id == contest_id, ContestRow.closed_at.is_(None))
            .values(closed_at=now, closed_by=actor, final=final, winners=winners))
        return bool(getattr(done, "rowcount", 0))


def replace_open(url: str, contest_id: int, *, name: str, definition: dict[str, Any]) -> bool:
    """A new definition for an open contest; False when it is closed (or gone) by now."""
    with Session(engine_for(url)) as session, session.begin():
        done = session.execute(
            update(ContestRow).where(ContestRow.id == contest_id, ContestRow.closed_at.is_(None))
            .values(name=name, definition=definition))
        return bool(getattr(done, "rowcount", 0))


def remove_open(url: str, contest_id: int) -> bool:
    """Delete an open contest; False when it is closed (its results are kept) or gone."""
    with Session(engine_for(url)) as session, session.begin():
        done = session.execute(
            delete(ContestRow).where(ContestRow.id == contest_id,
                                     ContestRow.closed_at.is_(None)))
        return bool(getattr(done, "rowcount", 0))
