"""Plans against the data: plan vs actual, and reverse planning from history.

Every number comes from ``SalesKpiService.scorecard`` (so scope, time zone and
KPI definitions are the same as everywhere else); the arithmetic is in the pure
modules ``attainment`` and ``reverse``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from saleskpi.domain.i18n import current_language
from saleskpi.domain.planning import (
    GOALS,
    RATE_KEYS,
    RATE_PARTS,
    GoalKpi,
    PlanningError,
    Rate,
    ReversePlan,
    plan_activity,
    working_days,
)
from saleskpi.domain.query import (
    EVERYTHING,
    KpiQuery,
    Period,
    ResultRow,
    Scope,
    Where,
    local_midnight_utc,
    period_start,
    plain_number,
)
from saleskpi.domain.targets import (
    SUM_OF_REPS,
    KeyTuple,
    Level,
    TargetRecord,
    effective,
    period_bounds,
    spans_period,
)
from saleskpi.service.attainment import (
    Pace,
    PlanLine,
    attainment_of,
    compare,
    elapsed_share,
    is_cumulative,
    pace,
)

if TYPE_CHECKING:
    from saleskpi.service.core import SalesKpiService

HISTORY_KPIS = ("calls", "meetings", "deals_won", "revenue")


# -- people -----------------------------------------------------------------------
@dataclass(frozen=True)
class RepInfo:
    id: str
    name: str
    team: str | None


def find_rep(service: SalesKpiService, text: str, scope: Scope = EVERYTHING) -> RepInfo | None:
    """A person by key, or the one a rep name or any source's rep id stands for."""
    found = service.find_rep(text, scope)
    return None if found is None else RepInfo(found.rep, found.name, found.team)


def rep_names(service: SalesKpiService) -> dict[str, str]:
    """Source rep id -> name (targets name reps by their source id)."""
    return service.rep_names()


def known_teams(service: SalesKpiService) -> set[str]:
    return service.teams()


# -- plan vs actual -----------------------------------------------------------------
def _visible(target: TargetRecord, scope: Scope) -> bool:
    if scope.rep_ids is None and scope.teams is None:
        return True
    if target.level == "rep":
        return scope.rep_ids is None or target.rep_id in scope.rep_ids
    if target.level == "team":
        return scope.rep_ids is None and scope.teams is not None and target.team in scope.teams
    return False


def whose(target: TargetRecord) -> str | None:
    """The rep (id) or team a target is for; None for the company."""
    return {"rep": target.rep_id, "team": target.team}.get(target.level)


def plan_vs_actual(service: SalesKpiService, at: dt.date, *, level: Level | None = None,
                   period: Period | None = None, scope: Scope = EVERYTHING,
                   targets: Sequence[TargetRecord] | None = None,
                   who: str | None = None, activity: bool = True) -> list[PlanLine]:
    """Every target whose period contains ``at``, against its actual up to the end of ``at``.

    Rep targets compare with the rep, team targets with the team (``where team``),
    company targets with the company totals. A team's and the company's plan of a KPI
    that adds up (calls, deals won, revenue) is the sum of its reps' plans for the same
    period, unless one was set for it (then ``sum_of_reps`` is shown beside it). Each
    line is paced by working days (``attainment.pace``); ``activity``: for deals won and
    revenue, the calls and meetings a remaining working day needs (reverse planner).
    Sorted furthest behind first. With ``level`` and ``who`` only the targets of that
    one rep or team: a page about one rep need not measure the plans of all the others.
    """
    if targets is None:
        targets = service.targets_on(at)
    catalog = service.catalog
    current = [t for t in effective(targets) if t.contains(at)
               and (period is None or spans_period(t.period_start, t.period_end, period))]
    sums = sums_of_reps(service, current)
    set_keys = {t.key for t in current}  # once: rebuilt per item it cost 0.14 s a page
    derived = [t for key, t in sums.items() if key not in set_keys]
    chosen = [
        t for t in [*current, *derived]
        if (level is None or t.level == level)
        and _visible(t, scope)
        and (level is None or level == "company" or who is None or whose(t) == who)
    ]
    groups: dict[tuple[Level, dt.date, dt.date], list[TargetRecord]] = defaultdict(list)
    for target in chosen:
        groups[(target.level, target.period_start, target.period_end)].append(target)
    names = rep_names(service) if any(t.level == "rep" for t in chosen) else {}
    lines: list[PlanLine] = []
    zone = service.settings.timezone
    holidays = service.settings.holidays
    lang = current_language()
    history = _History(service, at, scope) if activity else None
    for (group_level, first, last), members in groups.items():
        kpis = tuple(sorted({t.kpi for t in members if t.kpi in catalog.kpis}))
        actual_rows: dict[str | None, ResultRow] = {}
        totals: dict[tuple[str | None, str], float] = {}
        daily: dict[tuple[str | None, str], list[float]] = {}
        if kpis:
            until = min(at, last)
            where: Where = ()
            by: tuple[str, ...] = ()
            if group_level != "company":
                values = sorted({(t.rep_id if group_level == "rep" else t.team) or ""
                                 for t in members})
                by, where = (group_level,), ((group_level, tuple(values)),)
            now = local_midnight_utc(until + dt.timedelta(days=1), zone)
            # KPIs that add up come day by day (their days give the projection's range,
            # their sum the actual); the others over the whole span.
            adding = tuple(k for k in kpis if is_cumulative(catalog.kpis[k]))
            others = tuple(k for k in kpis if k not in adding)
            if others:
                card = service.scorecard(KpiQuery(others, by=by, start=first, end=until,
                                                  where=where), scope, totals=False, now=now)
                for found in card.rows:
                    actual_rows[found.keys.get(group_level) if group_level != "company"
                                else None] = found
            if adding:
                totals, daily = _daily(service, KpiQuery(adding, by=by, period="day",
                                                         start=first, end=until, where=where),
                                       group_level, scope, now, holidays)
        elapsed, total = elapsed_share(first, last, at)
        for target in members:
            spec = catalog.kpis.get(target.kpi)
            row = actual_rows.get(whose(target))
            value = row.values.get(target.kpi) if row and spec else None
            higher = spec.higher_is_better if spec else True
            cumulative = is_cumulative(spec) if spec else False
            actual = value.value if value else None
            if cumulative:
                # No rows at all: nothing was done yet.
                actual = totals.get((whose(target), target.kpi), 0.0)
            result = compare(target.value, actual,
                             higher_is_better=higher, cumulative=cumulative,
                             elapsed_days=elapsed, period_days=total)
            paced = pace(target.value, actual, cumulative=cumulative, first=first, last=last,
                         at=at, holidays=holidays,
                         daily=daily.get((whose(target), target.kpi), []))
            # The projection is the working-day one, and none before enough days have gone.
            result = replace(result, projection=paced.projection,
                             projected_attainment=attainment_of(target.value,
                                                                paced.projection, higher))
            unit = (service.settings.currency if spec.unit == "money" else spec.unit) \
                if spec else ""
            summed = sums.get(target.key)
            lines.append(PlanLine(
                target, spec.display_name(lang) if spec else target.kpi, unit, higher,
                cumulative, at, elapsed, total, result,
                rep_name=names.get(target.rep_id or "") if target.level == "rep" else None,
                numerator=value.numerator if value and value.is_ratio else None,
                denominator=value.denominator if value and value.is_ratio else None,
                pace=paced,
                sum_of_reps=summed.value if summed is not None and target.level != "rep"
                else None,
                activity=history.activity(target, actual, paced) if history else None,
            ))
    lines.sort(key=PlanLine.sort_key)
    return lines


def sums_of_reps(service: SalesKpiService,
                  targets: Sequence[TargetRecord]) -> dict[KeyTuple, TargetRecord]:
    """Per team and for the company, the sum of the reps' plans of each KPI that adds up
    and each period, as targets of source SUM_OF_REPS (never stored)."""
    catalog = service.catalog
    reps = [t for t in targets if t.level == "rep" and t.kpi in catalog.kpis
            and is_cumulative(catalog.kpis[t.kpi])]
    if not reps:
        return {}
    teams = service.rep_teams()
    totals: dict[KeyTuple, tuple[float, dt.datetime]] = {}
    for target in reps:
        keys: list[KeyTuple] = [(target.kpi, target.period_start, target.period_end, None,
                                 None)]
        team = teams.get(target.rep_id or "")
        if team:
            keys.append((target.kpi, target.period_start, target.period_end, None, team))
        for key in keys:
            value, changed = totals.get(key, (0.0, target.updated_at))
            totals[key] = (value + target.value, max(changed, target.updated_at))
    return {key: TargetRecord(0, SUM_OF_REPS, key[0], key[1], key[2], None, key[4], value,
                              changed)
            for key, (value, changed) in totals.items()}


def _daily(service: SalesKpiService, query: KpiQuery, level: Level, scope: Scope,
           now: dt.datetime, holidays: Sequence[dt.date]
           ) -> tuple[dict[tuple[str | None, str], float],
                      dict[tuple[str | None, str], list[float]]]:
    """(rep or team or None, KPI) -> the KPI over the query's days (their sum: the KPI
    adds up), and on each working day of them.

    From ``service.sums``: plain numbers by (rep, day), not a scorecard's grid of rows (a
    month of a 1M-deal company's reps is 14,198 of them, most of a plan's time).
    """
    assert query.start is not None and query.end is not None
    sums = service.sums(query, scope, now=now)
    days = [query.start + dt.timedelta(days=i)
            for i in range((query.end - query.start).days + 1)]
    off = set(holidays)
    working = [d.isoformat() for d in days if d.weekday() < 5 and d not in off]
    who_at = sums.keys.index(level) if level != "company" else -1
    day_at = sums.keys.index("period")
    found: dict[tuple[str | None, str], dict[str, float]] = defaultdict(dict)
    # Day by day in order, as the scorecard's sorted rows were: the sums are the same
    # floats, added in the same order.
    for key in sorted(sums.values, key=lambda k: tuple((v is None, v or "") for v in k)):
        who = key[who_at] if who_at >= 0 else None
        for kpi, value in sums.values[key].items():
            found[(who, kpi)][key[day_at] or ""] = value
    totals = {key: sum(by_day.values()) for key, by_day in found.items()}
    return totals, {key: [by_day.get(d, 0.0) for d in working]
                    for key, by_day in found.items()}


class _History:
    """Conversion rates of reps, teams and the company over the months before ``at``, read
    once per level, for the activity a remaining goal needs."""

    def __init__(self, service: SalesKpiService, at: dt.date, scope: Scope) -> None:
        self.service, self.scope = service, scope
        self.window = history_window(at, 3)
        self._counts: dict[Level, dict[str | None, FunnelCounts]] = {}

    def counts(self, level: Level, who: str | None) -> FunnelCounts | None:
        """The history of a rep, a team or (None) the company: one query by rep, added up
        for teams and the company (calls, meetings, deals and revenue add up)."""
        if not self._counts:
            first, last = self.window
            card = self.service.scorecard(KpiQuery(HISTORY_KPIS, by=("rep",), start=first,
                                                   end=last), self.scope, totals=False)
            teams = self.service.rep_teams()
            reps: dict[str | None, FunnelCounts] = {}
            by_team: dict[str | None, FunnelCounts] = {}
            company = FunnelCounts(0.0, 0.0, 0.0, 0.0)
            for row in card.rows:
                rep = row.keys.get("rep")
                counts = reps[rep] = _counts(row)
                team = teams.get(rep or "")
                if team:
                    by_team[team] = counts.plus(by_team.get(team))
                company = counts.plus(company)
            self._counts = {"rep": reps, "team": by_team, "company": {None: company}}
        return self._counts[level].get(who)

    def activity(self, target: TargetRecord, actual: float | None,
                 paced: Pace) -> dict[str, Any] | None:
        """Calls and meetings per working day left to close the gap (None: not a deals or
        revenue plan, nothing left to do, no working day left, or no history)."""
        if target.kpi not in GOALS or not paced.left:
            return None
        gap = target.value - (actual or 0.0)
        if gap <= 0:
            return None
        counts = self.counts(target.level, whose(target))
        if counts is None:
            return None
        goal_kpi: GoalKpi = "revenue" if target.kpi == "revenue" else "deals_won"
        try:
            plan = plan_activity(goal_kpi, Fraction(str(gap)), counts.rates(), paced.left,
                                 deal_size=counts.deal_size())
        except PlanningError:
            return None
        return {need.what: plain_number(float(need.per_day_exact)) for need in plan.needs
                if need.what in ("calls", "meetings")}


# -- reverse planning from history ---------------------------------------------------
def history_window(at: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The ``months`` full calendar months before the month of ``at``."""
    this_month = period_start(at, "month")
    first = this_month
    for _ in range(months):
        first = period_start(first - dt.timedelta(days=1), "month")
    return first, this_month - dt.timedelta(days=1)


@dataclass(frozen=True)
class FunnelCounts:
    """Calls, meetings, deals won and revenue over a history window."""

    calls: float
    meetings: float
    deals_won: float
    revenue: float

    def count(self, name: str) -> float:
        value: float = getattr(self, name)
        return value

    def rates(self) -> list[Rate]:
        rates = []
        for key in RATE_KEYS:
            numerator, denominator = RATE_PARTS[key]
            rate = Rate.measured(key, self.count(numerator), self.count(denominator))
            if rate is not None:
                rates.append(rate)
        return rates

    def plus(self, other: FunnelCounts | None) -> FunnelCounts:
        if other is None:
            return self
        return FunnelCounts(self.calls + other.calls, self.meetings + other.meetings,
                            self.deals_won + other.deals_won, self.revenue + other.revenue)

    def deal_size(self) -> Fraction | None:
        if not self.deals_won:
            return None
        return Fraction(str(self.revenue)) / Fraction(int(self.deals_won))

    def to_dict(self) -> dict[str, float]:
        return {"calls": self.calls, "meetings": self.meetings, "deals_won": self.deals_won,
                "revenue": self.revenue}


def _counts(row: ResultRow) -> FunnelCounts:
    def value(key: str) -> float:
        return float(row.values[key].value or 0)

    return FunnelCounts(*(value(k) for k in HISTORY_KPIS))


def funnel_counts(service: SalesKpiService, first: dt.date, last: dt.date, *,
                  rep_id: str | None = None, team: str | None = None,
                  scope: Scope = EVERYTHING) -> FunnelCounts:
    """The funnel of one rep, one team or (neither) the company over [first, last]."""
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if rep_id is not None:
        where = (("rep", (rep_id,)),)
    elif team is not None:
        where = (("team", (team,)),)
    card = service.scorecard(KpiQuery(HISTORY_KPIS, start=first, end=last, where=where),
                             scope, totals=False)
    if not card.rows:  # nothing at all in the window
        return FunnelCounts(0.0, 0.0, 0.0, 0.0)
    return _counts(card.rows[0])


def peer_rates(service: SalesKpiService, first: dt.date, last: dt.date, *,
               team: str | None = None,
               scope: Scope = EVERYTHING) -> dict[str, list[Fraction]]:
    """Each rep's rate per funnel step (reps of ``team``, or all), reps with data only."""
    where = (("team", (team,)),) if team is not None else ()
    card = service.scorecard(
        KpiQuery(HISTORY_KPIS, by=("rep",), start=first, end=last, where=where), scope,
        totals=False)
    rates: dict[str, list[Fraction]] = defaultdict(list)
    for row in card.rows:
        for rate in _counts(row).rates():
            rates[rate.key].append(rate.value)
    return dict(rates)


@dataclass(frozen=True)
class ReverseRequest:
    goal_kpi: GoalKpi
    goal: Fraction
    at: dt.date
    period: Period = "month"
    rep: RepInfo | None = None
    team: str | None = None
    rates: tuple[Rate, ...] = ()  # given by hand: history is not read
    history_months: int = 3
    working_days: int | None = None
    deal_size: Fraction | None = None


def reverse_plan(service: SalesKpiService, request: ReverseRequest,
                 scope: Scope = EVERYTHING) -> ReversePlan:
    """The activity a goal takes in the period of ``at``, from own history or given rates.

    The improvement hint compares each step with the median over the reps of the
    rep's team (for a team: of that team; for the company: of all reps).
    """
    first, last = period_bounds(request.at, request.period)
    days = request.working_days or working_days(first, last, service.settings.holidays)
    if request.rates:
        plan = plan_activity(request.goal_kpi, request.goal, request.rates, days,
                             deal_size=request.deal_size, period_start=first,
                             period_end=last)
        plan.extra["history"] = None
        return plan
    h_first, h_last = history_window(request.at, request.history_months)
    counts = funnel_counts(service, h_first, h_last,
                           rep_id=request.rep.id if request.rep else None,
                           team=request.team, scope=scope)
    peers_team = request.rep.team if request.rep else request.team
    peers = peer_rates(service, h_first, h_last, team=peers_team, scope=scope)
    plan = plan_activity(request.goal_kpi, request.goal, counts.rates(), days,
                         deal_size=request.deal_size or counts.deal_size(), team_rates=peers,
                         period_start=first, period_end=last)
    plan.extra["history"] = {
        "from": h_first.isoformat(), "to": h_last.isoformat(),
        "months": request.history_months, **counts.to_dict(),
        "peers_team": peers_team,
    }
    return plan
