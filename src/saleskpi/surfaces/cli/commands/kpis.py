"""Asking for numbers: kpi (the scorecard) and kpis (the catalogue)."""

from __future__ import annotations

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
    write_csv,
)
from saleskpi.surfaces.cli.options import (
    FromOption,
    LimitOption,
    OffsetOption,
    PeriodOption,
    RangeOption,
    RepOption,
    TeamOption,
    ToOption,
    WhereOption,
    day,
    with_filters,
)


@app.command("kpi")
def kpi_command(
    kpis: Annotated[list[str], typer.Argument(help="KPI keys; see 'saleskpi kpis'.")],
    by: Annotated[
        list[str] | None,
        typer.Option("--by", "-b", help="Slice: rep, team, source, segment, product, "
                     "pipeline or a custom field. Repeatable."),
    ] = None,
    period: PeriodOption = "all",
    start: FromOption = None,
    end: ToOption = None,
    where: WhereOption = None,
    team: TeamOption = None,
    rep: RepOption = None,
    range: RangeOption = None,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Compute KPIs, sliced and by period: the scorecard.

    Without --from/--to: month to date (--range all: all time; with --period: all time).

    Example: saleskpi kpi calls meetings win_rate revenue --by rep --range last_month

    One team's reps: saleskpi kpi revenue win_rate --by rep --team North
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.scorecard import ScorecardParams, scorecard_card
    from saleskpi.views.scorecard import scorecard as scorecard_view

    params = ScorecardParams(kpis=kpis, by=by or [], period=period,
                             start=day(start), end=day(end),
                             where=with_filters(where, rep=rep, team=team),
                             range=range, limit=limit, offset=offset)
    kpi_service = service()
    # The question's checks and its computation read one open store.
    with kpi_service.sharing_reads():
        if format is Format.csv:
            # No total rows, no page model: CSV prints the rows alone, and not computing
            # the totals halves the queries (benchmarks/cli_vs_sql.py).
            card = scorecard_card(kpi_service, LOCAL, params, totals=False)
        else:
            view = scorecard_view(kpi_service, LOCAL, params)
            card = view.source
    # Tables and CSV show the same page as the JSON; totals and averages cover all rows.
    shown = card.rows[offset:None if limit is None else offset + limit]
    if format is Format.csv:
        from saleskpi.surfaces.cli.output_csv import scorecard_csv

        write_csv(scorecard_csv(card, shown))
    elif format is Format.json:
        from saleskpi.views.text import to_json

        write(to_json(view.to_json()))
    else:
        from saleskpi.surfaces.cli.output import (
            range_line,
            say_if_outside_the_data,
            scorecard_table,
        )

        out.print(range_line(view.range), highlight=False)
        out.print(scorecard_table(card, kpi_service.catalog, shown))
        say_if_outside_the_data(view.range)


@app.command("kpis")
def kpis_command(
    key: Annotated[
        str | None, typer.Argument(help="One KPI to explain: measures, formula and SQL.")
    ] = None,
    limit: LimitOption = None,
    offset: OffsetOption = 0,
    format: Annotated[CatalogFormat, typer.Option("--format", "-f")] = CatalogFormat.table,
) -> None:
    """List the KPI catalogue with definitions, or explain one KPI.

    Example: saleskpi kpis --format json   (or: saleskpi kpis win_rate)
    """
    from saleskpi.views.base import LOCAL
    from saleskpi.views.catalogue import CatalogueParams, ExplainParams, catalogue, explain_kpi
    from saleskpi.views.text import to_json, unit_name

    lang = current_language()
    kpi_service = service()
    if key is not None:
        explained = explain_kpi(kpi_service, LOCAL, ExplainParams(key=key, lang=lang))
        if format is CatalogFormat.json:
            write(to_json(explained.to_json()))
            return
        from rich.markup import escape

        out.print(f"[bold]{escape(explained.key)}[/] — {escape(explained.name)}",
                  highlight=False)
        if explained.description:
            out.print(escape(explained.description), highlight=False)
        better = _("yes") if explained.higher_is_better else _("no")
        out.print(f"{explained.kind}, {unit_name(explained.unit)}, {explained.group}; "
                  f"{_('Higher is better')}: {better}", highlight=False)
        if explained.formula:
            out.print(escape(f"{_('Formula')}: {explained.formula}"), highlight=False)
        for m in explained.measures:
            part = f"{m.role} ({m.kpi})" if m.kpi else m.role
            where = f"; {' and '.join(m.where)}" if m.where else ""
            out.print(escape(f"  {part}: {m.entity}.{m.agg}({m.column or '*'}), "
                             f"{m.time}{where}"), highlight=False)
        for compiled in explained.sql or []:
            out.print(escape(f"\n-- {compiled.entity}, {compiled.time}"), highlight=False)
            out.print(escape(compiled.sql), highlight=False)
        return
    try:
        view = catalogue(kpi_service, LOCAL, CatalogueParams(lang=lang, limit=limit, offset=offset))
    except InvalidQuery as exc:
        raise fail(str(exc)) from None
    if format is CatalogFormat.markdown:
        from saleskpi.catalog.reference import render_reference

        write(render_reference(view.source).rstrip("\n"))
        return
    if format is CatalogFormat.json:
        write(to_json(view.to_json()))
        return
    from rich.table import Table

    table = Table(header_style="bold", show_lines=True)
    for title in (_("Key"), _("Name"), _("Unit"), _("Definition")):
        table.add_column(title)
    for entry in view.kpis:
        table.add_row(entry.key, entry.name, unit_name(entry.unit), entry.description)
    out.print(table)

