"""Reading CSV files and Excel workbooks into tables of text.

Russian and Ukrainian Excel saves CSV as cp1251 with ``;`` separators, other
tools as UTF-8 (often with a BOM) with ``,``: both are detected here, so users
never have to say which they have (``encoding.py`` says which encodings are read
and which are refused). Every value stays text until validation, which knows the
column's type and can name the exact row of a bad value.

What no export holds is refused here, naming the file, row and column: a header
naming a column twice, more than ``MAX_COLUMNS`` columns, a value over
``MAX_CELL`` characters, control characters (NUL, ...) in a value, a folder
where a file should be, a damaged workbook, one that unpacks to far more than it
weighs (a zip bomb).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport
from saleskpi.sources.ingest.encoding import EncodingProblem, decode
from saleskpi.sources.ingest.workbook import WorkbookProblem, check_workbook

if TYPE_CHECKING:
    import pandas as pd

HEADER_ROW = 1  # spreadsheet row numbers: the header is row 1, data starts at 2
# Exports with hundreds of custom fields exist; tens of thousands of columns are a
# broken or hostile file (20,000 took minutes to reach validation).
MAX_COLUMNS = 1000
# Python's csv module refuses longer fields (its default field_size_limit);
# workbooks are held to the same limit (Excel itself keeps at most 32,767).
MAX_CELL = 128 * 1024
# Rows with the wrong number of values listed per file; the rest are counted.
MAX_ROW_ERRORS = 10
# Control characters have no place in a sales record; tab and line breaks do
# (a multi-line comment). NUL in a name broke lookups and exports.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SNIFF_SAMPLE = 64 * 1024


@dataclass
class RawTable:
    """One file or sheet as text, with the spreadsheet row number of every row."""

    name: str  # file name as the user knows it: "deals.csv" or "book.xlsx:deals"
    key: str  # what a mapping matches on: the file name or the sheet name
    frame: pd.DataFrame  # all values str or None; column "_row" holds row numbers
    decimal_comma: bool = False  # the file's own convention for amounts


def read_path(path: Path, report: ImportReport,
              take: Callable[[Path], bool] | None = None) -> list[RawTable]:
    """Read a folder of CSV files, one CSV file, or one .xlsx workbook.

    ``take``: offered every file first; a file it takes (the fast path of an import,
    ``fast.py``) is not read here.
    """
    taken = 0
    if path.is_dir():
        tables: list[RawTable] = []
        for child in sorted(path.iterdir()):
            suffix = child.suffix.lower()
            if suffix not in (".csv", ".txt", ".tsv", ".xlsx") or child.name.startswith("~$"):
                continue
            if take is not None and take(child):
                taken += 1
                continue
            if not child.is_file():
                report.error(child.name, None, None, _("this is a folder, not a file"),
                             _("Rename or remove it: only CSV and XLSX files are imported."))
            elif suffix == ".xlsx":
                tables.extend(read_xlsx(child, report))
            else:
                tables.extend(read_csv(child, report))
        if not tables and not taken and not report.errors:
            report.error(
                str(path), None, None,
                _("no CSV or XLSX files found"),
                _("Put one CSV file per entity (deals.csv, reps.csv, ...) in the folder."),
            )
        return tables
    if not path.exists():
        report.error(str(path), None, None, _("file or folder not found"))
        return []
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path, report)
    if take is not None and take(path):
        return []
    return read_csv(path, report)


def detect_delimiter(text: str) -> str:
    sample = "\n".join(text[:_SNIFF_SAMPLE].splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = text.split("\n", 1)[0]
        return max(",;\t", key=header.count)


def read_csv(path: Path, report: ImportReport) -> list[RawTable]:
    import pandas as pd  # only here: slow to import, and the fast path needs none

    try:
        data = path.read_bytes()
    except OSError as exc:
        report.error(path.name, None, None,
                     _("cannot read the file: {reason}", reason=exc.strerror or exc))
        return []
    try:
        text, _encoding = decode(data)
    except EncodingProblem as problem:
        report.error(path.name, problem.line, None, problem.message, problem.hint)
        return []
    if not text.strip():
        report.error(path.name, None, None, _("the file is empty"))
        return []
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    header: list[str] = []
    wrong_lengths = 0
    line_no = HEADER_ROW
    try:
        header = [h.strip() for h in next(reader)]
        if not _header_ok(path.name, header, report):
            return []
        for line_no, record in enumerate(reader, start=HEADER_ROW + 1):
            if not record or all(not v.strip() for v in record):
                continue  # blank lines are common at the end of exports
            if len(record) != len(header):
                wrong_lengths += 1
                if wrong_lengths <= MAX_ROW_ERRORS:
                    report.error(
                        path.name, line_no, None,
                        _("expected {expected} values, found {found}",
                          expected=len(header), found=len(record)),
                        _("Check for an unquoted separator ('{sep}') inside a value.",
                          sep=delimiter),
                    )
                else:
                    report.errors_not_shown += 1
                continue
            rows.append([v.strip() or None for v in record])
            numbers.append(line_no)
    except csv.Error as exc:
        row = line_no + 1 if header else HEADER_ROW
        if "field larger" in str(exc):  # the one error Python 3.11+ raises here
            report.error(path.name, row, None,
                         _("a value is longer than {limit} characters", limit=MAX_CELL),
                         _("Shorten the value, or leave that column out of the export."))
        else:
            report.error(path.name, row, None,
                         _("cannot read the file as CSV: {reason}", reason=exc),
                         _("Save the file again as CSV UTF-8."))
        return []
    if wrong_lengths:
        return []
    if _CONTROL.search(text) and not _values_ok(path.name, header, rows, numbers, report):
        return []
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_row"] = numbers
    return [RawTable(path.name, path.name, frame, decimal_comma=delimiter == ";")]


def _header_ok(name: str, header: Sequence[str | None], report: ImportReport) -> bool:
    """Whether the header names every column once; errors go to ``report``."""
    if len(header) > MAX_COLUMNS:
        report.error(name, HEADER_ROW, None,
                     _("{count} columns; at most {limit} are read", count=len(header),
                       limit=MAX_COLUMNS),
                     _("Leave the columns you do not need out of the export."))
        return False
    if any(not h for h in header):
        report.error(
            name, HEADER_ROW, None,
            _("a column has no name in the header row"),
            _("Give every column a name in the first row."),
        )
        return False
    seen: dict[str, int] = {}
    ok = True
    for position, column in enumerate(header, start=1):
        assert column is not None
        if column in seen:
            report.error(name, HEADER_ROW, column,
                         _("the header names column {column!r} twice (columns {first} and "
                           "{second})", column=column, first=seen[column], second=position),
                         _("Rename or remove one of the two columns."))
            ok = False
        seen.setdefault(column, position)
        if _CONTROL.search(column):
            report.error(name, HEADER_ROW, column.encode("unicode_escape").decode("ascii"),
                         _("a column name holds a control character"),
                         _("Remove invisible characters from the header row."))
            ok = False
    return ok


def _values_ok(name: str, header: Sequence[str], rows: Iterable[Sequence[str | None]],
               numbers: Iterable[int], report: ImportReport) -> bool:
    """Whether no value holds a control character; the first few are reported."""
    found = 0
    for row, values in zip(numbers, rows, strict=True):
        for column, value in zip(header, values, strict=True):
            if value is None or not (bad := _CONTROL.search(value)):
                continue
            found += 1
            if found <= MAX_ROW_ERRORS:
                report.error(name, row, column,
                             _("the value holds the control character {char} (at position "
                               "{position})", char=repr(bad.group())[1:-1],
                               position=bad.start() + 1),
                             _("Remove invisible characters from the value; a NUL byte "
                               "often means the file was saved as UTF-16: save it as "
                               "UTF-8."))
            else:
                report.errors_not_shown += 1
    return not found


class _BadCell(Exception):
    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


def _cell_text(value: object) -> str | None:
    """Excel cells arrive typed; turn them into the text a CSV would hold."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    if len(text) > MAX_CELL:
        raise _BadCell(_("a value is longer than {limit} characters", limit=MAX_CELL),
                       _("Shorten the value, or leave that column out of the export."))
    return text or None


def read_xlsx(path: Path, report: ImportReport) -> list[RawTable]:
    from openpyxl import load_workbook

    try:
        check_workbook(path)
        workbook = load_workbook(path, read_only=True, data_only=True)
    except WorkbookProblem as problem:
        report.error(path.name, None, None, problem.message, problem.hint)
        return []
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        report.error(path.name, None, None, _("cannot open the workbook: {exc}", exc=exc),
                     _("Save it again from Excel as .xlsx."))
        return []
    tables = []
    try:
        for sheet in workbook.worksheets:
            table = _read_sheet(path.name, sheet, report)
            if table is not None:
                tables.append(table)
    finally:
        workbook.close()
    return tables


def _read_sheet(file: str, sheet: Any, report: ImportReport) -> RawTable | None:
    import pandas as pd  # only here: slow to import, and the fast path needs none

    name = f"{file}:{sheet.title}"
    line_no, column = HEADER_ROW, None
    try:
        rows_iter = sheet.iter_rows(values_only=True)
        first = next(rows_iter, None)
        if first is None:
            return None
        header = [_cell_text(h) for h in first[: MAX_COLUMNS + 1]]
        while header and header[-1] is None:
            header.pop()
        if not _header_ok(name, header, report):
            return None
        columns = [str(h) for h in header]
        rows: list[list[str | None]] = []
        numbers: list[int] = []
        for line_no, record in enumerate(rows_iter, start=HEADER_ROW + 1):
            values = []
            for position, value in enumerate(record[: len(columns)]):
                column = columns[position]  # named in the error if the cell is refused
                values.append(_cell_text(value))
            if all(v is None for v in values):
                continue
            values += [None] * (len(header) - len(values))
            rows.append(values)
            numbers.append(line_no)
            column = None
    except _BadCell as bad:
        report.error(name, line_no, column, bad.message, bad.hint)
        return None
    except Exception as exc:  # openpyxl and its XML parser raise many kinds
        report.error(name, line_no, None,
                     _("the workbook is damaged here: {exc}", exc=exc),
                     _("Open it in Excel and save it again as .xlsx."))
        return None
    if not _values_ok(name, columns, rows, numbers, report):
        return None
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    frame["_row"] = numbers
    return RawTable(name, sheet.title, frame)
