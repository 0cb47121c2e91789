"""The Monte Carlo: each open deal won or not, when, for how much; plus deals not created yet.

In each of ``n`` simulated futures:

- every cell (rep, pipeline, stage, age bucket) draws its chance from its Beta
  posterior, so that deals of one cell rise and fall together when the estimate is
  off (the spread of the forecast includes the uncertainty of what was learned);
- an open deal is won with that chance, on a day drawn from when its stage's deals
  were won after entering it, given that it is still open at its age (the stage's
  ``Curve``);
  its amount is its own, or, when unknown, drawn from the won amounts;
- new deals arrive at a rate drawn from the last ``RUN_RATE_DAYS`` of creations
  (Gamma-Poisson), are won at the rep's shrunk win rate, on a day drawn from the
  curve of wins after creation, for an amount drawn from the won amounts.

A period's total is what was won in it before the instant plus what the simulation
closes in it; P10/P50/P90 are quantiles of the totals over the futures.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from saleskpi.domain.forecasting import RUN_RATE_DAYS, Band, DealOutlook, bucket_of
from saleskpi.engine.forecast.learn import (
    Model,
    State,
    amounts,
    beta_interval,
    days,
    days_to_win,
)


@dataclass(frozen=True)
class Window:
    """A period: its local days (inclusive) and the UTC instants [start_at, end_at)."""

    start: dt.date
    end: dt.date
    start_at: dt.datetime
    end_at: dt.datetime


@dataclass
class Simulation:
    reps: list[str]
    windows: list[Window]
    totals: np.ndarray  # (window, rep, future): revenue in the window
    won_to_date: np.ndarray  # (window, rep)
    from_open: np.ndarray  # (window, rep): mean of what open deals add
    from_new: np.ndarray  # (window, rep): mean of what new deals add
    open_deals: np.ndarray  # (rep,)
    deals: list[DealOutlook]


def band(values: np.ndarray) -> Band:
    p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
    return Band(float(p10), float(p50), float(p90), float(values.mean()))


BATCH = 256  # deals simulated at once: (BATCH, n) arrays


def simulate(model: Model, states: list[State], reps: list[str], windows: list[Window],
             at: dt.datetime, *, n: int, seed: int | None,
             new_deals: bool = True, outlooks: bool = True) -> Simulation:
    """Simulate ``windows`` (the first may contain ``at``) for ``reps`` from ``states``."""
    rng = np.random.default_rng(seed)
    index = {rep: i for i, rep in enumerate(reps)}
    shape = (len(windows), len(reps))
    totals = np.zeros((*shape, n))
    won_to_date = np.zeros(shape)
    from_open = np.zeros(shape)
    from_new = np.zeros(shape)
    open_deals = np.zeros(len(reps), dtype=int)
    bounds = [(days(w.start_at, at), days(w.end_at, at)) for w in windows]
    cells: dict[tuple[str, str | None, str, int], list[State]] = {}
    for state in states:
        deal = state.deal
        r = index.get(deal.rep)
        if r is None:
            continue
        if state.status == "won":
            for w, window in enumerate(windows):
                closed = deal.closed_at
                if closed is not None and window.start_at <= closed < window.end_at \
                        and closed <= at:
                    won_to_date[w, r] += state.amount or 0.0
        elif state.status == "open":
            open_deals[r] += 1
            cell = (deal.rep, deal.pipeline, state.stage, bucket_of(state.age(at)))
            cells.setdefault(cell, []).append(state)
    deals: list[DealOutlook] = []
    for cell in sorted(cells, key=lambda c: (c[0], c[1] or "", c[2], c[3])):
        rep, pipeline, stage, bucket = cell
        r = index[rep]
        beta = model.beta(*cell)
        chance = rng.beta(beta.a, beta.b, n)  # one per future: the cell's deals move together
        low_p, high_p = beta_interval(beta.a, beta.b) if outlooks else (beta.mean, beta.mean)
        timing = model.stage_timing(rep, pipeline, stage, bucket)
        money = model.amounts(rep)
        members = cells[cell]
        for first in range(0, len(members), BATCH):
            batch = members[first:first + BATCH]
            ages = np.asarray([s.age(at) for s in batch])
            won = rng.random((len(batch), n)) < chance[None, :]
            close = days_to_win(timing, rng, ages, n)
            known = np.asarray([np.nan if s.amount is None else s.amount for s in batch])
            amount = np.broadcast_to(np.nan_to_num(known)[:, None], won.shape).copy()
            unknown = np.isnan(known)
            if unknown.any():
                amount[unknown] = amounts(money, rng, (int(unknown.sum()), n))
            current = None
            for w, (low, high) in enumerate(bounds):
                added = np.where(won & (close >= low) & (close < high), amount, 0.0)
                totals[w, r] += added.sum(axis=0)
                from_open[w, r] += added.mean(axis=1).sum()
                current = added if current is None else current
            if not outlooks or current is None:
                continue
            in_first = won & (close >= bounds[0][0]) & (close < bounds[0][1])
            for i, state in enumerate(batch):
                deals.append(DealOutlook(
                    source=state.deal.source, id=state.deal.id, rep=rep, pipeline=pipeline,
                    stage=stage, age_days=float(ages[i]), amount=state.amount,
                    crm_probability=state.deal.probability, p_win=beta.mean, p_low=low_p,
                    p_high=high_p, p_this_period=float(in_first[i].mean()),
                    expected=float(current[i].mean()), swing=float(current[i].std())))
    if new_deals:
        for rep, r in index.items():
            added = _new_deals(model, rep, bounds, rng, n)
            totals[:, r] += added
            from_new[:, r] = added.mean(axis=1)
    if model.team.shock > 0:
        # One shock per future, shared by every rep and deal (mean 1: the P50 barely moves).
        sigma = model.team.shock
        totals *= np.exp(sigma * rng.standard_normal(n) - sigma ** 2 / 2)[None, None, :]
    totals += won_to_date[:, :, None]
    deals.sort(key=lambda d: (-d.swing, -d.expected, d.source, d.id))
    return Simulation(reps, windows, totals, won_to_date, from_open, from_new, open_deals,
                      deals)


def _new_deals(model: Model, rep: str, bounds: list[tuple[float, float]],
               rng: np.random.Generator, n: int) -> np.ndarray:
    """(window, future) revenue from deals created after the instant."""
    out = np.zeros((len(bounds), n))
    horizon = bounds[-1][1]
    own = model.reps.get(rep)
    created = own.created_recently if own is not None else 0
    if horizon <= 0 or created == 0:
        return out
    # The rate's own uncertainty: Gamma posterior of a Poisson rate (Jeffreys prior).
    rate = rng.gamma(created + 0.5, 1.0 / RUN_RATE_DAYS, n)
    counts = rng.poisson(rate * horizon)
    total = int(counts.sum())
    if total == 0:
        return out
    future = np.repeat(np.arange(n), counts)
    beta = model.new_deal_beta(rep)
    chance = rng.beta(beta.a, beta.b, n)[future]
    won = rng.random(total) < chance
    born = rng.random(total) * horizon
    close = born + days_to_win(model.created_timing(rep), rng, np.zeros(1), total)[0]
    amount = amounts(model.amounts(rep), rng, (total,))
    for w, (low, high) in enumerate(bounds):
        mask = won & (close >= low) & (close < high)
        out[w] = np.bincount(future, weights=np.where(mask, amount, 0.0), minlength=n)
    return out
