"""The numbers behind every chart and table, and their CSV and XLSX downloads.

A page builds ``DataTable`` objects once; the template shows them and the
download serves exactly the same cells (the raw values, not the formatted text),
with text a spreadsheet would run as a formula neutralised (``output.safe_cell``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from openpyxl import Workbook
from starlette.responses import Response

from saleskpi.domain.query import KpiValue, plain_number
from saleskpi.domain.text import safe_cell
from saleskpi.surfaces.web.formatting import Formatter, is_money
from saleskpi.surfaces.web.i18n import _
from saleskpi.views.text import SMALL_SAMPLE, unavailable_text

ExportFormat = Literal["csv", "xlsx"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "xlsx")
# Characters an XLSX cell cannot hold (openpyxl refuses them).
_ILLEGAL_XLSX = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
Raw = str | int | float | None
T = TypeVar("T")
PAGE_PARAM = "page"  # ?page=N: the page of a long table (1 is the first)
# Page links around the current one; the first and the last are always shown.
PAGE_LINKS_AROUND = 2


class ValueLike(Protocol):
    """What a KPI cell needs of ``KpiValue`` or ``compare.Cell``."""

    value: float | None
    unit: str
    numerator: float | None
    denominator: float | None
    is_ratio: bool
    ci_low: float | None
    ci_high: float | None


@dataclass
class Column:
    key: str
    label: str
    numeric: bool = False
    unit: str | None = None  # for the XLSX number format
    sort_url: str | None = None  # a link that sorts the table on this column
    sorted: Literal["asc", "desc"] | None = None
    # Extra numbers exported beside the value (e.g. a rate's numerator): (key, label).
    parts: tuple[tuple[str, str], ...] = ()
    verbatim: bool = False  # the label is a name of the data (a column of a file): as it is


@dataclass
class Cell:
    raw: Raw
    text: str
    kpi: str | None = None
    rep: str | None = None
    period: str | None = None
    mark: str | None = None  # "better" / "worse": highlighted
    note: str = ""  # shown small under the value: counts, interval
    title: str = ""  # a tooltip
    small: bool = False  # a rate on fewer than SMALL_SAMPLE cases: read with care
    unit: str | None = None  # for the XLSX number format, when not the column's
    href: str | None = None
    parts: dict[str, Raw] = field(default_factory=dict)
    # The user's own words (a rep's or a team's name, a key): shown as they are, marked
    # translate="no" (tests/test_web.py's check for untranslated text skips them).
    verbatim: bool = False

    @property
    def data_value(self) -> str:
        """The raw value for ``data-value``: JSON-like, empty when there is none."""
        return "" if self.raw is None else str(self.raw)


@dataclass
class Row:
    cells: list[Cell]
    kind: str = "item"  # item, average, total
    rep: str | None = None


@dataclass(frozen=True)
class PageLink:
    number: int | None  # None: a gap ("…") between numbers
    text: str = ""
    href: str = ""
    current: bool = False


@dataclass
class Pager:
    """Which slice of a long table a page shows, and the links to the others.

    Pages are numbered from 1; a number out of range shows the nearest page, so an
    old bookmark after rows were deleted still opens. The download of a paged table
    holds every row: the page builds the whole table when asked for one.
    """

    number: int
    size: int
    total: int
    count: str  # "1–100 of 15,747"
    links: list[PageLink]
    previous: str | None = None
    next: str | None = None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first(self) -> int:
        """The index (from 0) of the page's first item."""
        return (self.number - 1) * self.size

    def slice(self, items: Sequence[T]) -> list[T]:
        return list(items[self.first:self.first + self.size])


def page_value(number: int) -> str | None:
    """``?page=`` for page ``number``: none for the first, so its address is the plain one."""
    return str(number) if number > 1 else None


def requested_page(text: str | None) -> int:
    """``?page=`` as a number from 1; anything else is the first page."""
    try:
        number = int((text or "").strip())
    except ValueError:
        return 1
    return max(1, number)


def paginate(total: int, size: int, asked: str | None, link: Callable[[int], str],
             fmt: Formatter) -> Pager:
    """The page ``asked`` for (``?page=``) of ``total`` items, ``size`` a page.

    ``link(n)`` is the address of page ``n`` with the view's other parameters.
    """
    pages = max(1, math.ceil(total / size))
    number = min(requested_page(asked), pages)
    shown = sorted({1, pages, *range(max(1, number - PAGE_LINKS_AROUND),
                                     min(pages, number + PAGE_LINKS_AROUND) + 1)})
    links: list[PageLink] = []
    for n in shown:
        if links and links[-1].number is not None and n - links[-1].number > 1:
            links.append(PageLink(None, "…"))
        links.append(PageLink(n, fmt.integer(n), link(n), n == number))
    first, last = (number - 1) * size + 1, min(number * size, total)
    count = _("{first}–{last} of {total}", first=fmt.integer(first if total else 0),
              last=fmt.integer(last), total=fmt.integer(total))
    return Pager(number, size, total, count, links,
                 previous=link(number - 1) if number > 1 else None,
                 next=link(number + 1) if number < pages else None)


@dataclass
class DataTable:
    id: str  # also the download's file name
    title: str
    columns: list[Column]
    rows: list[Row]
    note: str = ""
    pager: Pager | None = None  # set when ``rows`` is one page of a longer table

    def export_header(self) -> list[str]:
        header: list[str] = []
        for column in self.columns:
            header.append(column.label)
            header += [f"{column.label} ({label})" for _key, label in column.parts]
        return header

    def export_rows(self) -> list[list[tuple[Raw, str | None]]]:
        """Per row: (value, unit) of each exported cell, the parts after their value."""
        lines = []
        for row in self.rows:
            line: list[tuple[Raw, str | None]] = []
            for column, cell in zip(self.columns, row.cells, strict=True):
                line.append((cell.raw, cell.unit or column.unit))
                line += [(cell.parts.get(key), _part_unit(key, cell.unit or column.unit))
                         for key, _label in column.parts]
            lines.append(line)
        return lines


def _part_unit(key: str, unit: str | None) -> str | None:
    return "ratio" if key.startswith("ci_") else ("count" if unit == "ratio" else None)


def text_cell(text: str | None, *, href: str | None = None, rep: str | None = None,
              verbatim: bool | None = None) -> Cell:
    """Text as it is; a rep's cell (``rep``) is their name, the user's own word."""
    return Cell(text, text or "—", href=href, rep=rep,
                verbatim=rep is not None if verbatim is None else verbatim)


def number_cell(value: float | None, unit: str, fmt: Formatter, *,
                mark: str | None = None) -> Cell:
    return Cell(plain_number(value), fmt.value(value, unit), mark=mark, unit=unit)


def kpi_cell(value: ValueLike, kpi: str, fmt: Formatter, *, rep: str | None = None,
             period: str | None = None, mark: str | None = None,
             href: str | None = None) -> Cell:
    """A KPI value with its counts (a rate) and 95% interval (a proportion)."""
    notes = []
    parts: dict[str, Raw] = {}
    if value.is_ratio:
        parts = {"numerator": plain_number(value.numerator),
                 "denominator": plain_number(value.denominator)}
        if value.denominator is not None and value.unit == "ratio":
            notes.append(f"{fmt.integer(value.numerator or 0)}/{fmt.integer(value.denominator)}")
    if value.ci_low is not None and value.ci_high is not None:
        parts |= {"ci_low": plain_number(value.ci_low), "ci_high": plain_number(value.ci_high)}
        notes.append(f"{fmt.percent(value.ci_low)}–{fmt.percent(value.ci_high)}")
    unavailable = getattr(value, "unavailable", None)
    if isinstance(value, KpiValue) and unavailable:
        notes.append(unavailable_text(value))
    small = (value.is_ratio and value.unit == "ratio" and value.denominator is not None
             and value.denominator < SMALL_SAMPLE)
    return Cell(plain_number(value.value), fmt.value(value.value, value.unit), kpi=kpi,
                rep=rep, period=period, mark=mark, note=" · ".join(notes), parts=parts,
                small=small, unit=value.unit, href=href if value.value is not None else None)


def kpi_column(key: str, label: str, unit: str, *, ratio: bool = False,
               interval: bool = False, sort_url: str | None = None,
               sorted: Literal["asc", "desc"] | None = None) -> Column:
    """A KPI's column; a rate also exports its counts, a proportion its 95% interval."""
    parts: tuple[tuple[str, str], ...] = ()
    if ratio:
        parts += (("numerator", _("numerator")), ("denominator", _("denominator")))
    if interval:
        parts += (("ci_low", _("95% interval, low")), ("ci_high", _("95% interval, high")))
    return Column(key, label, numeric=True, unit=unit, sort_url=sort_url, sorted=sorted,
                  parts=parts)


# -- downloads --------------------------------------------------------------------------
def _safe(value: Raw) -> Raw:
    cell = safe_cell(value)
    return cell if isinstance(cell, str | int | float) or cell is None else str(cell)


def table_csv(table: DataTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_safe(h) for h in table.export_header()])
    for line in table.export_rows():
        writer.writerow([_safe(v) for v, _unit in line])
    return buffer.getvalue()


def _xlsx_format(unit: str | None) -> str | None:
    if unit == "ratio":
        return "0.0%"
    if unit is not None and (is_money(unit) or unit == "count"):
        return "#,##0"
    if unit is not None:
        return "#,##0.0"
    return None


def table_xlsx(table: DataTable) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.id[:31]
    sheet.append([_xlsx_text(h) for h in table.export_header()])
    for line in table.export_rows():
        sheet.append([_xlsx_text(v) for v, _unit in line])
        for cell, (_value, unit) in zip(sheet[sheet.max_row], line, strict=True):
            number_format = _xlsx_format(unit)
            if number_format and isinstance(cell.value, int | float):
                cell.number_format = number_format
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_text(value: Raw) -> Raw:
    safe = _safe(value)
    return _ILLEGAL_XLSX.sub("", safe) if isinstance(safe, str) else safe


def download(table: DataTable, fmt: ExportFormat) -> Response:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", table.id)
    if fmt == "csv":
        body: bytes = table_csv(table).encode("utf-8-sig")  # BOM: Excel reads UTF-8
        media = "text/csv; charset=utf-8"
    else:
        body = table_xlsx(table)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


def find_table(tables: Sequence[DataTable], table_id: str) -> DataTable | None:
    return next((t for t in tables if t.id == table_id), None)
