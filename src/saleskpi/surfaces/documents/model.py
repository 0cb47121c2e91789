"""What a document holds: tables of cells, each with a raw value and its text."""

from __future__ import annotations

from dataclasses import dataclass, field

Raw = str | int | float | None


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False
    unit: str | None = None  # the XLSX number format: ratio, count, a currency…


@dataclass(frozen=True)
class Cell:
    raw: Raw
    text: str
    mark: str | None = None  # "better" / "worse": coloured
    unit: str | None = None  # when not the column's


@dataclass(frozen=True)
class Row:
    cells: list[Cell]
    kind: str = "item"  # item, total, average: totals in bold


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[Column]
    rows: list[Row]
    note: str = ""
    sheet: str = ""  # a short name for its XLSX sheet (default: the title, cut to fit)


@dataclass(frozen=True)
class Document:
    title: str
    lines: list[str] = field(default_factory=list)  # what it covers: period, scope, date
    tables: list[Table] = field(default_factory=list)
    empty_text: str = "—"  # what a table without rows says, in the reader's language
