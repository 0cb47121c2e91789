"""Every CRM sync's outcome (ok or failed, when, why) and when data last arrived.

The sync cursor (``sync_state``) moves only when a batch is stored, so a sync that
fails leaves no trace there; this log keeps each run, so "the sync of amoCRM fails
since 03:00" can be told, and a backtest can replay it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Boolean, DateTime, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base, ImportRun
from saleskpi.store.state.sync_state import SyncState


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_crm_at", "crm", "finished_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    crm: Mapped[str] = mapped_column(String(50))
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    batches: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(1000))


@dataclass(frozen=True)
class SyncOutcome:
    crm: str
    finished_at: dt.datetime  # UTC, naive
    ok: bool
    message: str


def record_sync_run(url: str, crm: str, *, ok: bool, batches: int, message: str,
                    at: dt.datetime | None = None) -> None:
    finished = at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(engine_for(url)) as session, session.begin():
        session.add(SyncRun(crm=crm, finished_at=finished, ok=ok, batches=batches,
                            message=message[:1000]))


def sync_outcomes(url: str, until: dt.datetime) -> list[SyncOutcome]:
    """Every sync run that finished by ``until``, oldest first."""
    with Session(engine_for(url)) as session:
        rows = session.scalars(select(SyncRun).where(SyncRun.finished_at <= until)
                               .order_by(SyncRun.finished_at, SyncRun.id))
        return [SyncOutcome(r.crm, r.finished_at, r.ok, r.message) for r in rows]


def data_arrivals(url: str, until: dt.datetime) -> list[dt.datetime]:
    """When data arrived by ``until``, oldest first: imports that worked, syncs that
    worked (found something or not: the data was up to date), stored sync batches."""
    with Session(engine_for(url)) as session:
        times = set(session.scalars(select(ImportRun.finished_at).where(
            ImportRun.ok.is_(True), ImportRun.finished_at <= until)))
        times |= set(session.scalars(select(SyncRun.finished_at).where(
            SyncRun.ok.is_(True), SyncRun.finished_at <= until)))
        times |= set(session.scalars(select(SyncState.updated_at).where(
            SyncState.updated_at <= until)))
        return sorted(times)
