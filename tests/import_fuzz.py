"""Generated import folders, good and broken, and the check of what importing one did.

Shared by tests/test_import_fuzz.py (a bounded Hypothesis run in CI) and
benchmarks/fuzz_imports.py (10,000 files). A case is what a file *means* (reps,
deals and activities as values) plus how it is written (CSV in one of six
encodings, one of three separators, or .xlsx) plus at most one defect. Defects are
chosen so that every one of them makes the folder wrong: a value no record holds,
bytes no encoding reads consistently, a damaged or bloated workbook, a header
naming a column twice... ``check`` then holds the import to four rules:

- no exception other than ``SalesKpiError`` (a *traceback*);
- no run over 10 s of CPU time (a *hang*; wall time is counted apart: on a shared
  machine a run waits for a processor, and the benchmark stops one still busy after
  60 s and counts it as a hang too);
- a refused import leaves every analytics table as it was (else a *partial* import);
- an accepted import stores exactly the values the file meant, and only for a folder
  without a defect (else *garbled*: a wrong reading of the encoding, or a bad value
  stored silently).

A good folder may still be refused (a file in a single-byte encoding whose text is
too short to tell the code page, say): that is counted apart, as a *refused good*
folder, and is not a failure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from hypothesis import strategies as st

from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.settings import Settings
from saleskpi.sources.ingest.run import import_path
from tests.malformed import rewrite_entries, store_fingerprint, workbook_bytes

HANG_SECONDS = 10.0

FIRST = ["Иван", "Пётр", "Олена", "Тарас", "Анна", "Мария", "Сергей", "Юлія", "Дмитро",
         "Наталья", "John", "Mary", "Ahmed", "Li", "Борис", "Єва", "Игорь", "Ганна"]
RUSSIAN = ["Иван", "Пётр", "Анна", "Мария", "Сергей", "Наталья"]
LAST = ["Петров", "Сидоренко", "Шевченко", "Иванова", "Ковальчук", "Smith", "O'Brien",
        "Кузнецов", "Мельник", "Бондаренко", "Lee", "Волков", "Ткаченко", "Попова"]
TEAMS = ["Москва", "Київ", "Львів", "Северо-Запад", "North", "South", "Отдел продаж",
         "ООО «Ромашка»", "Team #1"]
WESTERN = ["Jürgen Müller", "José García", "François Lefèvre", "Åsa Öberg",
           "Zoë Brontë", "Søren Kierkegaard"]
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1251", "koi8_r", "mac_cyrillic"]
SEPARATORS = [",", ";", "\t"]

REPS_HEADER = ["id", "name", "team", "hired_at"]
DEALS_HEADER = ["id", "rep_id", "status", "created_at", "closed_at", "amount", "currency",
                "probability"]
ACTIVITIES_HEADER = ["id", "type", "rep_id", "occurred_at", "duration_s"]

BAD_NUMBERS = ["inf", "-inf", "Infinity", "NaN", "nan", "1e400", "-1e400", "١٢٣", "１２",
               "۵", "12abc", "1e16", "99999999999999999", "1.2.3", "--1"]
BAD_RANGES = {"probability": ["150", "-1", "100.5"], "duration_s": ["-1", "2678401", "1e10"]}
BAD_DATES = ["2024-03-01 garbage text", "0001-01-01", "9999-12-31", "1899-12-31",
             "2200-01-01", "2024-02-30", "٢٠٢٤-٠٣-٠١", "2024-13-01", "yesterday",
             "2024-03-01T25:00"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85",
           "\x9f"]


@dataclass
class Case:
    """A folder to import: what it means and how it is written."""

    reps: list[list[str | None]]
    deals: list[list[str | None]]
    activities: list[list[str | None]]
    kind: str  # "csv" or "xlsx"
    encoding: str = "utf-8"
    separator: str = ","
    newline: str = "\n"
    defect: str | None = None
    # what reps.csv / deals.csv / activities.csv hold: rows of text cells (set by write)
    files: dict[str, bytes | None] = field(default_factory=dict)

    @property
    def label(self) -> str:
        how = f"{self.kind}/{self.encoding}" if self.kind == "csv" else "xlsx"
        return f"{how}:{self.defect or 'good'}"


# -- what a folder means ---------------------------------------------------------------------

def _name(draw: st.DrawFn, unicode_ok: bool) -> str:
    if unicode_ok and draw(st.integers(0, 9)) == 0:
        text = draw(st.text(st.characters(
            blacklist_categories=("Cs", "Cc", "Cn", "Co", "Zl", "Zp"),
            blacklist_characters="\ufffe\uffff"), min_size=1, max_size=30)).strip()
        if text and not text.startswith(("=", "-", "+", "@")):
            return text
    return f"{draw(st.sampled_from(FIRST))} {draw(st.sampled_from(LAST))}"


def _timestamp(draw: st.DrawFn) -> dt.datetime:
    return draw(st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2090, 12, 31))).replace(
        microsecond=0)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["csv", "csv", "csv", "xlsx"]))
    encoding = draw(st.sampled_from(ENCODINGS)) if kind == "csv" else "utf-8"
    unicode_ok = encoding.startswith("utf") or kind == "xlsx"
    n_reps = draw(st.integers(1, 6))
    reps: list[list[str | None]] = []
    for i in range(n_reps):
        hired = draw(st.one_of(st.none(), st.dates(dt.date(1950, 1, 1), dt.date(2090, 1, 1))))
        reps.append([f"r{i}", _name(draw, unicode_ok),
                     draw(st.one_of(st.none(), st.sampled_from(TEAMS))),
                     hired.isoformat() if hired else None])
    deals: list[list[str | None]] = []
    for i in range(draw(st.integers(0, 8))):
        created = _timestamp(draw)
        status = draw(st.sampled_from(["open", "won", "lost"]))
        closed = created + dt.timedelta(days=draw(st.integers(0, 300)))
        amount = draw(st.decimals(0, 10**9, places=2, allow_nan=False, allow_infinity=False))
        probability = draw(st.one_of(st.none(), st.integers(0, 100).map(lambda p: p / 100)))
        deals.append([f"d{i}", f"r{draw(st.integers(0, n_reps - 1))}", status,
                      created.isoformat(sep=" "),
                      closed.isoformat(sep=" ") if status != "open" else None,
                      str(amount), draw(st.sampled_from(["USD", "RUB", "EUR"])),
                      None if probability is None else repr(probability)])
    activities: list[list[str | None]] = []
    for i in range(draw(st.integers(0, 5))):
        activities.append([f"a{i}", draw(st.sampled_from(["call", "meeting", "email"])),
                           f"r{draw(st.integers(0, n_reps - 1))}",
                           _timestamp(draw).isoformat(sep=" "),
                           str(draw(st.integers(0, 7200)))])
    case = Case(reps, deals, activities, kind, encoding,
                draw(st.sampled_from(SEPARATORS)), draw(st.sampled_from(["\n", "\r\n"])))
    if not _encodable(case):
        case.encoding = "utf-8"
    defects = [name for name, (applies, _apply) in DEFECTS.items() if applies(case)]
    # One folder in five is good: enough to see good files imported exactly in every
    # encoding, the rest spread over the defects.
    defect = draw(st.sampled_from([None] * (len(defects) // 4 + 1) + defects))
    # Copies: defects change the header and rows in place.
    tables = {"reps": [list(REPS_HEADER), *map(list, reps)],
              "deals": [list(DEALS_HEADER), *map(list, deals)],
              "activities": [list(ACTIVITIES_HEADER), *map(list, activities)]}
    if defect is not None:
        case.defect = defect
        DEFECTS[defect][1](draw, case, tables)
    if not case.files:
        case.files = write(case, tables)
    return case


def _encodable(case: Case) -> bool:
    try:
        for row in case.reps:
            "".join(v or "" for v in row).encode(case.encoding)
    except UnicodeEncodeError:
        return False
    return True


# -- how it is written ---------------------------------------------------------------------

Tables = dict[str, list[list[str | None]]]


def csv_text(rows: list[list[str | None]], separator: str, newline: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=separator, lineterminator=newline)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def write(case: Case, tables: Tables) -> dict[str, bytes | None]:
    if case.kind == "xlsx":
        sheets = {name: [list(r) for r in rows] for name, rows in tables.items() if len(rows) > 1
                  or name == "reps"}
        return {"book.xlsx": workbook_bytes(sheets)}  # type: ignore[arg-type]
    texts = {f"{name}.csv": csv_text(rows, case.separator, case.newline)
             for name, rows in tables.items() if len(rows) > 1 or name == "reps"}
    try:
        return {name: text.encode(case.encoding) for name, text in texts.items()}
    except UnicodeEncodeError:  # a defect's value (an Arabic-Indic digit) the code page lacks
        case.encoding = "utf-8"
        return {name: text.encode(case.encoding) for name, text in texts.items()}


# -- defects: (applies to this case?, make it) -------------------------------------------------

Apply = Callable[[st.DrawFn, Case, Tables], None]


def _cell(draw: st.DrawFn, tables: Tables, entity: str, column: str, values: list[str]) -> None:
    rows = tables[entity]
    row = rows[draw(st.integers(1, len(rows) - 1))]
    row[rows[0].index(column)] = draw(st.sampled_from(values))


def _bad_number(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    choices = [("deals", "amount"), ("deals", "probability")] if case.deals else []
    choices += [("activities", "duration_s")] if case.activities else []
    entity, column = draw(st.sampled_from(choices))
    _cell(draw, tables, entity, column, BAD_NUMBERS + BAD_RANGES.get(column, []))


def _bad_date(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    choices = [("reps", "hired_at")]
    choices += [("deals", "created_at"), ("deals", "closed_at")] if case.deals else []
    choices += [("activities", "occurred_at")] if case.activities else []
    entity, column = draw(st.sampled_from(choices))
    _cell(draw, tables, entity, column, BAD_DATES)


def _control(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    row = tables["reps"][draw(st.integers(1, len(tables["reps"]) - 1))]
    name = row[1] or "x"
    at = draw(st.integers(1, max(1, len(name) - 1)))
    # Inside the value: a control character that is also white space is trimmed at the
    # edges like any space, which is what a user expects.
    row[1] = name[:at] + draw(st.sampled_from(CONTROL)) + name[at:] + "z"


def _huge_cell(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    huge = "Я" * draw(st.integers(131_073, 200_000))
    if case.kind == "csv":
        tables["reps"][1][1] = huge
        return
    # openpyxl cuts what it writes at Excel's 32,767 characters: put it in the XML.
    tables["reps"][1][1] = "HUGECELL"
    case.files = write(case, tables)
    case.files["book.xlsx"] = rewrite_entries(
        case.files["book.xlsx"] or b"", lambda name, content: content.replace(
            b"HUGECELL", huge.encode()))


def _repeated_header(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    header = tables["reps"][0] = list(tables["reps"][0])
    header[draw(st.sampled_from([2, 3]))] = draw(st.sampled_from(["id", "name"]))


def _many_columns(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    extra = draw(st.integers(1001, 20_000 if case.kind == "csv" else 1500))
    rows = tables["reps"]
    rows[0] = [*rows[0], *(f"c{i}" for i in range(extra))]
    for row in rows[1:]:
        row.extend(["v"] * extra)


def _ragged_row(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    tables["reps"][draw(st.integers(1, len(tables["reps"]) - 1))].append("extra")


def _missing_required(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    for row in tables["reps"]:
        del row[1]


def _unknown_rep(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    _cell(draw, tables, "deals", "rep_id", ["nobody", "r99"])


def _duplicate_id(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    tables["reps"].append(list(tables["reps"][1]))


def _folder(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    case.files = write(case, tables)
    case.files["x.csv"] = None


def _invalid_byte(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    """A stray byte inside an ASCII word of a UTF-8 file: no encoding reads it as text."""
    case.encoding = "utf-8"
    case.files = write(case, tables)
    data = case.files["reps.csv"]
    assert data is not None
    spots = [i for i in range(1, len(data)) if chr(data[i - 1]).isalpha()
             and data[i - 1] < 128 and chr(data[i]).isalpha() and data[i] < 128]
    if not spots:
        data, spots = data + b"zz", [len(data) + 1]
    at = draw(st.sampled_from(spots))
    byte = draw(st.sampled_from([0x98, 0xFF, 0xFE, 0xC0, 0xC1, 0x80, 0xBF, 0xF5]))
    case.files["reps.csv"] = data[:at] + bytes([byte]) + data[at:]


def _mixed(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    """The first lines UTF-8, the rest in a Cyrillic code page, Cyrillic on both sides."""
    rows = tables["reps"]
    for row in rows[1:]:  # text every code page has
        row[1], row[2] = f"{draw(st.sampled_from(RUSSIAN))} Петров", "Москва"
    for i in range(4):
        rows.append([f"m{i}", f"{draw(st.sampled_from(RUSSIAN))} Петров", "Москва", None])
    split = draw(st.integers(2, len(rows) - 1))
    rows[split - 1][1] = "Иван Иванов"
    text = csv_text(rows[:split], case.separator, case.newline)
    rest = csv_text(rows[split:], case.separator, case.newline)
    other = draw(st.sampled_from(["cp1251", "koi8_r", "mac_cyrillic"]))
    tail = rest.encode(other)
    case.files = write(case, tables)
    case.files["reps.csv"] = text.encode("utf-8") + tail
    case.encoding = f"utf-8+{other}"


def _cut_utf8(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    tables["reps"][-1][2] = "Київ"
    case.encoding = "utf-8"
    case.files = write(case, tables)
    data = case.files["reps.csv"]
    assert data is not None
    case.files["reps.csv"] = data[: data.rindex("в".encode()) + 1]


def _western(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    for row in tables["reps"][1:]:
        row[1] = draw(st.sampled_from(WESTERN))
        row[2] = None
    case.encoding = draw(st.sampled_from(["cp1252", "latin-1"]))
    case.files = write(case, tables)


def _utf16_without_bom(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    case.encoding = draw(st.sampled_from(["utf-16-le", "utf-16-be"]))
    case.files = write(case, tables)


def _bom_then_bad_byte(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    case.encoding = "utf-8-sig"
    case.files = write(case, tables)
    data = case.files["reps.csv"]
    assert data is not None
    at = draw(st.integers(3, len(data)))
    case.files["reps.csv"] = data[:at] + b"\xff" + data[at:]


def _sheet(change: Callable[[st.DrawFn, bytes], bytes]) -> Apply:
    """A defect made in the XML of the first sheet (reps)."""
    def apply(draw: st.DrawFn, case: Case, tables: Tables) -> None:
        case.files = write(case, tables)
        case.files["book.xlsx"] = rewrite_entries(
            case.files["book.xlsx"] or b"", lambda name, content: change(draw, content)
            if name == "xl/worksheets/sheet1.xml" else content)
    return apply


def _position(draw: st.DrawFn, length: int) -> int:
    """A position in bytes whose length varies between runs (a workbook's timestamps):
    drawn as a share, so that Hypothesis sees the same draws each time."""
    return draw(st.integers(0, 999_999)) * length // 1_000_000


def _truncate_xml(draw: st.DrawFn, xml: bytes) -> bytes:
    return xml[: max(1, _position(draw, len(xml)))]


def _bloat_xml(draw: st.DrawFn, xml: bytes) -> bytes:
    # White space between rows is valid XML: a real reader could read it, but it packs
    # thousands of times, as a zip bomb does.
    return xml.replace(b"<sheetData>", b"<sheetData>" + b" " * draw(
        st.integers(2 * 1024 * 1024, 8 * 1024 * 1024)), 1)


def _not_zip(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    case.files = {"book.xlsx": draw(st.binary(min_size=0, max_size=2000))}


def _flip_bytes(draw: st.DrawFn, case: Case, tables: Tables) -> None:
    case.files = write(case, tables)
    data = bytearray(case.files["book.xlsx"] or b"")
    for _ in range(draw(st.integers(1, 5))):
        at = _position(draw, len(data))
        data[at] ^= draw(st.integers(1, 255))
    case.files["book.xlsx"] = bytes(data)


def _csv(case: Case) -> bool:
    return case.kind == "csv"


def _xlsx(case: Case) -> bool:
    return case.kind == "xlsx"


def _any(case: Case) -> bool:
    return True


DEFECTS: dict[str, tuple[Callable[[Case], bool], Apply]] = {
    "bad number": (lambda c: bool(c.deals or c.activities), _bad_number),
    "bad date": (_any, _bad_date),
    "control character": (_csv, _control),  # openpyxl cannot write one into a workbook
    "cell over 128 KiB": (_any, _huge_cell),
    "repeated header": (_any, _repeated_header),
    "over 1000 columns": (_any, _many_columns),
    "ragged row": (_csv, _ragged_row),
    "missing required column": (_any, _missing_required),
    "unknown rep": (lambda c: bool(c.deals), _unknown_rep),
    "duplicate id": (_any, _duplicate_id),
    "folder named x.csv": (_any, _folder),
    "invalid byte": (_csv, _invalid_byte),  # these three write UTF-8
    "mixed encodings": (_csv, _mixed),
    "cut mid-character": (_csv, _cut_utf8),
    "Western code page": (_csv, _western),
    "UTF-16 without BOM": (_csv, _utf16_without_bom),
    "BOM then a bad byte": (_csv, _bom_then_bad_byte),
    "truncated sheet XML": (_xlsx, _sheet(_truncate_xml)),
    "bloated sheet (zip bomb)": (_xlsx, _sheet(_bloat_xml)),
    "not a zip": (_xlsx, _not_zip),
}
# Defects that may leave the folder readable as it was meant (a flipped byte in an
# unused part of the zip): then it must be imported exactly right, or refused.
MAY_PASS = {"flipped bytes": (_xlsx, _flip_bytes)}
DEFECTS.update(MAY_PASS)


# -- the check ---------------------------------------------------------------------------------

@dataclass
class Tally:
    """What a series of imports did; ``failures`` must stay empty."""

    runs: int = 0
    accepted: int = 0
    refused: int = 0
    refused_good: int = 0
    seconds: float = 0.0  # wall time in imports
    slowest: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of this process (all its threads) in imports
    slowest_cpu: float = 0.0
    slow_wall: int = 0  # runs over HANG_SECONDS of wall time
    failures: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    by_defect: Counter[str] = field(default_factory=Counter)

    def fail(self, kind: str, case: Case, detail: str) -> None:
        self.failures[kind] += 1
        self.examples.setdefault(kind, f"{case.label}: {detail}"[:500])


class Fuzzer:
    """Imports generated folders into one real workspace, each under its own source."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings(workspace=root / "ws", _env_file=None)
        self.tally = Tally()
        # A workspace in use: both stores made and migrated (the first import of a
        # process also loads Alembic, which is no part of what a bad file costs).
        warm = root / "warm-up"
        warm.mkdir(parents=True)
        (warm / "reps.csv").write_text("id,name\nw1,Warm Up\n")
        assert import_path(self.settings, warm, source="warm-up").ok
        self.fingerprint = store_fingerprint(self.settings.workspace)
        self.stamp = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        """The analytics file's modification time and size: while they stay, so do its
        bytes, and the (slower) fingerprint need not be taken again."""
        try:
            stat = self.settings.analytics_path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _fingerprint(self) -> dict[str, tuple[int, str | None]]:
        stamp = self._stamp()
        if stamp != self.stamp:
            self.stamp = stamp
            self.fingerprint = store_fingerprint(self.settings.workspace)
        return self.fingerprint

    def run(self, case: Case) -> None:
        tally = self.tally
        tally.runs += 1
        tally.by_defect[case.defect or "good"] += 1
        source = f"fuzz{tally.runs}"
        folder = self.root / "in"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, content in case.files.items():
            if content is None:
                (folder / name).mkdir()
            else:
                (folder / name).write_bytes(content)
        started, cpu_started = time.perf_counter(), time.process_time()
        report: ImportReport | None = None
        try:
            report = import_path(self.settings, folder, source=source)
        except SalesKpiError:
            pass  # a clear error: as good as a refusal
        except Exception as exc:  # what is being counted
            tally.fail("traceback", case, f"{type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        tally.seconds += seconds
        tally.slowest = max(tally.slowest, seconds)
        tally.cpu_seconds += cpu
        tally.slowest_cpu = max(tally.slowest_cpu, cpu)
        if cpu > HANG_SECONDS:
            tally.fail("hang", case, f"{cpu:.1f} s of CPU")
        if seconds > HANG_SECONDS:
            tally.slow_wall += 1
            tally.examples.setdefault("over 10 s of wall time",
                                      f"{case.label}: {seconds:.1f} s, {cpu:.1f} s of CPU")
        if report is None or not report.ok:
            tally.refused += 1
            if case.defect is None:
                tally.refused_good += 1
                tally.examples.setdefault(
                    f"refused good {case.label}",
                    "; ".join(e.message for e in report.errors[:2]) if report else "")
            before = self.fingerprint
            if self._fingerprint() != before:
                tally.fail("partial", case, "a refused import changed stored data")
            return
        tally.accepted += 1
        self._fingerprint()
        if case.defect is not None and case.defect not in MAY_PASS:
            tally.fail("garbled", case, "accepted a broken folder")
            return
        wrong = compare(self.settings, source, case)
        if wrong:
            tally.fail("garbled", case, wrong)


def compare(settings: Settings, source: str, case: Case) -> str:
    """'' when the store holds exactly the case's rows under ``source``, else what differs."""
    con = duckdb.connect(str(settings.analytics_path), read_only=True)
    try:
        def rows(sql: str) -> list[tuple[Any, ...]]:
            return sorted(con.execute(sql, [source]).fetchall())

        got = {
            "reps": rows("SELECT id, name, team, hired_at FROM reps WHERE datasource = ?"),
            "deals": rows("SELECT id, rep_id, status, created_at, closed_at, amount, currency,"
                          " probability FROM deals WHERE datasource = ?"),
            "activities": rows("SELECT id, type, rep_id, occurred_at, duration_s "
                               "FROM activities WHERE datasource = ?"),
        }
    finally:
        con.close()
    meant = {
        "reps": sorted((i, n, t, None if h is None else dt.date.fromisoformat(h))
                       for i, n, t, h in case.reps),
        "deals": sorted(
            (i, r, s, dt.datetime.fromisoformat(c or ""),
             None if cl is None else dt.datetime.fromisoformat(cl),
             Decimal(a or "0"), cur, None if p is None else float(p))
            for i, r, s, c, cl, a, cur, p in case.deals),
        "activities": sorted(
            (i, t, r, dt.datetime.fromisoformat(o or ""), int(d or "0"))
            for i, t, r, o, d in case.activities),
    }
    for entity in got:
        if got[entity] != meant[entity]:
            return f"{entity}: stored {got[entity][:3]!r}, meant {meant[entity][:3]!r}"
    return ""
