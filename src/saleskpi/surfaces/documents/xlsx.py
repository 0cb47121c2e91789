"""A document as XLSX (openpyxl): one sheet per table, raw values with number formats.

The first row of each sheet is the header, then the rows, so the sheet reads back
as data; the document's title and lines are on a first sheet of their own. Text a
spreadsheet would run as a formula is neutralised (``domain.text.safe_cell``).
"""

from __future__ import annotations

import io
import re

from openpyxl import Workbook
from openpyxl.styles import Font

from saleskpi.domain.text import safe_cell
from saleskpi.surfaces.documents.model import Document, Raw

_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")  # openpyxl refuses them
_SHEET_NAME = re.compile(r"[\[\]:*?/\\]")


def number_format(unit: str | None) -> str | None:
    if unit == "ratio":
        return "0.0%"
    if unit == "count" or (unit is not None and len(unit) == 3 and unit.isupper()):
        return "#,##0"  # counts and money (a currency code): whole numbers
    if unit is not None:
        return "#,##0.0"
    return None


def _value(value: Raw) -> Raw:
    safe = safe_cell(value)
    if isinstance(safe, str):
        return _ILLEGAL.sub("", safe)
    return safe if isinstance(safe, int | float) or safe is None else str(safe)


def sheet_names(document: Document) -> list[str]:
    """One name per table: at most 31 characters, unique, none of Excel's forbidden ones."""
    names: list[str] = []
    for index, table in enumerate(document.tables, start=1):
        base = _SHEET_NAME.sub(" ", table.sheet or table.title).strip()[:28] or f"Table {index}"
        name, n = base, 2
        while name.lower() in {x.lower() for x in names}:
            name, n = f"{base[:27]} {n}", n + 1
        names.append(name)
    return names


def render_xlsx(document: Document) -> bytes:
    book = Workbook()
    about = book.active
    assert about is not None
    about.title = "saleskpi"
    about.append([_value(document.title)])
    about["A1"].font = Font(bold=True)
    for line in document.lines:
        about.append([_value(line)])
    bold = Font(bold=True)
    for table, name in zip(document.tables, sheet_names(document), strict=True):
        sheet = book.create_sheet(name)
        sheet.append([_value(c.label) for c in table.columns])
        for cell in sheet[1]:
            cell.font = bold
        for row in table.rows:
            sheet.append([_value(c.raw) for c in row.cells])
            for written, cell, column in zip(sheet[sheet.max_row], row.cells, table.columns,
                                             strict=True):
                fmt = number_format(cell.unit or column.unit)
                if fmt and isinstance(written.value, int | float):
                    written.number_format = fmt
                if row.kind in ("total", "average"):
                    written.font = bold
        for index, column in enumerate(table.columns, start=1):
            letter = sheet.cell(row=1, column=index).column_letter
            longest = max([len(column.label), *(len(r.cells[index - 1].text)
                                                for r in table.rows)])
            sheet.column_dimensions[letter].width = min(50, max(8, longest + 2))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
