"""The stage funnel: conversion, drop-off and time per stage, each rep against the team.

The JSON is ``FunnelReport.to_dict`` with each pipeline's reps paged: ``limit`` and
``offset`` apply to every pipeline's ``reps`` list (the team's funnel is always
whole), and ``page.total_rows`` is the most reps any pipeline has, so asking
until ``offset`` reaches it walks every rep of every pipeline.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from pydantic import AliasChoices, Field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.funnel import FunnelOptions
from saleskpi.domain.i18n import _
from saleskpi.domain.periods import DateRange, parse_range, range_is_partial, resolve_range
from saleskpi.domain.query import check_date, check_range, parse_where
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_where
from saleskpi.views.base import (
    Filtered,
    PageInfo,
    Paging,
    RangeInfo,
    ViewModel,
    paged,
    range_info,
)


class FunnelParams(Paging, Filtered):
    pipeline: str | None = Field(default=None, description="Only this pipeline (default: all).")
    by: str | None = Field(default=None,
                           description="rep: each rep's funnel next to the team's.")
    as_of: dt.date | None = Field(
        default=None, validation_alias=AliasChoices("as_of", "as-of"),
        description="Open pipeline at the end of this day (company time); default now.")


class FunnelView(ViewModel):
    as_of: str | None = Field(description="The day asked for (null: now).")
    as_of_utc: str = Field(description="The instant (UTC) the open pipeline is taken at.")
    start: str | None = Field(alias="from", description="Deals that entered a stage from "
                              "this day (null: all time).")
    end: str | None = Field(alias="to")
    range: RangeInfo = Field(description="The days covered, always stated (default: month "
                             "to date in the company's time zone, of as_of's month when "
                             "as_of is given).")
    pipeline: str | None
    by: list[str]
    where: dict[str, list[str]]
    timezone: str
    currency: str
    leak_gap: float = Field(description="A rep's stage conversion this far below the team's "
                            "is a leak.")
    open_deals_without_history: int
    pipelines: list[dict[str, Any]] = Field(
        description="Per pipeline: pipeline, stage_order, order_from, team {open_deals, "
        "open_amount, stages}, reps [{rep, rep_name, open_deals, open_amount, stages, "
        "leaks}] (paged). A stage: stage, entered, converted, stage_conversion, dropped, "
        "stage_drop_off, time_in_stage {median_days, p90_days, count}, open_deals, "
        "open_amount (and on a rep's: conversion_vs_team, leak).")
    page: PageInfo


def funnel(service: SalesKpiService, caller: Principal, params: FunnelParams) -> FunnelView:
    if params.by not in (None, "rep"):
        raise InvalidQuery(_("--by takes only rep for the funnel, got {by!r}", by=params.by),
                           code="bad_by")
    check_range(params.start, params.end)
    check_date(params.as_of, "--as-of")
    where = parse_where(params.where)
    # A misspelled team or rep says so (with the closest), not "no stage history".
    check_where(service, where, caller.scope)
    dates = funnel_dates(service, params)
    options = FunnelOptions(pipeline=params.pipeline, by_rep=params.by == "rep",
                            as_of=params.as_of, start=dates.start, end=dates.end,
                            where=where)
    report = service.funnel(options, caller.scope)
    # The report may be the service's kept answer: page copies, never the original.
    pipelines = []
    most = 0
    for pipeline in report.pipelines:
        reps, _info = paged(pipeline.reps, params)
        most = max(most, len(pipeline.reps))
        pipelines.append(replace(pipeline, reps=reps))
    shown = replace(report, pipelines=pipelines)
    page = PageInfo(total_rows=most, limit=params.limit, offset=params.offset)
    view: FunnelView = FunnelView(**shown.to_dict(), range=range_info(dates, service),
                                  page=page).with_source(shown)
    return view


def funnel_dates(service: SalesKpiService, params: FunnelParams) -> DateRange:
    """The days whose stage entries count: from/to, else the named range, else month to
    date, as every command. A funnel asked as of a past day is that day's month to date:
    ``--as-of 2024-03-31`` alone is March 2024, not this month."""
    now = today(service)
    day = min(params.as_of, now) if params.as_of is not None else now
    dates = resolve_range(day, params.start, params.end, parse_range(params.range))
    if day < now:
        # As of the end of a past day: a range ending that day is over at that instant.
        dates = replace(dates, partial=range_is_partial(dates.start, dates.end,
                                                        day + dt.timedelta(days=1)))
    return dates
