"""The forecast, its backtest and its track record, in the caller's scope (docs: forecast.md).

Scope: the deals simulated, the reps' commits read and the actuals scored are the
caller's (their scope's filters are added to every query). The team prior is the
one thing taken from outside the scope, and it is an aggregate: every deal of the
company reduced to counts per stage and age bucket and to quantiles of times and
amounts (``learn.aggregate``) before the caller's forecast is made from it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, replace

from saleskpi.catalog.funnel import load_funnel_config
from saleskpi.domain.errors import Forbidden, InvalidQuery
from saleskpi.domain.forecasting import (
    DEFAULT_SEED,
    RUN_RATE_DAYS,
    SIMULATIONS,
    CommitEntry,
    DealHistory,
    Forecast,
    ForecastLine,
    MethodScore,
    ScoredForecast,
    score,
)
from saleskpi.domain.i18n import _
from saleskpi.domain.query import (
    EVERYTHING,
    TARGET_PERIODS,
    Period,
    Scope,
    local_midnight_utc,
    next_period,
    parse_period,
    period_start,
)
from saleskpi.domain.targets import effective
from saleskpi.engine.forecast.backtest import latest_commits, levels, replay
from saleskpi.engine.forecast.history import load_commits, load_deals
from saleskpi.engine.forecast.learn import GroupStats
from saleskpi.engine.forecast.run import (
    forecast_lines,
    rep_teams,
    run_forecast,
    stage_table,
    team_prior,
)
from saleskpi.engine.forecast.simulate import Window
from saleskpi.service.core import SalesKpiService
from saleskpi.service.planner import sums_of_reps

MAX_SIMULATIONS = 20_000
BACKTEST_SIMULATIONS = 500


@dataclass(frozen=True)
class ForecastRequest:
    grain: Period = "month"
    at: dt.date | None = None  # a past day: the forecast as it would have been made then
    by: str = "rep"  # rep: rep lines, team lines and the company; team: no rep lines
    rep: str | None = None  # only this rep (a person key, in scope)
    team: str | None = None
    simulations: int = SIMULATIONS
    seed: int | None = DEFAULT_SEED
    record: bool = True


@dataclass(frozen=True)
class Backtest:
    grain: str
    windows: list[Window]
    rows: list[ScoredForecast]
    scores: list[MethodScore]
    simulations: int


@dataclass(frozen=True)
class TrackRecord:
    rows: list[ScoredForecast]
    scores: list[MethodScore]


def forecast_grain(text: str) -> Period:
    return parse_period(text, TARGET_PERIODS)


def check_by(by: str) -> str:
    if by not in ("rep", "team"):
        raise InvalidQuery(_("--by takes rep or team, got {by!r}", by=by), code="bad_by")
    return by


def check_team(team: str, scope: Scope) -> None:
    """A team's forecast: for managers, and for the lead of that team (code ``forbidden``)."""
    if scope.rep_ids is not None or (scope.teams is not None and team not in scope.teams):
        raise Forbidden(_("you may not see the forecast of team {team!r}", team=team))


def check_simulations(count: int) -> int:
    if not 100 <= count <= MAX_SIMULATIONS:
        raise InvalidQuery(_("simulations must be between 100 and {most}",
                             most=MAX_SIMULATIONS), code="bad_simulations")
    return count


def window(service: SalesKpiService, first: dt.date, grain: Period) -> Window:
    zone = service.settings.timezone
    after = next_period(first, grain)
    return Window(first, after - dt.timedelta(days=1), local_midnight_utc(first, zone),
                  local_midnight_utc(after, zone))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _today(service: SalesKpiService) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(service.settings.timezone)).date()


def _narrowed(scope: Scope, rep: str | None, team: str | None) -> Scope:
    """``scope`` narrowed to one rep or one team the caller asked for (within it)."""
    if rep is not None:
        reps = frozenset({rep}) if scope.rep_ids is None else scope.rep_ids & {rep}
        return replace(scope, rep_ids=reps)
    if team is not None:
        teams = frozenset({team}) if scope.teams is None else scope.teams & {team}
        return replace(scope, teams=teams)
    return scope


def _load(service: SalesKpiService, scope: Scope
          ) -> tuple[list[DealHistory], list[DealHistory], list[CommitEntry]]:
    """(every deal: only for the team's aggregate, the scope's deals, the scope's commits)."""
    config = load_funnel_config(service.settings.workspace)
    currency = service.settings.currency
    with service.reading() as store:
        everyone = load_deals(store, config, currency=currency)
        if scope == EVERYTHING:
            mine = everyone
        else:
            mine = load_deals(store, config, currency=currency, where=scope.as_filters())
        commits = load_commits(store, currency=currency, where=scope.as_filters())
    return everyone, mine, commits


def forecast(service: SalesKpiService, scope: Scope, request: ForecastRequest) -> Forecast:
    """The current and next period's forecast for the deals of ``scope``.

    With a cache (the server), an answer is kept while the data is unchanged, for the
    cache's seconds (a page opened again does not simulate again; its "as of" is then
    up to that old). A live forecast is kept in the track record when computed.
    """
    narrowed = _narrowed(scope, request.rep, request.team)
    computed: list[Forecast] = []

    def compute() -> Forecast:
        computed.append(_forecast(service, narrowed, request))
        return computed[-1]

    if service.settings.cache_seconds > 0:
        key = ("forecast", narrowed, replace(request, record=False), service.data_version(),
               _today(service))
        found: Forecast = service.forecasts.get(key, compute)
    else:
        found = compute()
    if computed and request.record and found.live:
        from saleskpi.store.state.forecast_log import record

        record(service.settings.state_url, found.lines, made_at=found.as_of,
               grain=request.grain, currency=service.settings.currency)
    return found


def _forecast(service: SalesKpiService, narrowed: Scope, request: ForecastRequest) -> Forecast:
    everyone, mine, commits = _load(service, narrowed)
    now = _now()
    live = request.at is None or request.at >= _today(service)
    local_day = _today(service) if live or request.at is None else request.at
    at = now if live else local_midnight_utc(local_day + dt.timedelta(days=1),
                                             service.settings.timezone)
    first = period_start(local_day, request.grain)
    team = _team(service, everyone, at, first, request.grain, live=live)
    del everyone  # from here on, only the aggregate: no other rep's deal is read
    windows = [window(service, first, request.grain),
               window(service, next_period(first, request.grain), request.grain)]
    model, states, sim = run_forecast(mine, team, windows, at, live=live,
                                      n=request.simulations, seed=request.seed)
    names = {r.rep: r.name for r in service.visible_reps(narrowed)}
    teams = rep_teams(mine)
    one_rep = narrowed.rep_ids is not None
    lines = forecast_lines(sim, teams, names, reps=request.by == "rep" or one_rep,
                           team_rows=not one_rep, company=narrowed == EVERYTHING)
    _attach_commits(service, lines, commits, windows, at)
    reps_shown = sorted(model.reps) if one_rep else []
    stages = stage_table(model, states, reps=reps_shown)
    return Forecast(as_of=at, grain=request.grain,
                    periods=[(w.start, w.end) for w in windows], lines=lines,
                    deals=sim.deals, simulations=request.simulations, seed=request.seed,
                    prior_strength=model.k, stages=stages, live=live)


SHOCK_PERIODS = 12  # past periods the period-wide shock is measured on


def _team(service: SalesKpiService, everyone: list[DealHistory], at: dt.datetime,
          first: dt.date, grain: Period, *, live: bool) -> GroupStats:
    """The team's aggregate as of ``at``, with the period shock of the periods before
    ``first`` (those after the first win known then, at most ``SHOCK_PERIODS``)."""
    periods: list[tuple[dt.datetime, dt.datetime]] = []
    start = first
    for _count in range(SHOCK_PERIODS):
        start = period_start(start - dt.timedelta(days=1), grain)
        past = window(service, start, grain)
        periods.append((past.start_at, past.end_at))
    return team_prior(everyone, at, periods, live=live)


def _attach_commits(service: SalesKpiService, lines: list[ForecastLine],
                    commits: list[CommitEntry], windows: list[Window], at: dt.datetime) -> None:
    """The reps' own commit and best case, and the revenue plan, beside each line."""
    plans: dict[tuple[dt.date, dt.date, str, str | None, str | None], float] = {}
    # One target per key (the latest, as plan vs actual takes it): a person's plan set
    # under two of their rep ids, or by two sources, is not counted twice in a sum.
    targets = effective(service.targets_on(windows[0].start)
                        + service.targets_on(windows[1].start))
    # A team or the company without a plan of its own has the sum of its reps' plans,
    # as on the overview and in `saleskpi plan`; one set on its own wins (added last).
    for target in [*sums_of_reps(service, targets).values(), *targets]:
        if target.kpi == "revenue":
            plans[(target.period_start, target.period_end, target.level, target.rep_id,
                   target.team if target.level == "team" else None)] = target.value
    for line in lines:
        win = next(w for w in windows if w.start == line.period_start)
        key = (line.rep, None if line.rep else line.team)
        for category in ("commit", "best_case"):
            found = latest_commits(commits, win, category=category, made_by=at)
            value = found.get(key)
            if value is None and line.level != "rep":
                parts = [v for (rep, _t), v in found.items()
                         if rep is not None and (line.level == "company" or _team_of(
                             lines, rep) == line.team)]
                value = sum(parts) if parts else None
            setattr(line, category, value)
        line.plan = plans.get((line.period_start, line.period_end, line.level, line.rep,
                               line.team if line.level == "team" else None))


def _team_of(lines: list[ForecastLine], rep: str) -> str | None:
    return next((line.team for line in lines if line.level == "rep" and line.rep == rep), None)


def _windows_with_history(service: SalesKpiService, deals: list[DealHistory],
                          grain: Period) -> list[Window]:
    """Every period that starts ``RUN_RATE_DAYS`` after the first close (before, nothing
    had been learned) and had ended by the last thing the data knows (a close or a
    creation)."""
    moments = [t for d in deals for t in (d.created_at, d.closed_at) if t is not None]
    closes = [d.closed_at for d in deals if d.status != "open" and d.closed_at is not None]
    if not moments or not closes:
        return []
    zone = zoneinfo.ZoneInfo(service.settings.timezone)
    first_day = (min(closes) + dt.timedelta(days=RUN_RATE_DAYS)).replace(
        tzinfo=dt.UTC).astimezone(zone).date()
    last = min(max(moments), _now())
    found = []
    start = next_period(period_start(first_day, grain), grain)
    while True:
        win = window(service, start, grain)
        if win.end_at > last + dt.timedelta(days=1):
            break
        found.append(win)
        start = next_period(start, grain)
    return found


def backtest(service: SalesKpiService, scope: Scope, *, grain: Period = "month",
             simulations: int = BACKTEST_SIMULATIONS, seed: int | None = DEFAULT_SEED,
             last: int | None = None) -> Backtest:
    """Each method's forecast of each past period, made at its start, scored."""
    everyone, mine, commits = _load(service, scope)
    windows = _windows_with_history(service, everyone, grain)
    if last is not None:
        windows = windows[-last:]
    kept: dict[dt.datetime, GroupStats] = {}

    starts = {w.start_at: w.start for w in windows}

    def team_at(at: dt.datetime) -> GroupStats:
        if at not in kept:
            kept[at] = _team(service, everyone, at, starts[at], grain, live=False)
        return kept[at]

    teams = rep_teams(mine)
    rows = levels(teams, company=scope == EVERYTHING)
    if scope.rep_ids is not None:
        rows = [r for r in rows if r.level == "rep"]  # a rep's "team" would be only them
    scored = replay(mine, commits, windows, team_at, rows, n=simulations, seed=seed)
    return Backtest(grain, windows, scored, _scores(scored), simulations)


def _scores(rows: list[ScoredForecast]) -> list[MethodScore]:
    groups: dict[tuple[str, str], list[ScoredForecast]] = {}
    for row in rows:
        groups.setdefault((row.method, row.level), []).append(row)
    order = {"company": 0, "team": 1, "rep": 2}
    methods = {"ours": 0, "weighted_pipeline": 1, "commit": 2, "run_rate": 3}
    keys = sorted(groups, key=lambda k: (order.get(k[1], 9), methods.get(k[0], 9)))
    return [score(method, level, groups[(method, level)]) for method, level in keys]


def track_record(service: SalesKpiService, scope: Scope) -> TrackRecord:
    """The forecasts kept (ours) and entered (the reps'), of closed periods, scored."""
    from saleskpi.store.state.forecast_log import closed_before

    _everyone, mine, commits = _load(service, scope)
    today = _today(service)
    teams = rep_teams(mine)
    visible_teams = {t for t in teams.values() if t}
    rows: list[ScoredForecast] = []
    for kept in closed_before(service.settings.state_url, today):
        if kept.level == "rep" and kept.rep not in teams:
            continue
        if kept.level == "team" and (scope.rep_ids is not None
                                     or kept.team not in visible_teams):
            continue
        if kept.level == "company" and scope != EVERYTHING:
            continue
        win = window(service, kept.period_start, "day")
        win = Window(kept.period_start, kept.period_end, win.start_at,
                     local_midnight_utc(kept.period_end + dt.timedelta(days=1),
                                        service.settings.timezone))
        actual = _actual(mine, win, kept.level, kept.rep, kept.team)
        rows.append(ScoredForecast("ours", kept.level, kept.rep, kept.team, kept.period_start,
                                   kept.period_end, kept.made_at, kept.p50, actual, kept.p10,
                                   kept.p90))
    for entry in commits:
        if entry.period_end >= today:
            continue
        level = "rep" if entry.rep else "team" if entry.team else "company"
        if level == "company" and scope != EVERYTHING:
            continue
        zone = service.settings.timezone
        win = Window(entry.period_start, entry.period_end,
                     local_midnight_utc(entry.period_start, zone),
                     local_midnight_utc(entry.period_end + dt.timedelta(days=1), zone))
        actual = _actual(mine, win, level, entry.rep, entry.team)
        method = entry.category or "commit"
        rows.append(ScoredForecast(method, level, entry.rep, entry.team, entry.period_start,
                                   entry.period_end, entry.made_at, entry.amount, actual))
    rows.sort(key=lambda r: (r.period_start, r.level, r.rep or "", r.team or "", r.made_at))
    return TrackRecord(rows, _scores(rows))


def _actual(deals: list[DealHistory], win: Window, level: str, rep: str | None,
            team: str | None) -> float:
    return sum(d.amount or 0.0 for d in deals
               if d.status == "won" and d.closed_at is not None
               and win.start_at <= d.closed_at < win.end_at
               and (level == "company" or (level == "rep" and d.rep == rep)
                    or (level == "team" and d.team == team)))
