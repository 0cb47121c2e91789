"""The rows behind a number: ``saleskpi rows KPI`` lists the fact rows a KPI value counts."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, out, service, write, write_csv
from saleskpi.surfaces.cli.options import (
    FromOption,
    RangeOption,
    TeamOption,
    ToOption,
    WhereOption,
    with_filters,
)

if TYPE_CHECKING:
    from rich.table import Table

    from saleskpi.views.drill import RowsView


@app.command("rows")
def rows_command(
    kpi: Annotated[str, typer.Argument(help="The KPI whose rows to list; see 'saleskpi kpis'.")],
    start: FromOption = None,
    end: ToOption = None,
    where: WhereOption = None,
    team: TeamOption = None,
    range: RangeOption = None,
    rep: Annotated[
        str | None,
        typer.Option("--rep", help="Only this rep's rows (an id or a name): short for "
                     "--where rep=REP."),
    ] = None,
    part: Annotated[
        str | None,
        typer.Option("--part", help="For a ratio KPI: numerator (default) or denominator."),
    ] = None,
    period: Annotated[
        str,
        typer.Option("--period", "-p", help="With --period-key: its grain (day, week, month, "
                     "quarter, year)."),
    ] = "all",
    period_key: Annotated[
        dt.datetime | None,
        typer.Option("--period-key", formats=["%Y-%m-%d"],
                     help="One period, as a scorecard row names it (its first day): only its "
                     "rows."),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many rows.")
    ] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many rows first.")]
    = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List the rows behind a KPI value: the deals, leads or activities it counts.

    The rows pass the KPI's conditions and fall in the dates and filters given, as the
    scorecard counts them (times in the company's zone); newest first; month to date
    unless --from/--to or --range say otherwise (the period is stated). For a ratio,
    the rows of its numerator or (--part denominator) its denominator. A derived KPI
    is a formula over other KPIs: ask for theirs.

    Example: saleskpi rows deals_won --from 2024-03-01 --to 2024-03-31 --rep "Anna Smith"
    """
    from saleskpi.surfaces.cli.output import range_line, say_if_outside_the_data
    from saleskpi.views.base import LOCAL
    from saleskpi.views.drill import RowsParams, rows_behind
    from saleskpi.views.text import to_json

    params = RowsParams(kpi=kpi, part=part, start=_day(start), end=_day(end),
                        where=with_filters(where, team=team), range=range, rep=rep, period=period,
                        period_key=_day(period_key), limit=limit, offset=offset)
    kpi_service = service()
    view = rows_behind(kpi_service, LOCAL, params)
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    if format is Format.csv:
        write_csv(_csv(view))
        return
    out.print(range_line(view.range), highlight=False)
    out.print(_table(view))
    page = view.page
    if not view.rows:
        out.print(_("No rows.") if not page.total_rows else
                  _("No rows on this page; there are {total}.", total=page.total_rows))
        say_if_outside_the_data(view.range)
        return
    out.print(_("Rows {first}–{last} of {total}", first=page.offset + 1,
                last=page.offset + len(view.rows), total=page.total_rows), style="dim")


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _table(view: RowsView) -> Table:
    from rich.table import Table
    from rich.text import Text

    title = view.definition.name
    if view.part != "value":
        named = f" ({view.definition.uses})" if view.definition.uses else ""
        title += " — " + (_("numerator") if view.part == "numerator"
                          else _("denominator")) + named
    table = Table(title=title, header_style="bold")
    for column in view.columns:
        table.add_column(column, no_wrap=True)
    for row in view.rows:
        table.add_row(*[Text(_text(row[c])) for c in view.columns])
    return table


def _csv(view: RowsView) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(view.columns)
    for row in view.rows:
        writer.writerow([_text(row[c]) for c in view.columns])
    return buffer.getvalue()
