"""The delivery log: one row per notice, recipient and channel, so each is sent once.

A row is claimed (``sending``) before the channel is called and finished (``sent``
or ``failed``) after; a notice whose row is ``sent`` is never sent on that channel
again. Claims are conditional updates, so two processes sending the same notice
at once send it once. A ``sending`` row older than ``STALE_CLAIM`` is a process that
died mid-send: it may be claimed again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import DateTime, Index, Integer, String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base

STALE_CLAIM = dt.timedelta(minutes=10)
MAX_ERROR = 1000
STATUSES = ("sending", "sent", "failed")


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        Index("uq_deliveries_once", "notice_key", "recipient", "channel", unique=True),
        Index("ix_deliveries_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_key: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(MAX_ERROR), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)  # UTC, naive
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    notice_key: str
    kind: str
    recipient: str
    channel: str
    subject: str
    status: str
    attempts: int
    last_error: str | None
    created_at: dt.datetime  # UTC, aware
    updated_at: dt.datetime
    sent_at: dt.datetime | None


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return moment.replace(tzinfo=dt.UTC) if moment is not None else None


def _record(row: Delivery) -> DeliveryRecord:
    created, updated = _utc(row.created_at), _utc(row.updated_at)
    assert created is not None and updated is not None
    return DeliveryRecord(row.id, row.notice_key, row.kind, row.recipient, row.channel,
                          row.subject, row.status, row.attempts, row.last_error, created,
                          updated, _utc(row.sent_at))


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Claim:
    key: str
    kind: str
    recipient: str
    channel: str
    subject: str


def claim(state_url: str, wanted: Claim, now: dt.datetime) -> int | None:
    """The id of the row to send under, or None: already sent on this channel, or being
    sent by another process right now."""
    at = _naive(now)
    engine = engine_for(state_url)
    with Session(engine) as session:
        row = session.scalar(select(Delivery).where(
            Delivery.notice_key == wanted.key, Delivery.recipient == wanted.recipient,
            Delivery.channel == wanted.channel))
        if row is None:
            fresh = Delivery(notice_key=wanted.key[:300], kind=wanted.kind[:20],
                             recipient=wanted.recipient[:100], channel=wanted.channel,
                             subject=wanted.subject[:300], status="sending", attempts=0,
                             created_at=at, updated_at=at)
            session.add(fresh)
            try:
                session.commit()
            except IntegrityError:  # another process claimed it between our read and write
                session.rollback()
                return None
            return fresh.id
        if row.status == "sent" or (row.status == "sending"
                                    and at - row.updated_at < STALE_CLAIM):
            return None
        taken = session.execute(
            update(Delivery).where(Delivery.id == row.id, Delivery.status == row.status,
                                   Delivery.updated_at == row.updated_at)
            .values(status="sending", updated_at=at, subject=wanted.subject[:300]))
        session.commit()
        return row.id if getattr(taken, "rowcount", 0) == 1 else None


def finish(state_url: str, delivery_id: int, *, sent: bool, attempts: int,
           error: str | None, now: dt.datetime) -> None:
    """Record the outcome: ``attempts`` more tries; the last error (kept on success too,
    so a channel that needed several tries shows why)."""
    at = _naive(now)
    with Session(engine_for(state_url)) as session, session.begin():
        row = session.get(Delivery, delivery_id)
        if row is None:
            return
        row.status = "sent" if sent else "failed"
        row.attempts += attempts
        if error is not None:
            row.last_error = error[:MAX_ERROR]
        row.updated_at = at
        if sent:
            row.sent_at = at


def recent_deliveries(state_url: str, *, limit: int = 100, offset: int = 0,
                      status: str | None = None,
                      recipients: frozenset[str] | None = None) -> tuple[list[DeliveryRecord],
                                                                          int]:
    """Newest first, and how many there are in all (of ``status`` and ``recipients``)."""
    from sqlalchemy import func

    where = []
    if status is not None:
        where.append(Delivery.status == status)
    if recipients is not None:
        where.append(Delivery.recipient.in_(sorted(recipients)))
    with Session(engine_for(state_url)) as session:
        total = session.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0
        rows = session.scalars(select(Delivery).where(*where)
                               .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
                               .limit(limit).offset(offset))
        return [_record(row) for row in rows], int(total)
