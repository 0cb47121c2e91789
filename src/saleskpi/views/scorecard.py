"""The scorecard: KPIs sliced and by period, with totals and the team average."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from saleskpi.domain.query import KpiValue, ResultRow, Scorecard, make_query
from saleskpi.service.core import SalesKpiService, averages
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_question
from saleskpi.views.base import PageInfo, Paging, Sliced, ViewModel, paged


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
    timezone: str
    currency: str
    rows: list[dict[str, Any]] = Field(
        description="One row per slice and period: the slice keys, rep_name, and per KPI "
        "{value, unit, numerator, denominator, ci_low, ci_high, needs, not_by}.")
    totals: list[dict[str, Any]] = Field(description="Computed over all rows' data.")
    averages: list[dict[str, Any]] = Field(
        description="The mean of the rows (a rep sees their team's average).")
    page: PageInfo


def scorecard(service: SalesKpiService, caller: Principal,
              params: ScorecardParams) -> ScorecardView:
    query = make_query(params.kpis, by=params.by, period=params.period, start=params.start,
                       end=params.end, where=params.where)
    check_question(service, query, caller.scope)
    card = service.scorecard(query, caller.scope)
    team = None
    if caller.role == "rep" and caller.rep_id and "rep" in query.by:
        # A rep's rows are their own: the average they compare with is their team's.
        team = service.team_average(query, caller.rep_id)
    data = scorecard_dict(card, timezone=service.settings.timezone,
                          currency=service.settings.currency, team_averages=team)
    data["rows"], page = paged(data["rows"], params)
    view: ScorecardView = ScorecardView(**data, page=page).with_source(card)
    return view


def scorecard_dict(card: Scorecard, *, timezone: str, currency: str,
                   team_averages: list[ResultRow] | None = None) -> dict[str, Any]:
    """``team_averages``: the averages to show instead of the rows' own (a rep's team's)."""
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
        "rows": [_row_dict(r, kpis) for r in card.rows],
        "totals": [_row_dict(r, kpis) for r in card.totals],
        "averages": [_row_dict(r, kpis) for r in team_averages],
    }


def _row_dict(row: ResultRow, kpis: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {**row.keys, **row.labels}
    for key in kpis:
        value: KpiValue = row.values[key]
        out[key] = value.to_dict()
    return out
