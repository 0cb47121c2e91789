"""The funnel: stage conversion, drop-off, time in stage and the open pipeline as of a date."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _
from saleskpi.surfaces.cli.app import Format, app, out, service, write, write_csv
from saleskpi.surfaces.cli.options import (
    RangeOption,
    RepOption,
    TeamOption,
    WhereOption,
    with_filters,
)

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from saleskpi.domain.funnel import FunnelReport, PipelineFunnel, StageRow


@app.command("funnel")
def funnel_command(
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline (default: all).")
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", "-b", help="rep: each rep's funnel next to the team's.")
    ] = None,
    as_of: Annotated[
        dt.datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"],
                     help="Open pipeline at the end of this day (YYYY-MM-DD); default now."),
    ] = None,
    start: Annotated[
        dt.datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"],
                     help="Count deals that entered a stage from this day (YYYY-MM-DD)."),
    ] = None,
    end: Annotated[
        dt.datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="… until this day, inclusive."),
    ] = None,
    where: WhereOption = None,
    team: TeamOption = None,
    rep: RepOption = None,
    range: RangeOption = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Show at most this many reps per pipeline "
                     "(default: all)."),
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip this many reps per pipeline first.")
    ] = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """The sales funnel from stage history: conversion, drop-off and time per stage.

    Deals that entered a stage month to date count, unless --from/--to or --range say
    otherwise (with --as-of alone: the month to date of that day); the period is stated
    above the tables.

    Example: saleskpi funnel --by rep --as-of 2024-03-31

    For a spreadsheet: saleskpi funnel --by rep --range last_month --format csv
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.funnel import FunnelParams, funnel
    from saleskpi.views.text import to_json

    params = FunnelParams(pipeline=pipeline, by=by, as_of=as_of.date() if as_of else None,
                          start=start.date() if start else None,
                          end=end.date() if end else None,
                          where=with_filters(where, rep=rep, team=team), range=range,
                          limit=limit, offset=offset)
    kpi_service = service()
    view = funnel(kpi_service, LOCAL, params)
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    report: FunnelReport = view.source
    if format is Format.csv:
        from saleskpi.surfaces.cli.output_csv import funnel_csv

        write_csv(funnel_csv(report))
        return
    from saleskpi.surfaces.cli.output import range_line, say_if_outside_the_data

    out.print(range_line(view.range), highlight=False)
    if not report.pipelines and params.where:
        out.print(_("No deal with these filters has a stage history: check --where, --team "
                    "and --rep."), style="yellow")
    elif not report.pipelines:
        out.print(_("No stage history for these deals: import stage_changes (deal_id, stage, "
                    "entered_at) to see the funnel."), style="yellow")
    for pipeline_funnel in report.pipelines:
        out.print(_funnel_table(report, pipeline_funnel))
    if report.open_without_history:
        out.print(_("{count} open deals have no stage history and are in no stage above.",
                    count=report.open_without_history), style="yellow")
    say_if_outside_the_data(view.range)


def _funnel_table(report: FunnelReport, funnel: PipelineFunnel) -> Table:
    from rich.table import Table

    when = report.options.as_of.isoformat() if report.options.as_of else _("now")
    title = _("Pipeline {pipeline}: funnel, open deals as of {when}",
              pipeline=funnel.pipeline or "—", when=when)
    by_rep = report.options.by_rep
    table = Table(title=title, header_style="bold", show_lines=False)
    if by_rep:
        table.add_column(_("Rep"), no_wrap=True)
    table.add_column(_("Stage"), no_wrap=True)
    for header in (_("Entered"), _("Conversion"), _("Drop-off"), _("Median days"),
                   _("P90 days"), _("Open deals"), _("Open amount, {currency}",
                                                     currency=report.currency)):
        table.add_column(header, justify="right")
    if by_rep:
        table.add_column(_("vs team"), justify="right")
    for row in funnel.team.stages:
        cells = [_("Team")] if by_rep else []
        table.add_row(*cells, row.stage, *_cells(row), *([""] if by_rep else []),
                      style="bold" if by_rep else None)
    for rep in funnel.reps:
        table.add_section()
        for row in rep.stages:
            table.add_row(rep.rep_name or rep.rep or "—", row.stage, *_cells(row), _gap(row))
    table.caption = _("Won and lost close the funnel. Conversion: share of the deals that "
                      "entered a stage and later reached a later stage or were won.")
    return table


def _percent(count: int, total: int, value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}% ({count}/{total})"


def _days(value: float | None, count: int | None = None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if count is None else f"{value:.1f} (n={count})"


def _cells(row: StageRow) -> list[str]:
    from saleskpi.views.text import format_value

    return [
        format_value(row.entered, "count"),
        _percent(row.converted, row.entered, row.conversion),
        _percent(row.dropped, row.entered, row.drop_off),
        _days(row.median_days, row.finished),
        _days(row.p90_days),
        format_value(row.open_deals, "count"),
        format_value(row.open_amount, "money"),
    ]


def _gap(row: StageRow) -> Text:
    from rich.text import Text

    if row.vs_team is None:
        return Text("—")
    points = _("{points} pp", points=f"{row.vs_team * 100:+.1f}")
    if row.leak:
        return Text(f"▼ {points}", style="bold red")
    return Text(points)
