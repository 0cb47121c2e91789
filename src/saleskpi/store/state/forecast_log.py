"""The forecasts saleskpi made, kept to score them when their period closes.

One row per day made, period, and rep, team or company: a forecast asked again the
same day (UTC) replaces that day's row, so a page opened a hundred times keeps one
forecast a day, made at the last asking.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Date, DateTime, Float, Index, Integer, String, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from saleskpi.domain.forecasting import ForecastLine
from saleskpi.store.state import engine_for
from saleskpi.store.state.models import Base


class ForecastRecord(Base):
    __tablename__ = "forecast_log"
    __table_args__ = (
        Index("uq_forecast_log_key", "made_on", "period_start", "period_end", "level",
              text("coalesce(rep, '')"), text("coalesce(team, '')"), unique=True),
        Index("ix_forecast_log_period", "period_start", "period_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    made_at: Mapped[dt.datetime] = mapped_column(DateTime)
    made_on: Mapped[dt.date] = mapped_column(Date)
    grain: Mapped[str] = mapped_column(String(20))
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(20))
    rep: Mapped[str | None] = mapped_column(String(200), nullable=True)
    team: Mapped[str | None] = mapped_column(String(200), nullable=True)
    won_to_date: Mapped[float] = mapped_column(Float)
    p10: Mapped[float] = mapped_column(Float)
    p50: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    mean: Mapped[float] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(10))


def record(url: str, lines: Iterable[ForecastLine], *, made_at: dt.datetime, grain: str,
           currency: str) -> None:
    """Keep ``lines`` as made at ``made_at`` (UTC, naive), replacing the same day's."""
    with Session(engine_for(url)) as session, session.begin():
        for line in lines:
            found = session.scalars(select(ForecastRecord).where(
                ForecastRecord.made_on == made_at.date(),
                ForecastRecord.period_start == line.period_start,
                ForecastRecord.period_end == line.period_end,
                ForecastRecord.level == line.level,
                ForecastRecord.rep.is_(None) if line.rep is None
                else ForecastRecord.rep == line.rep,
                ForecastRecord.team.is_(None) if line.team is None or line.level == "rep"
                else ForecastRecord.team == line.team)).first()
            row = found or ForecastRecord(made_on=made_at.date(), period_start=line.period_start,
                                          period_end=line.period_end, level=line.level,
                                          rep=line.rep,
                                          team=None if line.level == "rep" else line.team)
            row.made_at, row.grain, row.currency = made_at, grain, currency
            row.won_to_date = line.won_to_date
            row.p10, row.p50, row.p90, row.mean = (line.band.p10, line.band.p50, line.band.p90,
                                                   line.band.mean)
            session.add(row)


def closed_before(url: str, day: dt.date) -> list[ForecastRecord]:
    """Every kept forecast whose period ended before ``day``, oldest first."""
    with Session(engine_for(url)) as session:
        rows = session.scalars(select(ForecastRecord).where(ForecastRecord.period_end < day)
                               .order_by(ForecastRecord.made_at, ForecastRecord.id))
        return list(rows)
