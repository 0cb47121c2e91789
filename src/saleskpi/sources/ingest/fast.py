"""The fast path of an import: canonical CSV files read, typed and checked in DuckDB.

A file named after an entity (``activities.csv``) in UTF-8 is read by DuckDB's
``read_csv`` into a table of text, and every value is typed and checked in SQL, as
set operations over the whole file: no Python runs per row. The typed rows leave as
an Arrow stream that the store stages (``Loader``), where references, counts and the
upsert are SQL already.

The rule that keeps this honest: the fast path accepts only what it reads exactly as
the Python path (``files.py``, ``validate.py``) would. A value in a form it does not
know for certain (a date in another layout, an amount with spaces, a word it does
not list), any value the Python path would refuse, a duplicate key, a control
character, a blank line in the middle: the whole file goes to the Python path
instead, which reads it as before and names every problem by file, row and column.
So a good file is fast, and a bad file gets exactly the errors it always got.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import zoneinfo
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saleskpi.domain.query import MAX_DATE, MIN_DATE
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.schema import ENTITIES, NUMBER_LIMIT, SQL_TYPES, Column, ColumnType, Entity
from saleskpi.domain.tables import TypedTable
from saleskpi.sources.ingest.files import MAX_CELL, _header_ok, detect_delimiter
from saleskpi.sources.ingest.validate import FALSE_WORDS, TRUE_WORDS
from saleskpi.store.dialects import string_literal

if TYPE_CHECKING:
    import duckdb

SUFFIX = ".csv"
BATCH_ROWS = 1 << 17  # rows per Arrow batch handed to the store
# Values Python's csv module and str.strip treat differently from DuckDB's reader and
# trim: control characters (the Python path refuses them), a lone carriage return
# (a line break to Python), Unicode spaces (str.strip removes them at a value's edges).
# (Deleting every other byte finds the ASCII control characters ten times faster than
# a regular expression.)
_NOT_CONTROL = bytes(range(32, 127)) + b"\t\n\r" + bytes(range(128, 256))
_C1_CONTROL = re.compile(rb"\xc2[\x80-\x9f]")
_LONE_CR = re.compile(rb"\r(?!\n)")
_UNICODE_SPACE = re.compile(
    rb"\xc2\xa0|\xe1\x9a\x80|\xe2\x80[\x80-\x8a\xa8\xa9\xaf]|\xe2\x81\x9f|\xe3\x80\x80")
# A blank line (or one of only separators) inside the file: Python skips it but counts
# it in the row numbers; a line break inside a quoted value may look the same.
_BLANK_LINE = re.compile(rb"\n[ \t,;]*\r?\n")
_NOT_SPACE = re.compile(rb"\S")
_HEAD_BYTES = 256 * 1024  # enough for the 64 KiB of text the delimiter is sniffed from
# DuckDB trims these; the bytes checks above leave no other character str.strip removes.
_STRIP = "' ' || chr(9) || chr(10) || chr(13)"
# Forms read exactly as datetime.fromisoformat and date.fromisoformat read them.
_DATE = r"\d{4}-\d{2}-\d{2}"
_TIME = r"[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?"
# A day-first dotted date, as amoCRM, Bitrix24 and Russian or Ukrainian Excel write
# them (31.01.2024, 31.01.2024 10:15[:00]): what validate._DOTTED reads, with the same
# formats (DuckDB's strptime refuses what Python's refuses: 31.02, 24:00, second 60).
_DOTTED = r"\d{1,2}\.\d{1,2}\.\d{4}( \d{1,2}:\d{2}(:\d{2})?)?"
_DOTTED_FORMATS = "['%d.%m.%Y %H:%M:%S', '%d.%m.%Y %H:%M', '%d.%m.%Y']"
# More runs of one UTC offset than this (centuries of daylight saving) go the slow way.
MAX_ZONE_RUNS = 400


@dataclass(frozen=True)
class _Layout:
    """What Python learned from a file's first bytes."""

    entity: Entity
    delimiter: str
    header: list[str]  # as the Python path names the columns (stripped)
    # No tab and no quoted value in the file: only a space can be at a value's edge (a
    # line break or carriage return inside a value needs quotes; a lone one is refused).
    spaces_only: bool


class FastImport:
    """The fast path of one import; ``close`` (or ``with``) frees what it read."""

    def __init__(self, zone: str, con: duckdb.DuckDBPyConnection | None = None, *,
                 source: str = "", straight: Collection[str] = ()) -> None:
        """``con``: the DuckDB store's own connection, where the checked rows are staged
        without leaving DuckDB, laid out as the store stages them (the entity's columns,
        ``datasource`` = ``source``, ``custom``, ``_row``, ``_file``); None: an in-memory
        database of its own, whose rows reach other stores as Arrow.

        ``straight``: entities whose stored table holds no row yet (a first import).
        Their rows are typed into a table of the store itself rather than a temporary
        one, so that the store can make it the stored table (``adopt_staged``) instead
        of copying every row into it: writing 2M activities once, not twice (~0.6 s).
        """
        import duckdb

        self.zone = zone
        self.shared = con is not None
        self.source = source
        self.straight = frozenset(straight) if con is not None else frozenset()
        self.con: duckdb.DuckDBPyConnection = con if con is not None else duckdb.connect()
        self.tables: list[TypedTable] = []
        self.files: list[str] = []  # the files read the fast way
        self._count = 0

    def close(self) -> None:
        if not self.shared:
            self.con.close()
            return
        for number in range(1, self._count + 1):
            self.con.execute(f'DROP TABLE IF EXISTS "typed_raw_{number}"')
            self.con.execute(f'DROP TABLE IF EXISTS "raw_{number}"')

    # -- taking files -----------------------------------------------------------------
    def take(self, path: Path) -> bool:
        """Read ``path`` the fast way; False (nothing reported) leaves it to the Python path."""
        if path.suffix.lower() != SUFFIX or not path.is_file():
            return False
        try:
            data = path.read_bytes()
        except OSError:
            return False
        layout = _layout(path, data)
        if layout is None:
            return False
        import duckdb

        self._count += 1
        name = f"raw_{self._count}"
        try:
            table = self._read(path, layout, name)
        except duckdb.Error:
            table = None  # a row DuckDB would not read: Python says which and why
        if table is None:
            self.con.execute(f'DROP TABLE IF EXISTS "typed_{name}"')
            self.con.execute(f'DROP TABLE IF EXISTS "{name}"')
            return False
        self.tables.append(table)
        self.files.append(path.name)
        return True

    def _read(self, path: Path, layout: _Layout, name: str) -> TypedTable | None:
        entity = layout.entity
        texts = {column: f'"c{i}"' for i, column in enumerate(layout.header)}
        columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(layout.header))) + "}"
        # Each value as the Python path holds it (stripped, empty as NULL), once. Every
        # value goes through the check: scanning the file's bytes in Python for values
        # that might need it cost more (7 s of a 23 s import at 2M activities).
        trimmed = ", ".join(f"{_stripped(t, layout.spaces_only)} AS {t}"
                            for t in texts.values())
        self.con.execute(
            f"""CREATE TEMP TABLE "{name}" AS SELECT {trimmed}
                FROM read_csv($path,
                header = true, auto_detect = false, columns = {columns},
                delim = $delim, quote = '"', escape = '"', strict_mode = true,
                null_padding = false, max_line_size = 8388608)""",
            {"path": str(path), "delim": layout.delimiter})
        offsets = self._zone_offsets(name, entity, texts)
        if offsets is None:
            return None
        typed: list[str] = []
        longest = f"greatest({', '.join(f'strlen({t})' for t in texts.values())})"
        checks = [f"coalesce({longest} > {MAX_CELL}, false)",
                  " AND ".join(f"{text} IS NULL" for text in texts.values())]
        for column in entity.columns:
            text = texts.get(column.name)
            if text is None:
                typed.append(f'CAST(NULL AS {SQL_TYPES[column.type]}) AS "{column.name}"')
                continue
            value, ok = _convert(column, text, offsets)
            typed.append(f'CAST({value} AS {SQL_TYPES[column.type]}) AS "{column.name}"')
            checks.append(f"{text} IS NULL OR NOT coalesce({ok}, false)" if column.required
                          else f"{text} IS NOT NULL AND NOT coalesce({ok}, false)")
        if entity.name == "deals" and "status" in texts:
            closed_at = texts.get("closed_at", "NULL")
            checks.append(f"lower({texts['status']}) IN ('won', 'lost') AND {closed_at} IS NULL")
        extra = [c for c in layout.header if c not in entity.column_names]
        custom = _custom(extra, texts)
        if self.shared:  # as the store stages rows (``stage_rows``): nothing to add there
            typed += ["CAST($source AS VARCHAR) AS datasource", f"CAST({custom} AS JSON) AS custom",
                      "CAST(rowid + 2 AS BIGINT) AS _row", "CAST($file AS VARCHAR) AS _file"]
        else:
            typed += [f"{custom} AS custom", "CAST(rowid + 2 AS BIGINT) AS _row"]
        # Typed and checked in one pass over the text, which then goes: a value that
        # fails its check makes the whole file the Python path's (which names it).
        # (Checking first and typing after read the text twice: 0.8 s of CPU more at
        # 2M activities.)
        bad = " OR ".join(f"({c})" for c in checks)
        kind = "OR REPLACE TABLE" if entity.name in self.straight else "TEMP TABLE"
        self.con.execute(
            f'CREATE {kind} "typed_{name}" AS SELECT {", ".join(typed)}, ({bad}) AS _bad '
            f'FROM "{name}"',
            {"source": self.source, "file": path.name} if self.shared else None)
        self.con.execute(f'DROP TABLE "{name}"')
        count, failed = self.con.execute(
            f'SELECT count(*), count(*) FILTER (WHERE _bad) FROM "typed_{name}"').fetchall()[0]
        if failed:
            return None
        self.con.execute(f'ALTER TABLE "typed_{name}" DROP COLUMN _bad')
        keys = ", ".join(f'"{k}"' for k in entity.key)
        duplicated = self.con.execute(
            f'SELECT 1 FROM "typed_{name}" GROUP BY {keys} HAVING count(*) > 1 LIMIT 1'
        ).fetchall()
        if duplicated:
            return None
        return TypedTable(path.name, entity.name, None, rows=self._stream(name),
                          count=int(count),
                          relation=f'"typed_{name}"' if self.shared else None)

    def _stream(self, name: str) -> Any:
        def rows() -> Any:
            return self.con.sql(f'SELECT * FROM "typed_{name}"').to_arrow_reader(BATCH_ROWS)
        return rows

    # -- time zones ---------------------------------------------------------------------
    def _zone_offsets(self, name: str, entity: Entity,
                      texts: dict[str, str]) -> str | None:
        """The company zone's UTC offset (seconds) of a local time ``{local}``, as SQL.

        Python reads a timestamp without an offset in the company zone with zoneinfo;
        here zoneinfo gives the offset of every hour the file's local times fall in, and
        SQL picks it by runs of one offset (a few per year: between two hours of the
        file, no time of the file lies where another offset could hide). An hour
        whose offset changes within it (zones that shift by half an hour) goes the
        slow way. None: the file goes the slow way.
        """
        stamps = [texts[c.name] for c in entity.columns
                  if c.type is ColumnType.TIMESTAMP and c.name in texts]
        if not stamps:
            return "0"
        naive = ", ".join(_dotted_or(t, f"TRY_CAST(left({t}, 19) AS TIMESTAMP)")
                          for t in stamps)
        floor = dt.datetime.combine(MIN_DATE, dt.time())
        ceiling = dt.datetime.combine(MAX_DATE + dt.timedelta(days=1), dt.time())
        hours = self.con.execute(
            f"""SELECT DISTINCT date_trunc('hour', local) AS hour
                FROM (SELECT unnest([{naive}]) AS local FROM "{name}")
                WHERE local >= $floor AND local < $ceiling ORDER BY hour""",
            {"floor": floor, "ceiling": ceiling}).fetchall()
        zone = zoneinfo.ZoneInfo(self.zone)
        runs: list[tuple[dt.datetime, int]] = []
        for (hour,) in hours:
            first = hour.replace(tzinfo=zone).utcoffset()
            last = (hour + dt.timedelta(minutes=59, seconds=59, microseconds=999999)
                    ).replace(tzinfo=zone).utcoffset()
            if first != last or first is None:
                return None
            seconds = int(first.total_seconds())
            if not runs or runs[-1][1] != seconds:
                runs.append((hour, seconds))
                if len(runs) > MAX_ZONE_RUNS:
                    return None
        if not runs:
            return "0"
        branches = " ".join(f"WHEN {{local}} < TIMESTAMP '{start.isoformat(sep=' ')}' "
                            f"THEN {previous}"
                            for (start, _s), (_b, previous) in zip(runs[1:], runs, strict=False))
        return f"CASE {branches} ELSE {runs[-1][1]} END" if branches else str(runs[0][1])


def _convert(column: Column, text: str, offsets: str) -> tuple[str, str]:
    """(the typed value of a text that passed its check, the check: whether the text is
    in a form read exactly as the Python path reads it, and a value it accepts)."""
    if column.type is ColumnType.TIMESTAMP:
        return _timestamp(text, offsets)
    if column.type is ColumnType.DATE:
        # Workbooks and some exports give dates as whole timestamps: their date is read.
        local = _dotted_or(text, f"TRY_CAST({text} AS TIMESTAMP)")
        return f"CAST({local} AS DATE)", _iso_or_dotted_ok(text, f"{_DATE}({_TIME})?", local)
    if column.type in (ColumnType.MONEY, ColumnType.NUMBER, ColumnType.INTEGER):
        return _number(column, text)
    if column.type is ColumnType.BOOLEAN:
        word = f"lower({text})"
        true = ", ".join(string_literal(w) for w in sorted(TRUE_WORDS))
        false = ", ".join(string_literal(w) for w in sorted(FALSE_WORDS))
        return f"{word} IN ({true})", f"{word} IN ({true}, {false})"
    if column.choices:
        allowed = ", ".join(string_literal(c) for c in column.choices)
        return f"lower({text})", f"lower({text}) IN ({allowed})"
    return text, "true"


def _is_dotted(text: str) -> str:
    """SQL: whether ``text`` is a dotted date; the cheap test of its second or third
    character first, so an ISO value costs no regular expression."""
    return (f"((substr({text}, 2, 1) = '.' OR substr({text}, 3, 1) = '.') "
            f"AND regexp_full_match({text}, '{_DOTTED}'))")


def _dotted_or(text: str, iso: str) -> str:
    """SQL: the local time a dotted ``text`` names, else ``iso`` (the ISO reading)."""
    return (f"(CASE WHEN {_is_dotted(text)} THEN try_strptime({text}, {_DOTTED_FORMATS}) "
            f"ELSE {iso} END)")


def _in_range(local: str) -> str:
    return f"CAST({local} AS DATE) BETWEEN DATE '{MIN_DATE}' AND DATE '{MAX_DATE}'"


def _real(text: str, local: str) -> str:
    """Whether ``local`` (the text read by DuckDB) is the time the text names on a date in
    range: DuckDB refuses what Python refuses (31 April, 23:60, second 60) except hour
    24, which it reads as the next day's midnight."""
    return f"{local} IS NOT NULL AND substr({text}, 12, 2) <> '24' AND {_in_range(local)}"


def _iso_or_dotted_ok(text: str, iso_form: str, local: str) -> str:
    """SQL: ``text`` is in ``iso_form`` or dotted, and names a real time in range."""
    return (f"CASE WHEN {_is_dotted(text)} THEN {local} IS NOT NULL AND {_in_range(local)} "
            f"ELSE regexp_full_match({text}, '{iso_form}') AND {_real(text, local)} END")


def _timestamp(text: str, offsets: str) -> tuple[str, str]:
    zulu = f"right({text}, 1) = 'Z'"
    signed = f"(length({text}) > 16 AND substr({text}, -6, 1) IN ('+', '-'))"
    local = _dotted_or(text, f"TRY_CAST(CASE WHEN {zulu} THEN left({text}, -1) WHEN {signed} "
                             f"THEN left({text}, -6) ELSE {text} END AS TIMESTAMP)")
    minutes = (f"(CASE WHEN substr({text}, -6, 1) = '-' THEN -1 ELSE 1 END) * "
               f"(CAST(substr({text}, -5, 2) AS INTEGER) * 60 "
               f"+ CAST(substr({text}, -2, 2) AS INTEGER))")
    zone = offsets.replace("{local}", local)
    value = (f"{local} - CASE WHEN {zulu} THEN INTERVAL 0 MINUTE "
             f"WHEN {signed} THEN to_minutes({minutes}) ELSE to_seconds({zone}) END")
    form = f"{_DATE}({_TIME}(Z|[+-](0\\d|1\\d|2[0-3]):[0-5]\\d)?)?"
    return value, _iso_or_dotted_ok(text, form, local)


def _number(column: Column, text: str) -> tuple[str, str]:
    """Numbers in the plain forms both paths read alike: 1234.5, -12 and 12,5 (a comma
    with one or two digits after it is a decimal comma to the Python path either way)."""
    digits = 16 if column.type is ColumnType.MONEY else 15
    fraction = {ColumnType.MONEY: r"(\.\d{1,2})?", ColumnType.NUMBER: r"(\.\d{1,15})?",
                ColumnType.INTEGER: ""}[column.type]
    comma = "" if column.type is ColumnType.INTEGER else rf"|-?\d{{1,{digits}}},\d{{1,2}}"
    form = rf"-?\d{{1,{digits}}}{fraction}{comma}"
    value = f"TRY_CAST(replace({text}, ',', '.') AS {SQL_TYPES[column.type]})"
    ok = f"regexp_full_match({text}, '{form}')"
    if column.type is not ColumnType.MONEY:
        low = column.low if column.low is not None else -NUMBER_LIMIT
        high = column.high if column.high is not None else NUMBER_LIMIT
        ok += f" AND {value} BETWEEN {low!r} AND {high!r}"
    return value, ok


def _custom(extra: list[str], texts: dict[str, str]) -> str:
    """Extra columns as the JSON text ``json.dumps`` writes (ensure_ascii=False)."""
    if not extra:
        return "CAST(NULL AS VARCHAR)"
    parts = []
    for column in extra:
        text = texts[column]
        escaped = (f"replace(replace(replace(replace(replace({text}, '\\', '\\\\'), "
                   f"'\"', '\\\"'), chr(10), '\\n'), chr(13), '\\r'), chr(9), '\\t')")
        key = string_literal(json.dumps(column, ensure_ascii=False) + ': "')
        parts.append(f"CASE WHEN {text} IS NOT NULL THEN {key} || {escaped} || '\"' END")
    return f"'{{' || concat_ws(', ', {', '.join(parts)}) || '}}'"


def _stripped(text: str, spaces_only: bool = False) -> str:
    """``text`` as ``str.strip`` leaves it, empty as NULL; trimmed only where needed (a
    trim with a set of characters costs as much as reading the file). ``spaces_only``:
    the file's values can have no other whitespace at their edges, found by two
    prefix and suffix tests (the general test reads each value's last character:
    ~0.5 s of CPU over 2M activities)."""
    if spaces_only:
        edges = f"{text} LIKE ' %' OR {text} LIKE '% '"
    else:
        edges = (f"ascii({text}) IN (32, 9, 10, 13) "
                 f"OR ascii(right({text}, 1)) IN (32, 9, 10, 13)")
    return (f"CASE WHEN {text} = '' THEN NULL WHEN {edges} "
            f"THEN nullif(trim({text}, {_STRIP}), '') ELSE {text} END")


def _layout(path: Path, data: bytes) -> _Layout | None:
    """The file's entity, delimiter and header, if the fast path can read it as Python does."""
    entity = ENTITIES.get(path.stem.lower().strip())
    # (Searches, not strip(): stripping copied the whole file, twice: 0.25 s at 2M rows.)
    if entity is None or _NOT_SPACE.search(data) is None:
        return None
    bom = data.startswith(b"\xef\xbb\xbf")
    start = 3 if bom else 0
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or data[start:start + 1] in (b"\r", b"\n"):
        return None
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return None  # cp1251 and friends: encoding.py decides
        if _UNICODE_SPACE.search(data) or _C1_CONTROL.search(data):
            return None
    if data.translate(None, _NOT_CONTROL) or (b"\r" in data and _LONE_CR.search(data)):
        return None
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    if _BLANK_LINE.search(data, 0, end):
        return None
    head = data[:_HEAD_BYTES].decode("utf-8-sig" if bom else "utf-8", errors="ignore")
    delimiter = detect_delimiter(head)
    if delimiter == "\t":
        return None
    try:
        first = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    header = [h.strip() for h in first]
    scratch = ImportReport(source="")
    if not _header_ok(path.name, header, scratch):
        return None
    if any(name not in header for name in entity.required):
        return None
    if len({h.lower() for h in header}) != len(header):
        return None
    return _Layout(entity, delimiter, header, spaces_only=b"\t" not in data
                   and b'"' not in data)


@contextmanager
def fast_import(zone: str, enabled: bool = True,
                con: duckdb.DuckDBPyConnection | None = None, *, source: str = "",
                straight: Collection[str] = ()) -> Iterator[FastImport | None]:
    """A ``FastImport`` for the import's duration (None when the fast path is off)."""
    if not enabled:
        yield None
        return
    fast = FastImport(zone, con, source=source, straight=straight)
    try:
        yield fast
    finally:
        fast.close()
