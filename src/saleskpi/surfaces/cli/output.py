"""Scorecards and import reports for people (Rich tables); CSV is ``output_csv``'s."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from saleskpi.catalog.load import Catalog
from saleskpi.domain.i18n import _, current_language
from saleskpi.domain.query import KpiValue, ResultRow, Scorecard
from saleskpi.domain.reports import ImportReport
from saleskpi.service.core import averages
from saleskpi.views.base import RangeInfo
from saleskpi.views.text import (
    SMALL_SAMPLE,
    format_value,
    unavailable_text,
    unit_name,
)


def _cell(value: KpiValue) -> Text:
    if value.unavailable:
        return Text(unavailable_text(value), style="dim")
    text = format_value(value.value, value.unit)
    small = value.denominator is not None and value.denominator < SMALL_SAMPLE
    if value.is_ratio and value.unit == "ratio" and small:
        num = format_value(value.numerator or 0, "count")
        den = format_value(value.denominator, "count")
        return Text(f"{text} ({num}/{den})", style="yellow")
    return Text(text)


def scorecard_table(scorecard: Scorecard, catalog: Catalog,
                    rows: list[ResultRow] | None = None) -> Table:
    """``rows``: the rows to show (a page); totals and averages are of all rows."""
    query = scorecard.query
    kpis = list(dict.fromkeys(query.kpis))
    lang = current_language()
    table = Table(show_lines=False, header_style="bold", row_styles=["", "dim"])
    keys = [*query.by, *(["period"] if query.period != "all" else [])]
    titles = {"rep": _("Rep"), "team": _("Team"), "source": _("Source"),
              "segment": _("Segment"), "product": _("Product"), "pipeline": _("Pipeline"),
              "period": _("Period")}
    for key in keys:
        table.add_column(titles.get(key, key), no_wrap=True)
    for key in kpis:
        spec = catalog.get(key)
        unit = scorecard.units[key]
        suffix = {"ratio": "", "count": ""}.get(unit, f", {unit_name(unit)}")
        table.add_column(f"{spec.display_name(lang)}{suffix}", justify="right")

    def key_text(row: ResultRow, key: str) -> str:
        if key == "rep":
            return row.labels.get("rep_name") or row.keys.get("rep") or "—"
        return row.keys.get(key) or "—"

    for row in (scorecard.rows if rows is None else rows):
        table.add_row(*[key_text(row, k) for k in keys], *[_cell(row.values[k]) for k in kpis])
    if query.by:
        table.add_section()
        for row in scorecard.totals:
            first = [_("Total")] + [""] * (len(query.by) - 1)
            period = [row.keys.get("period") or ""] if "period" in keys else []
            table.add_row(*first, *period, *[_cell(row.values[k]) for k in kpis],
                          style="bold")
        for row in averages(scorecard):
            label = _("Team average") if "rep" in query.by else _("Average")
            first = [label] + [""] * (len(query.by) - 1)
            period = [row.keys.get("period") or ""] if "period" in keys else []
            table.add_row(*first, *period, *[_cell(row.values[k]) for k in kpis],
                          style="italic")
    return table


def print_import_report(console: Console, report: ImportReport) -> None:
    title = _("Dry run: nothing was written") if report.dry_run else _("Import")
    source = _("source")
    table = Table(title=f"{title} ({source}: {report.source})", header_style="bold")
    for column in (_("Entity"), _("Inserted"), _("Updated"), _("Unchanged"), _("Rejected")):
        table.add_column(column, justify="left" if column == _("Entity") else "right")
    for name, counts in report.entities.items():
        table.add_row(name, str(counts.inserted), str(counts.updated), str(counts.unchanged),
                      str(counts.rejected))
    console.print(table)
    for warning in report.warnings:
        console.print(Text(f"! {warning.message}", style="yellow"))
        for example in warning.examples:
            console.print(Text(f"    {example}", style="yellow"))
    for error in report.errors:
        console.print(Text(f"✗ {error.location()}: {error.message}", style="bold red"))
        if error.hint:
            console.print(Text(f"    {error.hint}", style="red"))
    if report.errors_not_shown:
        console.print(Text(_("… and {count} more errors of the same kinds",
                             count=report.errors_not_shown), style="red"))
    if report.ok:
        done = _("Nothing was written (dry run).") if report.dry_run else _("Done.")
        console.print(Text(done, style="green"))
    else:
        console.print(Text(_("Nothing was imported: fix the errors above and run the import "
                             "again."), style="bold red"))


def say_if_outside_the_data(info: RangeInfo) -> None:
    """Under a table of a period the data does not reach, when the data is (on stderr:
    pipes get the table alone)."""
    from saleskpi.surfaces.cli.app import err

    if info.data is not None:
        err.print("! " + _("Nothing was recorded in this period: the data runs from {first} "
                           "to {last}. Add --from {first} --to {last}, or --range all.",
                           first=info.data.start, last=info.data.end),
                  highlight=False, markup=False)


def range_line(info: RangeInfo) -> str:
    """The days a table covers, said above it: "Period: 2026-12-01 – 2026-12-02 (month to
    date, not over yet)"."""
    names = {"mtd": _("month to date"), "wtd": _("week to date"),
             "qtd": _("quarter to date"), "ytd": _("year to date"),
             "last_month": _("last month"), "all": _("all time"), "custom": ""}
    if info.start is None and info.end is None:
        span = _("all time")
        label = ""
    else:
        span = f"{info.start or '…'} – {info.end or '…'}"
        label = names.get(info.name, info.name)
    notes = [n for n in (label, _("not over yet") if info.partial else "") if n]
    return _("Period: {span}", span=span) + (f" ({', '.join(notes)})" if notes else "")
