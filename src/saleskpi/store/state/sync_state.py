"""Where each CRM's sync stopped: a cursor saved only after its batch is stored."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.domain.settings import Settings
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class SyncState(Base):
    __tablename__ = "sync_state"

    crm: Mapped[str] = mapped_column(String(50), primary_key=True)
    cursor: Mapped[dict[str, str]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


def load_cursor(settings: Settings, crm: str) -> dict[str, str]:
    with Session(engine_for(settings.state_url)) as session:
        row = session.scalar(select(SyncState).where(SyncState.crm == crm))
        return dict(row.cursor) if row else {}


def save_cursor(settings: Settings, crm: str, cursor: dict[str, str]) -> None:
    with Session(engine_for(settings.state_url)) as session, session.begin():
        store_cursor(session, crm, cursor)


def store_cursor(session: Session, crm: str, cursor: dict[str, str]) -> None:
    """``save_cursor`` in the caller's transaction (a sync batch's journaled write)."""
    row = session.get(SyncState, crm)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if row is None:
        session.add(SyncState(crm=crm, cursor=cursor, updated_at=now))
    else:
        row.cursor = cursor
        row.updated_at = now


def forget(settings: Settings, crm: str) -> None:
    with Session(engine_for(settings.state_url)) as session, session.begin():
        row = session.get(SyncState, crm)
        if row is not None:
            session.delete(row)
