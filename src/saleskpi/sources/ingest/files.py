"""Reading CSV files and Excel workbooks into tables of text.

Russian and Ukrainian Excel saves CSV as cp1251 with ``;`` separators, other
tools as UTF-8 (often with a BOM) with ``,``: both are detected here, so users
never have to say which they have. Every value stays text until validation,
which knows the column's type and can name the exact row of a bad value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import ImportReport

HEADER_ROW = 1  # spreadsheet row numbers: the header is row 1, data starts at 2


@dataclass
class RawTable:
    """One file or sheet as text, with the spreadsheet row number of every row."""

    name: str  # file name as the user knows it: "deals.csv" or "book.xlsx:deals"
    key: str  # what a mapping matches on: the file name or the sheet name
    frame: pd.DataFrame  # all values str or None; column "_row" holds row numbers
    decimal_comma: bool = False  # the file's own convention for amounts


def read_path(path: Path, report: ImportReport) -> list[RawTable]:
    """Read a folder of CSV files, one CSV file, or one .xlsx workbook."""
    if path.is_dir():
        tables: list[RawTable] = []
        for child in sorted(path.iterdir()):
            if child.suffix.lower() in (".csv", ".txt", ".tsv"):
                tables.extend(read_csv(child, report))
            elif child.suffix.lower() == ".xlsx" and not child.name.startswith("~$"):
                tables.extend(read_xlsx(child, report))
        if not tables and not report.errors:
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
    return read_csv(path, report)


def detect_encoding(data: bytes) -> str:
    """UTF-8 (with or without BOM) if the bytes decode as UTF-8, else cp1251."""
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # charset-normalizer guesses well on long texts but confuses cp1251 with
        # other Cyrillic code pages on short ones; exports from Russian and
        # Ukrainian Windows machines are cp1251.
        from charset_normalizer import from_bytes

        best = from_bytes(data[:200_000]).best()
        guess = best.encoding if best else "cp1251"
        return guess if guess in ("cp1251", "windows_1251", "utf_16") else "cp1251"
    return "utf-8"


def detect_delimiter(text: str) -> str:
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        header = text.split("\n", 1)[0]
        return max(",;\t", key=header.count)


def read_csv(path: Path, report: ImportReport) -> list[RawTable]:
    data = path.read_bytes()
    encoding = detect_encoding(data)
    text = data.decode(encoding)
    if not text.strip():
        report.error(path.name, None, None, _("the file is empty"))
        return []
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    if any(not h for h in header):
        report.error(
            path.name, HEADER_ROW, None,
            _("a column has no name in the header row"),
            _("Give every column a name in the first row."),
        )
        return []
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    for line_no, record in enumerate(reader, start=HEADER_ROW + 1):
        if not record or all(not v.strip() for v in record):
            continue  # blank lines are common at the end of exports
        if len(record) != len(header):
            report.error(
                path.name, line_no, None,
                _("expected {expected} values, found {found}", expected=len(header),
                  found=len(record)),
                _("Check for an unquoted separator ('{sep}') inside a value.", sep=delimiter),
            )
            continue
        rows.append([v.strip() or None for v in record])
        numbers.append(line_no)
    frame = pd.DataFrame(rows, columns=header, dtype=object)
    frame["_row"] = numbers
    return [RawTable(path.name, path.name, frame, decimal_comma=delimiter == ";")]


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
    return text or None


def read_xlsx(path: Path, report: ImportReport) -> list[RawTable]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        report.error(path.name, None, None, _("cannot open the workbook: {exc}", exc=exc),
                     _("Save it again from Excel as .xlsx."))
        return []
    tables = []
    for sheet in workbook.worksheets:
        rows_iter = sheet.iter_rows(values_only=True)
        first = next(rows_iter, None)
        if first is None:
            continue
        header = [_cell_text(h) for h in first]
        while header and header[-1] is None:
            header.pop()
        name = f"{path.name}:{sheet.title}"
        if any(h is None for h in header):
            report.error(name, HEADER_ROW, None, _("a column has no name in the header row"),
                         _("Give every column a name in the first row."))
            continue
        rows: list[list[str | None]] = []
        numbers: list[int] = []
        for line_no, record in enumerate(rows_iter, start=HEADER_ROW + 1):
            values = [_cell_text(v) for v in record[: len(header)]]
            if all(v is None for v in values):
                continue
            values += [None] * (len(header) - len(values))
            rows.append(values)
            numbers.append(line_no)
        frame = pd.DataFrame(rows, columns=[str(h) for h in header], dtype=object)
        frame["_row"] = numbers
        tables.append(RawTable(name, sheet.title, frame))
    workbook.close()
    return tables
