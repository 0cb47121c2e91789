"""Asking for numbers: kpi (the scorecard) and kpis (the catalogue)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _, current_language
from saleskpi.surfaces.cli.app import (
    CatalogFormat,
    Format,
    app,
    fail,
    out,
    service,
    write,
)


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
    from saleskpi.surfaces.cli.output import scorecard_csv, scorecard_table
    from saleskpi.views.base import LOCAL
    from saleskpi.views.scorecard import ScorecardParams
    from saleskpi.views.scorecard import scorecard as scorecard_view
    from saleskpi.views.text import to_json

    params = ScorecardParams(kpis=kpis, by=by or [], period=period,
                             start=start.date() if start else None,
                             end=end.date() if end else None, where=where or [])
    kpi_service = service()
    view = scorecard_view(kpi_service, LOCAL, params)
    scorecard = view.source
    if format is Format.json:
        write(to_json(view.to_json()))
    elif format is Format.csv:
        write(scorecard_csv(scorecard).rstrip("\n"))
    else:
        out.print(scorecard_table(scorecard, kpi_service.catalog))


@app.command("kpis")
def kpis_command(
    format: Annotated[CatalogFormat, typer.Option("--format", "-f")] = CatalogFormat.table,
) -> None:
    """List the KPI catalogue with definitions.

    Example: saleskpi kpis --format json
    """
    from saleskpi.views.text import to_json, unit_name

    try:
        catalog = service().catalog
    except InvalidQuery as exc:
        raise fail(str(exc)) from None
    lang = current_language()
    if format is CatalogFormat.markdown:
        from saleskpi.catalog.reference import render_reference

        write(render_reference(catalog).rstrip("\n"))
        return
    if format is CatalogFormat.json:
        write(to_json([
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
