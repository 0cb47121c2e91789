"""Alerts' stored side: each (rule, subject)'s state, the audit log, rule runs, the lease.

An evaluation reads the states, decides (``saleskpi.domain.alert_states``), and
writes every change of one evaluation in one transaction: the new states, the log
rows, and when each rule ran. The lease keeps two evaluations (the server's
scheduler and a CLI run) from deciding on the same states at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.domain.alert_states import AlertState, Finding
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class AlertStateRow(Base):
    __tablename__ = "alert_states"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), index=True)
    since: Mapped[dt.datetime] = mapped_column(DateTime)
    fired_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    notified_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    notices: Mapped[int] = mapped_column(Integer)
    resolved_notified: Mapped[bool] = mapped_column(Boolean)
    finding: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class AlertLogRow(Base):
    """One change of one alert's state (or a notice sent), by one evaluation."""

    __tablename__ = "alert_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    trigger: Mapped[str] = mapped_column(String(50))
    rule: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    before: Mapped[str | None] = mapped_column(String(10), nullable=True)
    after: Mapped[str | None] = mapped_column(String(10), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class RuleRun(Base):
    __tablename__ = "alert_rule_runs"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run_at: Mapped[dt.datetime] = mapped_column(DateTime)


class Lease(Base):
    __tablename__ = "alert_leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    until: Mapped[dt.datetime] = mapped_column(DateTime)


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    trigger: str
    rule: str
    subject: str
    before: str | None
    after: str | None
    detail: dict[str, Any]


def finding_json(finding: Finding) -> dict[str, Any]:
    return {"subject": finding.subject, "rep": finding.rep, "team": finding.team,
            "facts": finding.facts, "link": finding.link, "company": finding.company,
            "public": finding.public}


def finding_of(data: dict[str, Any]) -> Finding:
    return Finding(str(data.get("subject", "")), data.get("rep"), data.get("team"),
                   dict(data.get("facts") or {}), data.get("link"),
                   bool(data.get("company")), bool(data.get("public")))


def _state(row: AlertStateRow) -> AlertState:
    return AlertState(row.rule, row.subject, row.status, row.since, finding_of(row.finding),
                      row.fired_at, row.resolved_at, row.notified_at, row.notices,
                      row.resolved_notified)


def load_states(url: str, rules: Iterable[str] | None = None) -> list[AlertState]:
    with Session(engine_for(url)) as session:
        query = select(AlertStateRow).order_by(AlertStateRow.rule, AlertStateRow.subject)
        if rules is not None:
            query = query.where(AlertStateRow.rule.in_(list(rules)))
        return [_state(row) for row in session.scalars(query)]


def save_evaluation(url: str, *, put: Sequence[AlertState], drop: Sequence[tuple[str, str]],
                    log: Sequence[LogEntry], ran: Sequence[str], at: dt.datetime) -> None:
    """One evaluation's writes, all or none."""
    with Session(engine_for(url)) as session, session.begin():
        for rule, subject in drop:
            session.execute(delete(AlertStateRow).where(AlertStateRow.rule == rule,
                                                        AlertStateRow.subject == subject))
        for state in put:
            row = session.get(AlertStateRow, (state.rule, state.subject))
            if row is None:
                row = AlertStateRow(rule=state.rule, subject=state.subject)
                session.add(row)
            row.status, row.since = state.status, state.since
            row.fired_at, row.resolved_at = state.fired_at, state.resolved_at
            row.notified_at, row.notices = state.notified_at, state.notices
            row.resolved_notified = state.resolved_notified
            row.finding, row.updated_at = finding_json(state.finding), at
        session.add_all(AlertLogRow(at=e.at, trigger=e.trigger, rule=e.rule, subject=e.subject,
                                    before=e.before, after=e.after, detail=e.detail)
                        for e in log)
        for rule in ran:
            run = session.get(RuleRun, rule)
            if run is None:
                session.add(RuleRun(rule=rule, last_run_at=at))
            else:
                run.last_run_at = at


def forget_rule(url: str, rule: str) -> None:
    """A deleted rule's states and runs go (its log stays)."""
    with Session(engine_for(url)) as session, session.begin():
        session.execute(delete(AlertStateRow).where(AlertStateRow.rule == rule))
        session.execute(delete(RuleRun).where(RuleRun.rule == rule))


def last_runs(url: str) -> dict[str, dt.datetime]:
    with Session(engine_for(url)) as session:
        return {r.rule: r.last_run_at for r in session.scalars(select(RuleRun))}


def read_log(url: str, *, limit: int = 100, rule: str | None = None) -> list[LogEntry]:
    """The newest log rows first."""
    with Session(engine_for(url)) as session:
        query = select(AlertLogRow).order_by(AlertLogRow.id.desc()).limit(limit)
        if rule is not None:
            query = query.where(AlertLogRow.rule == rule)
        return [LogEntry(r.at, r.trigger, r.rule, r.subject, r.before, r.after, r.detail)
                for r in session.scalars(query)]


def take_lease(url: str, name: str, holder: str, now: dt.datetime,
               seconds: float) -> bool:
    """Hold ``name`` until ``now + seconds`` unless another holder's lease is still on."""
    until = now + dt.timedelta(seconds=seconds)
    with Session(engine_for(url)) as session, session.begin():
        result = session.execute(update(Lease).where(
            Lease.name == name, (Lease.until <= now) | (Lease.holder == holder))
            .values(holder=holder, until=until))
        if getattr(result, "rowcount", 0):
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with Session(engine_for(url)) as session, session.begin():
            session.add(Lease(name=name, holder=holder, until=until))
    except IntegrityError:
        return False  # another evaluation took it first
    return True


def give_back(url: str, name: str, holder: str) -> None:
    with Session(engine_for(url)) as session, session.begin():
        session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder))
