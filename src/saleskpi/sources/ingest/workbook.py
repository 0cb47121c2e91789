"""A workbook is a zip file: check what it unpacks to before openpyxl reads it.

An .xlsx of 857 KB whose sheet unpacks to 300 MB kept an import busy for
minutes; a real export packs about ten to one. ``check_workbook`` reads only
the zip directory (the sizes it declares; unpacking stops at the declared size,
so a lying entry cannot grow past it).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from saleskpi.domain.i18n import _

# Everything a workbook unpacks to; a 50 MB upload of real data stays well below.
MAX_UNPACKED = 256 * 1024 * 1024
# Packed-to-unpacked ratio of one entry, checked for entries over RATIO_FROM bytes:
# sheets of real exports pack 5 to 20 times; zip bombs hundreds of times.
MAX_RATIO = 100
RATIO_FROM = 1024 * 1024
MAX_ENTRIES = 10_000
_MB = 1024 * 1024


@dataclass(frozen=True)
class WorkbookProblem(Exception):
    message: str
    hint: str


def check_workbook(path: Path) -> None:
    """``WorkbookProblem`` for a file that is no zip or unpacks to too much."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise WorkbookProblem(
            _("not an .xlsx workbook (it is no zip file: {reason})", reason=exc),
            _("Save it again from Excel as .xlsx.")) from None
    if len(entries) > MAX_ENTRIES:
        raise WorkbookProblem(
            _("the workbook holds {count} parts; at most {limit} are read",
              count=len(entries), limit=MAX_ENTRIES),
            _("Save it again from Excel as .xlsx."))
    unpacked = sum(e.file_size for e in entries)
    if unpacked > MAX_UNPACKED:
        raise WorkbookProblem(
            _("the workbook unpacks to {size} MB; at most {limit} MB are read",
              size=unpacked // _MB, limit=MAX_UNPACKED // _MB),
            _("Split the data into several workbooks, or export it as CSV."))
    for entry in entries:
        if entry.file_size > RATIO_FROM and entry.file_size > MAX_RATIO * max(
                entry.compress_size, 1):
            raise WorkbookProblem(
                _("{part} unpacks {ratio} times its packed size (at most {limit} times): "
                  "this is not what Excel writes", part=entry.filename,
                  ratio=entry.file_size // max(entry.compress_size, 1), limit=MAX_RATIO),
                _("Save it again from Excel as .xlsx, or export the data as CSV."))
