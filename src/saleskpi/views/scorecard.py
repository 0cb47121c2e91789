"""The scorecard: KPIs sliced and by period, with totals and the team average."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from saleskpi.domain.periods import DateRange, period_is_partial
from saleskpi.domain.query import KpiQuery, KpiValue, ResultRow, Scorecard, make_query
from saleskpi.service.core import SalesKpiService, averages
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


class ScorecardParams(Paging, Sliced):
    kpis: list[str] = Field(description="KPI keys, e.g. revenue, win_rate (see the catalogue).")
    by: list[str] = Field(default_factory=list,
                          description="Slices: rep, team, source, segment, product, pipeline "
                          "or a custom field.")


class ScorecardView(ViewModel):
    kpis: list[str]
    by: list[str]
    period: str
    start: str | None = Field(alias="from")
    end: str | None = Field(alias="to")
    where: dict[str, list[str]]
    range: RangeInfo = Field(description="The days covered, always stated (default: month "
                             "to date in the company's time zone).")
    timezone: str
    currency: str
    rows: list[dict[str, Any]] = Field(
        description="One row per slice and period: the slice keys, rep_name, with a period "
        "grain partial (true: the period is not over or only partly asked), and per KPI "
        "{value, unit, numerator, denominator, ci_low, ci_high, needs, not_by}.")
    totals: list[dict[str, Any]] = Field(description="Computed over all rows' data.")
    averages: list[dict[str, Any]] = Field(
        description="The mean of the rows (a rep sees their team's average).")
    page: PageInfo


def scorecard(service: SalesKpiService, caller: Principal,
              params: ScorecardParams, *, totals: bool = True) -> ScorecardView:
    """``totals``: also the total rows (each query group run once more, unsliced)."""
    dates, card = _asked(service, caller, params, totals=totals)
    query = card.query
    team = None
    if caller.role == "rep" and caller.rep_id and "rep" in query.by:
        # A rep's rows are their own: the average they compare with is their team's.
        team = service.team_average(query, caller.rep_id)
    data = scorecard_dict(card, timezone=service.settings.timezone,
                          currency=service.settings.currency, team_averages=team,
                          today=service.today())
    data["range"] = range_info(dates, service)
    data["rows"], page = paged(data["rows"], params)
    view: ScorecardView = ScorecardView(**data, page=page).with_source(card)
    return view


def scorecard_card(service: SalesKpiService, caller: Principal,
                   params: ScorecardParams, *, totals: bool = True) -> Scorecard:
    """The scorecard alone, asked as ``scorecard`` asks it, for a caller that lays out
    its rows itself and shows no totals, averages or range (the CLI's CSV): the page's
    model of 1,400 rows took 10-15 ms of a 0.3 s ``saleskpi kpi`` process (issue 12)."""
    return _asked(service, caller, params, totals=totals)[1]


def _asked(service: SalesKpiService, caller: Principal, params: ScorecardParams, *,
           totals: bool) -> tuple[DateRange, Scorecard]:
    """The days asked and the scorecard: the question checked against the data, then
    computed within the caller's scope."""
    dates = params.sliced_dates(service)
    query = make_query(params.kpis, by=params.by, period=params.period, start=dates.start,
                       end=dates.end, where=params.where)
    check_question(service, query, caller.scope)
    return dates, service.scorecard(query, caller.scope, totals=totals)


def scorecard_dict(card: Scorecard, *, timezone: str, currency: str,
                   team_averages: list[ResultRow] | None = None,
                   today: dt.date | None = None) -> dict[str, Any]:
    """``team_averages``: the averages to show instead of the rows' own (a rep's team's);
    ``today``: rows of periods not over by then (or only partly asked) get partial."""
    query = card.query
    kpis = list(dict.fromkeys(query.kpis))
    if team_averages is None:
        team_averages = averages(card) if query.by else []
    return {
        "kpis": kpis,
        "by": list(query.by),
        "period": query.period,
        "from": query.start.isoformat() if query.start else None,
        "to": query.end.isoformat() if query.end else None,
        "where": {dim: list(values) for dim, values in query.where},
        "timezone": timezone,
        "currency": currency,
        "rows": [_row_dict(r, kpis, query, today) for r in card.rows],
        "totals": [_row_dict(r, kpis, query, today) for r in card.totals],
        "averages": [_row_dict(r, kpis, query, today) for r in team_averages],
    }


def _row_dict(row: ResultRow, kpis: list[str], query: KpiQuery,
              today: dt.date | None) -> dict[str, Any]:
    out: dict[str, Any] = {**row.keys, **row.labels}
    period = row.keys.get("period")
    if today is not None and period:
        out["partial"] = period_is_partial(dt.date.fromisoformat(period), query.period,
                                           query.start, query.end, today)
    for key in kpis:
        value: KpiValue = row.values[key]
        out[key] = value.to_dict()
    return out
