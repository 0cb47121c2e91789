"""Plan against actual: attainment, gap and run-rate projection (pure arithmetic).

* attainment = actual / plan; for KPIs where lower is better (response time,
  cycle length) it is plan / actual, so above 100% is good either way;
* gap = plan − actual (what is still missing; negative once the plan is beaten;
  for lower-is-better KPIs a negative gap means the value is above the plan);
* pacing, by **working days** (Monday to Friday less the company's ``holidays``):
  expected by today = plan × working days gone / working days of the period; what is
  still needed per remaining working day = (plan − actual) / working days left;
* projection to the period's end, for KPIs that add up over time (counts, sums:
  calls, deals won, revenue): actual + the mean of a working day so far × working
  days left, with a 95% range from the spread of the days so far
  (± 1.96 × sd × √days left). Only once ``MIN_ELAPSED_SHARE`` (25%) of the working
  days have gone: two days of a month say little about its end. For rates,
  averages, medians and snapshots there is no run rate: the projection is the
  current value.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from saleskpi.catalog.spec import KpiSpec
from saleskpi.domain.planning import working_days
from saleskpi.domain.query import plain_number
from saleskpi.domain.targets import SUM_OF_REPS, TargetRecord

CUMULATIVE_AGGS = ("count", "sum")
# A projection is shown once this share of the period's working days has gone.
MIN_ELAPSED_SHARE = 0.25
Z95 = 1.96


def is_cumulative(spec: KpiSpec) -> bool:
    """Whether a KPI adds up over time, so half a period holds about half of it."""
    return spec.kind == "simple" and spec.agg in CUMULATIVE_AGGS and spec.until is None


def elapsed_share(first: dt.date, last: dt.date, at: dt.date) -> tuple[int, int]:
    """Days of [first, last] gone by the end of ``at`` (inclusive), and days in it."""
    total = (last - first).days + 1
    elapsed = min(max((at - first).days + 1, 0), total)
    return elapsed, total


def attainment_of(plan: float, actual: float | None, higher_is_better: bool) -> float | None:
    """actual / plan (plan / actual where lower is better): above 1 is good either way."""
    return _attainment(plan, actual, higher_is_better)


def _attainment(plan: float, actual: float | None, higher_is_better: bool) -> float | None:
    if actual is None:
        return None
    if higher_is_better:
        return actual / plan if plan else None
    return plan / actual if actual else None


@dataclass(frozen=True)
class Attainment:
    plan: float
    actual: float | None
    attainment: float | None
    gap: float | None
    projection: float | None
    projected_attainment: float | None


def compare(plan: float, actual: float | None, *, higher_is_better: bool, cumulative: bool,
            elapsed_days: int, period_days: int) -> Attainment:
    """Plan against actual after ``elapsed_days`` of ``period_days``."""
    gap = plan - actual if actual is not None else None
    projection = actual
    if cumulative and actual is not None:
        projection = actual * period_days / elapsed_days if elapsed_days else None
    return Attainment(
        plan, actual, _attainment(plan, actual, higher_is_better), gap, projection,
        _attainment(plan, projection, higher_is_better),
    )


@dataclass(frozen=True)
class Pace:
    """Plan against the working days of its period (see the module's docstring)."""

    working_days: int
    elapsed: int  # working days gone, up to and including the day measured
    left: int
    expected: float | None  # what the plan expects by now
    needed_per_day: float | None  # still to do per working day left (cumulative KPIs)
    projection: float | None  # None: too early (or no run rate)
    low: float | None
    high: float | None
    projection_from: dt.date | None  # the first day a projection is shown

    def to_dict(self) -> dict[str, Any]:
        return {
            "working_days": self.working_days, "working_days_elapsed": self.elapsed,
            "working_days_left": self.left, "expected": plain_number(self.expected),
            "needed_per_working_day": plain_number(self.needed_per_day),
            "projection": plain_number(self.projection),
            "projection_low": plain_number(self.low),
            "projection_high": plain_number(self.high),
            "projection_from": self.projection_from.isoformat() if self.projection_from
            else None,
        }


def projection_day(first: dt.date, last: dt.date, holidays: Collection[dt.date]) -> dt.date:
    """The first day by which MIN_ELAPSED_SHARE of [first, last]'s working days have gone."""
    total = working_days(first, last, holidays)
    need = math.ceil(total * MIN_ELAPSED_SHARE)
    day = first
    while day < last and working_days(first, day, holidays) < need:
        day += dt.timedelta(days=1)
    return day


def pace(plan: float, actual: float | None, *, cumulative: bool, first: dt.date,
         last: dt.date, at: dt.date, holidays: Collection[dt.date] = (),
         daily: Sequence[float] | None = None) -> Pace:
    """Plan and actual against the working days of [first, last] by the end of ``at``.

    ``daily``: the KPI on each working day gone (for the projection's range).
    """
    total = working_days(first, last, holidays)
    gone = working_days(first, min(at, last), holidays) if at >= first else 0
    left = total - gone
    starts = projection_day(first, last, holidays)
    if not cumulative:
        projection = actual if at >= starts else None
        return Pace(total, gone, left, plan, None, projection, None, None, starts)
    expected = plan * gone / total if total else plan
    done = actual or 0.0
    needed = max(plan - done, 0.0) / left if left else None
    projection = low = high = None
    if total and gone >= total * MIN_ELAPSED_SHARE and gone:
        per_day = done / gone
        projection = done + per_day * left
        spread = statistics.stdev(daily) if daily is not None and len(daily) > 1 else 0.0
        margin = Z95 * spread * math.sqrt(left)
        low, high = max(done, projection - margin), projection + margin
    return Pace(total, gone, left, expected, needed, projection, low, high, starts)


@dataclass(frozen=True)
class PlanLine:
    """One target with its actual, as the plan command and the API show it."""

    target: TargetRecord
    kpi_name: str
    unit: str
    higher_is_better: bool
    cumulative: bool
    at: dt.date
    elapsed_days: int
    period_days: int
    result: Attainment
    rep_name: str | None = None
    numerator: float | None = None  # for rate KPIs: the actual's counts
    denominator: float | None = None
    pace: Pace | None = None
    # A team's or the company's plan: the sum of its reps' plans (the plan itself when
    # none was set for it: ``target.source`` is then SUM_OF_REPS).
    sum_of_reps: float | None = None
    # The calls and meetings a working day still needs (deals won, revenue), from the
    # reverse planner on the history of the rep, team or company.
    activity: dict[str, Any] | None = None

    @property
    def who(self) -> str | None:
        if self.target.level == "rep":
            return self.rep_name or self.target.rep_id
        return self.target.team

    @property
    def on_pace(self) -> float | None:
        """Actual / expected by now (1 = on plan), in the KPI's direction."""
        if self.pace is None or self.pace.expected is None:
            return self.result.projected_attainment
        return _attainment(self.pace.expected, self.result.actual, self.higher_is_better)

    def sort_key(self) -> tuple[Any, ...]:
        """Furthest behind first: by actual against expected by now, lines without actuals
        last."""
        pace = self.on_pace
        now = self.result.attainment
        return (pace is None, pace or 0.0, now is None, now or 0.0, self.target.kpi,
                self.target.level, self.who or "")

    def to_dict(self) -> dict[str, Any]:
        t, r = self.target, self.result
        out: dict[str, Any] = {
            "kpi": t.kpi,
            "name": self.kpi_name,
            "unit": self.unit,
            "level": t.level,
            "rep_id": t.rep_id,
            "rep_name": self.rep_name,
            "team": t.team,
            "period_start": t.period_start.isoformat(),
            "period_end": t.period_end.isoformat(),
            "source": t.source,
            "at": self.at.isoformat(),
            "elapsed_days": self.elapsed_days,
            "period_days": self.period_days,
            "higher_is_better": self.higher_is_better,
            "plan": plain_number(r.plan),
            "actual": plain_number(r.actual),
            "attainment": plain_number(r.attainment),
            "gap": plain_number(r.gap),
            "projection": plain_number(r.projection),
            "projected_attainment": plain_number(r.projected_attainment),
            "run_rate": self.cumulative,
            "plan_source": "sum_of_reps" if t.source == SUM_OF_REPS else "set",
            "sum_of_reps": plain_number(self.sum_of_reps),
            "difference": plain_number(r.plan - self.sum_of_reps)
            if self.sum_of_reps is not None and t.source != SUM_OF_REPS else None,
            "on_pace": plain_number(self.on_pace),
            **(self.pace.to_dict() if self.pace else {}),
            "activity_per_working_day": self.activity,
        }
        if self.numerator is not None or self.denominator is not None:
            out["numerator"] = plain_number(self.numerator)
            out["denominator"] = plain_number(self.denominator)
        return out
