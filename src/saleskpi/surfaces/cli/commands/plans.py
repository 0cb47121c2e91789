"""Plans: targets (target set / list / delete), plan vs actual, reverse planning."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import ReportFormat, app, err, fail, out, service, state, write

if TYPE_CHECKING:
    from saleskpi.domain.planning import Rate, ReversePlan
    from saleskpi.domain.query import Period
    from saleskpi.domain.targets import Level, TargetRecord
    from saleskpi.service.attainment import PlanLine
    from saleskpi.service.core import SalesKpiService
    from saleskpi.service.planner import RepInfo

TARGET_PERIODS = ("day", "week", "month", "quarter", "year")
DATE_FORMATS = ["%Y-%m-%d"]

target_app = typer.Typer(
    help="Targets (plans) per KPI for a rep, a team or the whole company.\n\n"
         "Example: saleskpi target set deals_won 50 --rep r1",
    no_args_is_help=True,
)
plan_app = typer.Typer()
app.add_typer(target_app, name="target")
app.add_typer(plan_app, name="plan")


# -- shared helpers ------------------------------------------------------------------
def _today() -> dt.date:
    """Today in the company's time zone."""
    return dt.datetime.now(zoneinfo.ZoneInfo(state.settings.timezone)).date()


def _day(value: dt.datetime | None) -> dt.date:
    return value.date() if value is not None else _today()


def _period(text: str, allowed: tuple[str, ...] = TARGET_PERIODS) -> Period:
    from saleskpi.domain.query import PERIODS

    for option in PERIODS:
        if option == text and option in allowed:
            return option
    raise fail(_("unknown period {period!r}; use one of {known}", period=text,
                 known=", ".join(allowed)))


def _number(text: str, option: str) -> Fraction:
    """A number as typed: 50, 0.05, 5%, 1/3."""
    cleaned = text.strip().replace(" ", "").replace(",", ".")
    percent = cleaned.endswith("%")
    try:
        value = Fraction(cleaned.removesuffix("%"))
    except (ValueError, ZeroDivisionError):
        raise fail(_("{option}: {value!r} is not a number (examples: 50, 0.05, 5%, 1/3)",
                     option=option, value=text)) from None
    return value / 100 if percent else value


def _exclusive(rep: str | None, team: str | None) -> None:
    if rep is not None and team is not None:
        raise fail(_("give --rep or --team, not both"))


def _rep(kpi_service: SalesKpiService, text: str) -> RepInfo:
    from saleskpi.service.planner import find_rep

    found = find_rep(kpi_service, text)
    if found is None:
        raise fail(_("unknown rep {rep!r}: give a rep id or name from the imported reps",
                     rep=text))
    return found


def _check_kpi(kpi_service: SalesKpiService, kpi: str) -> None:

    try:
        kpi_service.catalog.get(kpi)
    except InvalidQuery as exc:
        raise fail(str(exc)) from None


def _check_team(kpi_service: SalesKpiService, team: str) -> None:
    from saleskpi.service.planner import known_teams

    if team not in known_teams(kpi_service):
        err.print(_("Note: no rep of team {team!r} in the data yet.", team=team),
                  style="yellow", highlight=False)


def _who(level: str, rep_id: str | None, rep_name: str | None, team: str | None) -> str:
    if level == "rep":
        return f"{rep_name} ({rep_id})" if rep_name and rep_name != rep_id else str(rep_id)
    if level == "team":
        return _("team {team}", team=team)
    return _("company")


def _span(first: dt.date, last: dt.date) -> str:
    return f"{first.isoformat()} – {last.isoformat()}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


# -- target ------------------------------------------------------------------------------
@target_app.command("set")
def target_set(
    kpi: Annotated[str, typer.Argument(help="KPI key; see 'saleskpi kpis'.")],
    value: Annotated[str, typer.Argument(help="Target value, e.g. 50, 120000 or 30% for a rate.")],
    rep: Annotated[str | None, typer.Option("--rep", help="Rep id or name.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team name.")] = None,
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter or year.")
    ] = "month",
    start: Annotated[
        dt.datetime | None,
        typer.Option("--start", formats=DATE_FORMATS,
                     help="A day in the period (YYYY-MM-DD); default today."),
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Set (or change) a target for a rep, a team or, with neither, the whole company.

    Example: saleskpi target set deals_won 50 --rep r1 --period month --start 2024-03-01
    """
    from saleskpi.domain.targets import period_bounds

    _exclusive(rep, team)
    kpi_service = service()
    _check_kpi(kpi_service, kpi)
    amount = _number(value, "VALUE")
    first, last = period_bounds(_day(start), _period(period))
    rep_info = _rep(kpi_service, rep) if rep is not None else None
    if team is not None:
        _check_team(kpi_service, team)
    record, change = kpi_service.set_target(
        kpi=kpi, period_start=first, period_end=last, value=float(amount),
        rep_id=rep_info.id if rep_info else None, team=team)
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json({**record.to_dict(), "change": change}))
        return
    from saleskpi.views.text import format_value

    unit = kpi_service.catalog.get(kpi).unit
    message = {
        "inserted": _("Target set: {kpi} = {value} for {who}, {period}."),
        "updated": _("Target changed: {kpi} = {value} for {who}, {period}."),
        "unchanged": _("Target unchanged: {kpi} = {value} for {who}, {period}."),
    }[change]
    out.print(message.format(
        kpi=kpi, value=format_value(record.value, unit),
        who=_who(record.level, record.rep_id, rep_info.name if rep_info else None, team),
        period=_span(first, last)), highlight=False)


@target_app.command("list")
def target_list(
    at: Annotated[
        dt.datetime | None,
        typer.Option("--at", formats=DATE_FORMATS,
                     help="Only targets whose period contains this day (YYYY-MM-DD)."),
    ] = None,
    kpi: Annotated[list[str] | None, typer.Option("--kpi", help="Only these KPIs.")] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Only this rep's targets.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's targets.")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """List the stored targets (typed in and imported).

    Example: saleskpi target list --at 2024-03-15 --format json
    """
    from saleskpi.service.planner import rep_names

    kpi_service = service()
    rep_id = _rep(kpi_service, rep).id if rep is not None else None
    targets = kpi_service.list_targets(
        at=at.date() if at else None, kpis=tuple(kpi or ()), rep_id=rep_id, team=team)
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json([t.to_dict() for t in targets]))
        return
    if not targets:
        out.print(_("No targets. Set one with 'saleskpi target set' or import targets.csv."))
        return
    names = rep_names(kpi_service) if any(t.level == "rep" for t in targets) else {}
    out.print(_targets_table(targets, names))


def _targets_table(targets: list[TargetRecord], names: dict[str, str]) -> object:
    from rich.table import Table

    from saleskpi.domain.query import plain_number

    table = Table(header_style="bold")
    for title in (_("ID"), _("KPI"), _("For"), _("Period"), _("Target"), _("Source")):
        table.add_column(title, justify="right" if title in (_("ID"), _("Target")) else "left")
    for t in targets:
        table.add_row(str(t.id), t.kpi,
                      _who(t.level, t.rep_id, names.get(t.rep_id or ""), t.team),
                      _span(t.period_start, t.period_end), str(plain_number(t.value)), t.source)
    return table


@target_app.command("delete")
def target_delete(
    kpi: Annotated[str | None, typer.Argument(help="KPI key of the target.")] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Rep id or name.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team name.")] = None,
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter or year.")
    ] = "month",
    start: Annotated[
        dt.datetime | None,
        typer.Option("--start", formats=DATE_FORMATS,
                     help="A day in the period (YYYY-MM-DD); default today."),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="Whose target: 'manual' (typed in) or an import's "
                          "source.")
    ] = "manual",
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Delete by ID (see 'target list').")
    ] = None,
) -> None:
    """Delete a target: the same KPI, rep or team and period as it was set with, or by ID.

    Example: saleskpi target delete deals_won --rep r1 --start 2024-03-01
    """
    from saleskpi.domain.targets import period_bounds

    store = service()
    if ids:
        if kpi is not None:
            raise fail(_("give a KPI or --id, not both"))
        deleted = store.delete_targets(ids)
    else:
        if kpi is None:
            raise fail(_("give the target's KPI (and --rep or --team), or --id"))
        _exclusive(rep, team)
        rep_id = _rep(service(), rep).id if rep is not None else None
        first, last = period_bounds(_day(start), _period(period))
        deleted = store.delete_target(kpi=kpi, period_start=first, period_end=last,
                                      rep_id=rep_id, team=team, source=source)
    if not deleted:
        raise fail(_("no such target (see 'saleskpi target list')"), code=1)
    out.print(_("Deleted {count} target(s).", count=deleted))


# -- plan vs actual --------------------------------------------------------------------
@plan_app.callback(invoke_without_command=True)
def plan_command(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option("--period", "-p", help="Only targets set for a whole day, week, month, "
                     "quarter or year."),
    ] = None,
    at: Annotated[
        dt.datetime | None,
        typer.Option("--at", formats=DATE_FORMATS, help="As of this day (default today)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", "-b", help="Only rep or only team targets.")
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Plan vs actual for the targets of a day: attainment, gap, run-rate projection.

    Example: saleskpi plan --at 2024-03-15 --by rep   (and: saleskpi plan reverse --help)
    """
    if ctx.invoked_subcommand is not None:
        return
    from saleskpi.service.planner import plan_vs_actual

    level: Level | None = None
    if by is not None:
        if by not in ("rep", "team"):
            raise fail(_("--by takes rep or team, got {by!r}", by=by))
        level = "rep" if by == "rep" else "team"
    day = _day(at)
    try:
        lines = plan_vs_actual(service(), day, level=level,
                               period=_period(period) if period else None)
    except InvalidQuery as exc:
        raise fail(str(exc)) from None
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json({"at": day.isoformat(), "timezone": state.settings.timezone,
                       "lines": [line.to_dict() for line in lines]}))
        return
    if not lines:
        out.print(_("No targets for {day}. Set one with 'saleskpi target set' or import "
                    "targets.csv.", day=day.isoformat()))
        return
    out.print(_plan_table(lines, day))
    out.print(_("Projection: the run rate to the period's end for counts and sums; the "
                "current value for rates and averages."), style="dim", highlight=False)


def _plan_table(lines: list[PlanLine], day: dt.date) -> object:
    from rich.table import Table
    from rich.text import Text

    from saleskpi.views.text import format_value

    table = Table(title=_("Plan vs actual on {day}", day=day.isoformat()),
                  header_style="bold")
    table.add_column(_("KPI"))
    table.add_column(_("For"))
    table.add_column(_("Period"))
    for title in (_("Day"), _("Plan"), _("Actual"), _("Attainment"), _("Gap"),
                  _("Projection"), _("Projected")):
        table.add_column(title, justify="right")
    for line in lines:
        t, r = line.target, line.result
        unit = line.unit
        if line.numerator is not None and r.actual is not None:
            actual = Text(f"{format_value(r.actual, unit)} "
                          f"({format_value(line.numerator, 'count')}/"
                          f"{format_value(line.denominator, 'count')})")
        else:
            actual = Text(format_value(r.actual, unit))
        pace = r.projected_attainment
        style = "" if pace is None else ("green" if pace >= 1 else "red")
        table.add_row(
            line.kpi_name, _who(t.level, t.rep_id, line.rep_name, t.team),
            _span(t.period_start, t.period_end), f"{line.elapsed_days}/{line.period_days}",
            format_value(r.plan, unit), actual, _percent(r.attainment),
            format_value(r.gap, unit), format_value(r.projection, unit),
            Text(_percent(pace), style=style),
        )
    return table


# -- reverse planning -------------------------------------------------------------------
def _parse_goal(text: str) -> tuple[str, Fraction]:
    from saleskpi.domain.planning import GOALS

    kpi, sep, value = text.partition("=")
    if not sep or kpi.strip() not in GOALS:
        raise fail(_("--goal expects deals_won=N or revenue=AMOUNT, got {goal!r}", goal=text))
    amount = _number(value, "--goal")
    if amount <= 0:
        raise fail(_("--goal must be above 0, got {goal!r}", goal=text))
    return kpi.strip(), amount


def _parse_rates(items: list[str]) -> tuple[Rate, ...]:
    from saleskpi.domain.planning import CALL_TO_WON, RATE_KEYS, STEPS, Rate

    rates: dict[str, Rate] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in RATE_KEYS:
            raise fail(_("--rate expects STEP=RATE with STEP one of {steps}, got {item!r}",
                         steps=", ".join(RATE_KEYS), item=item))
        rate = _number(value, "--rate")
        if not 0 < rate <= 1:
            raise fail(_("--rate {step}: a rate is above 0 and at most 1 (or 100%), "
                         "got {value!r}", step=key, value=value))
        rates[key] = Rate(key, rate)
    direct = CALL_TO_WON in rates
    steps = [k for k in STEPS if k in rates]
    if rates and (direct == bool(steps) or (steps and len(steps) != len(STEPS))):
        raise fail(_("give either --rate call_to_won=R, or both --rate call_to_meeting=R "
                     "and --rate meeting_to_won=R"))
    return tuple(rates.values())


@plan_app.command("reverse")
def reverse_command(
    goal: Annotated[
        str, typer.Option("--goal", help="deals_won=N or revenue=AMOUNT for the period.")
    ],
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter or year.")
    ] = "month",
    at: Annotated[
        dt.datetime | None,
        typer.Option("--at", formats=DATE_FORMATS,
                     help="A day in the period to plan (default today)."),
    ] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Rep id or name.")] = None,
    team: Annotated[str | None, typer.Option("--team", help="Team name.")] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option("--rate", help="Conversion given by hand instead of history: "
                     "call_to_won=R, or call_to_meeting=R and meeting_to_won=R "
                     "(R as 0.15, 15% or 1/3)."),
    ] = None,
    history_months: Annotated[
        int, typer.Option("--history-months", min=1, help="Full months of history to learn "
                          "the rates from.")
    ] = 3,
    days: Annotated[
        int | None, typer.Option("--working-days", min=1, help="Working days in the period "
                                 "(default: Monday to Friday days).")
    ] = None,
    deal_size: Annotated[
        str | None, typer.Option("--deal-size", help="Average deal for a revenue goal "
                                 "(default: from history).")
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """The calls and meetings a sales goal needs, from own history or given rates.

    Example: saleskpi plan reverse --goal deals_won=50 --rep r1   (or --rate call_to_won=0.05)
    """
    from saleskpi.domain.planning import PlanningError
    from saleskpi.service.planner import ReverseRequest, history_window, reverse_plan

    _exclusive(rep, team)
    goal_kpi, amount = _parse_goal(goal)
    rates = _parse_rates(rate or [])
    size = _number(deal_size, "--deal-size") if deal_size is not None else None
    if size is not None and size <= 0:
        raise fail(_("--deal-size must be above 0"))
    kpi_service = service()
    rep_info = _rep(kpi_service, rep) if rep is not None else None
    if team is not None and not rates:
        from saleskpi.service.planner import known_teams

        if team not in known_teams(kpi_service):
            raise fail(_("unknown team {team!r}: no history to learn from; give the rates "
                         "with --rate", team=team))
    day = _day(at)
    request = ReverseRequest(
        goal_kpi="revenue" if goal_kpi == "revenue" else "deals_won", goal=amount, at=day,
        period=_period(period), rep=rep_info, team=team, rates=rates,
        history_months=history_months, working_days=days, deal_size=size)
    try:
        plan = reverse_plan(kpi_service, request)
    except PlanningError as exc:
        first, last = history_window(day, history_months)
        raise fail(_planning_problem(exc, _span(first, last), bool(rates))) from None
    who = {"rep_id": rep_info.id if rep_info else None,
           "rep_name": rep_info.name if rep_info else None, "team": team}
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json({**who, **plan.to_dict()}))
        return
    level = "rep" if rep_info else "team" if team else "company"
    _print_reverse(plan, _who(level, rep_info.id if rep_info else None,
                              rep_info.name if rep_info else None, team))


def _planning_problem(exc: Exception, window: str, given: bool) -> str:
    from saleskpi.domain.planning import PlanningError

    assert isinstance(exc, PlanningError)
    if exc.code == "deal_size":
        if given:
            return _("a revenue goal needs the average deal size: give --deal-size")
        return _("a revenue goal needs the average deal size, and no deals were won in "
                 "{window}: give --deal-size", window=window)
    if exc.code == "zero_rate":
        return _("no {step} conversion in {window} (the rate is 0): nothing to plan from; "
                 "give the rates with --rate", step=_step_name(str(exc.values["step"])),
                 window=window)
    if exc.code == "rates":
        return _("not enough history in {window} (no calls or no meetings): give the "
                 "rates with --rate", window=window)
    return str(exc)


def _step_name(key: str) -> str:
    return {
        "call_to_meeting": _("call → meeting"),
        "meeting_to_won": _("meeting → sale"),
        "call_to_won": _("call → sale"),
    }.get(key, key)


def _print_reverse(plan: ReversePlan, who: str) -> None:
    from rich.table import Table

    from saleskpi.views.text import format_value

    assert plan.period_start is not None and plan.period_end is not None
    currency = state.settings.currency
    goal_text = (_("{value} deals won", value=format_value(float(plan.goal), "count"))
                 if plan.goal_kpi == "deals_won"
                 else _("revenue {value} {currency}",
                        value=format_value(float(plan.goal), "money"), currency=currency))
    out.print(_("Goal: {goal} for {who} in {period} ({days} working days)", goal=goal_text,
                who=who, period=_span(plan.period_start, plan.period_end),
                days=plan.working_days), highlight=False)
    if plan.deal_size is not None and plan.goal_kpi == "revenue":
        out.print(_("Average deal {size} {currency}: {deals} deals needed.",
                    size=format_value(float(plan.deal_size), "money"), currency=currency,
                    deals=plan.needs[0].per_period), highlight=False)
    history = plan.extra.get("history")
    if isinstance(history, dict):
        out.print(_("Conversion rates from {start} to {end}:", start=history["from"],
                    end=history["to"]), highlight=False)
    else:
        out.print(_("Conversion rates (given):"), highlight=False)
    rates = Table(header_style="bold")
    rates.add_column(_("Step"))
    rates.add_column(_("Rate"), justify="right")
    rates.add_column(_("Of"), justify="right")
    for item in plan.rates:
        sample = "" if item.origin == "given" else (
            f"{format_value(item.numerator, 'count')}/{format_value(item.denominator, 'count')}")
        rates.add_row(_step_name(item.key), _percent(float(item.value)),
                      sample or _("given"))
    out.print(rates)
    needs = Table(header_style="bold")
    needs.add_column(_("Needed"))
    needs.add_column(_("In the period"), justify="right")
    needs.add_column(_("Per working day"), justify="right")
    labels = {"deals_won": _("deals won"), "meetings": _("meetings"), "calls": _("calls")}
    for need in plan.needs:
        needs.add_row(labels[need.what], format_value(need.per_period, "count"),
                      f"{float(need.per_day_exact):.1f} → {need.per_day}")
    out.print(needs)
    best = plan.improvement
    if best is not None and best.team_median is not None and best.calls is not None:
        out.print(_(
            "Improve {step} from {now} to the team median {median} ({peers} reps): "
            "{calls} calls instead of {before}, {saved} fewer.",
            step=_step_name(best.step), now=_percent(float(best.current)),
            median=_percent(float(best.team_median)), peers=best.peers,
            calls=format_value(best.calls, "count"),
            before=format_value(plan.calls.per_period, "count"),
            saved=format_value(best.calls_saved, "count"),
        ), style="bold", highlight=False)
        if best.calls_saved_per_day:
            out.print(_("That is {count} calls a day fewer.", count=best.calls_saved_per_day),
                      highlight=False)
    elif plan.options:
        out.print(_("Every step is at or above the team median."), highlight=False)
