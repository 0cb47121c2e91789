"""Replaying the past: each method's forecast of a period as made at its start, scored.

At the start of each period (its first instant, company time) every method sees only
what was known then (``learn.state_at``: deals created by then, stage entries and
closes up to then, amounts of deals closed later drawn from the won amounts known
then) and forecasts the revenue won in the period:

- ``ours``: the simulation's P50, with its P10-P90 band;
- ``weighted_pipeline``: the deals open then, amount × the stage's win rate so far
  (else the deal's CRM probability, else the pipeline's win rate), as the
  ``weighted_pipeline`` KPI weighs them; deals with an expected close date outside
  the period are left out;
- ``commit``: the reps' own commit for the period, the last one made by the end of
  the period's first day (the ``forecasts`` entity);
- ``run_rate``: revenue won in the ``RUN_RATE_DAYS`` before, per day, × the
  period's days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from saleskpi.domain.forecasting import (
    PRIOR_STRENGTH,
    RUN_RATE_DAYS,
    CommitEntry,
    DealHistory,
    ScoredForecast,
)
from saleskpi.engine.forecast.learn import GroupStats, Model, State, days
from saleskpi.engine.forecast.run import closed_outcomes, rep_models, states_at
from saleskpi.engine.forecast.simulate import Window, simulate

METHODS = ("ours", "weighted_pipeline", "commit", "run_rate")


@dataclass(frozen=True)
class Level:
    """A row of the replay: a rep, a team or the company, and the reps it sums."""

    level: str
    rep: str | None
    team: str | None
    members: tuple[str, ...]


def levels(teams: dict[str, str | None], *, company: bool) -> list[Level]:
    found = [Level("rep", rep, team, (rep,)) for rep, team in sorted(teams.items())]
    members: dict[str, list[str]] = {}
    for rep, team in sorted(teams.items()):
        if team:
            members.setdefault(team, []).append(rep)
    found += [Level("team", None, t, tuple(rs)) for t, rs in sorted(members.items())]
    if company:
        found.append(Level("company", None, None, tuple(sorted(teams))))
    return found


def replay(deals: list[DealHistory], commits: list[CommitEntry], windows: list[Window],
           team_at: Callable[[dt.datetime], GroupStats], rows: list[Level], *, n: int,
           seed: int | None, k: float = PRIOR_STRENGTH) -> list[ScoredForecast]:
    """Every method's forecast of every window for every row, beside the actual."""
    scored: list[ScoredForecast] = []
    for window in windows:
        at = window.start_at
        model = Model(team_at(at), rep_models(deals, at, live=False), k)
        states = states_at(deals, at, live=False)
        reps = sorted({rep for level in rows for rep in level.members})
        sim = simulate(model, states, reps, [window], at, n=n, seed=seed, outlooks=False)
        actual = _won_in(deals, window)
        weighted = _weighted(model, states, window)
        run_rate = _run_rate(deals, at, window)
        index = {rep: i for i, rep in enumerate(reps)}
        found = latest_commits(commits, window)
        for level in rows:
            members = [index[m] for m in level.members if m in index]
            total = sim.totals[0, members].sum(axis=0) if members else np.zeros(n)
            p10, p50, p90 = (float(v) for v in np.quantile(total, [0.1, 0.5, 0.9]))
            done = sum(actual.get(m, 0.0) for m in level.members)

            forecasts: list[tuple[str, float, float | None, float | None]] = [
                ("ours", p50, p10, p90),
                ("weighted_pipeline", sum(weighted.get(m, 0.0) for m in level.members),
                 None, None),
                ("run_rate", sum(run_rate.get(m, 0.0) for m in level.members), None, None)]
            commit = _commit(found, level)
            if commit is not None:
                forecasts.append(("commit", commit, None, None))
            scored += [ScoredForecast(method, level.level, level.rep, level.team,
                                      window.start, window.end, at, value, done, low, high)
                       for method, value, low, high in forecasts]
    return scored


def _won_in(deals: list[DealHistory], window: Window) -> dict[str, float]:
    won: dict[str, float] = {}
    for deal in deals:
        closed = deal.closed_at
        if deal.status == "won" and closed is not None \
                and window.start_at <= closed < window.end_at:
            won[deal.rep] = won.get(deal.rep, 0.0) + (deal.amount or 0.0)
    return won


def _weighted(model: Model, states: list[State], window: Window) -> dict[str, float]:
    """Amount × the stage's plain win rate so far, over the deals open at the start."""
    out: dict[str, float] = {}
    typical = model.team.won_amounts.mean if model.team.won_amounts else 0.0
    for state in states:
        deal = state.deal
        if state.status != "open":
            continue
        expected = deal.expected_close_at
        if expected is not None and not window.start_at <= expected < window.end_at:
            continue
        wins, closed = closed_outcomes(model, deal.pipeline, state.stage)
        if closed:
            chance = wins / closed
        elif deal.probability is not None:
            chance = deal.probability
        else:
            wins, closed = model.team.pipelines.get(deal.pipeline, (0, 0))
            chance = wins / closed if closed else 0.0
        amount = state.amount if state.amount is not None else typical
        out[deal.rep] = out.get(deal.rep, 0.0) + amount * chance
    return out


def _run_rate(deals: list[DealHistory], at: dt.datetime, window: Window) -> dict[str, float]:
    since = at - dt.timedelta(days=RUN_RATE_DAYS)
    length = days(window.end_at, window.start_at)
    out: dict[str, float] = {}
    for deal in deals:
        closed = deal.closed_at
        if deal.status == "won" and closed is not None and since <= closed < at:
            out[deal.rep] = out.get(deal.rep, 0.0) + (deal.amount or 0.0) * length / RUN_RATE_DAYS
    return out


def latest_commits(commits: list[CommitEntry], window: Window, *, category: str = "commit",
                   made_by: dt.datetime | None = None
                   ) -> dict[tuple[str | None, str | None], float]:
    """(rep, team) -> the last ``category`` forecast for the window made by ``made_by``
    (default: the end of its first day); a rep's key has the rep, a team's the team
    only, the company's neither."""
    deadline = made_by or window.start_at + dt.timedelta(days=1)
    chosen: dict[tuple[str | None, str | None], tuple[dt.datetime, float]] = {}
    for entry in commits:
        if (entry.category or "commit") != category or entry.made_at > deadline:
            continue
        if entry.period_start != window.start or entry.period_end != window.end:
            continue
        key = (entry.rep, None if entry.rep else entry.team)
        if key not in chosen or entry.made_at >= chosen[key][0]:
            chosen[key] = (entry.made_at, entry.amount)
    return {key: amount for key, (_made, amount) in chosen.items()}


def _commit(found: dict[tuple[str | None, str | None], float], level: Level) -> float | None:
    """The level's own commit, else the sum of its reps' (when any rep made one)."""
    own = found.get((level.rep, None if level.rep else level.team))
    if own is not None:
        return own
    if level.level == "rep":
        return None
    parts = [found[(m, None)] for m in level.members if (m, None) in found]
    return sum(parts) if parts else None
