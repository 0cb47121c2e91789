"""The saleskpi command line (Typer): import, kpi, kpis, demo."""

from __future__ import annotations

import datetime as dt
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from saleskpi.i18n import _, current_language, resolve_language, set_language
from saleskpi.settings import Settings, settings_problem

if TYPE_CHECKING:
    from saleskpi.engine.query import Period
    from saleskpi.service import SalesKpiService

# Heavy modules (Ibis, pandas, DuckDB) are imported inside the commands that
# need them, so that --help and typos answer at once.
PERIODS = ("day", "week", "month", "quarter", "year", "all")

app = typer.Typer(
    name="saleskpi",
    help="Sales team KPIs from your CRM data.\n\nExample: saleskpi demo",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
out = Console()
if not out.is_terminal:
    # Piped into a file or pager: do not squeeze tables into 80 columns.
    out = Console(width=200)
err = Console(stderr=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


class CatalogFormat(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


class _State:
    settings: Settings


state = _State()


def fail(message: str, code: int = 2) -> typer.Exit:
    label = _("Error")
    err.print(f"[bold red]{label}:[/] {message}", highlight=False)
    return typer.Exit(code)


@app.callback()
def main_options(
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", envvar="SALESKPI_WORKSPACE",
                     help="Folder with this installation's data (default ./saleskpi-data)."),
    ] = None,
    lang: Annotated[
        str | None,
        typer.Option("--lang", envvar="SALESKPI_LANG", help="Interface language: en, ru, uk."),
    ] = None,
) -> None:
    """Global options; every command accepts them before its name."""
    overrides: dict[str, object] = {}
    if workspace is not None:
        overrides["workspace"] = workspace
    try:
        state.settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise fail(settings_problem(exc)) from None
    set_language(resolve_language(lang or state.settings.lang))


def _write(text: str) -> None:
    """Machine-readable output goes to stdout untouched (no wrapping, no colour)."""
    sys.stdout.write(text + "\n")


def _service() -> SalesKpiService:
    from saleskpi.service import SalesKpiService

    return SalesKpiService(state.settings)


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
    from saleskpi.ingest.mapping import MappingError, load_mapping
    from saleskpi.output import print_import_report, to_json

    try:
        chosen = load_mapping(mapping, state.settings.mappings_dir) if mapping else None
    except MappingError as exc:
        raise fail(str(exc)) from None
    with err.status(_("Importing…")) as status:
        report = _service().import_path(
            path, mapping=chosen, source=source, dry_run=dry_run,
            progress=lambda message: status.update(message),
        )
    if format is ReportFormat.json:
        _write(to_json(report.to_dict()))
    else:
        print_import_report(out, report)
    raise typer.Exit(0 if report.ok else 1)


def _parse_where(items: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    filters = []
    for item in items:
        dim, sep, values = item.partition("=")
        if not sep or not dim.strip() or not values:
            raise fail(_("--where expects DIM=VALUE (several values: DIM=A,B), got {item!r}",
                         item=item))
        filters.append((dim.strip(), tuple(v.strip() for v in values.split(","))))
    return tuple(filters)


@app.command("kpi")
def kpi_command(
    kpis: Annotated[list[str], typer.Argument(help="KPI keys; see 'saleskpi kpis'.")],
    by: Annotated[
        list[str] | None,
        typer.Option("--by", "-b", help="Slice: rep, team, source, segment, product, "
                     "pipeline or a custom field. Repeatable."),
    ] = None,
    period: Annotated[
        str, typer.Option("--period", "-p", help="day, week, month, quarter, year or all.")
    ] = "all",
    start: Annotated[
        dt.datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (YYYY-MM-DD)."),
    ] = None,
    end: Annotated[
        dt.datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, inclusive (YYYY-MM-DD)."),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option("--where", help="Filter DIM=VALUE[,VALUE]; repeatable, e.g. team=London."),
    ] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Compute KPIs, sliced and by period: the scorecard.

    Example: saleskpi kpi calls meetings win_rate revenue --by rep --period month
    """
    from saleskpi.catalog.load import CatalogError
    from saleskpi.engine.query import KpiQuery
    from saleskpi.engine.scorecard import QueryError
    from saleskpi.output import scorecard_csv, scorecard_json, scorecard_table, to_json

    if period not in PERIODS:
        raise fail(_("unknown period {period!r}; use one of {known}",
                     period=period, known=", ".join(PERIODS)))
    query = KpiQuery(
        kpis=tuple(kpis), by=tuple(by or ()), period=_period(period),
        start=start.date() if start else None, end=end.date() if end else None,
        where=_parse_where(where or []),
    )
    if query.start and query.end and query.start > query.end:
        raise fail(_("--from is after --to"))
    service = _service()
    try:
        scorecard = service.scorecard(query)
    except (QueryError, CatalogError) as exc:
        raise fail(str(exc)) from None
    settings = state.settings
    if format is Format.json:
        _write(to_json(scorecard_json(
            scorecard, timezone=settings.timezone, currency=settings.currency)))
    elif format is Format.csv:
        sys.stdout.write(scorecard_csv(scorecard))
    else:
        out.print(scorecard_table(scorecard, service.catalog))


def _period(text: str) -> Period:
    from saleskpi.engine.query import PERIODS as KNOWN

    for option in KNOWN:
        if option == text:
            return option
    raise fail(text)


@app.command("kpis")
def kpis_command(
    format: Annotated[CatalogFormat, typer.Option("--format", "-f")] = CatalogFormat.table,
) -> None:
    """List the KPI catalogue with definitions.

    Example: saleskpi kpis --format json
    """
    from saleskpi.catalog.load import CatalogError
    from saleskpi.output import to_json, unit_name

    try:
        catalog = _service().catalog
    except CatalogError as exc:
        raise fail(str(exc)) from None
    lang = current_language()
    if format is CatalogFormat.markdown:
        from saleskpi.catalog.reference import render_reference

        _write(render_reference(catalog).rstrip("\n"))
        return
    if format is CatalogFormat.json:
        _write(to_json([
            {"key": s.key, "name": s.display_name(lang), "kind": s.kind, "unit": s.unit,
             "group": s.group, "description": s.display_description(lang),
             "origin": s.origin}
            for s in catalog.kpis.values()
        ]))
        return
    from rich.table import Table

    table = Table(header_style="bold", show_lines=True)
    for title in (_("Key"), _("Name"), _("Unit"), _("Definition")):
        table.add_column(title)
    for spec in catalog.kpis.values():
        table.add_row(spec.key, spec.display_name(lang), unit_name(spec.unit),
                      spec.display_description(lang))
    out.print(table)


@app.command("settings")
def settings_command(
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Company time zone, e.g. Europe/Kyiv.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Reporting currency, e.g. UAH.")
    ] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="en, ru or uk.")] = None,
) -> None:
    """Show the workspace's settings, or store new ones in its settings.yaml.

    Example: saleskpi settings --timezone Europe/Kyiv --currency UAH --lang uk
    """
    from saleskpi.settings import save_workspace_settings

    values = {k: v for k, v in (("timezone", timezone), ("currency", currency),
                                ("lang", lang)) if v is not None}
    if values:
        try:
            checked = Settings(workspace=state.settings.workspace, **values)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise fail(settings_problem(exc)) from None
        save_workspace_settings(state.settings, **{k: getattr(checked, k) for k in values})
    current = Settings(workspace=state.settings.workspace)
    for name in ("workspace", "timezone", "currency", "lang", "week_start"):
        out.print(f"{name}: {getattr(current, name) or '-'}", highlight=False)


@app.command("mappings")
def mappings_command() -> None:
    """List the built-in mappings for other tools' exports.

    Example: saleskpi mappings
    """
    from saleskpi.ingest.mapping import builtin_mappings, load_mapping

    for name in builtin_mappings():
        mapping = load_mapping(name)
        out.print(f"[bold]{name}[/]  {mapping.description}")


@app.command("demo")
def demo_command(
    size: Annotated[float, typer.Option("--size", help="Scale: 1 is ~20 reps, ~6k leads.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 42,
    quiet: Annotated[bool, typer.Option("--quiet", help="Do not print the scorecard.")] = False,
) -> None:
    """Create a demo company in the workspace and print its scorecard.

    Example: saleskpi demo   (then: saleskpi kpi win_rate --by team)
    """
    from saleskpi.demo.run import run_demo

    run_demo(state.settings, size=size, seed=seed, console=out, status_console=err,
             quiet=quiet)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
