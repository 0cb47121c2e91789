"""What the bad-file tests, the import fuzz test and benchmarks/fuzz_imports.py share:
a fingerprint of the analytics store and builders of broken workbooks.

The fingerprint is computed with hand-written SQL over every table of
``analytics.duckdb``, never with the code under test.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
from openpyxl import Workbook


def store_fingerprint(workspace: Path) -> dict[str, tuple[int, str | None]]:
    """Per table of the analytics store: (rows, md5 of all rows in a fixed order)."""
    path = workspace / "analytics.duckdb"
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name").fetchall()]
        result = {}
        for table in tables:
            row = con.execute(
                f'SELECT count(*), md5(string_agg(t::VARCHAR, chr(30) ORDER BY t::VARCHAR)) '
                f'FROM "{table}" t').fetchone()
            assert row is not None
            result[table] = (int(row[0]), row[1])
        return result
    finally:
        con.close()


def workbook_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """An .xlsx with one sheet per entry, rows as given."""
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite_entries(data: bytes, change: Callable[[str, bytes], bytes]) -> bytes:
    """``data`` (an .xlsx) with each entry's content passed through ``change(name, content)``."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            target.writestr(item.filename, change(item.filename, source.read(item.filename)))
    return out.getvalue()


def truncated_sheet(data: bytes, keep: float = 0.5) -> bytes:
    """The workbook with its sheets' XML cut off after ``keep`` of their length."""
    return rewrite_entries(data, lambda name, xml: xml[: max(1, int(len(xml) * keep))]
                           if name.startswith("xl/worksheets/sheet") else xml)


def zip_bomb(path: Path, unpacked: int) -> None:
    """A workbook whose first sheet unpacks to about ``unpacked`` bytes (rows of one
    short value each, as a real sheet would hold): written in chunks, never held whole."""
    base = zipfile.ZipFile(io.BytesIO(workbook_bytes({"reps": [["id", "name"], ["r1", "A"]]})))
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for item in base.infolist():
            content = base.read(item.filename)
            if not item.filename.startswith("xl/worksheets/sheet"):
                target.writestr(item.filename, content)
                continue
            head, tail = content.split(b"</sheetData>")
            with target.open(item.filename, "w", force_zip64=True) as sheet:
                sheet.write(head)
                chunk = row * (1024 * 1024 // len(row))
                for _ in range(unpacked // len(chunk)):
                    sheet.write(chunk)
                sheet.write(b"</sheetData>" + tail)
