"""Plans: targets (target set / list / delete), plan vs actual, reverse planning."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import (
    Format,
    ReportFormat,
    app,
    err,
    fail,
    out,
    service,
    state,
    write,
    write_csv,
)

if TYPE_CHECKING:
    from saleskpi.domain.planning import ReversePlan
    from saleskpi.service.attainment import PlanLine
    from saleskpi.views.plans import TargetItem

DATE_FORMATS = ["%Y-%m-%d"]
# views.base.MAX_LIMIT, not imported here: --help stays quick without the service layer.
MAX_LIMIT = 10_000

target_app = typer.Typer(
    help="Targets (plans) per KPI for a rep, a team or the whole company.\n\n"
         "Example: saleskpi target set deals_won 50 --rep r1",
    no_args_is_help=True,
)
plan_app = typer.Typer()
app.add_typer(target_app, name="target")
app.add_typer(plan_app, name="plan")


# -- shared helpers ------------------------------------------------------------------
def _date(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


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
    new_team: Annotated[
        bool, typer.Option("--new-team", help="The team has no reps in the data yet: set "
                           "it even though its name is close to a known team's.")
    ] = False,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Set (or change) a target for a rep, a team or, with neither, the whole company.

    Example: saleskpi target set deals_won 50 --rep r1 --period month --start 2024-03-01
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import SetTargetParams, target_change
    from saleskpi.views.plans import set_target as set_target_view

    kpi_service = service()
    view = set_target_view(kpi_service, LOCAL, SetTargetParams(
        kpi=kpi, value=value, rep=rep, team=team, period=period, start=_date(start),
        new_team=new_team))
    done = target_change(view)
    for note in done.notes:
        err.print(note, style="yellow", highlight=False)
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    from saleskpi.views.text import format_value

    record = done.record
    unit = kpi_service.catalog.get(kpi).unit
    message = {
        "inserted": _("Target set: {kpi} = {value} for {who}, {period}."),
        "updated": _("Target changed: {kpi} = {value} for {who}, {period}."),
        "unchanged": _("Target unchanged: {kpi} = {value} for {who}, {period}."),
    }[done.change]
    out.print(message.format(
        kpi=kpi, value=format_value(record.value, unit),
        who=_who(record.level, record.rep_id, done.rep_name, record.team),
        period=_span(record.period_start, record.period_end)), highlight=False)


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
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many "
                                 "targets (default: all).")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many targets.")] = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List the stored targets (typed in and imported).

    --format csv writes targets.csv (kpi, period_start, period_end, value, rep_id, team,
    then the targets' own fields): edit it and import it again with --source.

    Example: saleskpi target list --at 2024-03-15 --format json
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import TargetsParams, target_records
    from saleskpi.views.plans import targets as targets_view

    kpi_service = service()
    view = targets_view(kpi_service, LOCAL, TargetsParams(
        at=_date(at), kpis=kpi or [], rep=rep, team=team, limit=limit, offset=offset))
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        from saleskpi.surfaces.cli.output_csv import targets_csv

        write_csv(targets_csv(target_records(view)))
        return
    if not view.targets:
        out.print(_("No targets. Set one with 'saleskpi target set' or import targets.csv."))
        return
    out.print(_targets_table(view.targets))


def _targets_table(targets: list[TargetItem]) -> object:
    from rich.table import Table

    from saleskpi.domain.query import plain_number

    table = Table(header_style="bold")
    for title in (_("ID"), _("KPI"), _("For"), _("Period"), _("Target"), _("Source")):
        table.add_column(title, justify="right" if title in (_("ID"), _("Target")) else "left")
    for t in targets:
        table.add_row(str(t.id), t.kpi, _who(t.level, t.person, t.rep_name, t.team),
                      f"{t.period_start} – {t.period_end}", str(plain_number(t.value)),
                      t.target_source)
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
        str | None, typer.Option("--source", help="Only if set by this source: 'manual' "
                                 "(typed in) or an import's source (default: any).")
    ] = None,
    ids: Annotated[
        list[int] | None, typer.Option("--id", help="Delete by ID (see 'target list').")
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Delete a target: the same KPI, rep or team and period as it was set with, or by ID.

    Example: saleskpi target delete deals_won --rep r1 --start 2024-03-01
    """
    from saleskpi.domain.errors import NotFound
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import DeleteTargetsParams, delete_targets

    params = DeleteTargetsParams(ids=ids or [], kpi=kpi, rep=rep, team=team, period=period,
                                 start=_date(start), source=source)
    try:
        view = delete_targets(service(), LOCAL, params)
    except NotFound as exc:
        if exc.code != "no_such_target":
            raise
        raise fail(exc.message, code=1) from None  # nothing to delete: exit 1, as before
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    out.print(_("Deleted {count} target(s).", count=view.deleted))


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
    rep: Annotated[
        str | None, typer.Option("--rep", help="Only this rep's targets (id or name).")
    ] = None,
    team: Annotated[
        str | None, typer.Option("--team", help="Only this team's targets and its reps'.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many "
                                 "lines (default: all).")
    ] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many lines.")] = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Plan vs actual for the targets of a day: attainment, gap, run-rate projection.

    Example: saleskpi plan --at 2024-03-15 --by rep   (and: saleskpi plan reverse --help)

    One team: saleskpi plan --team London

    For a spreadsheet: saleskpi plan --by rep --format csv > plan.csv
    """
    if ctx.invoked_subcommand is not None:
        return
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import PlanParams, plan_lines
    from saleskpi.views.plans import plan_vs_actual as plan_view

    view = plan_view(service(), LOCAL, PlanParams(at=_date(at), by=by, period=period,
                                                      rep=rep, team=team, limit=limit,
                                                      offset=offset))
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        from saleskpi.surfaces.cli.output_csv import records_csv

        write_csv(records_csv(view.to_json()["lines"]))
        return
    lines = plan_lines(view)
    if not lines:
        out.print(_("No targets for {day}. Set one with 'saleskpi target set' or import "
                    "targets.csv.", day=view.at))
        return
    out.print(_plan_table(lines, dt.date.fromisoformat(view.at)))
    out.print(_("Σ: the sum of the reps' plans. Expected by now and what a working day "
                "still needs count working days (Monday to Friday less the holidays "
                "setting). Projection: the run rate of the working days so far with its "
                "95% range, once a quarter of the working days have gone; the current "
                "value for rates and averages."), style="dim", highlight=False)


def _plan_table(lines: list[PlanLine], day: dt.date) -> object:
    from rich.table import Table
    from rich.text import Text

    from saleskpi.domain.targets import SUM_OF_REPS
    from saleskpi.views.text import format_value

    table = Table(title=_("Plan vs actual on {day}", day=day.isoformat()),
                  header_style="bold")
    table.add_column(_("KPI"))
    table.add_column(_("For"))
    table.add_column(_("Period"))
    for title in (_("Working days"), _("Plan"), _("Actual"), _("Attainment"),
                  _("Expected by now"), _("Needed / working day"), _("Projection")):
        table.add_column(title, justify="right")
    for line in lines:
        t, r, p = line.target, line.result, line.pace
        unit = line.unit
        if line.numerator is not None and r.actual is not None:
            actual = Text(f"{format_value(r.actual, unit)} "
                          f"({format_value(line.numerator, 'count')}/"
                          f"{format_value(line.denominator, 'count')})")
        else:
            actual = Text(format_value(r.actual, unit))
        on_pace = line.on_pace
        style = "" if on_pace is None else ("green" if on_pace >= 1 else "red")
        plan = format_value(r.plan, unit)
        if line.sum_of_reps is not None and t.source != SUM_OF_REPS:
            plan += " " + _("(reps: {sum})", sum=format_value(line.sum_of_reps, unit))
        elif t.source == SUM_OF_REPS:
            plan += " Σ"
        needed = format_value(p.needed_per_day, unit) if p and p.needed_per_day is not None \
            else ""
        if line.activity:
            calls, meetings = (line.activity.get(k) for k in ("calls", "meetings"))
            needed += " " + _("({calls} calls, {meetings} meetings)",
                              calls=math.ceil(calls) if calls is not None else "—",
                              meetings=math.ceil(meetings) if meetings is not None else "—")
        table.add_row(
            line.kpi_name, _who(t.level, t.rep_id, line.rep_name, t.team),
            _span(t.period_start, t.period_end),
            f"{p.elapsed}/{p.working_days}" if p else "",
            plan, actual, _percent(r.attainment),
            Text(format_value(p.expected, unit) if p else "", style=style),
            needed, projection_text(line),
        )
    return table


def projection_text(line: PlanLine) -> str:
    """"1 234 (1 000 – 1 500)", or from which day a projection is made."""
    from saleskpi.views.text import format_value

    p, unit = line.pace, line.unit
    if p is None:
        return ""
    if p.projection is None:
        return _("from {day}", day=p.projection_from.isoformat()) if p.projection_from \
            and line.cumulative else ""
    text = format_value(p.projection, unit)
    if p.low is not None and p.high is not None:
        text += f" ({format_value(p.low, unit)} – {format_value(p.high, unit)})"
    return text


@target_app.command("copy")
def target_copy(
    source_month: Annotated[
        str, typer.Option("--from", help="The month to copy from (YYYY-MM), or any day "
                          "of the period with --period.")],
    target_month: Annotated[
        str, typer.Option("--to", help="The month to copy to (YYYY-MM), or any day of "
                          "the period.")],
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter or year.")
    ] = "month",
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace targets already set in --to "
                           "(default: keep them).")
    ] = False,
    kpi: Annotated[
        str | None, typer.Option("--kpi", help="Only this KPI's targets (default: all).")
    ] = None,
    level: Annotated[
        str | None, typer.Option("--level", help="Only rep, team or company targets "
                                 "(default: all).")
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Copy every target of one period (all reps, teams and the company) to another.

    Example: saleskpi target copy --from 2026-11 --to 2026-12 --kpi deals_won --level rep
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import CopyTargetsParams, copy_targets

    view = copy_targets(service(), LOCAL, CopyTargetsParams.model_validate(
        {"from": source_month, "to": target_month, "period": period, "replace": replace,
         "kpi": kpi, "level": level}))
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    out.print(_("Copied {source_start} – {source_end} to {start} – {end}: {inserted} new, "
                "{updated} replaced, {kept} kept as set.", source_start=view.from_start,
                source_end=view.from_end, start=view.period_start, end=view.period_end,
                inserted=view.inserted, updated=view.updated, kept=view.kept),
              highlight=False)


@target_app.command("import")
def target_import(
    grid: Annotated[
        Path, typer.Option("--grid", exists=True, dir_okay=False, readable=True,
                           help="CSV (or tab-separated, as pasted from a spreadsheet): rep "
                           "(id or name), then one column per month (YYYY-MM).")],
    kpi: Annotated[str, typer.Option("--kpi", help="The KPI every cell is a target of.")],
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter or year.")
    ] = "month",
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Set a KPI's targets for many reps and periods at once from a grid: all or none.

    Example: saleskpi target import --grid plans.csv --kpi deals_won
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import GridParams, import_grid

    view = import_grid(service(), LOCAL, GridParams(
        kpi=kpi, grid=grid.read_text(encoding="utf-8-sig"), period=period, name=grid.name))
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    out.print(_("{kpi}: {inserted} targets set, {updated} replaced, {unchanged} unchanged.",
                kpi=view.kpi, inserted=view.inserted, updated=view.updated,
                unchanged=view.unchanged), highlight=False)


@target_app.command("history")
def target_history(
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIMIT,
                                       help="How many changes, newest first.")] = 50,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Who set, replaced, copied, imported or deleted which target, and when.

    Example: saleskpi target history --limit 20
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import TargetHistoryParams
    from saleskpi.views.plans import target_history as history_view

    view = history_view(service(), LOCAL, TargetHistoryParams(limit=limit))
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    from rich.table import Table

    table = Table(header_style="bold")
    for title in (_("When (UTC)"), _("Who"), _("Did"), _("KPI"), _("For"), _("Period"),
                  _("Before"), _("After"), _("Source")):
        table.add_column(title)
    for c in view.changes:
        level = "rep" if c["rep_id"] else ("team" if c["team"] else "company")
        table.add_row(str(c["changed_at"]), str(c["actor"]), str(c["action"]), str(c["kpi"]),
                      _who(level, c["rep_id"], None, c["team"]),
                      f"{c['period_start']} – {c['period_end']}", str(c["old_value"] or ""),
                      str(c["new_value"] or ""), str(c["source"] or ""))
    out.print(table)


# -- reverse planning -------------------------------------------------------------------
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
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import ReversePlanParams, reverse_source
    from saleskpi.views.plans import reverse_plan as reverse_view

    view = reverse_view(service(), LOCAL, ReversePlanParams(
        goal=goal, period=period, at=_date(at), rep=rep, team=team, rate=rate or [],
        history_months=history_months, working_days=days, deal_size=deal_size))
    if format is ReportFormat.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
        return
    level = "rep" if view.rep_id else "team" if view.team else "company"
    _print_reverse(reverse_source(view), _who(level, view.rep_id, view.rep_name, view.team))


def _print_reverse(plan: ReversePlan, who: str) -> None:
    from rich.table import Table

    from saleskpi.service.plan_inputs import step_name
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
        rates.add_row(step_name(item.key), _percent(float(item.value)),
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
            step=step_name(best.step), now=_percent(float(best.current)),
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
