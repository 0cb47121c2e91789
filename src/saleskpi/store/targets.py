"""Targets (plans) in the transactional store: set, list, delete, upsert.

A target is a value for one KPI over one period, for a rep, a team or the whole
company (no rep and no team). It is identified by (source, kpi, period_start,
period_end, rep_id, team): targets typed in with ``saleskpi target set`` have the
source ``manual``, imported ones the import's source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Engine, delete, select
from sqlalchemy.orm import Session

from saleskpi.domain.query import Period, next_period, period_start, plain_number
from saleskpi.store.state.models import Target

MANUAL_SOURCE = "manual"
Level = Literal["rep", "team", "company"]
# Periods a target can be set for (a target spans whole periods).
TARGET_PERIODS: tuple[Period, ...] = ("day", "week", "month", "quarter", "year")

KeyTuple = tuple[str, dt.date, dt.date, str | None, str | None]


def period_bounds(day: dt.date, period: Period) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the ``period`` that contains ``day``."""
    first = period_start(day, period)
    return first, next_period(first, period) - dt.timedelta(days=1)


def spans_period(first: dt.date, last: dt.date, period: Period) -> bool:
    """Whether [first, last] is exactly one calendar ``period``."""
    return period_bounds(first, period) == (first, last)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class TargetRecord:
    """One stored target, detached from the database session."""

    id: int
    source: str
    kpi: str
    period_start: dt.date
    period_end: dt.date
    rep_id: str | None
    team: str | None
    value: float
    updated_at: dt.datetime
    custom: dict[str, object] | None = None

    @classmethod
    def of(cls, row: Target) -> TargetRecord:
        return cls(row.id, row.source, row.kpi, row.period_start, row.period_end, row.rep_id,
                   row.team, row.value, row.updated_at, row.custom)

    @property
    def level(self) -> Level:
        if self.rep_id is not None:
            return "rep"
        if self.team is not None:
            return "team"
        return "company"

    @property
    def key(self) -> KeyTuple:
        """Who and when, without the source: what two sources may both set."""
        return (self.kpi, self.period_start, self.period_end, self.rep_id, self.team)

    def contains(self, day: dt.date) -> bool:
        return self.period_start <= day <= self.period_end

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "kpi": self.kpi,
            "level": self.level,
            "rep_id": self.rep_id,
            "team": self.team,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "value": plain_number(self.value),
            "updated_at": self.updated_at.isoformat(timespec="seconds"),
        }


def effective(targets: Iterable[TargetRecord]) -> list[TargetRecord]:
    """One target per (kpi, period, rep, team): when several sources set it, the latest wins."""
    chosen: dict[KeyTuple, TargetRecord] = {}
    for target in targets:
        current = chosen.get(target.key)
        if current is None or (target.updated_at, target.id) > (current.updated_at, current.id):
            chosen[target.key] = target
    return list(chosen.values())


def _key_filter(source: str, kpi: str, first: dt.date, last: dt.date, rep_id: str | None,
                team: str | None) -> list[ColumnElement[bool]]:
    return [
        Target.source == source,
        Target.kpi == kpi,
        Target.period_start == first,
        Target.period_end == last,
        Target.rep_id.is_(None) if rep_id is None else Target.rep_id == rep_id,
        Target.team.is_(None) if team is None else Target.team == team,
    ]


def existing_by_key(session: Session, source: str) -> dict[KeyTuple, Target]:
    """Every target of ``source``, by its key."""
    rows = session.scalars(select(Target).where(Target.source == source))
    return {(r.kpi, r.period_start, r.period_end, r.rep_id, r.team): r for r in rows}


Change = Literal["inserted", "updated", "unchanged"]


def upsert(session: Session, existing: dict[KeyTuple, Target], source: str, key: KeyTuple,
           value: float, custom: dict[str, object] | None, now: dt.datetime) -> Change:
    """Insert or update one target in ``session``; ``existing`` is kept up to date."""
    row = existing.get(key)
    if row is None:
        kpi, first, last, rep_id, team = key
        row = Target(source=source, kpi=kpi, period_start=first, period_end=last,
                     rep_id=rep_id, team=team, value=value, custom=custom, updated_at=now)
        session.add(row)
        existing[key] = row
        return "inserted"
    if row.value == value and row.custom == custom:
        return "unchanged"
    row.value = value
    row.custom = custom
    row.updated_at = now
    return "updated"


class TargetStore:
    """Targets in one transactional database (see ``saleskpi.store.state``)."""

    def __init__(self, url: str) -> None:
        from saleskpi.store.state import engine_for

        self.engine: Engine = engine_for(url)

    def set(self, *, kpi: str, period_start: dt.date, period_end: dt.date, value: float,
            rep_id: str | None = None, team: str | None = None,
            source: str = MANUAL_SOURCE) -> tuple[TargetRecord, Change]:
        with Session(self.engine) as session, session.begin():
            existing = {
                (r.kpi, r.period_start, r.period_end, r.rep_id, r.team): r
                for r in session.scalars(select(Target).where(
                    *_key_filter(source, kpi, period_start, period_end, rep_id, team)))
            }
            change = upsert(session, existing, source,
                            (kpi, period_start, period_end, rep_id, team), value, None,
                            now_utc())
            session.flush()
            row = existing[(kpi, period_start, period_end, rep_id, team)]
            return TargetRecord.of(row), change

    def list(self, *, at: dt.date | None = None, kpis: Sequence[str] = (),
             rep_id: str | None = None, team: str | None = None,
             source: str | None = None) -> list[TargetRecord]:
        query = select(Target)
        if at is not None:
            query = query.where(Target.period_start <= at, Target.period_end >= at)
        if kpis:
            query = query.where(Target.kpi.in_(kpis))
        if rep_id is not None:
            query = query.where(Target.rep_id == rep_id)
        if team is not None:
            query = query.where(Target.team == team)
        if source is not None:
            query = query.where(Target.source == source)
        query = query.order_by(Target.period_start, Target.kpi, Target.team, Target.rep_id,
                               Target.source)
        with Session(self.engine) as session:
            return [TargetRecord.of(r) for r in session.scalars(query)]

    def delete(self, *, kpi: str, period_start: dt.date, period_end: dt.date,
               rep_id: str | None = None, team: str | None = None,
               source: str = MANUAL_SOURCE) -> int:
        with Session(self.engine) as session, session.begin():
            result = session.execute(delete(Target).where(
                *_key_filter(source, kpi, period_start, period_end, rep_id, team)))
            return int(getattr(result, "rowcount", 0) or 0)

    def delete_ids(self, ids: Sequence[int]) -> int:
        with Session(self.engine) as session, session.begin():
            result = session.execute(delete(Target).where(Target.id.in_(ids)))
            return int(getattr(result, "rowcount", 0) or 0)
