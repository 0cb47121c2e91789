"""Where a user receives notices: an e-mail address, a Telegram chat, the channels chosen.

Slack, Teams and the signed webhook have no per-user address: their URLs are
settings (per team or for the company), so a user only chooses them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import JSON, DateTime, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class Contact(Base):
    __tablename__ = "contacts"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channels: Mapped[list[str]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class ContactRecord:
    user_id: int
    email: str | None = None
    telegram_chat_id: str | None = None
    channels: tuple[str, ...] = ()  # empty: every channel the user has an address for


def _record(row: Contact) -> ContactRecord:
    return ContactRecord(row.user_id, row.email, row.telegram_chat_id,
                         tuple(str(c) for c in row.channels or ()))


def load_contacts(state_url: str) -> dict[int, ContactRecord]:
    with Session(engine_for(state_url)) as session:
        return {row.user_id: _record(row) for row in session.scalars(select(Contact))}


def contact_of(state_url: str, user_id: int) -> ContactRecord:
    with Session(engine_for(state_url)) as session:
        row = session.get(Contact, user_id)
        return _record(row) if row is not None else ContactRecord(user_id)


def save_contact(state_url: str, record: ContactRecord) -> None:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(engine_for(state_url)) as session, session.begin():
        row = session.get(Contact, record.user_id)
        if row is None:
            row = Contact(user_id=record.user_id)
            session.add(row)
        row.email = record.email
        row.telegram_chat_id = record.telegram_chat_id
        row.channels = list(record.channels)
        row.updated_at = now


def forget_contact(session: Session, user_id: int) -> None:
    """In the caller's transaction: a deleted user's addresses go with them (SQLite may
    give their id to the next user)."""
    session.execute(delete(Contact).where(Contact.user_id == user_id))
