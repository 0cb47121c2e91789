"""The forecast's statistics on a team whose true chances and cycle times are known.

The world (``tests/forecast_world.py``): P(won | Qualify) = advance × 0.5 per rep,
P(won | Proposal) = 0.5, at any age in the stage; times in stage exponential
(means 12 and 20 days). Expected values come from those parameters, not from the
code under test.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from saleskpi.domain.forecasting import DealHistory
from saleskpi.engine.forecast.learn import Model, aggregate, beta_interval
from saleskpi.engine.forecast.run import (
    forecast_lines,
    rep_models,
    rep_teams,
    run_forecast,
    team_prior,
)
from saleskpi.engine.forecast.simulate import Window
from tests.forecast_world import (
    CLOSE,
    PROPOSAL_DAYS,
    QUALIFY_DAYS,
    START,
    Rep,
    TrueDeal,
    as_known,
    generate,
    won_between,
)

BIG = [Rep("a", "T", 3.0, 0.6), Rep("b", "T", 2.0, 0.3), Rep("c", "T", 1.0, 0.8)]


def truth(rep: Rep | None, stage: str) -> float:
    if stage == "Proposal":
        return CLOSE
    if rep is not None:
        return rep.advance * CLOSE
    # The team's Qualify entries come from each rep in proportion to their arrivals.
    total = sum(r.per_day for r in BIG)
    return sum(r.per_day * r.advance for r in BIG) / total * CLOSE


def learn(seed: int, days: float = 400) -> Model:
    world = generate(BIG, days, seed=seed)
    at = START + dt.timedelta(days=days)
    known = as_known(world, at)
    return Model(aggregate(known, at, live=True), rep_models(known, at, live=True))


@pytest.fixture(scope="module")
def learned() -> Model:
    return learn(7)


def test_learned_chances_recover_the_true_ones_within_their_intervals() -> None:
    """Over 20 independent teams, each cell's 80 % interval holds the truth about 80 % of
    the time (cells of one team share deals, so only teams are independent)."""
    inside_80 = checked = 0
    for seed in range(20):
        model = learn(seed, 200)
        for rep in (None, *BIG):
            for stage in ("Qualify", "Proposal"):
                for bucket in (0, 1):
                    beta = model.beta(rep.id if rep else None, "sales", stage, bucket)
                    if beta.watched < 30:
                        continue  # too few deals that old: the prior speaks, not the data
                    true = truth(rep, stage)
                    low, high = beta_interval(beta.a, beta.b, 0.8)
                    wide_low, wide_high = beta_interval(beta.a, beta.b, 0.999)
                    assert wide_low <= true <= wide_high, (seed, rep, stage, bucket, beta)
                    inside_80 += low <= true <= high
                    checked += 1
    assert checked >= 250
    assert 0.7 <= inside_80 / checked <= 0.9, (inside_80, checked)


def test_chances_do_not_depend_on_age_when_the_truth_does_not(learned: Model) -> None:
    young = learned.beta(None, "sales", "Proposal", 0)
    older = learned.beta(None, "sales", "Proposal", 2)
    assert abs(young.mean - older.mean) < 0.08
    # A rep's estimate is their own data shrunk toward the team's: between the two.
    team = learned.beta(None, "sales", "Qualify", 0)
    rep_c = learned.beta("c", "sales", "Qualify", 0)
    assert team.mean < rep_c.mean < rep_c.chance + 1e-9


def test_cycle_times_are_recovered(learned: Model) -> None:
    # Won from Proposal after an exponential stay: median 20 ln 2 days.
    proposal = learned.team.stages[("sales", "Proposal")][0]
    assert proposal is not None
    median = proposal.median_days_to_win()
    assert median is not None
    assert abs(median - PROPOSAL_DAYS * np.log(2)) <= 2.5
    # Won from entering Qualify: the sum of both stays; its median by simulation.
    rng = np.random.default_rng(0)
    both = rng.exponential(QUALIFY_DAYS, 200_000) + rng.exponential(PROPOSAL_DAYS, 200_000)
    qualify = learned.team.stages[("sales", "Qualify")][0]
    assert qualify is not None
    found = qualify.median_days_to_win()
    assert found is not None
    assert abs(found - float(np.median(both))) <= 3.0


def month_ahead(reps: list[Rep], seed: int) -> tuple[list[TrueDeal], list[DealHistory],
                                                     dt.datetime, Window]:
    """A team's first 240 days as its CRM shows them, and the 30 days that follow."""
    world = generate(reps, 300, seed)
    at = START + dt.timedelta(days=240)
    month = Window(at.date(), (at + dt.timedelta(days=29)).date(), at,
                   at + dt.timedelta(days=30))
    return world, as_known(world, at), at, month


@pytest.mark.slow
def test_p10_p90_holds_the_actual_in_70_to_90_percent_of_200_periods() -> None:
    reps = [Rep("a", "T", 1.0, 0.6), Rep("b", "T", 0.6, 0.3)]
    inside = 0
    for seed in range(200):
        world, known, at, month = month_ahead(reps, seed)
        # The team prior as the service makes it: with the period shock measured on the
        # twelve 30-day periods before (the world has none: it should find about 0).
        past = [(at - dt.timedelta(days=30 * (k + 1)), at - dt.timedelta(days=30 * k))
                for k in range(12)]
        team = team_prior(known, at, past, live=True)
        _model, _states, sim = run_forecast(known, team, [month], at, live=True, n=1000,
                                            seed=seed)
        (company,) = forecast_lines(sim, rep_teams(known), {}, reps=False, team_rows=False,
                                    company=True)
        actual = won_between(world, month.start_at, month.end_at)
        inside += company.band.p10 <= actual <= company.band.p90
    assert 140 <= inside <= 180, inside


def test_same_seed_same_numbers_and_the_mean_is_unbiased() -> None:
    reps = [Rep("a", "T", 1.0, 0.6)]
    errors = []
    for seed in range(30):
        world, known, at, month = month_ahead(reps, seed)
        team = aggregate(known, at, live=True)
        first = run_forecast(known, team, [month], at, live=True, n=500, seed=seed)[2]
        again = run_forecast(known, team, [month], at, live=True, n=500, seed=seed)[2]
        assert np.array_equal(first.totals, again.totals)
        errors.append(first.totals[0, 0].mean() - won_between(world, month.start_at,
                                                              month.end_at))
    actual_scale = 30 * 0.3 * float(np.exp(7.0 + 0.5 ** 2 / 2))  # deals won a month × mean
    assert abs(float(np.mean(errors))) < 0.15 * actual_scale
