"""Reps side by side: compare (against the team average) and leaderboard (ranks)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from saleskpi.domain.i18n import _, current_language
from saleskpi.surfaces.cli.app import Format, app, out, service, write, write_csv
from saleskpi.surfaces.cli.options import (
    AgainstOption,
    FromOption,
    LimitOption,
    OffsetOption,
    PeriodOption,
    RangeOption,
    TeamOption,
    ToOption,
    WhereOption,
    with_filters,
)

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from saleskpi.catalog.load import Catalog
    from saleskpi.domain.query import KpiValue
    from saleskpi.service.compare import Cell, Comparison, Leaderboard, PreviousPeriod

FormatOption = Annotated[Format, typer.Option("--format", "-f")]


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value else None


@app.command("compare")
def compare_command(
    kpis: Annotated[
        list[str] | None,
        typer.Argument(help="KPI keys (default: calls, meetings, call_to_meeting_conversion, "
                       "deals_won, revenue, win_rate, average_deal_size, lead_response_time, "
                       "speed_to_lead_5min)."),
    ] = None,
    period: PeriodOption = "all",
    start: FromOption = None,
    end: ToOption = None,
    where: WhereOption = None,
    team: TeamOption = None,
    range: RangeOption = None,
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Mark values that differ from the team average by "
                     "more than this share of it (0.10 = 10%)."),
    ] = 0.10,
    sort: Annotated[
        str | None, typer.Option("--sort", help="Order the reps by this KPI.")
    ] = None,
    descending: Annotated[
        bool | None,
        typer.Option("--desc/--asc", help="Sort order (default: best first for that KPI)."),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Keep reps with KPI<VALUE or KPI>VALUE (also <=, >=; "
                     "rates as 0.5 or 50%); repeatable."),
    ] = None,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: FormatOption = Format.table,
) -> None:
    """Compare reps with the team average: strengths and weaknesses per rep.

    Without --from/--to: month to date (--range all: all time).

    Example: saleskpi compare --from 2024-03-01 --to 2024-03-31 --team London --sort revenue
    """
    from saleskpi.surfaces.cli.output import range_line, say_if_outside_the_data
    from saleskpi.views.base import LOCAL
    from saleskpi.views.rankings import ComparisonParams, comparison
    from saleskpi.views.text import to_json

    params = ComparisonParams(kpis=kpis or [], period=period, start=_day(start),
                              end=_day(end), where=with_filters(where, team=team),
                              range=range, threshold=threshold,
                              sort=sort, descending=descending, filters=filters or [],
                              limit=limit, offset=offset)
    kpi_service = service()
    view = comparison(kpi_service, LOCAL, params)
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    shown: Comparison = view.source
    if format is Format.csv:
        write_csv(shown.to_csv())
        return
    catalog = kpi_service.catalog
    out.print(range_line(view.range), highlight=False)
    out.print(_comparison_table(shown, catalog))
    percent = f"{shown.threshold * 100:g}%"
    out.print(_("↑ ↓ more than {percent} above or below the team average; green: better, "
                "red: worse", percent=percent), style="dim")
    if params.filters and not view.page.total_rows:
        out.print(_("No rep meets the filter."))
    _print_highlights(shown, catalog)
    say_if_outside_the_data(view.range)


@app.command("leaderboard")
def leaderboard_command(
    kpi: Annotated[str, typer.Argument(help="The KPI to rank reps on; see 'saleskpi kpis'.")],
    period: PeriodOption = "all",
    start: FromOption = None,
    end: ToOption = None,
    where: WhereOption = None,
    team: TeamOption = None,
    range: RangeOption = None,
    against: AgainstOption = "previous",
    top: Annotated[
        int | None,
        typer.Option("--top", min=1, help="Show the reps ranked N or better (ties at the cut "
                     "are kept)."),
    ] = None,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: FormatOption = Format.table,
) -> None:
    """Rank reps on one KPI, with the change since the previous period.

    Default: month to date, ranks against the same days of the month before
    (1-2 December against 1-2 November). Whole calendar months are compared with
    the same number of months before (March with February), any other range with
    the same number of days before; --against last_year: the same days a year
    before. With --period, each period is compared with the one before it.

    Example: saleskpi leaderboard revenue --from 2024-03-01 --to 2024-03-31 --top 5
    """
    from saleskpi.surfaces.cli.output import range_line, say_if_outside_the_data
    from saleskpi.views.base import LOCAL
    from saleskpi.views.rankings import LeaderboardParams, leaderboard
    from saleskpi.views.text import to_json

    params = LeaderboardParams(kpi=kpi, period=period, start=_day(start), end=_day(end),
                               where=with_filters(where, team=team), range=range,
                               against=against, top=top, limit=limit, offset=offset)
    kpi_service = service()
    view = leaderboard(kpi_service, LOCAL, params)
    if format is Format.json:
        write(to_json(view.to_json()))
        return
    board: Leaderboard = view.source
    if format is Format.csv:
        write_csv(board.to_csv())
        return
    out.print(range_line(view.range), highlight=False)
    out.print(_leaderboard_table(board, kpi_service.catalog))
    if board.previous is not None:
        out.print(_previous_note(board.previous), style="dim")
    say_if_outside_the_data(view.range)


# -- tables ------------------------------------------------------------------------------

_ARROW = {"above": "↑", "below": "↓"}
_STYLE = {"better": "green", "worse": "red"}


def _header(catalog: Catalog, key: str, unit: str) -> str:
    from saleskpi.views.text import unit_name

    suffix = "" if unit in ("ratio", "count") else f", {unit_name(unit)}"
    return f"{catalog.get(key).display_name(current_language())}{suffix}"


def _cases(value: KpiValue | Cell, text: Text) -> None:
    """A rate on few cases carries them, "(1/1)", as in the scorecard."""
    from saleskpi.views.text import SMALL_SAMPLE, format_value

    if (value.is_ratio and value.unit == "ratio" and value.denominator is not None
            and value.denominator < SMALL_SAMPLE):
        numerator = format_value(value.numerator or 0, "count")
        denominator = format_value(value.denominator, "count")
        text.append(f" ({numerator}/{denominator})", style="yellow")


def _compare_cell(cell: Cell) -> Text:
    from rich.text import Text

    from saleskpi.views.text import format_value

    arrow = _ARROW[cell.position] if cell.position else " "
    text = Text(f"{format_value(cell.value, cell.unit)} {arrow}",
                style=_STYLE[cell.mark] if cell.mark else "")
    _cases(cell, text)
    return text


def _summary_cell(value: KpiValue | None, *, average: bool = False) -> Text:
    from rich.text import Text

    from saleskpi.views.text import format_value

    if value is None:
        return Text("")
    number = value.value
    if average and value.unit == "count" and number is not None and not number.is_integer():
        shown = f"{number:,.1f}".replace(",", " ")  # 1.5 deals a rep, not "2"
    else:
        shown = format_value(number, value.unit)
    text = Text(f"{shown}  ")
    _cases(value, text)
    return text


def _comparison_table(comparison: Comparison, catalog: Catalog) -> Table:
    from rich.table import Table
    from rich.text import Text

    grain = comparison.query.period != "all"
    table = Table(header_style="bold")
    table.add_column(_("Rep"), no_wrap=True)
    if grain:
        table.add_column(_("Period"), no_wrap=True)
    for key in comparison.kpis:
        header = _header(catalog, key, comparison.units[key])
        if not comparison.higher_is_better[key]:
            header += "\n" + _("(lower is better)")
        table.add_column(header, justify="right")
    for index, period in enumerate(comparison.periods()):
        if index:
            table.add_section()
        first = [period or ""] if grain else []
        for row in comparison.rows:
            if row.period == period:
                table.add_row(Text(row.name), *first,
                              *[_compare_cell(row.cells[k]) for k in comparison.kpis])
        average, total = comparison.average(period), comparison.total(period)
        if average is not None:
            table.add_row(_("Team average"), *first,
                          *[_summary_cell(average.values.get(k), average=True)
                            for k in comparison.kpis],
                          style="italic")
        if total is not None:
            table.add_row(_("Total"), *first,
                          *[_summary_cell(total.values.get(k)) for k in comparison.kpis],
                          style="bold")
    return table


def _relative(cell: Cell) -> str:
    if cell.vs_average is None:
        return _ARROW[cell.position] if cell.position else ""
    return f"{cell.vs_average * 100:+.0f}%".replace("-", "−")


def _print_highlights(comparison: Comparison, catalog: Catalog) -> None:
    from rich.text import Text

    lang = current_language()
    rows = [r for r in comparison.rows if r.strengths or r.weaknesses]
    if not rows:
        return
    out.print(Text(_("Strengths and weaknesses against the team average:"), style="bold"))
    for row in rows:
        line = Text("  " + row.name + (f" ({row.period})" if row.period else "") + " — ")
        parts: list[tuple[str, list[str], str]] = [
            (_("strengths"), row.strengths, "green"), (_("weaknesses"), row.weaknesses, "red")]
        first = True
        for label, keys, style in parts:
            if not keys:
                continue
            if not first:
                line.append("; ")
            first = False
            line.append(label + ": ")
            line.append(", ".join(
                f"{catalog.get(k).display_name(lang)} {_relative(row.cells[k])}" for k in keys),
                style=style)
        out.print(line)


def _leaderboard_table(board: Leaderboard, catalog: Catalog) -> Table:
    from rich.table import Table
    from rich.text import Text

    from saleskpi.views.text import format_value

    grain = board.query.period != "all"
    title = catalog.get(board.kpi).display_name(current_language())
    if not board.higher_is_better:
        title += " " + _("(lower is better)")
    previous = board.previous
    table = Table(title=title, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column(_("Rep"), no_wrap=True)
    if grain:
        table.add_column(_("Period"), no_wrap=True)
    table.add_column(_header(catalog, board.kpi, board.unit), justify="right")
    if board.is_ratio:
        table.add_column(_("Cases"), justify="right")
    if previous is not None:
        table.add_column(_("Previous rank"), justify="right")
        table.add_column(_("Change"), justify="right")
    for index, row in enumerate(board.rows):
        if index and grain and row.period != board.rows[index - 1].period:
            table.add_section()
        cells: list[str | Text] = [str(row.rank) if row.rank is not None else "—",
                                   Text(row.name)]
        if grain:
            cells.append(row.period or "")
        cells.append(format_value(row.value.value, row.value.unit))
        if board.is_ratio:
            cells.append(f"{format_value(row.value.numerator or 0, 'count')}/"
                         f"{format_value(row.value.denominator or 0, 'count')}")
        if previous is not None:
            cells.append(str(row.previous_rank) if row.previous_rank is not None else "—")
            cells.append(_change(row.rank, row.rank_change))
        table.add_row(*cells)
    return table


def _previous_note(previous: PreviousPeriod) -> str:
    dates = {"start": previous.start.isoformat(), "end": previous.end.isoformat()}
    if previous.rule == "months":
        return _("Change: rank against {start} – {end}, the same number of whole months just "
                 "before", **dates)
    if previous.rule == "to_date":
        return _("Change: rank against {start} – {end}, the same days of the period before",
                 **dates)
    if previous.rule == "last_year":
        return _("Change: rank against {start} – {end}, the same days a year before", **dates)
    if previous.rule == "days":
        return _("Change: rank against {start} – {end}, the same number of days just before",
                 **dates)
    return _("Change: rank against the period before (for the first one shown: "
             "{start} – {end})", **dates)


def _change(rank: int | None, change: int | None) -> Text:
    from rich.text import Text

    if rank is None:
        return Text("")
    if change is None:
        return Text(_("new"))
    if change > 0:
        return Text(f"↑{change}", style="green")
    if change < 0:
        return Text(f"↓{-change}", style="red")
    return Text("=")
