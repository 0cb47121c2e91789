"""Getting data in: import, settings, mappings, demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import (
    ReportFormat,
    app,
    err,
    fail,
    missing_workspace,
    out,
    progress_on,
    service,
    state,
    write,
)

if TYPE_CHECKING:
    from rich.console import Console

    from saleskpi.domain.settings import Settings


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="A folder of CSV files or one .xlsx workbook.")],
    mapping: Annotated[
        str | None,
        typer.Option("--mapping", "-m", help="Built-in mapping name or a mapping YAML file."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Name of this data source (rows are keyed by source+id)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
) -> None:
    """Import CRM data in the canonical format or through a mapping.

    Example: saleskpi import exports/maven-crm --mapping maven-crm --dry-run
    """
    from saleskpi.surfaces.cli.output import print_import_report
    from saleskpi.views.base import LOCAL
    from saleskpi.views.imports import LocalImportParams, import_local
    from saleskpi.views.text import to_json

    params = LocalImportParams(path=path, mapping=mapping, source=source, dry_run=dry_run)
    with err.status(_("Importing…")) as status:
        view = import_local(service(), LOCAL, params,
                            progress=progress_on(status))
    if format is ReportFormat.json:
        write(to_json(view.to_json()))
    else:
        print_import_report(out, view.source)
    raise typer.Exit(0 if view.ok else 1)


@app.command("settings")
def settings_command(
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Company time zone, e.g. Europe/Kyiv.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Reporting currency, e.g. UAH.")
    ] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="en, ru or uk.")] = None,
    holidays: Annotated[
        str | None,
        typer.Option("--holidays", help="The company's days off besides weekends, "
                     "comma-separated YYYY-MM-DD (replaces the list; '' clears it): plans "
                     "pace by working days."),
    ] = None,
    working_hours: Annotated[
        str | None,
        typer.Option("--working-hours", help="The company's working hours on working days, "
                     "HH:MM-HH:MM (default 09:00-18:00): alert deadlines count only these."),
    ] = None,
    csv_bom: Annotated[
        bool | None,
        typer.Option("--csv-bom/--no-csv-bom", help="Start CSV output with a byte order mark, "
                     "so that Excel on Windows shows Cyrillic names (off: for programs)."),
    ] = None,
) -> None:
    """Show the workspace's settings, or store new ones in its settings.yaml.

    Example: saleskpi settings --timezone Europe/Kyiv --currency UAH --holidays 2026-12-25
    """
    from pydantic import ValidationError

    from saleskpi.domain.backends import masked_url
    from saleskpi.domain.settings import Settings, save_workspace_settings, settings_problem

    values: dict[str, object] = {
        k: v for k, v in (("timezone", timezone), ("currency", currency), ("lang", lang),
                          ("holidays", holidays), ("working_hours", working_hours),
                          ("csv_bom", csv_bom))
        if v is not None}
    workspace = state.settings.workspace
    new = not workspace.is_dir()
    if new and not values:
        raise missing_workspace(workspace)  # only showing: a misspelt --workspace
    if values:
        try:
            checked = Settings(workspace=workspace, **values)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise fail(settings_problem(exc)) from None
        stored = {k: getattr(checked, k) for k in values}
        if "holidays" in stored:
            stored["holidays"] = sorted(day.isoformat() for day in checked.holidays)
        save_workspace_settings(state.settings, **stored)
        if new:
            out.print(_("Created the workspace {path}; import your data into it with "
                        "'saleskpi import PATH'.", path=str(workspace)), highlight=False)
    current = Settings(workspace=state.settings.workspace)
    for name in ("workspace", "timezone", "currency", "lang", "week_start", "working_hours",
                 "csv_bom"):
        value = getattr(current, name)
        shown = ("on" if value else "off") if isinstance(value, bool) else value or "-"
        out.print(f"{name}: {shown}", highlight=False)
    days = ", ".join(day.isoformat() for day in sorted(current.holidays))
    out.print(f"holidays: {days or '-'}", highlight=False)
    # The backend's URL is a secret: shown with its password masked.
    url = current.backend_url
    where = f" {masked_url(url.get_secret_value())}" if url and current.backend != "duckdb" else ""
    out.print(f"backend: {current.backend}{where}", highlight=False)


@app.command("mappings")
def mappings_command() -> None:
    """List the built-in mappings for other tools' exports.

    Example: saleskpi mappings
    """
    for name, description in service().mappings():
        out.print(f"[bold]{name}[/]  {description}")


DEMO_HOST, DEMO_PORT = "127.0.0.1", 8000


@app.command("demo")
def demo_command(
    size: Annotated[float, typer.Option("--size", help="Scale: 1 is ~20 reps, ~6k leads.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not print the scorecard.")] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="Then start the dashboard on 127.0.0.1:8000.")
    ] = False,
) -> None:
    """Create a demo company (and demo users) in the workspace and print its scorecard.

    Example: saleskpi demo   (then: saleskpi kpi win_rate --by team, or saleskpi serve)
    """
    sock = None
    if serve:
        from saleskpi.surfaces.server import listen

        sock = listen(DEMO_HOST, DEMO_PORT)  # a taken port: said before the demo is made
    run_demo(state.settings, size=size, seed=seed, console=out, status_console=err,
             quiet=quiet)
    if sock is not None:
        from saleskpi.surfaces.cli.commands.connectors import run_server

        run_server(state.settings, sock, host=DEMO_HOST, port=DEMO_PORT, sync_every=0)


def run_demo(settings: Settings, *, size: float, seed: int, console: Console,
             status_console: Console, quiet: bool = False, end: dt.date | None = None) -> None:
    """Make the demo company and print what ``saleskpi demo`` prints."""
    from saleskpi.service.core import SalesKpiService
    from saleskpi.service.demo import build_demo
    from saleskpi.surfaces.cli.output import print_import_report, scorecard_table

    with status_console.status(_("Generating the demo company…")) as status:
        company = build_demo(settings, size=size, seed=seed, end=end,
                             progress=progress_on(status))
    if not company.report.ok:
        print_import_report(console, company.report)
        raise typer.Exit(1)
    counts = company.counts()
    console.print(_(
        "Demo company ready in {seconds:.1f} s: {reps} reps, {leads} leads, {deals} deals, "
        "{activities} activities. Workspace: {workspace}",
        seconds=company.seconds, reps=counts.get("reps", 0), leads=counts.get("leads", 0),
        deals=counts.get("deals", 0), activities=counts.get("activities", 0),
        workspace=company.settings.workspace,
    ))
    console.print(_("Dashboard: run 'saleskpi serve' (or 'saleskpi demo --serve') and open "
                "http://127.0.0.1:8000. Demo sign-ins:"), highlight=False)
    for login in company.logins:
        console.print(f"  {login.username} / {login.password}  ({login.role}"
                  f"{': ' + login.who if login.who else ''})", highlight=False)
    if quiet:
        return
    query = company.last_month()
    service = SalesKpiService(company.settings)
    scorecard = service.scorecard(query)
    console.print(_("Scorecard for {start} – {end}:", start=query.start, end=query.end))
    console.print(scorecard_table(scorecard, service.catalog))
    console.print(_(
        "Next: saleskpi kpi revenue win_rate --by team --period month   "
        "(saleskpi kpis lists every KPI)"
    ))
