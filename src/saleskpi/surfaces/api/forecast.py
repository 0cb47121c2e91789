"""REST v1: the forecast, the win chance of each open deal, the backtest and the track
record (the same JSON as ``saleskpi forecast … --format json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from saleskpi.domain.forecasting import DEFAULT_SEED, SIMULATIONS
from saleskpi.domain.query import MAX_ID
from saleskpi.surfaces.http.deps import ServiceDep, UserDep
from saleskpi.surfaces.http.params import Limit, Offset
from saleskpi.views.base import DEFAULT_LIMIT, MAX_LIMIT
from saleskpi.views.forecast import (
    TOP_DEALS,
    BacktestParams,
    BacktestView,
    DealChancesParams,
    DealChancesView,
    ForecastParams,
    ForecastView,
    TrackRecordParams,
    TrackRecordView,
    backtest,
    deal_chances,
    forecast,
    track_record,
)

router = APIRouter(prefix="/api/v1")
Period = Annotated[str, Query(description="week, month, quarter or year: the current one "
                              "and the next.")]
# numpy takes a seed of 0 or more (a negative one was a 500, found by Schemathesis).
Seed = Annotated[int | None, Query(ge=0, le=MAX_ID, description="Random seed: the same seed "
                                   "and data give the same numbers.")]


@router.get("/forecast", response_model=ForecastView, response_model_by_alias=True)
def get_forecast(
    user: UserDep, svc: ServiceDep, period: Period = "month",
    at: Annotated[dt.date | None, Query(description="As it would have been made at the end "
                                        "of this past day (default: now).")] = None,
    by: Annotated[str, Query(description="rep: reps, teams and company; team: teams and "
                             "company.")] = "rep",
    rep: Annotated[str | None, Query(description="Only this rep (id or name).")] = None,
    team: Annotated[str | None, Query(description="Only this team.")] = None,
    simulations: Annotated[int, Query(ge=100, description="Simulated futures.")] = SIMULATIONS,
    seed: Seed = DEFAULT_SEED,
    deals: Annotated[int, Query(ge=0, le=MAX_LIMIT, description="How many of the deals that "
                                "move the number most to list.")] = TOP_DEALS,
) -> dict[str, Any]:
    """P10/P50/P90 of revenue won in the current and next period, per rep, team and
    company within the caller's scope, with the reps' own commit and best case, the plan,
    the deals that move the number most and the learned chances beside the CRM's. Each
    live forecast is kept for the track record."""
    params = ForecastParams(period=period, at=at, by=by, rep=rep, team=team,
                            simulations=simulations, seed=seed, deals=deals)
    return forecast(svc, user, params).to_json()


@router.get("/forecast/deals", response_model=DealChancesView, response_model_by_alias=True)
def get_deal_chances(
    user: UserDep, svc: ServiceDep, period: Period = "month",
    rep: Annotated[str | None, Query(description="Only this rep (id or name).")] = None,
    team: Annotated[str | None, Query(description="Only this team.")] = None,
    seed: Seed = DEFAULT_SEED, limit: Limit = DEFAULT_LIMIT, offset: Offset = 0,
) -> dict[str, Any]:
    """Every open deal in the caller's scope with its learned chance to be won (at all,
    with its 80 % interval, and within the current period), largest swing first."""
    params = DealChancesParams(period=period, rep=rep, team=team, seed=seed, limit=limit,
                               offset=offset)
    return deal_chances(svc, user, params).to_json()


@router.get("/forecast/backtest", response_model=BacktestView, response_model_by_alias=True)
def get_backtest(
    user: UserDep, svc: ServiceDep, period: Period = "month",
    simulations: Annotated[int, Query(ge=100, description="Simulated futures per "
                                      "period.")] = 500,
    seed: Seed = DEFAULT_SEED,
    last: Annotated[int | None, Query(ge=1, description="Only the last N periods.")] = None,
    limit: Limit = DEFAULT_LIMIT, offset: Offset = 0,
) -> dict[str, Any]:
    """Past periods replayed with only what was known at their start: accuracy, bias and
    calibration of ours, the weighted pipeline, the reps' commits and the run-rate."""
    params = BacktestParams(period=period, simulations=simulations, seed=seed, last=last,
                            limit=limit, offset=offset)
    return backtest(svc, user, params).to_json()


@router.get("/forecast/track-record", response_model=TrackRecordView,
            response_model_by_alias=True)
def get_track_record(user: UserDep, svc: ServiceDep, limit: Limit = DEFAULT_LIMIT,
                     offset: Offset = 0) -> dict[str, Any]:
    """The forecasts kept (ours) and entered (the reps') of closed periods, scored."""
    return track_record(svc, user, TrackRecordParams(limit=limit, offset=offset)).to_json()
