"""Alerts: list rules and alerts, test a rule, backtest it, evaluate now, silences, log.

The rules are the workspace's alerts.yaml (docs/alerts.md); this command reads and
acts on them as the owner of the workspace (everything in scope).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import (
    Format,
    ReportFormat,
    app,
    fail,
    out,
    service,
    state,
    write,
)
from saleskpi.surfaces.cli.options import FromOption, RangeOption, ToOption

if TYPE_CHECKING:
    from saleskpi.views.alerts import EvaluationView

alerts_app = typer.Typer(
    help="Alerts: rules from alerts.yaml, their states, tests, backtests and silences.\n\n"
         "Example: saleskpi alerts backtest lead-sla --range last_month",
    no_args_is_help=True,
)
silence_app = typer.Typer(help="Silences: no notices for a rule, a rep or a team for a while.",
                          no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
alerts_app.add_typer(silence_app, name="silence")
FormatOption = Annotated[ReportFormat, typer.Option("--format", "-f")]


def _table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, header_style="bold", title_justify="left")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _when(value: Any) -> str:
    """A stored UTC time as the company's wall time."""
    import datetime as dt
    import zoneinfo

    if value is None:
        return "—"
    zone = zoneinfo.ZoneInfo(state.settings.timezone)
    moment: dt.datetime = value
    return moment.replace(tzinfo=dt.UTC).astimezone(zone).strftime("%Y-%m-%d %H:%M")


@alerts_app.command("list")
def alerts_list(
    resolved: Annotated[bool, typer.Option("--resolved", help="Also alerts resolved lately.")]
    = False,
    format: FormatOption = ReportFormat.table,
) -> None:
    """The rules, and the alerts pending or firing now (with why).

    Example: saleskpi alerts list --format json
    """
    from saleskpi.views.alerts import AlertsParams, alerts
    from saleskpi.views.base import LOCAL
    from saleskpi.views.text import to_json

    view = alerts(service(), LOCAL, AlertsParams(resolved=resolved))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    if view.problem:
        out.print(f"[bold red]{_('Error')}:[/] {view.problem}", highlight=False)
    _table(_("Rules"), [_("Rule"), _("Kind"), _("Owner"), _("Severity"), _("Last run")],
           [[r.name + ("" if r.enabled else f" ({_('off')})"), r.kind, r.owner, r.severity,
             _when(r.last_run)] for r in view.rules])
    _table(_("Alerts"), [_("Status"), _("Rule"), _("Since"), _("Why")],
           [[a.status + (f" ({_('silenced')})" if a.silenced else ""), a.rule, _when(a.since),
             a.why] for a in view.alerts])


def _print_evaluation(view: EvaluationView, format: ReportFormat) -> None:
    from saleskpi.views.text import to_json

    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    for problem in [*view.errors, *view.warnings]:
        out.print(problem, highlight=False)
    if view.skipped:
        out.print(view.skipped, highlight=False)
    _table(_("Changes"), [_("Rule"), _("Subject"), _("Before"), _("After")],
           [[c["rule"], c["subject"], c["before"] or "—", c["after"] or "—"]
            for c in view.changes])
    for notice in view.notices:
        out.print(f"\n[bold]{_('To')} {notice['recipient']}:[/] {notice['subject']}",
                  highlight=False)
        out.print(notice["body"], highlight=False, markup=False)


@alerts_app.command("test")
def alerts_test(
    rule: Annotated[str, typer.Argument(help="The rule's name.")],
    format: FormatOption = ReportFormat.table,
) -> None:
    """Evaluate one rule now and show what would fire and whom it would tell; nothing is
    stored or sent.

    Example: saleskpi alerts test lead-sla
    """
    from saleskpi.views.alerts import EvaluateParams, test_rule
    from saleskpi.views.base import LOCAL

    _print_evaluation(test_rule(service(), LOCAL, EvaluateParams(rule=rule)), format)


@alerts_app.command("evaluate")
def alerts_evaluate(
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    format: FormatOption = ReportFormat.table,
) -> None:
    """Evaluate the rules now (their schedules aside), store the states and send the
    notices.

    Example: saleskpi alerts evaluate
    """
    from saleskpi.views.alerts import EvaluateParams, evaluate
    from saleskpi.views.base import LOCAL

    _print_evaluation(evaluate(service(), LOCAL, EvaluateParams(rule=rule)), format)


@alerts_app.command("backtest")
def alerts_backtest(
    rule: Annotated[str, typer.Argument(help="The rule's name.")],
    start: FromOption = None,
    end: ToOption = None,
    range: RangeOption = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """How often a rule would have fired over past days (last month by default), and on
    which leads, deals or reps.

    Example: saleskpi alerts backtest deal-stuck --from 2026-09-01 --to 2026-09-30
    """
    from saleskpi.views.alert_backtest import BacktestParams, backtest
    from saleskpi.views.base import LOCAL
    from saleskpi.views.text import to_json

    params = BacktestParams.model_validate({
        "rule": rule, "from": start.date() if start else None,
        "to": end.date() if end else None, "range": range})
    view = backtest(service(), LOCAL, params)
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["at", "until", "subject", "rep", "team", "why", "link"])
        for f in view.shown:
            writer.writerow([f.at.isoformat(), f.until.isoformat() if f.until else "",
                             f.subject, f.rep or "", f.team or "", f.why, f.link or ""])
        write(buffer.getvalue().rstrip("\n"))
        return
    out.print(_("{rule} would have fired {count} times on {subjects} subjects from {first} to "
                "{last}.", rule=view.rule, count=view.firings, subjects=view.subjects,
                first=_when(view.start), last=_when(view.end)), highlight=False)
    if view.no_data:
        out.print(_("There is no data to judge this rule."), highlight=False)
    _table(_("Firings"), [_("Fired"), _("Until"), _("Why")],
           [[_when(f.at), _when(f.until), f.why] for f in view.shown])


@alerts_app.command("log")
def alerts_log(
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    format: FormatOption = ReportFormat.table,
) -> None:
    """The audit log: every change of an alert's state, and every notice, newest first.

    Example: saleskpi alerts log --rule lead-sla --limit 20
    """
    from saleskpi.views.alerts import LogParams, alert_log
    from saleskpi.views.base import LOCAL
    from saleskpi.views.text import to_json

    view = alert_log(service(), LOCAL, LogParams(rule=rule, limit=limit))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    _table(_("Alert log"), [_("When"), _("By"), _("Rule"), _("Subject"), _("Change")],
           [[_when(e.at), e.trigger, e.rule, e.subject,
             f"{e.before or '—'} → {e.after or '—'}" if e.before != e.after
             else _("told: {who}", who=", ".join(e.detail.get("recipients", [])) or "—")]
            for e in view.entries])


@silence_app.command("add")
def silence_add(
    reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule.")] = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Only this rep's alerts (id).")]
    = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's alerts.")]
    = None,
    start: Annotated[str | None, typer.Option(
        "--from", help="From (YYYY-MM-DD or YYYY-MM-DDTHH:MM, company time); default now.")]
    = None,
    end: Annotated[str | None, typer.Option(
        "--to", help="Until, inclusive (YYYY-MM-DD: to the day's end).")] = None,
    duration: Annotated[str | None, typer.Option("--for", help="Instead of --to: 8h, 1d, 2w.")]
    = None,
) -> None:
    """Silence alerts of a rule, a rep or a team for a while: they still fire, nobody is
    told until the silence ends.

    Example: saleskpi alerts silence add --rep r7 --to 2026-12-31 --reason "holiday"
    """
    from pydantic import ValidationError

    from saleskpi.views.alert_silences import NewSilence, add_silence
    from saleskpi.views.base import LOCAL

    try:
        wanted = NewSilence.model_validate({
            "rule": rule, "rep": rep, "team": team, "starts": start, "ends": end,
            "duration": duration, "reason": reason})
    except ValidationError as exc:
        problem = exc.errors()[0]
        option = {"starts": "--from", "ends": "--to"}.get(str(problem["loc"][0]),
                                                          str(problem["loc"][0]))
        raise fail(_("{option}: {problem}; use YYYY-MM-DD or YYYY-MM-DDTHH:MM",
                     option=option, problem=problem["msg"])) from None
    made = add_silence(service(), LOCAL, wanted)
    out.print(_("Silence {id} added: until {end}.", id=made.id, end=_when(made.ends_at)),
              highlight=False)


@silence_app.command("list")
def silence_list(
    all: Annotated[bool, typer.Option("--all", help="Also ended and removed ones.")] = False,
    format: FormatOption = ReportFormat.table,
) -> None:
    """Silences now on or still to come.

    Example: saleskpi alerts silence list --all
    """
    from saleskpi.views.alert_silences import SilencesParams, silences
    from saleskpi.views.base import LOCAL
    from saleskpi.views.text import to_json

    view = silences(service(), LOCAL, SilencesParams(all=all))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
        return
    _table(_("Silences"), [_("Id"), _("Rule"), _("Rep"), _("Team"), _("From"),
                           _("To"), _("By"), _("Reason")],
           [[str(s.id), s.rule or "*", s.rep or "*", s.team or "*", _when(s.starts_at),
             _when(s.removed_at or s.ends_at), s.created_by, s.reason]
            for s in view.silences])


@silence_app.command("remove")
def silence_remove(
    silence_id: Annotated[int, typer.Argument(help="The silence's id (alerts silence list).",
                                              min=1)],
) -> None:
    """End a silence now.

    Example: saleskpi alerts silence remove 3
    """
    from saleskpi.views.alert_silences import SilenceId, remove_silence
    from saleskpi.views.base import LOCAL

    remove_silence(service(), LOCAL, SilenceId(id=silence_id))
    out.print(_("Silence {id} removed.", id=silence_id), highlight=False)
