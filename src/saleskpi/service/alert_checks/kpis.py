"""A catalogue KPI above or below a value, or worse than the rep's own baseline.

The KPI is computed as everywhere else (``SalesKpiService.scorecard``) over a window
that ends on the last complete day: ``yesterday``, ``week_to_date``,
``month_to_date``, ``last_7_days`` or ``last_30_days``. The baseline is the mean of
the same window ``baseline_periods`` times earlier (the same days of the previous
months for ``month_to_date``), so a month's first ten days compare with other
months' first ten days. Worse means lower for KPIs where higher is better, higher
for the others (response times, cycle lengths).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import KpiThreshold
from saleskpi.domain.query import KpiQuery, period_start
from saleskpi.service.alert_checks.base import CheckContext
from saleskpi.service.alert_checks.daily import day_episodes

COMPANY = "company"


def window(kind: str, day: dt.date, back: int = 0) -> tuple[dt.date, dt.date]:
    """The days of window ``kind`` ending on ``day``, ``back`` windows earlier."""
    if kind == "yesterday":
        shifted = day - dt.timedelta(days=back)
        return shifted, shifted
    if kind in ("last_7_days", "last_30_days"):
        size = 7 if kind == "last_7_days" else 30
        last = day - dt.timedelta(days=size * back)
        return last - dt.timedelta(days=size - 1), last
    if kind == "week_to_date":
        first = period_start(day, "week") - dt.timedelta(weeks=back)
        return first, first + dt.timedelta(days=(day - period_start(day, "week")).days)
    first = _months_back(period_start(day, "month"), back)
    last_of_month = _months_back(period_start(day, "month"), back - 1) - dt.timedelta(days=1)
    return first, min(first + dt.timedelta(days=day.day - 1), last_of_month)


def _months_back(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def kpi_episodes(ctx: CheckContext, rule: KpiThreshold, start: dt.datetime,
                 end: dt.datetime) -> list[Episode] | None:
    spec = ctx.service.catalog.kpis[rule.kpi]
    teams = ctx.service.rep_teams() if rule.by == "rep" else {}

    def values(day: dt.date, back: int) -> dict[str, float | None]:
        first, last = window(rule.window, day, back)
        by = () if rule.by == COMPANY else (rule.by,)
        card = ctx.service.scorecard(KpiQuery((rule.kpi,), by=by, start=first, end=last),
                                     totals=False, now=ctx.day_starts(day + dt.timedelta(1)))
        return {(row.keys.get(rule.by) or "") if by else COMPANY: row.values[rule.kpi].value
                for row in card.rows}

    def crossing(day: dt.date) -> dict[str, Finding] | None:
        now = {who: v for who, v in values(day, 0).items() if v is not None}
        if not now:
            return None
        baselines: dict[str, float] = {}
        if rule.worse_than_baseline_pct is not None:
            earlier = [values(day, back) for back in range(1, rule.baseline_periods + 1)]
            for who in now:
                seen = [v for past in earlier if (v := past.get(who)) is not None]
                if seen:
                    baselines[who] = sum(seen) / len(seen)
        found = {}
        first, last = window(rule.window, day)
        for who, value in now.items():
            why = _why(rule, value, baselines.get(who), spec.higher_is_better)
            if why is None:
                continue
            subject = f"{rule.by}:{who}:{rule.kpi}:{rule.window}"
            found[subject] = Finding(
                subject=subject, rep=who if rule.by == "rep" else None,
                team=teams.get(who) if rule.by == "rep" else
                (who if rule.by == "team" else None),
                facts={"by": rule.by, "who": who, "kpi": rule.kpi, "unit": spec.unit,
                       "value": value, "window": rule.window, "from": first.isoformat(),
                       "to": last.isoformat(), "condition": why[0], "limit": why[1],
                       "baseline": baselines.get(who)},
                link=_link(rule, who, first, last), company=rule.by == COMPANY)
        return found

    return day_episodes(ctx, start, end, crossing)


def _why(rule: KpiThreshold, value: float, baseline: float | None,
         higher_is_better: bool) -> tuple[str, float] | None:
    """Which condition holds, with its limit: above, below, or worse than the baseline."""
    if rule.above is not None and value > rule.above:
        return "above", rule.above
    if rule.below is not None and value < rule.below:
        return "below", rule.below
    if rule.worse_than_baseline_pct is not None and baseline is not None:
        share = rule.worse_than_baseline_pct / 100
        if higher_is_better and value < baseline * (1 - share):
            return "under_baseline", baseline * (1 - share)
        if not higher_is_better and value > baseline * (1 + share):
            return "over_baseline", baseline * (1 + share)
    return None


def _link(rule: KpiThreshold, who: str, first: dt.date, last: dt.date) -> str:
    dates = {"from": first.isoformat(), "to": last.isoformat()}
    if rule.by == "rep":
        return f"/reps/{quote(who, safe='')}?" + urlencode(dates)
    if rule.by == "team":
        return "/?" + urlencode({**dates, "team": who})
    return "/?" + urlencode(dates)
