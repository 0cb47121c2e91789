"""Plan against actual: attainment, gap and run-rate projection (pure arithmetic).

* attainment = actual / plan; for KPIs where lower is better (response time,
  cycle length) it is plan / actual, so above 100% is good either way;
* gap = plan − actual (what is still missing; negative once the plan is beaten;
  for lower-is-better KPIs a negative gap means the value is above the plan);
* projection to the period's end: for KPIs that add up over time (counts, sums:
  calls, deals won, revenue) the run rate, actual / elapsed share of the period;
  for rates, averages, medians and snapshots there is no run rate, so the
  projection is the current value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from saleskpi.catalog.spec import KpiSpec
from saleskpi.domain.query import plain_number
from saleskpi.domain.targets import TargetRecord

CUMULATIVE_AGGS = ("count", "sum")


def is_cumulative(spec: KpiSpec) -> bool:
    """Whether a KPI adds up over time, so half a period holds about half of it."""
    return spec.kind == "simple" and spec.agg in CUMULATIVE_AGGS and spec.until is None


def elapsed_share(first: dt.date, last: dt.date, at: dt.date) -> tuple[int, int]:
    """Days of [first, last] gone by the end of ``at`` (inclusive), and days in it."""
    total = (last - first).days + 1
    elapsed = min(max((at - first).days + 1, 0), total)
    return elapsed, total


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

    @property
    def who(self) -> str | None:
        if self.target.level == "rep":
            return self.rep_name or self.target.rep_id
        return self.target.team

    def sort_key(self) -> tuple[Any, ...]:
        """Furthest behind first: by projected attainment, lines without actuals last."""
        pace = self.result.projected_attainment
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
        }
        if self.numerator is not None or self.denominator is not None:
            out["numerator"] = plain_number(self.numerator)
            out["denominator"] = plain_number(self.denominator)
        return out
