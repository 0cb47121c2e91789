"""The forecast's vocabulary: deal histories in, probabilities, bands and scores out.

Plain dataclasses with ``to_dict`` for JSON; the statistics that fill them are in
``saleskpi.engine.forecast`` (docs: forecast.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from saleskpi.domain.query import plain_number

# Days a deal has been in its stage: the lower bounds of the age buckets.
AGE_BUCKETS: tuple[int, ...] = (0, 14, 30, 60, 120)
# Pseudo-deals of the prior: a rep's (or a bucket's) own rate counts n / (n + k).
PRIOR_STRENGTH = 10.0
INTERVAL = 0.8  # the Beta posterior interval shown with each probability
SIMULATIONS = 1000
DEFAULT_SEED = 15
RUN_RATE_DAYS = 90  # new deals: created per day over this many days before the forecast
NO_STAGE = "(no stage)"  # a deal without stage history or stage
LEVELS = ("rep", "team", "company")


def bucket_of(age_days: float) -> int:
    """The index of the age bucket of a deal ``age_days`` in its stage."""
    index = 0
    for i, low in enumerate(AGE_BUCKETS):
        if age_days >= low:
            index = i
    return index


def bucket_label(index: int) -> str:
    low = AGE_BUCKETS[index]
    if index + 1 < len(AGE_BUCKETS):
        return f"{low}-{AGE_BUCKETS[index + 1] - 1}"
    return f"{low}+"


@dataclass(frozen=True)
class DealHistory:
    """A deal as stored now, with its stage entries (non-terminal stages, oldest first).

    ``rep`` is the person key the scorecard slices by; ``amount`` is in the
    reporting currency; ``probability`` the CRM's, as 0..1.
    """

    source: str
    id: str
    rep: str
    team: str | None
    pipeline: str | None
    stage: str | None
    status: str
    created_at: dt.datetime | None
    closed_at: dt.datetime | None
    expected_close_at: dt.datetime | None
    probability: float | None
    amount: float | None
    entries: tuple[tuple[str, dt.datetime], ...] = ()


@dataclass(frozen=True)
class CommitEntry:
    """A forecast a rep (or team lead) entered: the ``forecasts`` entity."""

    made_at: dt.datetime
    period_start: dt.date
    period_end: dt.date
    amount: float
    rep: str | None
    team: str | None
    category: str | None


@dataclass(frozen=True)
class Band:
    """Quantiles of a simulated total."""

    p10: float
    p50: float
    p90: float
    mean: float

    def to_dict(self) -> dict[str, Any]:
        return {"p10": plain_number(round(self.p10, 2)), "p50": plain_number(round(self.p50, 2)),
                "p90": plain_number(round(self.p90, 2)),
                "mean": plain_number(round(self.mean, 2))}


@dataclass(frozen=True)
class Probability:
    """P(won) of one cell (pipeline, stage, age bucket) for the team or one rep."""

    pipeline: str | None
    stage: str
    bucket: int
    rep: str | None  # None: the team
    wins: int
    trials: int
    mean: float
    low: float
    high: float
    prior: float  # the rate this one is shrunk toward
    weight: float  # n / (n + k): the share of the estimate that is this group's own data

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "stage": self.stage,
                "age_days": bucket_label(self.bucket), "rep": self.rep, "wins": self.wins,
                "trials": self.trials, "p": plain_number(round(self.mean, 4)),
                "low": plain_number(round(self.low, 4)),
                "high": plain_number(round(self.high, 4)),
                "prior": plain_number(round(self.prior, 4)),
                "own_weight": plain_number(round(self.weight, 4))}


@dataclass(frozen=True)
class StageComparison:
    """A stage's learned probabilities beside the CRM's static one."""

    pipeline: str | None
    stage: str
    crm_probability: float | None  # mean of the open deals' own probability
    stage_win_rate: float | None  # share of closed deals that entered the stage and won
    closed: int
    median_days_to_won: float | None
    open_deals: int
    buckets: list[Probability]

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "stage": self.stage,
                "crm_probability": _rounded(self.crm_probability),
                "stage_win_rate": _rounded(self.stage_win_rate), "closed": self.closed,
                "median_days_to_won": _rounded(self.median_days_to_won, 1),
                "open_deals": self.open_deals,
                "learned": [b.to_dict() for b in self.buckets]}


@dataclass
class ForecastLine:
    """One rep, team or the company in one period."""

    level: str
    rep: str | None
    rep_name: str | None
    team: str | None
    period_start: dt.date
    period_end: dt.date
    won_to_date: float
    from_open: float  # mean simulated revenue from deals open now
    from_new: float  # ... from deals not created yet
    band: Band
    open_deals: int
    commit: float | None = None
    best_case: float | None = None
    plan: float | None = None

    def key(self) -> tuple[str, str | None, str | None]:
        return (self.level, self.rep, self.team)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "rep": self.rep, "rep_name": self.rep_name,
                "team": self.team, "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(),
                "won_to_date": _money(self.won_to_date), "from_open": _money(self.from_open),
                "from_new": _money(self.from_new), **self.band.to_dict(),
                "open_deals": self.open_deals, "commit": _money(self.commit),
                "best_case": _money(self.best_case), "plan": _money(self.plan)}


@dataclass(frozen=True)
class DealOutlook:
    """An open deal's learned chances and how much it moves the forecast."""

    source: str
    id: str
    rep: str
    pipeline: str | None
    stage: str
    age_days: float
    amount: float | None  # None: unknown, simulated from won amounts
    crm_probability: float | None
    p_win: float
    p_low: float
    p_high: float
    p_this_period: float  # won and closed within the current period
    expected: float  # mean contribution to the current period
    swing: float  # its standard deviation: how much it moves the number

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "id": self.id, "rep": self.rep,
                "pipeline": self.pipeline, "stage": self.stage,
                "age_days": round(self.age_days, 1), "amount": _money(self.amount),
                "crm_probability": _rounded(self.crm_probability),
                "p_win": _rounded(self.p_win), "p_low": _rounded(self.p_low),
                "p_high": _rounded(self.p_high), "p_this_period": _rounded(self.p_this_period),
                "expected": _money(self.expected), "swing": _money(self.swing)}


@dataclass
class Forecast:
    """The forecast of the current and the next period, as of an instant."""

    as_of: dt.datetime
    grain: str
    periods: list[tuple[dt.date, dt.date]]
    lines: list[ForecastLine]
    deals: list[DealOutlook]  # open deals, the ones that move the number most first
    simulations: int
    seed: int | None
    prior_strength: float = PRIOR_STRENGTH
    stages: list[StageComparison] = field(default_factory=list)
    live: bool = True  # made now (kept in the track record), not replayed as of a past day


@dataclass(frozen=True)
class MethodScore:
    """How one method did over closed periods at one level (docs: forecast.md)."""

    method: str
    level: str
    periods: int  # forecasts scored (rep-periods at the rep level)
    accuracy: float | None  # mean of 1 - |A - F| / A over periods with A > 0
    bias: float | None  # (sum F - sum A) / sum A: above 0 forecasts too high
    within_10: float | None  # share of forecasts within ±10 % of the actual
    calibration: float | None  # share of actuals inside P10-P90 (ours only)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "level": self.level, "periods": self.periods,
                "accuracy": _rounded(self.accuracy), "bias": _rounded(self.bias),
                "within_10": _rounded(self.within_10),
                "calibration": _rounded(self.calibration)}


@dataclass(frozen=True)
class ScoredForecast:
    """One forecast of one period beside what happened."""

    method: str
    level: str
    rep: str | None
    team: str | None
    period_start: dt.date
    period_end: dt.date
    made_at: dt.datetime
    forecast: float
    actual: float
    p10: float | None = None
    p90: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "level": self.level, "rep": self.rep,
                "team": self.team, "period_start": self.period_start.isoformat(),
                "period_end": self.period_end.isoformat(),
                "made_at": self.made_at.isoformat(), "forecast": _money(self.forecast),
                "actual": _money(self.actual), "p10": _money(self.p10),
                "p90": _money(self.p90)}


def score(method: str, level: str, rows: list[ScoredForecast]) -> MethodScore:
    """Accuracy, bias, share within ±10 % and P10-P90 calibration of ``rows``."""
    with_actual = [r for r in rows if r.actual > 0]
    accuracy = (sum(1 - abs(r.actual - r.forecast) / r.actual for r in with_actual)
                / len(with_actual)) if with_actual else None
    within = (sum(abs(r.actual - r.forecast) <= 0.1 * r.actual for r in with_actual)
              / len(with_actual)) if with_actual else None
    total_actual = sum(r.actual for r in rows)
    bias = (sum(r.forecast for r in rows) - total_actual) / total_actual \
        if total_actual > 0 else None
    banded = [r for r in rows if r.p10 is not None and r.p90 is not None]
    calibration = (sum(r.p10 <= r.actual <= r.p90 for r in banded  # type: ignore[operator]
                       ) / len(banded)) if banded else None
    return MethodScore(method, level, len(rows), accuracy, bias, within, calibration)


def _rounded(value: float | None, places: int = 4) -> float | int | None:
    return None if value is None else plain_number(round(value, places))


def _money(value: float | None) -> float | int | None:
    return _rounded(value, 2)
