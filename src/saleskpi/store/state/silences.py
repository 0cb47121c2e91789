"""Silences: no notices for matching alerts during a time (a rep's holiday, a team's day).

A silence names a rule, a rep, a team, or several of them (all must match); it has a
start and an end, who made it and why. Removing one keeps its row (with who removed
it), so the list of past silences stays complete.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import DateTime, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class SilenceRow(Base):
    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_ends", "ends_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rep: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    starts_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ends_at: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    removed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


@dataclass(frozen=True)
class Silence:
    id: int
    rule: str | None
    rep: str | None
    team: str | None
    starts_at: dt.datetime  # UTC, naive
    ends_at: dt.datetime
    created_by: str
    reason: str
    created_at: dt.datetime
    removed_at: dt.datetime | None = None
    removed_by: str | None = None

    def active_at(self, moment: dt.datetime) -> bool:
        return self.removed_at is None and self.starts_at <= moment < self.ends_at

    def matches(self, rule: str, rep: str | None, team: str | None) -> bool:
        return ((self.rule is None or self.rule == rule)
                and (self.rep is None or self.rep == rep)
                and (self.team is None or self.team == team))


def _silence(row: SilenceRow) -> Silence:
    return Silence(row.id, row.rule, row.rep, row.team, row.starts_at, row.ends_at,
                   row.created_by, row.reason, row.created_at, row.removed_at, row.removed_by)


def add_silence(url: str, *, rule: str | None, rep: str | None, team: str | None,
                starts_at: dt.datetime, ends_at: dt.datetime, created_by: str, reason: str,
                created_at: dt.datetime) -> Silence:
    with Session(engine_for(url)) as session, session.begin():
        row = SilenceRow(rule=rule, rep=rep, team=team, starts_at=starts_at, ends_at=ends_at,
                         created_by=created_by, reason=reason, created_at=created_at)
        session.add(row)
        session.flush()
        return _silence(row)


def list_silences(url: str, *, current_at: dt.datetime | None = None) -> list[Silence]:
    """Every silence, newest first; with ``current_at`` only those not removed and not
    ended by then (active or still to come)."""
    with Session(engine_for(url)) as session:
        query = select(SilenceRow).order_by(SilenceRow.id.desc())
        if current_at is not None:
            query = query.where(SilenceRow.removed_at.is_(None),
                                SilenceRow.ends_at > current_at)
        return [_silence(row) for row in session.scalars(query)]


def get_silence(url: str, silence_id: int) -> Silence | None:
    with Session(engine_for(url)) as session:
        row = session.get(SilenceRow, silence_id)
        return None if row is None else _silence(row)


def remove_silence(url: str, silence_id: int, *, by: str, at: dt.datetime) -> bool:
    """End a silence now; False when there is none (or it was already removed)."""
    with Session(engine_for(url)) as session, session.begin():
        row = session.get(SilenceRow, silence_id)
        if row is None or row.removed_at is not None:
            return False
        row.removed_at, row.removed_by = at, by
        return True
