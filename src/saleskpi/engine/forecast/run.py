"""A forecast as of an instant: the model, the simulation, and its lines per rep, team, company.

The caller hands in the deals it may see and, separately, the team's aggregate
(``GroupStats`` of every deal: counts and quantiles). A rep's forecast is thus made
from the rep's own deals and the team's aggregate only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import numpy as np

from saleskpi.domain.forecasting import (
    AGE_BUCKETS,
    NO_STAGE,
    PRIOR_STRENGTH,
    DealHistory,
    ForecastLine,
    Probability,
    StageComparison,
)
from saleskpi.engine.forecast.learn import (
    GroupStats,
    Model,
    State,
    aggregate,
    period_shock,
    state_at,
)
from saleskpi.engine.forecast.simulate import Simulation, Window, band, simulate


def rep_models(deals: Iterable[DealHistory], at: dt.datetime, *,
               live: bool) -> dict[str, GroupStats]:
    by_rep: dict[str, list[DealHistory]] = {}
    for deal in deals:
        by_rep.setdefault(deal.rep, []).append(deal)
    return {rep: aggregate(mine, at, live=live) for rep, mine in sorted(by_rep.items())}


def states_at(deals: Iterable[DealHistory], at: dt.datetime, *, live: bool) -> list[State]:
    return [s for d in deals if (s := state_at(d, at, live=live)) is not None]


def rep_teams(deals: Iterable[DealHistory]) -> dict[str, str | None]:
    """Each rep's team: the team of their most recently created deal."""
    found: dict[str, tuple[dt.datetime, str | None]] = {}
    oldest = dt.datetime.min
    for deal in deals:
        when = deal.created_at or oldest
        if deal.rep not in found or when >= found[deal.rep][0]:
            found[deal.rep] = (when, deal.team)
    return {rep: team for rep, (_when, team) in found.items()}


def team_prior(everyone: list[DealHistory], at: dt.datetime,
               periods: list[tuple[dt.datetime, dt.datetime]], *, live: bool) -> GroupStats:
    """The team's aggregate as of ``at`` and its period shock, measured on the past
    ``periods`` ([start, end) instants, newest first) that began after the first win
    known then (before it, the data had not started)."""
    team = aggregate(everyone, at, live=live)
    wins = [d.closed_at for d in everyone if d.status == "won" and d.closed_at is not None
            and d.closed_at <= at]
    if wins:
        first = min(wins)
        team.shock = period_shock(everyone, [(s, e) for s, e in periods
                                             if first <= s and e <= at])
    return team


def run_forecast(deals: list[DealHistory], team: GroupStats, windows: list[Window],
                 at: dt.datetime, *, live: bool, n: int, seed: int | None,
                 k: float = PRIOR_STRENGTH) -> tuple[Model, list[State], Simulation]:
    """Learn from ``deals`` (shrunk toward ``team``) and simulate ``windows`` as of ``at``."""
    model = Model(team, rep_models(deals, at, live=live), k)
    states = states_at(deals, at, live=live)
    reps = sorted(model.reps)
    return model, states, simulate(model, states, reps, windows, at, n=n, seed=seed)


def forecast_lines(sim: Simulation, teams: dict[str, str | None], names: dict[str, str], *,
                   reps: bool, team_rows: bool, company: bool) -> list[ForecastLine]:
    """Lines per rep, per team (sums of its reps' futures) and for the whole company."""
    lines: list[ForecastLine] = []
    for w, window in enumerate(sim.windows):
        groups: list[tuple[str, str | None, str | None, list[int]]] = []
        rep: str | None
        if reps:
            groups += [("rep", rep, teams.get(rep), [r]) for r, rep in enumerate(sim.reps)]
        if team_rows:
            members: dict[str, list[int]] = {}
            for r, rep in enumerate(sim.reps):
                if teams.get(rep):
                    members.setdefault(str(teams[rep]), []).append(r)
            groups += [("team", None, t, rs) for t, rs in sorted(members.items())]
        if company:
            groups.append(("company", None, None, list(range(len(sim.reps)))))
        for level, rep, team, rows in groups:
            total = sim.totals[w, rows].sum(axis=0) if rows else np.zeros(1)
            lines.append(ForecastLine(
                level=level, rep=rep, rep_name=names.get(rep, rep) if rep else None,
                team=team, period_start=window.start, period_end=window.end,
                won_to_date=float(sim.won_to_date[w, rows].sum()),
                from_open=float(sim.from_open[w, rows].sum()),
                from_new=float(sim.from_new[w, rows].sum()), band=band(total),
                open_deals=int(sim.open_deals[rows].sum()) if w == 0 else 0))
    return lines


def stage_table(model: Model, states: list[State], *, reps: list[str]
                ) -> list[StageComparison]:
    """Per pipeline and stage: the CRM's probability, the plain stage win rate, and the
    learned chance per age bucket (the team's, then each rep's in ``reps``)."""
    open_by_cell: dict[tuple[str | None, str], list[State]] = {}
    for state in states:
        if state.status == "open":
            open_by_cell.setdefault((state.deal.pipeline, state.stage), []).append(state)
    cells = sorted({*model.team.stages, *open_by_cell},
                   key=lambda c: (c[0] is None, c[0] or "", c[1] == NO_STAGE, c[1]))
    table = []
    for pipeline, stage in cells:
        curves = model.team.stages.get((pipeline, stage))
        curve = curves[0] if curves else None
        opened = open_by_cell.get((pipeline, stage), [])
        crm = [s.deal.probability for s in opened if s.deal.probability is not None]
        buckets: list[Probability] = []
        for who in (None, *reps):
            for bucket in range(len(AGE_BUCKETS)):
                buckets.append(model.probability(who, pipeline, stage, bucket))
        wins, closed = closed_outcomes(model, pipeline, stage)
        table.append(StageComparison(
            pipeline=pipeline, stage=stage,
            crm_probability=sum(crm) / len(crm) if crm else None,
            stage_win_rate=wins / closed if closed else None, closed=closed,
            median_days_to_won=curve.median_days_to_win() if curve else None,
            open_deals=len(opened), buckets=buckets))
    return table


def closed_outcomes(model: Model, pipeline: str | None, stage: str) -> tuple[int, int]:
    """(won, closed) of the team's deals that entered the stage: the plain stage win rate
    the ``weighted_pipeline`` KPI uses, with open deals left out."""
    curves = model.team.stages.get((pipeline, stage))
    curve = curves[0] if curves else None
    if curve is None:
        return 0, 0
    return curve.wins, curve.closed
