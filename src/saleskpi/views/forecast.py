"""The forecast: P10/P50/P90 of the current and next period, the deals that move it,
the learned chances beside the CRM's; its backtest; its track record (docs: forecast.md).

In the caller's scope: a rep gets their own line, a team lead their reps and team,
the head of sales everyone, the teams and the company. A rep's forecast is made
from the rep's deals and the team's aggregate only (``saleskpi.service.forecast``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from saleskpi.domain.forecasting import (
    AGE_BUCKETS,
    DEFAULT_SEED,
    INTERVAL,
    SIMULATIONS,
    Forecast,
    ScoredForecast,
    bucket_label,
)
from saleskpi.domain.query import MAX_ID, check_date
from saleskpi.service import forecast as service_forecast
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import resolve_rep
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_value
from saleskpi.views.base import MAX_LIMIT, PageInfo, Paging, ViewModel, paged

TOP_DEALS = 10  # deals listed with a forecast unless asked otherwise


class ForecastParams(BaseModel):
    period: str = Field(default="month", description="week, month, quarter or year: the "
                        "current one and the next are forecast.")
    at: dt.date | None = Field(default=None, description="Forecast as it would have been "
                               "made at the end of this past day (default: now).")
    by: str = Field(default="rep", description="rep: lines per rep, team and company; "
                    "team: per team and company.")
    rep: str | None = Field(default=None, description="Only this rep (id or name).")
    team: str | None = Field(default=None, description="Only this team.")
    simulations: int = Field(default=SIMULATIONS, ge=100,
                             le=service_forecast.MAX_SIMULATIONS,
                             description="Simulated futures.")
    seed: int | None = Field(default=DEFAULT_SEED, ge=0, le=MAX_ID,
                             description="Random seed: the same seed "
                             "and data give the same numbers (null: a new draw each time).")
    deals: int = Field(default=TOP_DEALS, ge=0, le=MAX_LIMIT,
                       description="How many of the deals that move the number most to list.")


class ForecastView(ViewModel):
    as_of: str = Field(description="The instant the forecast is made as of (UTC).")
    timezone: str
    currency: str
    period: str
    periods: list[dict[str, str]] = Field(description="[{start, end}]: current and next.")
    simulations: int
    seed: int | None
    prior_strength: float = Field(description="k: the pseudo-deals a rep's rate is shrunk "
                                  "toward the team's with.")
    interval: float = Field(description="The probability interval's coverage (0.8: 80 %).")
    age_buckets: list[str] = Field(description="Days in stage of the learned chances.")
    lines: list[dict[str, Any]] = Field(
        description="Per period, per rep, team and the company: level, rep, rep_name, team, "
        "period_start, period_end, won_to_date, from_open, from_new, p10, p50, p90, mean, "
        "open_deals, commit, best_case (the reps' own forecasts), plan (revenue target).")
    deals: list[dict[str, Any]] = Field(
        description="Open deals that move the current period most (largest swing first; rep and "
        "rep_name): "
        "stage, age_days, amount (null: unknown, drawn from won amounts), crm_probability, "
        "p_win with p_low-p_high, p_this_period, expected, swing.")
    open_deals: int = Field(description="Open deals in all (``deals`` lists the top ones).")
    stages: list[dict[str, Any]] = Field(
        description="Per pipeline and stage: crm_probability (the open deals' own), "
        "stage_win_rate (closed deals that entered the stage and were won), closed, "
        "median_days_to_won, open_deals, learned (per age bucket, the team's and the "
        "rep's: p, low, high, trials, prior, own_weight).")


def _request(service: SalesKpiService, caller: Principal,
             params: ForecastParams) -> service_forecast.ForecastRequest:
    grain = service_forecast.forecast_grain(params.period)
    by = service_forecast.check_by(params.by)
    check_date(params.at, "at")
    rep = resolve_rep(service, params.rep, caller.scope).id if params.rep is not None else None
    if params.team is not None:
        service_forecast.check_team(params.team, caller.scope)
        check_value(service, "team", params.team, caller.scope)  # a typo: the closest
    return service_forecast.ForecastRequest(
        grain=grain, at=params.at, by=by, rep=rep, team=params.team,
        simulations=service_forecast.check_simulations(params.simulations), seed=params.seed)


def forecast(service: SalesKpiService, caller: Principal,
             params: ForecastParams) -> ForecastView:
    """P10/P50/P90 of revenue won in the current and next period, in the caller's scope."""
    found = service_forecast.forecast(service, caller.scope, _request(service, caller, params))
    names = service.rep_names()
    deals = [d.to_dict() for d in found.deals[:params.deals]]
    stages = [s.to_dict() for s in found.stages]
    # People read names; the id stays beside it for links and scripts.
    for entry in [*deals, *(b for s in stages for b in s["learned"])]:
        entry["rep_name"] = names.get(entry["rep"]) if entry.get("rep") else None
    view: ForecastView = ForecastView(
        as_of=found.as_of.isoformat(timespec="seconds"), timezone=service.settings.timezone,
        currency=service.settings.currency, period=found.grain,
        periods=[{"start": s.isoformat(), "end": e.isoformat()} for s, e in found.periods],
        simulations=found.simulations, seed=found.seed, prior_strength=found.prior_strength,
        interval=INTERVAL, age_buckets=[bucket_label(i) for i in range(len(AGE_BUCKETS))],
        lines=[line.to_dict() for line in found.lines],
        deals=deals, open_deals=len(found.deals), stages=stages,
    ).with_source(found)
    return view


def forecast_source(view: ForecastView) -> Forecast:
    found: Forecast = view.source
    return found


# -- the chance of every open deal (the drill-down) ------------------------------------
class DealChancesParams(Paging):
    period: str = Field(default="month", description="week, month, quarter or year.")
    rep: str | None = Field(default=None, description="Only this rep (id or name).")
    team: str | None = Field(default=None, description="Only this team.")
    seed: int | None = Field(default=DEFAULT_SEED, ge=0, le=MAX_ID, description="Random seed.")


class DealChancesView(ViewModel):
    as_of: str
    period: str
    deals: list[dict[str, Any]] = Field(description="Every open deal, largest swing first: "
                                        "as ForecastView.deals.")
    page: PageInfo


def deal_chances(service: SalesKpiService, caller: Principal,
                 params: DealChancesParams) -> DealChancesView:
    """Every open deal with its learned chance to be won (this period and at all)."""
    asked = ForecastParams(period=params.period, rep=params.rep, team=params.team,
                           seed=params.seed, deals=0)
    request = _request(service, caller, asked)
    found = service_forecast.forecast(service, caller.scope, request)
    shown, page = paged(found.deals, params)
    view: DealChancesView = DealChancesView(
        as_of=found.as_of.isoformat(timespec="seconds"), period=found.grain,
        deals=[d.to_dict() for d in shown], page=page).with_source(shown)
    return view


# -- backtest --------------------------------------------------------------------------
class BacktestParams(Paging):
    period: str = Field(default="month", description="week, month, quarter or year.")
    simulations: int = Field(default=service_forecast.BACKTEST_SIMULATIONS, ge=100,
                             le=service_forecast.MAX_SIMULATIONS,
                             description="Simulated futures per period.")
    seed: int | None = Field(default=DEFAULT_SEED, ge=0, le=MAX_ID, description="Random seed.")
    last: int | None = Field(default=None, ge=1, description="Only the last N periods.")


class BacktestView(ViewModel):
    period: str
    simulations: int
    periods: list[dict[str, str]] = Field(description="[{start, end}] replayed.")
    scores: list[dict[str, Any]] = Field(
        description="Per method (ours, weighted_pipeline, commit, run_rate) and level "
        "(company, team, rep): periods (sample size), accuracy (mean 1 - |A - F| / A), "
        "bias ((ΣF - ΣA) / ΣA), within_10 (share within ±10 %), calibration (ours: share "
        "of actuals inside P10-P90).")
    rows: list[dict[str, Any]] = Field(description="Each forecast beside its actual.")
    page: PageInfo


def backtest(service: SalesKpiService, caller: Principal,
             params: BacktestParams) -> BacktestView:
    """Every method's forecast of every past period, made at its start, scored."""
    grain = service_forecast.forecast_grain(params.period)
    found = service_forecast.backtest(
        service, caller.scope, grain=grain,
        simulations=service_forecast.check_simulations(params.simulations), seed=params.seed,
        last=params.last)
    shown, page = paged(found.rows, params)
    view: BacktestView = BacktestView(
        period=grain, simulations=found.simulations,
        periods=[{"start": w.start.isoformat(), "end": w.end.isoformat()}
                 for w in found.windows],
        scores=[s.to_dict() for s in found.scores], rows=[r.to_dict() for r in shown],
        page=page).with_source(found)
    return view


def backtest_source(view: BacktestView) -> service_forecast.Backtest:
    found: service_forecast.Backtest = view.source
    return found


# -- track record ----------------------------------------------------------------------
class TrackRecordParams(Paging):
    pass


class TrackRecordView(ViewModel):
    scores: list[dict[str, Any]] = Field(
        description="Per method (ours; commit, best_case, pipeline: the reps' own) and level: "
        "as BacktestView.scores, over the forecasts kept for closed periods.")
    rows: list[dict[str, Any]] = Field(description="Each kept forecast beside its actual, "
                                       "oldest period first.")
    page: PageInfo


def track_record(service: SalesKpiService, caller: Principal,
                 params: TrackRecordParams) -> TrackRecordView:
    """The forecasts made (ours, every time one was asked; the reps' from their imports)
    of periods that have closed, scored against what was won."""
    found = service_forecast.track_record(service, caller.scope)
    shown, page = paged(found.rows, params)
    view: TrackRecordView = TrackRecordView(
        scores=[s.to_dict() for s in found.scores], rows=[r.to_dict() for r in shown],
        page=page).with_source(found)
    return view


def scored_rows(view: BacktestView | TrackRecordView) -> list[ScoredForecast]:
    rows: list[ScoredForecast] = view.source.rows
    return rows
