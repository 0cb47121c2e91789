"""Targets (plans): a value for one KPI over whole periods, for a rep, a team or everyone.

A target is identified by (source, kpi, period_start, period_end, rep_id, team):
targets typed in with ``saleskpi target set`` have the source ``manual``, imported
ones the import's source. Stored by ``saleskpi.store.targets``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from saleskpi.domain.query import Period, next_period, period_start, plain_number

MANUAL_SOURCE = "manual"
# The source of a team's or the company's plan made of its reps' plans (never stored).
SUM_OF_REPS = "sum_of_reps"
Level = Literal["rep", "team", "company"]
LEVELS: tuple[Level, ...] = ("rep", "team", "company")
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


Change = Literal["inserted", "updated", "unchanged"]
