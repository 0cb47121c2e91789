"""A grid of targets for one KPI, as pasted from a spreadsheet: reps down, periods across.

```
rep,2026-11,2026-12,2027-01
Olena Kovalenko,20,22,24
r7,15,,18
```

The first column names the rep (id or name), the header the periods (YYYY-MM for
months, or any day of the period: YYYY-MM-DD); an empty cell sets nothing. Commas,
semicolons or tabs (a paste from a spreadsheet) separate cells; "1 200", "1,200" and
"1,5" are numbers (``domain/typed_numbers.py``). Parsing checks the shape only;
whether the reps exist is the caller's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from fractions import Fraction

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.typed_numbers import parse_typed_number

MAX_CELLS = 10_000


@dataclass(frozen=True)
class GridCell:
    row: int  # 1-based line of the text
    column: str  # the header of the cell's column
    rep: str
    day: dt.date  # a day of the period
    value: Fraction


def _period_day(text: str) -> dt.date | None:
    cleaned = text.strip()
    try:
        return dt.date.fromisoformat(cleaned + "-01" if len(cleaned) == 7 else cleaned)
    except ValueError:
        return None


def parse_grid(text: str, name: str = "grid") -> list[GridCell]:
    """The non-empty cells of ``text``; ``InvalidQuery`` (``bad_grid``) naming the line and
    column of the first problem."""
    sample = text[:4096]
    delimiter = "\t" if "\t" in sample else (";" if sample.count(";") > sample.count(",")
                                             else ",")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2 or len(rows[0]) < 2:
        raise InvalidQuery(_("{name}: expected a header (rep, then one period per column) "
                             "and a line per rep", name=name), code="bad_grid")
    header = [h.strip() for h in rows[0]]
    days: list[dt.date] = []
    for column in header[1:]:
        day = _period_day(column)
        if day is None:
            raise InvalidQuery(_("{name}, line 1, column {column!r}: not a period; write "
                                 "the month as YYYY-MM (or a day of the period as "
                                 "YYYY-MM-DD)", name=name, column=column), code="bad_grid")
        days.append(day)
    cells: list[GridCell] = []
    for line, row in enumerate(rows[1:], start=2):
        rep = row[0].strip() if row else ""
        if not rep:
            raise InvalidQuery(_("{name}, line {line}: the first column names the rep",
                                 name=name, line=line), code="bad_grid")
        for column, day, raw in zip(header[1:], days, row[1:], strict=False):
            if not raw.strip():
                continue
            value = parse_typed_number(raw)
            if value is None:
                raise InvalidQuery(_("{name}, line {line}, column {column!r}: {value!r} is "
                                     "not a number", name=name, line=line, column=column,
                                     value=raw), code="bad_grid")
            cells.append(GridCell(line, column, rep, day, value))
    if len(cells) > MAX_CELLS:
        raise InvalidQuery(_("{name}: {count} targets; at most {limit} at once", name=name,
                             count=len(cells), limit=MAX_CELLS), code="bad_grid")
    return cells
