"""Targets (plans) in the transactional store: set, list, delete, upsert.

A target is a value for one KPI over one period, for a rep, a team or the whole
company (no rep and no team). It is identified by (source, kpi, period_start,
period_end, rep_id, team): targets typed in with ``saleskpi target set`` have the
source ``manual``, imported ones the import's source.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Engine, delete, select
from sqlalchemy.orm import Session

from saleskpi.domain.targets import (
    MANUAL_SOURCE,
    Change,
    KeyTuple,
    TargetRecord,
    now_utc,
)
from saleskpi.store.state.models import Target


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


def record_of(row: Target) -> TargetRecord:
    """A stored row, detached from its session."""
    return TargetRecord(row.id, row.source, row.kpi, row.period_start, row.period_end,
                        row.rep_id, row.team, row.value, row.updated_at, row.custom)


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
            return record_of(row), change

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
            return [record_of(r) for r in session.scalars(query)]

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
