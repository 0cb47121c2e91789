"""Targets (plans) in the transactional store: set, list, delete, upsert, copy.

A target is a value for one KPI over one period, for a rep, a team or the whole
company (no rep and no team). There is one per KPI, period and rep, team or company
(``who_key``), whatever its source: setting it again, by hand (source ``manual``) or
by an import (the import's source), replaces it. Every change is logged in
``target_changes``: who, when, the value before and after.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Engine, insert, select
from sqlalchemy.orm import Session

from saleskpi.domain.targets import (
    MANUAL_SOURCE,
    Change,
    KeyTuple,
    Level,
    TargetRecord,
    now_utc,
)
from saleskpi.store.state.models import Target, TargetChangeLog


def who_key(key: KeyTuple) -> KeyTuple:
    """``key`` as the target's identity: a rep's target is the rep's whatever team is
    written beside it."""
    kpi, first, last, rep_id, team = key
    return (kpi, first, last, rep_id, None if rep_id is not None else team)


def _who_filter(kpi: str, first: dt.date, last: dt.date, rep_ids: Sequence[str],
                team: str | None) -> list[ColumnElement[bool]]:
    """The target of a KPI and period set for any of ``rep_ids`` (one person may have
    several), or with none for ``team`` (``None``: the company)."""
    where = [Target.kpi == kpi, Target.period_start == first, Target.period_end == last]
    if rep_ids:
        where.append(Target.rep_id.in_(rep_ids))
    else:
        where += [Target.rep_id.is_(None),
                  Target.team.is_(None) if team is None else Target.team == team]
    return where


def existing_by_key(session: Session) -> dict[KeyTuple, Target]:
    """Every stored target, by ``who_key``."""
    rows = session.scalars(select(Target))
    return {who_key((r.kpi, r.period_start, r.period_end, r.rep_id, r.team)): r for r in rows}


def log_change(session: Session, *, actor: str, action: str, key: KeyTuple,
               old: float | None, new: float | None, source: str | None,
               now: dt.datetime) -> None:
    kpi, first, last, rep_id, team = key
    session.add(TargetChangeLog(changed_at=now, actor=actor, action=action, kpi=kpi,
                                period_start=first, period_end=last, rep_id=rep_id,
                                team=team, old_value=old, new_value=new, source=source))


def upsert(session: Session, existing: dict[KeyTuple, Target], source: str, key: KeyTuple,
           value: float, custom: dict[str, object] | None, now: dt.datetime, *,
           actor: str = "local", action: str = "set") -> Change:
    """Insert or replace the one target of ``key``'s KPI, period and rep, team or company;
    ``existing`` (by ``who_key``) is kept up to date and the change logged."""
    row = existing.get(who_key(key))
    if row is None:
        kpi, first, last, rep_id, team = key
        row = Target(source=source, kpi=kpi, period_start=first, period_end=last,
                     rep_id=rep_id, team=team, value=value, custom=custom, updated_at=now)
        session.add(row)
        existing[who_key(key)] = row
        log_change(session, actor=actor, action=action, key=key, old=None, new=value,
                   source=source, now=now)
        return "inserted"
    if row.value == value and row.custom == custom:
        return "unchanged"
    log_change(session, actor=actor, action="replaced" if action == "set" else action,
               key=key, old=row.value, new=value, source=source, now=now)
    row.value = value
    row.custom = custom
    row.source = source
    row.team = key[4]
    row.updated_at = now
    return "updated"


def upsert_many(session: Session, source: str,
                rows: Sequence[tuple[KeyTuple, float, dict[str, object] | None]],
                now: dt.datetime, *, actor: str, action: str) -> None:
    """``upsert`` of each row in turn (the same targets, the same log lines in the same
    order), with the new targets and the log written in one statement each instead of
    one ORM object each (an import's thousands of targets took ~0.5 s that way)."""
    existing = existing_by_key(session)
    new: dict[KeyTuple, dict[str, object]] = {}  # by who_key
    log: list[dict[str, object]] = []
    for key, value, custom in rows:
        who = who_key(key)
        kpi, first, last, rep_id, team = key
        line = {"changed_at": now, "actor": actor, "kpi": kpi, "period_start": first,
                "period_end": last, "rep_id": rep_id, "team": team, "new_value": value,
                "source": source}
        stored = existing.get(who)
        pending = new.get(who)
        if stored is None and pending is None:
            new[who] = {"source": source, "kpi": kpi, "period_start": first,
                        "period_end": last, "rep_id": rep_id, "team": team,
                        "value": value, "custom": custom, "updated_at": now}
            log.append({**line, "action": action, "old_value": None})
            continue
        if stored is not None:
            before: tuple[object, object] = (stored.value, stored.custom)
        else:
            assert pending is not None
            before = (pending["value"], pending["custom"])  # twice in these rows
        if before == (value, custom):
            continue
        log.append({**line, "action": "replaced" if action == "set" else action,
                    "old_value": before[0]})
        if stored is not None:
            stored.value, stored.custom, stored.source = value, custom, source
            stored.team, stored.updated_at = team, now
        else:
            new[who].update(value=value, custom=custom, source=source, team=team)
    session.flush()  # the replaced targets, before the new ones (the key is unique)
    if new:
        session.execute(insert(Target), list(new.values()))
    if log:
        session.execute(insert(TargetChangeLog), log)


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
            source: str = MANUAL_SOURCE, actor: str = "local") -> tuple[TargetRecord, Change]:
        """Set the target of a KPI, period and rep, team or company, replacing any other
        (whatever its source)."""
        key: KeyTuple = (kpi, period_start, period_end, rep_id, team)
        with Session(self.engine) as session, session.begin():
            existing = {who_key(key): r for r in session.scalars(select(Target).where(
                *_who_filter(kpi, period_start, period_end, () if rep_id is None else (rep_id,),
                            team)))}
            change = upsert(session, existing, source, key, value, None, now_utc(),
                            actor=actor)
            session.flush()
            return record_of(existing[who_key(key)]), change

    def set_many(self, keys: Sequence[tuple[KeyTuple, float]], *, actor: str = "local",
                 action: str = "set") -> dict[Change, int]:
        """Set many targets (typed in) in one transaction: all or none."""
        now = now_utc()
        counts: dict[Change, int] = {"inserted": 0, "updated": 0, "unchanged": 0}
        with Session(self.engine) as session, session.begin():
            existing = existing_by_key(session)
            for key, value in keys:
                counts[upsert(session, existing, MANUAL_SOURCE, key, value, None, now,
                              actor=actor, action=action)] += 1
        return counts

    def save_grid(self, sets: Sequence[tuple[KeyTuple, float]], clears: Sequence[KeyTuple],
                  *, actor: str = "local") -> dict[str, int]:
        """A grid edited and saved: ``sets`` replace (or add) their targets, ``clears``
        delete theirs, all in one transaction; each change is logged."""
        now = now_utc()
        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "deleted": 0}
        with Session(self.engine) as session, session.begin():
            existing = existing_by_key(session)
            for key, value in sets:
                counts[upsert(session, existing, MANUAL_SOURCE, key, value, None, now,
                              actor=actor)] += 1
            for key in clears:
                row = existing.pop(who_key(key), None)
                if row is None:
                    continue
                log_change(session, actor=actor, action="deleted", key=(
                    row.kpi, row.period_start, row.period_end, row.rep_id, row.team),
                    old=row.value, new=None, source=row.source, now=now)
                session.delete(row)
                counts["deleted"] += 1
        return counts

    def list(self, *, at: dt.date | None = None, kpis: Sequence[str] = (),
             rep_ids: Sequence[str] = (), team: str | None = None,
             source: str | None = None) -> list[TargetRecord]:
        query = select(Target)
        if at is not None:
            query = query.where(Target.period_start <= at, Target.period_end >= at)
        if kpis:
            query = query.where(Target.kpi.in_(kpis))
        if rep_ids:
            query = query.where(Target.rep_id.in_(rep_ids))
        if team is not None:
            query = query.where(Target.team == team)
        if source is not None:
            query = query.where(Target.source == source)
        query = query.order_by(Target.period_start, Target.kpi, Target.team, Target.rep_id,
                               Target.source)
        with Session(self.engine) as session:
            return [record_of(r) for r in session.scalars(query)]

    def delete(self, *, kpi: str, period_start: dt.date, period_end: dt.date,
               rep_ids: Sequence[str] = (), team: str | None = None,
               source: str | None = None, actor: str = "local") -> int:
        """Delete the target of a KPI, period and rep (under any of ``rep_ids``, all or
        none), team or company (of ``source`` only, if given)."""
        where = _who_filter(kpi, period_start, period_end, rep_ids, team)
        if source is not None:
            where.append(Target.source == source)
        return self._delete(where, actor)

    def delete_ids(self, ids: Sequence[int], actor: str = "local") -> int:
        return self._delete([Target.id.in_(ids)], actor)

    def _delete(self, where: Sequence[ColumnElement[bool]], actor: str) -> int:
        now = now_utc()
        with Session(self.engine) as session, session.begin():
            rows = [*session.scalars(select(Target).where(*where))]
            for row in rows:
                log_change(session, actor=actor, action="deleted",
                           key=(row.kpi, row.period_start, row.period_end, row.rep_id,
                                row.team), old=row.value, new=None, source=row.source,
                           now=now)
                session.delete(row)
            return len(rows)

    def copy(self, *, source_start: dt.date, source_end: dt.date, start: dt.date,
             end: dt.date, replace: bool = False, actor: str = "local",
             kpi: str | None = None, level: Level | None = None) -> dict[Change, int]:
        """Copy every target of the period [source_start, source_end] to [start, end]
        (as typed in); one already set there is kept unless ``replace``. ``kpi`` and
        ``level`` (rep, team, company) copy only those."""
        now = now_utc()
        counts: dict[Change, int] = {"inserted": 0, "updated": 0, "unchanged": 0}
        where = [Target.period_start == source_start, Target.period_end == source_end]
        if kpi is not None:
            where.append(Target.kpi == kpi)
        if level == "rep":
            where.append(Target.rep_id.is_not(None))
        elif level == "team":
            where += [Target.rep_id.is_(None), Target.team.is_not(None)]
        elif level == "company":
            where += [Target.rep_id.is_(None), Target.team.is_(None)]
        with Session(self.engine) as session, session.begin():
            existing = existing_by_key(session)
            originals = [*session.scalars(select(Target).where(*where))]
            for row in originals:
                key: KeyTuple = (row.kpi, start, end, row.rep_id, row.team)
                if who_key(key) in existing and not replace:
                    counts["unchanged"] += 1
                    continue
                counts[upsert(session, existing, MANUAL_SOURCE, key, row.value, row.custom,
                              now, actor=actor, action="copied")] += 1
        return counts

    def changes(self, limit: int = 100) -> Sequence[dict[str, object]]:
        """The latest changes, newest first."""
        query = select(TargetChangeLog).order_by(TargetChangeLog.id.desc()).limit(limit)
        with Session(self.engine) as session:
            return [{
                "changed_at": c.changed_at.isoformat(timespec="seconds"), "actor": c.actor,
                "action": c.action, "kpi": c.kpi,
                "period_start": c.period_start.isoformat(),
                "period_end": c.period_end.isoformat(), "rep_id": c.rep_id, "team": c.team,
                "old_value": c.old_value, "new_value": c.new_value, "source": c.source,
            } for c in session.scalars(query)]
