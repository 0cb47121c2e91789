"""Bonus plans: compute every rep's bonus, explain one, what the next tier takes, export
the payroll workbook (``saleskpi bonus ...``; plans in the workspace's bonus_plans.yaml)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.errors import EXIT_CODE, ErrorKind
from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, fail, out, service, state, write, write_csv

if TYPE_CHECKING:
    from saleskpi.service.principal import Principal
    from saleskpi.views.bonus import BonusView, ExplainView, RepBonusItem, WhatIfView

bonus_app = typer.Typer(
    help="Bonus plans (bonus_plans.yaml in the workspace; see docs/motivation.md).\n\n"
         "Example: saleskpi bonus compute --period 2026-09",
    no_args_is_help=True,
)
app.add_typer(bonus_app, name="bonus")

PeriodOption = Annotated[
    str | None,
    typer.Option("--period", "-p", help="A month (2026-09), a quarter (2026-Q3) or a day; "
                 "each plan pays its own month or quarter containing it. Default: today "
                 "(the periods not over, to date)."),
]
PlanOption = Annotated[str | None, typer.Option("--plan", help="Only this plan (its name).")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="SALESKPI_TOKEN", show_envvar=True,
                 help="Act as the user of this API token: their scope applies (a rep sees "
                 "only their own bonus). Default: the workspace's owner, who sees all."),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f")]


def _caller(token: str | None) -> Principal:
    from saleskpi.views.base import LOCAL

    if token is None:
        return LOCAL
    from saleskpi.service.auth import principal_for_token

    principal = principal_for_token(state.settings, token.strip()) if token.strip() else None
    if principal is None:
        raise fail(_("the API token is not valid (issue one with 'saleskpi user token "
                     "USERNAME')"), EXIT_CODE[ErrorKind.unauthenticated])
    return principal


def _csv(header: list[str], rows: list[list[object]]) -> str:
    from saleskpi.domain.text import safe_cell

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return buffer.getvalue().rstrip("\n")


def _emit(format: Format, *, as_json: Callable[[], object], header: list[str],
          rows: Callable[[], list[list[object]]], empty: bool,
          tables: Callable[[], list[object]]) -> None:
    """Every bonus command prints the same way: JSON, CSV, or tables (or why none)."""
    if format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(as_json()))
    elif format is Format.csv:
        write_csv(_csv(header, rows()))
    elif empty:
        _no_plans()
    else:
        for table in tables():
            out.print(table)


def _no_plans() -> None:
    out.print(_("No bonus plans pay anyone in this period. Write bonus_plans.yaml in the "
                "workspace (docs/motivation.md has examples a head of sales can copy)."))


def _period(bonus: RepBonusItem) -> str:
    text = f"{bonus.period_start} – {bonus.period_end}"
    return text if bonus.complete else text + " " + _("(to {day})", day=bonus.measured_to)


# -- compute -----------------------------------------------------------------------------
@bonus_app.command("compute")
def compute_command(
    period: PeriodOption = None,
    rep: Annotated[str | None, typer.Option("--rep", help="Only this rep (id or name).")]
    = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's reps.")] = None,
    plan: PlanOption = None,
    format: FormatOption = Format.table,
    token: TokenOption = None,
) -> None:
    """Every rep's bonus per plan for the period, with the totals.

    Example: saleskpi bonus compute --period 2026-09 --team North --format csv
    """
    from saleskpi.views.bonus import BonusParams, bonuses

    view = bonuses(service(), _caller(token), BonusParams(period=period, rep=rep, team=team,
                                                          plan=plan))
    _emit(format, as_json=view.to_json, empty=not view.bonuses,
          tables=lambda: [_compute_table(view)],
          header=["rep_id", "rep_name", "team", "plan", "version", "period_start",
                  "period_end", "complete", "currency", "total", "cap_hit"],
          rows=lambda: [[b.rep_id, b.rep_name, b.team, b.plan, b.version, b.period_start,
                         b.period_end, b.complete, b.currency, b.total, b.cap_hit]
                        for b in view.bonuses])


def _compute_table(view: BonusView) -> object:
    from rich.table import Table

    from saleskpi.views.bonus_text import plain_money

    table = Table(title=_("Bonuses for {day}", day=view.day), header_style="bold")
    for title in (_("Rep"), _("Team"), _("Plan"), _("Period"), _("Components"),
                  _("One-offs"), _("Total")):
        table.add_column(title, justify="right" if title in (
            _("Components"), _("One-offs"), _("Total")) else "left")
    for b in view.bonuses:
        parts = sum((c.amount for c in b.components), Decimal(0))
        total = f"{plain_money(b.total)} {b.currency}" + (" ⚑" if b.cap_hit else "")
        table.add_row(b.rep_name, b.team or "—", b.plan, _period(b), plain_money(parts),
                      plain_money(b.one_offs), total)
    table.add_section()
    for currency, amount in sorted(view.totals.items()):
        table.add_row(_("Total"), "", "", "", "", "", f"{plain_money(amount)} {currency}",
                      style="bold")
    table.caption = _("⚑: a cap was hit. 'saleskpi bonus explain REP' shows how a bonus was "
                      "computed.")
    return table


# -- explain -----------------------------------------------------------------------------
@bonus_app.command("explain")
def explain_command(
    rep: Annotated[str | None, typer.Argument(help="Rep id or name (a rep's token: their "
                                              "own by default).")] = None,
    period: PeriodOption = None,
    plan: PlanOption = None,
    format: FormatOption = Format.table,
    token: TokenOption = None,
) -> None:
    """How a rep's bonus was computed, line by line.

    Each tier slice with its rate, the accelerator, the decelerator, caps and one-offs.

    Example: saleskpi bonus explain r1 --period 2026-09
    """
    from saleskpi.views.bonus import RepParams, explain
    from saleskpi.views.bonus_text import line_text

    view = explain(service(), _caller(token), RepParams(rep=rep, period=period, plan=plan))
    _emit(format, as_json=view.to_json, empty=not view.bonuses,
          tables=lambda: _explain_tables(view),
          header=["rep_id", "plan", "version", "period_start", "period_end", "kind", "name",
                  "kpi", "actual", "target", "attainment", "what", "amount", "cap_hit"],
          rows=lambda: [[b.rep_id, b.plan, b.version, b.period_start, b.period_end,
                         line.kind, line.name, line.kpi, line.actual, line.target,
                         line.attainment, line_text(line), line.amount, line.cap_hit]
                        for b in view.bonuses for line in b.lines])


def _explain_tables(view: ExplainView) -> list[object]:
    from rich.table import Table

    from saleskpi.views.bonus_text import line_text, plain, plain_money

    tables: list[object] = []
    for b in view.bonuses:
        table = Table(title=_("{rep}: {plan}, {period} (version of {version})",
                              rep=b.rep_name, plan=b.plan, period=_period(b),
                              version=b.version), header_style="bold")
        for title in (_("Component"), _("KPI"), _("Actual"), _("Target"), _("Attainment"),
                      _("What"), _("Amount")):
            table.add_column(title, justify="right" if title in (
                _("Actual"), _("Target"), _("Attainment"), _("Amount")) else "left")
        for line in b.lines:
            attainment = "" if line.attainment is None else f"{line.attainment:.1f}%"
            table.add_row(line.name, line.kpi or "", plain(line.actual), plain(line.target),
                          attainment, line_text(line),
                          plain_money(line.amount) + (" ⚑" if line.cap_hit else ""))
        table.add_section()
        table.add_row(_("Total"), "", "", "", "", "", f"{plain_money(b.total)} {b.currency}",
                      style="bold")
        tables.append(table)
    return tables


# -- what-if -----------------------------------------------------------------------------
@bonus_app.command("whatif")
def whatif_command(
    rep: Annotated[str | None, typer.Argument(help="Rep id or name (a rep's token: their "
                                              "own by default).")] = None,
    period: PeriodOption = None,
    plan: PlanOption = None,
    format: FormatOption = Format.table,
    token: TokenOption = None,
) -> None:
    """What the next tier takes, and what the plan would pay then.

    How much more of each KPI, and for deals and revenue the calls and meetings each
    working day left needs (from the rep's own conversion).

    Example: saleskpi bonus whatif r1
    """
    from saleskpi.views.bonus import RepParams, whatif

    view = whatif(service(), _caller(token), RepParams(rep=rep, period=period, plan=plan))
    _emit(format, as_json=view.to_json, empty=not view.plans,
          tables=lambda: _whatif_tables(view),
          header=["plan", "kind", "name", "kpi", "actual", "needed", "more", "total_now",
                  "total_then", "gain", "working_days_left", "deals_won_per_day",
                  "meetings_per_day", "calls_per_day"],
          rows=lambda: [[p.plan, s.kind, s.name, s.kpi, s.actual, s.needed, s.more,
                         s.total_now, s.total_then, s.gain, s.working_days_left,
                         *((s.per_working_day or {}).get(k) for k in (
                             "deals_won", "meetings", "calls"))]
                        for p in view.plans for s in p.steps])


def _whatif_tables(view: WhatIfView) -> list[object]:
    import math

    from rich.table import Table

    from saleskpi.views.bonus_text import plain, plain_money, step_text

    tables: list[object] = []
    for p in view.plans:
        table = Table(title=_("{plan}, {start} – {end}: {total} {currency} now",
                              plan=p.plan, start=p.period_start, end=p.period_end,
                              total=plain_money(p.total), currency=p.currency),
                      header_style="bold")
        for title in (_("Step"), _("KPI"), _("Now"), _("More"), _("Then pays"),
                      _("Per working day left")):
            table.add_column(title)
        for s in p.steps:
            per_day = ""
            if s.per_working_day:
                per_day = _("{calls} calls, {meetings} meetings", calls=math.ceil(
                    s.per_working_day.get("calls") or 0), meetings=math.ceil(
                    s.per_working_day.get("meetings") or 0))
            table.add_row(f"{s.name}: {step_text(s.kind)}", s.kpi, plain(s.actual),
                          "+" + plain(s.more), f"{plain_money(s.total_then)} "
                          f"(+{plain_money(s.gain)})", per_day)
        if not p.steps:
            table.add_row(_("Nothing left to reach: every tier and one-off is reached."),
                          "", "", "", "", "")
        tables.append(table)
    return tables


# -- export ------------------------------------------------------------------------------
@bonus_app.command("export")
def export_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="The XLSX file to write.")],
    period: PeriodOption = None,
    team: Annotated[str | None, typer.Option("--team", help="Only this team's reps.")] = None,
    plan: PlanOption = None,
    token: TokenOption = None,
) -> None:
    """The payroll workbook (XLSX): one row per rep with the total.

    A second sheet has every line of how each bonus was computed.

    Example: saleskpi bonus export --period 2026-09 -o payroll.xlsx
    """
    from saleskpi.surfaces.payroll import payroll_workbook
    from saleskpi.views.bonus import BonusParams, bonuses

    view = bonuses(service(), _caller(token), BonusParams(period=period, team=team, plan=plan,
                                                          lines=True))
    try:
        output.write_bytes(payroll_workbook(view))
    except OSError as exc:
        raise fail(_("cannot write {path}: {problem}", path=str(output),
                     problem=exc.strerror or str(exc))) from None
    out.print(_("Wrote {path}: {count} bonuses.", path=str(output), count=len(view.bonuses)),
              highlight=False)


# -- plans -------------------------------------------------------------------------------
@bonus_app.command("plans")
def plans_command(format: Annotated[Format, typer.Option("--format", "-f")] = Format.table
                  ) -> None:
    """Check bonus_plans.yaml and list its plans and versions.

    Example: saleskpi bonus plans
    """
    from saleskpi.service.bonus import load_plans

    plans = load_plans(service()).plans
    rows = [[p.name, p.who, ", ".join(p.teams or p.reps), p.period, p.currency,
             v.effective_from.isoformat(), ", ".join(v.kpis())]
            for p in plans for v in p.versions]
    header = ["plan", "who", "teams_or_reps", "period", "currency", "effective_from", "kpis"]
    _emit(format, as_json=lambda: [dict(zip(header, row, strict=True)) for row in rows],
          header=header, rows=lambda: [list(r) for r in rows], empty=not rows,
          tables=lambda: [_plans_table(rows)])


def _plans_table(rows: list[list[str]]) -> object:
    from rich.table import Table

    table = Table(title=_("Bonus plans"), header_style="bold")
    for title in (_("Plan"), _("Who"), _("Teams or reps"), _("Period"), _("Currency"),
                  _("Effective from"), _("KPIs")):
        table.add_column(title)
    for row in rows:
        table.add_row(*row)
    return table
