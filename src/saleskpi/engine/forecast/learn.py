"""What the history teaches: chances to win by stage and age, times to close, amounts.

A group (the team, or one rep) is summarised by ``aggregate`` as counts and quantile
grids only: no single deal can be read back from it. That is what a rep's forecast
takes from the team (the prior); the rep's own deals are the rep's.

The chance that a deal in stage S, aged A days in it, is won: of the deals that
entered S and were still open A days later (the low end of A's bucket), the share
that went on to be won, with deals still open now counted as watched only as long
as they have been (``Curve``: the Aalen-Johansen estimate, so that deals that stay
open for ever lower the chance of old deals instead of being left out). It is
shrunk (empirical Bayes, a Beta prior worth ``k`` pseudo-deals) in three steps: the
team's stage rate toward the pipeline's win rate, the team's bucket toward its
stage, a rep's bucket toward the team's. With n deals watched at that age, of
which a share p won: Beta(k·prior + p·n, k·(1 - prior) + (1 - p)·n), whose mean is
the estimate and whose central 80 % the interval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from saleskpi.domain.forecasting import (
    AGE_BUCKETS,
    INTERVAL,
    NO_STAGE,
    PRIOR_STRENGTH,
    RUN_RATE_DAYS,
    DealHistory,
    Probability,
    bucket_of,
)

DAY = 86400.0
_GRID = np.linspace(0.0, 1.0, 41)  # the quantiles a distribution keeps
FALLBACK_DAYS = 30.0  # time to a win when the history has none at all
MAX_DAYS = 3660  # a curve stops ten years after the start

Cell = tuple[str | None, str]  # (pipeline, stage)


def days(later: dt.datetime, earlier: dt.datetime) -> float:
    return (later - earlier).total_seconds() / DAY


@dataclass(frozen=True)
class Distribution:
    """A sample kept as 41 quantiles (an aggregate), sampled by interpolation."""

    quantiles: np.ndarray
    n: int
    mean: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution | None:
        data = np.asarray(list(values), dtype=float)
        if data.size == 0:
            return None
        return cls(np.quantile(data, _GRID), int(data.size), float(data.mean()))

    def at(self, u: np.ndarray) -> np.ndarray:
        """The values at quantiles ``u`` (uniform draws give draws of the distribution)."""
        found: np.ndarray = np.interp(u, _GRID, self.quantiles)
        return found


class Curve:
    """When deals that started (entered a stage, or were created) close won, by day since.

    The Aalen-Johansen estimate of the cumulative chance of a win by day ``j`` with loss
    as the competing close and deals still open as censored (known open up to now), so
    that deals open for long (never closed) lower the chance of the old ones instead
    of being left out. ``won[j]``: P(won by the end of day j); ``alive[j]``: P(not
    closed by then); ``at_risk[j]``: deals still open and watched on day j. Counts per
    day only: no deal can be read back from it.
    """

    def __init__(self, won: np.ndarray, alive: np.ndarray, at_risk: np.ndarray,
                 wins: int, closed: int) -> None:
        self.won, self.alive, self.at_risk = won, alive, at_risk
        self.wins, self.closed = wins, closed

    @classmethod
    def of(cls, durations: list[float], outcomes: list[int]) -> Curve | None:
        """``outcomes``: 1 won, 2 lost, 0 still open after ``durations`` days."""
        if not durations:
            return None
        day = np.minimum(np.floor(np.asarray(durations, dtype=float)), MAX_DAYS).astype(int)
        outcome = np.asarray(outcomes, dtype=int)
        size = int(day.max()) + 1
        ends = np.bincount(day, minlength=size)
        at_risk = ends[::-1].cumsum()[::-1]
        won = np.bincount(day[outcome == 1], minlength=size)
        lost = np.bincount(day[outcome == 2], minlength=size)
        with np.errstate(invalid="ignore", divide="ignore"):
            won_hazard = np.where(at_risk > 0, won / at_risk, 0.0)
            lost_hazard = np.where(at_risk > 0, lost / at_risk, 0.0)
        alive = np.cumprod(1.0 - won_hazard - lost_hazard)
        before = np.concatenate([[1.0], alive[:-1]])
        return cls(np.cumsum(before * won_hazard), alive, at_risk, int(won.sum()),
                   int(won.sum() + lost.sum()))

    def median_days_to_win(self) -> float | None:
        """The day by which half of the eventual wins had come."""
        if self.won[-1] <= 0:
            return None
        return float(np.searchsorted(self.won, self.won[-1] / 2, side="left"))

    def _before(self, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(P(won before day), P(open at the start of day)) for each day."""
        inside = np.clip(day, 0, len(self.won))
        won = np.where(inside > 0, self.won[np.maximum(inside - 1, 0)], 0.0)
        alive = np.where(inside > 0, self.alive[np.maximum(inside - 1, 0)], 1.0)
        return won, alive

    def chance(self, age: float) -> tuple[float, int]:
        """(the chance that a deal open at ``age`` days is won, deals watched at that age)."""
        day = int(min(age, MAX_DAYS))
        if day >= len(self.won):
            return 0.0, 0
        won, alive = self._before(np.asarray([day]))
        if alive[0] <= 0:
            return 0.0, 0
        return float((self.won[-1] - won[0]) / alive[0]), int(self.at_risk[day])

    def days_to_win(self, ages: np.ndarray, u: np.ndarray, jitter: np.ndarray) -> np.ndarray:
        """Days from now until the win of deals aged ``ages`` that win (elementwise, with
        uniform ``u`` and ``jitter`` of the same shape): drawn from the wins after each
        deal's age; with none after it (a deal older than any won), from all wins."""
        day = np.minimum(np.floor(ages), MAX_DAYS).astype(int)
        low, _alive = self._before(day)
        high = self.won[-1]
        none_after = (high - low) <= 1e-12
        low = np.where(none_after, 0.0, low)
        ages = np.where(none_after, 0.0, ages)
        won_on = np.searchsorted(self.won, low + u * (high - low), side="left")
        found: np.ndarray = np.maximum(won_on + jitter - ages, 0.0)
        return found


@dataclass
class GroupStats:
    """One group's history as of an instant: curves, counts and quantiles only."""

    # From entering the stage, one curve per age bucket: of the deals still in the stage
    # at the bucket's low end (a deal that moved on is no longer "aged A in S").
    stages: dict[Cell, list[Curve | None]] = field(default_factory=dict)
    pipelines: dict[str | None, tuple[int, int]] = field(default_factory=dict)  # wins, closed
    created: Curve | None = None  # from the deal's creation
    wins: int = 0
    closed: int = 0
    won_amounts: Distribution | None = None
    created_recently: int = 0  # deals created in the RUN_RATE_DAYS before the instant
    # The spread of a whole period's revenue that deals alone do not explain (a shock
    # common to every deal of a period: quarter ends, holidays); see ``period_shock``.
    shock: float = 0.0


@dataclass(frozen=True)
class State:
    """A deal as it stood at an instant: None when it was not known yet."""

    deal: DealHistory
    status: str  # open, won, lost
    stage: str
    entered: dt.datetime | None
    amount: float | None  # what was known of the amount then

    def age(self, at: dt.datetime) -> float:
        return max(days(at, self.entered), 0.0) if self.entered is not None else 0.0


def state_at(deal: DealHistory, at: dt.datetime, *, live: bool) -> State | None:
    """``deal`` as of ``at``; ``live``: ``at`` is now (every stored value is known).

    Replaying the past, a deal counts from its creation (or first stage entry); one
    closed without a date cannot be placed and is left out. Its amount then is only
    known if it is still open now or was closed by then: the amount of a deal closed
    later may have been set by its outcome (lost deals at 0), so it is drawn from the
    won amounts known then.
    """
    first = deal.created_at or (deal.entries[0][1] if deal.entries else None)
    if not live and (first is None or first > at):
        return None
    closed = deal.status in ("won", "lost")
    if closed and deal.closed_at is None and not live:
        return None
    status = deal.status if closed and (deal.closed_at is None or deal.closed_at <= at) \
        else "open"
    known = [(s, t) for s, t in deal.entries if t <= at]
    stage, entered = known[-1] if known else (NO_STAGE, deal.created_at)
    amount = deal.amount if live or deal.status == "open" or status != "open" else None
    return State(deal, status, stage, entered, amount)


def aggregate(deals: Iterable[DealHistory], at: dt.datetime, *, live: bool) -> GroupStats:
    """What ``deals`` teach as of ``at``: closes by then are outcomes, the rest open."""
    stats = GroupStats()
    stays: dict[Cell, tuple[list[float], list[int], list[float]]] = {}
    created: tuple[list[float], list[int]] = ([], [])
    amounts: list[float] = []
    window = at - dt.timedelta(days=RUN_RATE_DAYS)
    for deal in deals:
        state = state_at(deal, at, live=live)
        if state is None:
            continue
        if deal.created_at is not None and window < deal.created_at <= at:
            stats.created_recently += 1
        outcome = {"won": 1, "lost": 2}.get(state.status, 0)
        end = deal.closed_at if outcome and deal.closed_at is not None else at
        if outcome:
            stats.closed += 1
            stats.wins += outcome == 1
            wins, closed = stats.pipelines.get(deal.pipeline, (0, 0))
            stats.pipelines[deal.pipeline] = (wins + (outcome == 1), closed + 1)
            if outcome == 1 and state.amount is not None and state.amount > 0:
                amounts.append(state.amount)
        if outcome and deal.closed_at is None:
            continue  # closed, but when is unknown: no time to learn from
        if deal.created_at is not None and deal.created_at <= end:
            created[0].append(days(end, deal.created_at))
            created[1].append(outcome)
        for stage, start, left in _stays(deal, end):
            durations, outcomes, kept = stays.setdefault((deal.pipeline, stage), ([], [], []))
            durations.append(max(days(end, start), 0.0))
            outcomes.append(outcome)
            kept.append(max(days(left, start), 0.0))
    stats.stages = {cell: _bucket_curves(*found) for cell, found in stays.items()}
    stats.created = Curve.of(*created)
    stats.won_amounts = Distribution.of(amounts)
    return stats


MIN_PERIODS = 4  # closed periods needed to measure how much period totals vary


def period_shock(deals: Iterable[DealHistory], periods: list[tuple[dt.datetime, dt.datetime]]
                 ) -> float:
    """σ of a period-wide factor exp(σz − σ²/2) on the revenue still to come.

    Revenue won per past period (``periods``: [start, end) instants, all before now)
    varies more than deals won one by one at random would make it vary: a compound
    Poisson total of n wins of mean m and spread s has a squared coefficient of
    variation (1 + s²/m²) / n. What the periods show beyond that is the period's own
    shock, shared by every deal: σ² = log(1 + max(0, cv² - (1 + s²/m²) / n)).
    """
    if len(periods) < MIN_PERIODS:
        return 0.0
    totals = np.zeros(len(periods))
    counts = np.zeros(len(periods))
    amounts: list[float] = []
    for deal in deals:
        closed = deal.closed_at
        if deal.status != "won" or closed is None or not deal.amount:
            continue
        for index, (start, end) in enumerate(periods):
            if start <= closed < end:
                totals[index] += deal.amount
                counts[index] += 1
                amounts.append(deal.amount)
                break
    if counts.mean() < 1 or totals.mean() <= 0:
        return 0.0
    spread = np.asarray(amounts)
    chance = (1 + spread.var() / spread.mean() ** 2) / counts.mean()
    seen = totals.var(ddof=1) / totals.mean() ** 2
    return float(np.sqrt(np.log1p(max(seen - chance, 0.0))))


def _stays(deal: DealHistory, end: dt.datetime
           ) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(stage, entered, left) of each stage's first stay up to ``end`` (the close or now)."""
    entries = [(s, t) for s, t in deal.entries if t <= end]
    if not entries:
        return [(NO_STAGE, deal.created_at, end)] if deal.created_at else []
    seen: set[str] = set()
    stays = []
    for index, (stage, start) in enumerate(entries):
        left = entries[index + 1][1] if index + 1 < len(entries) else end
        if stage not in seen:
            seen.add(stage)
            stays.append((stage, start, left))
    return stays


def _bucket_curves(durations: list[float], outcomes: list[int],
                   stayed: list[float]) -> list[Curve | None]:
    """Per age bucket, the curve of the stays that lasted past the bucket's low end."""
    duration = np.asarray(durations)
    outcome = np.asarray(outcomes, dtype=int)
    stay = np.asarray(stayed)
    curves = []
    for low in AGE_BUCKETS:
        keep = stay >= low if low == 0 else stay > low
        curves.append(Curve.of(list(duration[keep]), list(outcome[keep])))
    return curves


def beta_interval(a: float, b: float, level: float = INTERVAL) -> tuple[float, float]:
    """The central ``level`` interval of Beta(a, b), from its density on a fine grid."""
    mean = a / (a + b)
    sd = float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))
    low, high = max(mean - 10 * sd, 1e-12), min(mean + 10 * sd, 1 - 1e-12)
    x = np.linspace(low, high, 4001)
    log_pdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
    pdf = np.exp(log_pdf - log_pdf.max())
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    cdf /= cdf[-1]
    tail = (1 - level) / 2
    return float(np.interp(tail, cdf, x)), float(np.interp(1 - tail, cdf, x))


@dataclass(frozen=True)
class Beta:
    """A posterior: ``watched`` deals of which a share ``chance`` won, and the prior."""

    a: float
    b: float
    prior: float
    chance: float
    watched: int
    weight: float

    @property
    def mean(self) -> float:
        return self.a / (self.a + self.b)


def _shrunk(prior: float, chance: float, watched: int, k: float) -> Beta:
    """Beta(k·prior + wins, k·(1 - prior) + losses), wins = chance × watched."""
    prior = min(max(prior, 1e-6), 1 - 1e-6)
    wins = chance * watched
    return Beta(k * prior + wins, k * (1 - prior) + watched - wins, prior, chance, watched,
                watched / (watched + k) if watched + k > 0 else 0.0)


def _at(curves: list[Curve | None] | None, bucket: int) -> Curve | None:
    return curves[bucket] if curves else None


def _chance(curve: Curve | None, age: float) -> tuple[float, int]:
    return curve.chance(age) if curve is not None else (0.0, 0)


Mixture = list[tuple[float, Curve]]


class Model:
    """The team's aggregates and each rep's, and the shrunk chances they give."""

    def __init__(self, team: GroupStats, reps: dict[str, GroupStats],
                 k: float = PRIOR_STRENGTH) -> None:
        self.team, self.reps, self.k = team, reps, k

    def pipeline_rate(self, pipeline: str | None) -> float:
        wins, closed = self.team.pipelines.get(pipeline, (self.team.wins, self.team.closed))
        return (wins + 1) / (closed + 2)

    def team_beta(self, pipeline: str | None, stage: str, bucket: int) -> Beta:
        curves = self.team.stages.get((pipeline, stage))
        whole = _shrunk(self.pipeline_rate(pipeline), *_chance(_at(curves, 0), 0), self.k)
        if bucket == 0:
            return whole
        return _shrunk(whole.mean, *_chance(_at(curves, bucket), AGE_BUCKETS[bucket]), self.k)

    def beta(self, rep: str | None, pipeline: str | None, stage: str, bucket: int) -> Beta:
        team = self.team_beta(pipeline, stage, bucket)
        own = self.reps.get(rep) if rep is not None else None
        if own is None:
            return team
        curve = _at(own.stages.get((pipeline, stage)), bucket)
        return _shrunk(team.mean, *_chance(curve, AGE_BUCKETS[bucket]), self.k)

    def probability(self, rep: str | None, pipeline: str | None, stage: str,
                    bucket: int) -> Probability:
        beta = self.beta(rep, pipeline, stage, bucket)
        low, high = beta_interval(beta.a, beta.b)
        return Probability(pipeline, stage, bucket, rep, round(beta.chance * beta.watched),
                           beta.watched, beta.mean, low, high, beta.prior, beta.weight)

    def new_deal_beta(self, rep: str | None) -> Beta:
        """The chance that a deal not created yet is won: the rep's, shrunk to the team's."""
        overall = (self.team.wins + 1) / (self.team.closed + 2)
        team = _shrunk(overall, *_chance(self.team.created, 0), self.k)
        own = self.reps.get(rep) if rep is not None else None
        if own is None:
            return team
        return _shrunk(team.mean, *_chance(own.created, 0), self.k)

    def _mix(self, own: Curve | None, team: Curve | None) -> Mixture:
        """A rep's curve weighted wins / (wins + k), the team's for the rest."""
        if own is None or own.wins == 0:
            return [(1.0, team)] if team is not None and team.wins else []
        if team is None or team.wins == 0:
            return [(1.0, own)]
        weight = own.wins / (own.wins + self.k)
        return [(weight, own), (1 - weight, team)]

    def stage_timing(self, rep: str | None, pipeline: str | None, stage: str,
                     bucket: int) -> Mixture:
        """When deals aged in ``bucket`` of the stage were won: the rep's and the team's."""
        own = self.reps.get(rep) if rep is not None else None
        cell = (pipeline, stage)
        for index in (bucket, 0):
            found = self._mix(_at(own.stages.get(cell), index) if own else None,
                              _at(self.team.stages.get(cell), index))
            if found:
                return found
        return self.created_timing(rep)

    def created_timing(self, rep: str | None) -> Mixture:
        own = self.reps.get(rep) if rep is not None else None
        return self._mix(own.created if own else None, self.team.created)

    def amounts(self, rep: str | None) -> list[tuple[float, Distribution]]:
        own = self.reps.get(rep) if rep is not None else None
        team = self.team.won_amounts
        if own is None or own.won_amounts is None:
            return [(1.0, team)] if team is not None else []
        if team is None:
            return [(1.0, own.won_amounts)]
        weight = own.won_amounts.n / (own.won_amounts.n + self.k)
        return [(weight, own.won_amounts), (1 - weight, team)]


def days_to_win(mixture: Mixture, rng: np.random.Generator, ages: np.ndarray,
                n: int) -> np.ndarray:
    """(deal, future) days until the win of deals aged ``ages``, from a mixture of curves."""
    if not mixture:
        return np.maximum(FALLBACK_DAYS - ages[:, None], 0.0) * np.ones((1, n))
    grid = np.broadcast_to(ages[:, None], (len(ages), n))
    u, jitter = rng.random(grid.shape), rng.random(grid.shape)
    if len(mixture) == 1:
        return mixture[0][1].days_to_win(grid, u, jitter)
    found = np.empty(grid.shape)
    pick = rng.random(grid.shape) < mixture[0][0]
    found[pick] = mixture[0][1].days_to_win(grid[pick], u[pick], jitter[pick])
    rest = ~pick
    found[rest] = mixture[1][1].days_to_win(grid[rest], u[rest], jitter[rest])
    return found


def amounts(mixture: list[tuple[float, Distribution]], rng: np.random.Generator,
            shape: tuple[int, ...]) -> np.ndarray:
    """Won amounts drawn from a mixture (0 when nothing was ever won)."""
    if not mixture:
        return np.zeros(shape)
    u = rng.random(shape)
    if len(mixture) == 1:
        return mixture[0][1].at(u)
    found = np.empty(shape)
    pick = rng.random(shape) < mixture[0][0]
    found[pick] = mixture[0][1].at(u[pick])
    found[~pick] = mixture[1][1].at(u[~pick])
    return found


__all__ = ["Curve", "Distribution", "GroupStats", "Model", "State", "aggregate",
           "amounts", "beta_interval", "bucket_of", "days_to_win", "state_at"]
