"""Reps side by side: the comparison with the team average, and the leaderboard.

Both views are ``saleskpi.service.compare``'s answers as JSON (``Comparison.to_dict``,
``Leaderboard.to_dict``) with the rows paged. What a user typed (KPIs, dates,
``--where``, ``--filter`` thresholds, the sort) is read and checked here, so the
CLI, the REST API and MCP refuse the same input with the same error.

Scope: a rep's comparison shows their own row against their team's average (an
aggregate; ``saleskpi.service.compare.compare`` asks the service for it), a team
lead's their team's reps, a head's everyone. The leaderboard ranks the reps the
caller may see.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from saleskpi.domain.conditions import parse_threshold
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import DateRange, parse_against, period_is_partial
from saleskpi.domain.query import KpiQuery, Scope, make_query
from saleskpi.service.compare import DEFAULT_KPIS, DEFAULT_THRESHOLD
from saleskpi.service.compare import compare as compare_reps
from saleskpi.service.compare import leaderboard as rank_reps
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_question
from saleskpi.views.base import (
    PageInfo,
    Paging,
    RangeInfo,
    Sliced,
    ViewModel,
    paged,
    range_info,
)

# -- params -----------------------------------------------------------------------------


class _RepsQuery(Paging, Sliced):
    """What both views ask: the dates, the period grain and the filters."""


class ComparisonParams(_RepsQuery):
    kpis: list[str] = Field(default_factory=list,
                            description="KPI keys (default: calls, meetings, "
                            "call_to_meeting_conversion, deals_won, revenue, win_rate, "
                            "average_deal_size, lead_response_time, speed_to_lead_5min).")
    threshold: float = Field(default=DEFAULT_THRESHOLD,
                             description="Mark values that differ from the team average by "
                             "more than this share of it (0.10 = 10%).")
    sort: str | None = Field(default=None, description="Order the reps by this KPI.")
    descending: bool | None = Field(
        default=None, validation_alias=AliasChoices("desc", "descending"),
        description="Sort order; null: best first for that KPI.")
    filters: list[str] = Field(
        default_factory=list, validation_alias=AliasChoices("filter", "filters"),
        description="Keep reps with KPI<VALUE or KPI>VALUE (also <=, >=; rates as 0.5 or "
        "50%).")


class LeaderboardParams(_RepsQuery):
    kpi: str = Field(description="The KPI to rank reps on.")
    against: str = Field(default="previous",
                         description="Rank change against the previous period (previous; "
                         "a month to date: the same days of the month before) or the same "
                         "days a year before (last_year).")
    top: int | None = Field(default=None, ge=1,
                            description="Only the reps ranked N or better (ties at the cut "
                            "are kept).")


# -- views ------------------------------------------------------------------------------


class ComparisonView(ViewModel):
    kpis: list[str]
    period: str
    start: str | None = Field(alias="from")
    end: str | None = Field(alias="to")
    where: dict[str, list[str]]
    range: RangeInfo = Field(description="The days covered (default: month to date).")
    timezone: str
    currency: str
    threshold: float
    higher_is_better: dict[str, bool]
    rows: list[dict[str, Any]] = Field(
        description="One row per rep (and period): rep, rep_name, period, values (per KPI "
        "{value, numerator, denominator, unit, vs_average, mark[, ci_low, ci_high]}), "
        "strengths and weaknesses (KPI keys, most pronounced first).")
    averages: list[dict[str, Any]] = Field(
        description="The team average per period, over every rep of the comparison (a rep "
        "sees their team's): {period, values}.")
    totals: list[dict[str, Any]] = Field(
        description="The total per period, over every rep in the caller's scope.")
    page: PageInfo


class PreviousPeriodInfo(BaseModel):
    start: str = Field(alias="from", description="First day of the period ranks are set "
                       "against.")
    end: str = Field(alias="to", description="Its last day.")
    rule: str = Field(description="months, to_date (the same days of the period before), "
                      "days, last_year or period (each period against the one before).")


class LeaderboardView(ViewModel):
    kpi: str
    unit: str
    higher_is_better: bool
    period: str
    start: str | None = Field(alias="from")
    end: str | None = Field(alias="to")
    where: dict[str, list[str]]
    range: RangeInfo = Field(description="The days covered (default: month to date).")
    previous: PreviousPeriodInfo | None = Field(
        description="What the rank change is against; null: no change (no date range).")
    rows: list[dict[str, Any]] = Field(
        description="Best first: rank (null: no value), rep, rep_name, period (with "
        "partial), value, numerator, denominator, previous_rank, previous_value, "
        "rank_change.")
    page: PageInfo


def comparison(service: SalesKpiService, caller: Principal,
               params: ComparisonParams) -> ComparisonView:
    if not (math.isfinite(params.threshold) and params.threshold >= 0):
        raise InvalidQuery(_("the threshold must be a number of 0 or more, e.g. 0.1 for 10%"),
                           code="bad_threshold")
    conditions = [parse_threshold(text) for text in params.filters]
    # A KPI sorted or filtered on is shown too, so the reader sees why.
    extra = [*([params.sort] if params.sort else []), *(c.kpi for c in conditions)]
    keys = list(dict.fromkeys((*(params.kpis or DEFAULT_KPIS), *extra)))
    dates = params.sliced_dates(service)
    query = _query(service, keys, params, caller.scope, dates)
    found = compare_reps(service, query, caller.scope, threshold=params.threshold)
    if params.sort:
        found = found.sorted_by(params.sort, params.descending)
    found = found.filtered(conditions)
    rows, page = paged(found.rows, params)
    shown = replace(found, rows=rows)
    data = shown.to_dict()
    _mark_partial(data["rows"], query, today(service))
    view: ComparisonView = ComparisonView(**data, range=range_info(dates, service),
                                          page=page).with_source(shown)
    return view


def leaderboard(service: SalesKpiService, caller: Principal,
                     params: LeaderboardParams) -> LeaderboardView:
    dates = params.sliced_dates(service)
    query = _query(service, [params.kpi], params, caller.scope, dates)
    board = rank_reps(service, query, caller.scope, against=parse_against(params.against))
    if params.top is not None:
        board = board.top(params.top)
    rows, page = paged(board.rows, params)
    shown = replace(board, rows=rows)
    data = shown.to_dict()
    _mark_partial(data["rows"], query, today(service))
    view: LeaderboardView = LeaderboardView(**data, range=range_info(dates, service),
                                            page=page).with_source(shown)
    return view


def _mark_partial(rows: list[dict[str, Any]], query: KpiQuery, day: dt.date) -> None:
    """``partial`` on rows of a period that is not over, or only partly asked."""
    for row in rows:
        if row.get("period"):
            row["partial"] = period_is_partial(dt.date.fromisoformat(row["period"]),
                                               query.period, query.start, query.end, day)


def _query(service: SalesKpiService, kpis: list[str], params: _RepsQuery,
           scope: Scope, dates: DateRange) -> KpiQuery:
    query = make_query(kpis, by=("rep",), period=params.period, start=dates.start,
                       end=dates.end, where=params.where)
    for key in query.kpis:
        if key not in service.catalog.kpis:
            # The catalogue's sentence (with "did you mean"), as the scorecard says it.
            try:
                service.catalog.get(key)
            except InvalidQuery as exc:
                raise InvalidQuery(exc.message, code="bad_query") from None
    check_question(service, query, scope)
    return query

