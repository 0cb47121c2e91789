"""Transactional state (SQLAlchemy): the import log and targets; later users, settings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Index, Integer, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class ImportRun(Base):
    """One import: where from, into which source, what it did (the full report)."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    finished_at: Mapped[dt.datetime] = mapped_column(DateTime)
    origin: Mapped[str] = mapped_column(String(1000))
    source: Mapped[str] = mapped_column(String(200))
    ok: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, object]] = mapped_column(JSON)


class Target(Base):
    """A plan for one KPI over one period, for a rep, a team or the whole company.

    No rep and no team means company-wide; a rep means the rep's own target (the
    team, if given, is informational). There is one per KPI, period and rep, team or
    company, whatever its source: setting it again (by hand or by an import) replaces
    it, and ``target_changes`` logs who did (migration 0008).
    """

    __tablename__ = "targets"
    __table_args__ = (
        # NULL rep/team must compare equal for the key, so the index uses coalesce.
        Index(
            "uq_targets_who", "kpi", "period_start", "period_end",
            text("coalesce(rep_id, '')"),
            text("CASE WHEN rep_id IS NULL THEN coalesce(team, '') ELSE '' END"), unique=True,
        ),
        Index("ix_targets_period", "period_start", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    kpi: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    rep_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    value: Mapped[float] = mapped_column(Float)
    custom: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime)


class TargetChangeLog(Base):
    """Who set, replaced or deleted which target, when, and its value before and after."""

    __tablename__ = "target_changes"
    __table_args__ = (Index("ix_target_changes_at", "changed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    # set (new), replaced, deleted, copied, imported, deduplicated (migration 0008)
    action: Mapped[str] = mapped_column(String(20))
    kpi: Mapped[str] = mapped_column(String(200))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    rep_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    old_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    new_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
