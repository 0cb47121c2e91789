"""The write journal's entries in SQLite: one per write that spans both stores.

An entry is written ``pending`` before anything else of its write, with what the
SQLite side of the write will be (``changes``); it becomes ``completed`` in the
same SQLite transaction that makes those changes, or ``rolled_back`` when the
DuckDB side never committed. ``saleskpi.store.journal`` runs the protocol.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, String, delete, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state.models import Base

PENDING, COMPLETED, ROLLED_BACK = "pending", "completed", "rolled_back"
# Settled entries are kept this long (a sync every few minutes adds one per batch);
# the import log keeps its own entries, interrupted imports included, for good.
KEEP_SETTLED = dt.timedelta(days=90)


class JournalEntry(Base):
    __tablename__ = "write_journal"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # import, sync_batch, sync_end
    source: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # What the SQLite side will write; dropped once the entry is settled.
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def add_entry(session: Session, entry_id: str, kind: str, source: str,
              changes: dict[str, Any]) -> None:
    session.add(JournalEntry(id=entry_id, kind=kind, source=source, status=PENDING,
                             started_at=utc_now(), changes=changes))


def claim(session: Session, entry_id: str, status: str) -> bool:
    """Move a pending entry to ``status`` in the caller's transaction; False if it was
    no longer pending (another process settled it first)."""
    result = session.execute(
        update(JournalEntry).where(JournalEntry.id == entry_id, JournalEntry.status == PENDING)
        .values(status=status, finished_at=utc_now(), changes=None))
    return bool(getattr(result, "rowcount", 0))


def pending_entries(session: Session) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(id, kind, source, changes) of every pending entry, oldest first."""
    rows = session.execute(
        select(JournalEntry.id, JournalEntry.kind, JournalEntry.source, JournalEntry.changes)
        .where(JournalEntry.status == PENDING).order_by(JournalEntry.started_at))
    return [(str(i), str(k), str(s), dict(c or {})) for i, k, s, c in rows]


def entry_status(session: Session, entry_id: str) -> str | None:
    return session.scalar(select(JournalEntry.status).where(JournalEntry.id == entry_id))


def forget_settled(session: Session) -> None:
    """Drop settled entries older than ``KEEP_SETTLED``."""
    session.execute(delete(JournalEntry).where(
        JournalEntry.status != PENDING, JournalEntry.finished_at < utc_now() - KEEP_SETTLED))
