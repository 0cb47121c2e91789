"""Asking for numbers: kpi (the scorecard) and kpis (the catalogue)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _, current_language
from saleskpi.surfaces.cli.app import (
    PERIODS,
    CatalogFormat,
    Format,
    app,
    fail,
    out,
    service,
    state,
    write,
)

if TYPE_CHECKING:
    from saleskpi.domain.query import Period


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
    from saleskpi.domain.query import KpiQuery
    from saleskpi.engine.scorecard import QueryError
    from saleskpi.surfaces.cli.output import scorecard_csv, scorecard_json, scorecard_table, to_json

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
    kpi_service = service()
    try:
        scorecard = kpi_service.scorecard(query)
    except (QueryError, CatalogError) as exc:
        raise fail(str(exc)) from None
    settings = state.settings
    if format is Format.json:
        write(to_json(scorecard_json(
            scorecard, timezone=settings.timezone, currency=settings.currency)))
    elif format is Format.csv:
        write(scorecard_csv(scorecard).rstrip("\n"))
    else:
        out.print(scorecard_table(scorecard, kpi_service.catalog))


def _period(text: str) -> Period:
    from saleskpi.domain.query import PERIODS as KNOWN

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
    from saleskpi.surfaces.cli.output import to_json, unit_name

    try:
        catalog = service().catalog
    except CatalogError as exc:
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
