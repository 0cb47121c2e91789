"""The rows behind a number: the deals, leads, activities... one KPI value counts.

A KPI value of the scorecard (one KPI, a date range, filters; a rep for short) is
drilled into the fact rows it was computed from: for a ratio, the rows of its
numerator or denominator. Counted, the rows of a count KPI (deals_won, calls, leads)
are its value. The rows are always paged (100 by default), newest first.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, Field

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _, current_language
from saleskpi.domain.periods import DateRange, range_is_partial
from saleskpi.domain.query import (
    MAX_ID,
    check_date,
    make_query,
    next_period,
    parse_period,
    period_start,
)
from saleskpi.service.core import SalesKpiService
from saleskpi.service.drill import rows_behind as service_rows_behind
from saleskpi.service.plan_inputs import today
from saleskpi.service.principal import Principal
from saleskpi.service.query_checks import check_filters
from saleskpi.views.base import MAX_LIMIT, Filtered, PageInfo, RangeInfo, ViewModel, range_info
from saleskpi.views.kpi_help import measure_dict

ROWS_LIMIT = 100  # rows in a page unless asked otherwise, on every surface


class RowsParams(Filtered):
    kpi: str = Field(description="The KPI whose rows to list, e.g. deals_won, calls, win_rate.")
    part: str | None = Field(default=None,
                             description="For a ratio KPI: numerator (default) or "
                             "denominator.")
    rep: str | None = Field(default=None,
                            description="Only this rep's rows (an id or a name): short for "
                            "where rep=REP.")
    period: str = Field(default="all",
                        description="With period_key: the grain of the period to list "
                        "(day, week, month, quarter, year).")
    period_key: dt.date | None = Field(
        default=None, description="One period of that grain, as a scorecard row names it "
        "(its first day, e.g. 2026-03-01 with period=month): only its rows, within "
        "from/to (the month-to-date default does not apply then).")
    limit: int = Field(default=ROWS_LIMIT, ge=1, le=MAX_LIMIT, description="Rows in this page.")
    offset: int = Field(default=0, ge=0, le=MAX_ID, description="Rows skipped.")


class RowsDefinition(BaseModel):
    name: str = Field(description="The KPI's name, in the caller's language.")
    kind: str = Field(description="simple, ratio or share.")
    unit: str
    uses: str | None = Field(description="The KPI the part is, when it names one "
                             "(win_rate's numerator: deals_won).")
    measure: dict[str, Any] = Field(
        description="What is aggregated over the rows: entity (fact view), agg, column, "
        "time (the column that places a row in a period), where (conditions).")


class RowsView(ViewModel):
    kpi: str
    part: str = Field(description="value (a simple KPI), numerator or denominator.")
    definition: RowsDefinition
    start: str | None = Field(alias="from")
    end: str | None = Field(alias="to")
    range: RangeInfo = Field(description="The days covered, always stated (default: month "
                             "to date in the company's time zone).")
    where: dict[str, list[str]]
    timezone: str = Field(description="The company's zone: <time>_local columns are its "
                          "wall-clock time, which places rows in periods; stored times are "
                          "UTC.")
    columns: list[str] = Field(
        description="The row's key and source, its rep (rep_id as the source has it, "
        "rep_name the person's), the measured column, the time "
        "column (stored, and local), the columns the conditions read, and dim_<slice> "
        "for each slice filtered on; for open deals (pipeline_value, pipeline_volume, "
        "weighted_pipeline) also learned_p_win and learned_p_this_month, the forecast's "
        "learned chance of each deal.")
    rows: list[dict[str, Any]] = Field(description="Newest first; one object per row.")
    page: PageInfo


def rows_behind(service: SalesKpiService, caller: Principal, params: RowsParams) -> RowsView:
    dates = _dates(service, params)
    start, end = dates.start, dates.end
    query = make_query([params.kpi], start=start, end=end, where=params.where)
    if params.rep:
        query = replace(query, where=(*query.where, ("rep", (params.rep,))))
    # A misspelled slice, team or rep says so (with the closest), not "no rows".
    check_filters(service, query, caller.scope)
    found = service_rows_behind(service, query, caller.scope, params.kpi, params.part,
                                params.limit, params.offset)
    spec = service.catalog.get(params.kpi)
    definition = RowsDefinition(name=spec.display_name(current_language()), kind=spec.kind,
                                unit=spec.unit, uses=found.uses,
                                measure=measure_dict(found.measure))
    rows = [{c: _plain(v) for c, v in zip(found.columns, row, strict=True)}
            for row in found.rows]
    columns = _with_rep_names(service, list(found.columns), rows)
    if found.measure.entity == "deals" and found.measure.until == "closed_at" and rows:
        columns += _add_chances(service, caller, rows)
    page = PageInfo(total_rows=found.total, limit=params.limit, offset=params.offset)
    view: RowsView = RowsView(
        kpi=params.kpi, part=found.part, definition=definition,
        **{"from": _iso(start), "to": _iso(end)}, range=range_info(dates, service),
        where={dim: list(values) for dim, values in query.where},
        timezone=service.settings.timezone, columns=columns, rows=rows, page=page,
    ).with_source(found)
    return view


CHANCE_COLUMNS = ["learned_p_win", "learned_p_this_month"]


def _with_rep_names(service: SalesKpiService, columns: list[str],
                    rows: list[dict[str, Any]]) -> list[str]:
    """``columns`` with ``rep_name`` after ``rep_id``, and each row's: a head of sales
    reads whose deal it is by name (the person's, across sources), not by CRM id."""
    if "rep_id" not in columns:
        return columns
    names = service.names_of_reps()
    for row in rows:
        rep = row.get("rep_id")
        row["rep_name"] = None if rep is None else names.get(
            (str(row.get("datasource")), str(rep)))
    at = columns.index("rep_id") + 1
    return [*columns[:at], "rep_name", *columns[at:]]


def _add_chances(service: SalesKpiService, caller: Principal,
                 rows: list[dict[str, Any]]) -> list[str]:
    """Open deals' learned chance to be won (at all, and this month) beside each row: the
    forecast's (``saleskpi forecast deals``), in the caller's scope; null for a deal
    closed now (a snapshot of the past lists deals closed since)."""
    from saleskpi.service.forecast import ForecastRequest
    from saleskpi.service.forecast import forecast as forecast_now

    found = forecast_now(service, caller.scope, ForecastRequest(record=False))
    chances = {(d.source, d.id): d for d in found.deals}
    for row in rows:
        deal = chances.get((str(row.get("datasource")), str(row.get("id"))))
        row["learned_p_win"] = None if deal is None else round(deal.p_win, 4)
        row["learned_p_this_month"] = None if deal is None else round(deal.p_this_period, 4)
    return CHANCE_COLUMNS


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def _dates(service: SalesKpiService, params: RowsParams) -> DateRange:
    """The range asked (month to date by default, as the scorecard), or the period
    ``period_key`` names, narrowed to from/to when given."""
    if params.period_key is None:
        return params.dates(service)
    grain = parse_period(params.period)
    if grain == "all":
        raise InvalidQuery(_("a period key needs its grain: period day, week, month, "
                             "quarter or year"), code="bad_period")
    check_date(params.period_key, "period key")
    first = period_start(params.period_key, grain)
    last = next_period(first, grain) - dt.timedelta(days=1)
    start = max(first, params.start) if params.start else first
    end = min(last, params.end) if params.end else last
    if start > end:
        raise InvalidQuery(_("the period {key} is outside the dates asked (from {start} to "
                             "{end})", key=first.isoformat(), start=params.start or "…",
                             end=params.end or "…"), code="bad_range")
    return DateRange(start, end, "custom", range_is_partial(start, end, today(service)))


def _plain(value: Any) -> Any:
    """A value as JSON has it: amounts as numbers, times as ISO text, NaN as null."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value
