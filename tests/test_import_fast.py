"""The fast path of an import (sources/ingest/fast.py) against the Python path.

The same folders are imported twice, into two workspaces: once as the product does
(canonical CSV files go the fast path) and once with the fast path off. The stored
tables must be identical, and so must the errors of a bad file (file, row, column and
message). Expected values (UTC times, amounts, rows of errors) are worked out by hand
in the comments, not taken from either path.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from saleskpi.domain.reports import ImportReport
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.sources.ingest.run import import_path
from tests.backends import BackendChoice, facts_snapshot

ON_CLICKHOUSE = True
SOURCE = "crm"
ZONE = "Europe/Kyiv"  # UTC+2 in winter, UTC+3 in summer (daylight saving from 30 March 2025)

REPS = """\
id,name,email,team,manager_id,hired_at,left_at,role,phone
r1,"Коваленко, Олена",olena@example.com,Київ,,2020-01-15,,head,+380 44 000 00 01
r2,"Bob ""Bobby"" Jones",,Київ,r1,2021-03-01 00:00:00,,rep,
r3,  Іван Петренко  ,ivan@example.com,Львів,r1,2022-07-01,2024-12-31,rep,\t
"""
# ';' separates, amounts and probabilities with a decimal comma; statuses in any case.
DEALS = """\
id;rep_id;status;created_at;closed_at;amount;currency;probability;comment
d1;r1;Won;2025-01-10 09:00;2025-02-01T12:30:00+03:00;1234,50;UAH;100;"first line
second line, with a comma"
d2;r2;LOST;2025-01-11T10:00:00Z;2025-03-01 10:00:00.250;;UAH;0;
d3;r3;open;2025-07-01 12:00:00;;99.9;USD;12,5;"said ""maybe""\"
d4;r2;open;;;-15;USD;;
"""
ACTIVITIES = """\
id,type,rep_id,occurred_at,deal_id,direction,outcome,duration_s,selling
a1,call,r1,2025-01-15 12:00:00,d1,In,connected,60,да
a2,  meeting  ,r2,2025-07-01 12:00:00,d1,out,,3600,ні
a3,call,r3,2025-03-30 03:30:00,d3,,no answer,,так
a4,email,r1,2025-10-26 03:30:00,,OUT,,0,нет
a5,call,r2,2025-02-01 08:00:00+02:00,d2,in,,15,true
a6,note,r1,2025-02-01,,,,,0
a7,call,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,Так
"""


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def settings_in(folder: Path) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    return Settings(workspace=folder, timezone=ZONE)


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored fact, sorted (targets live in SQLite and are compared apart)."""
    path = settings.workspace / "analytics.duckdb"
    if not path.exists():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {name: sorted(con.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
                for name in ENTITIES if name != "targets"}
    finally:
        con.close()


def both_paths(tmp_path: Path, folder: Path) -> tuple[ImportReport, ImportReport,
                                                      Settings, Settings]:
    fast, slow = settings_in(tmp_path / "fast"), settings_in(tmp_path / "slow")
    return (import_path(fast, folder, source=SOURCE), import_path(slow, folder, source=SOURCE,
                                                                  fast=False), fast, slow)


def located(report: ImportReport) -> list[tuple[Any, ...]]:
    return [(e.file, e.row, e.column, e.message, e.hint) for e in report.errors]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return write(tmp_path / "good",
                 {"reps.csv": REPS, "deals.csv": DEALS, "activities.csv": ACTIVITIES})


def test_every_kind_of_value_is_stored_as_the_python_path_stores_it(tmp_path, good):
    fast, slow, fast_settings, slow_settings = both_paths(tmp_path, good)

    assert fast.ok and slow.ok, (fast.errors, slow.errors)
    assert sorted(fast.fast_files) == ["activities.csv", "deals.csv", "reps.csv"]
    assert slow.fast_files == []
    stored = snapshot(fast_settings)
    assert stored == snapshot(slow_settings)
    assert {name: len(rows) for name, rows in stored.items() if rows} == {
        "reps": 3, "deals": 4, "activities": 7}
    assert [(n, c.inserted) for n, c in fast.entities.items()] == [
        (n, c.inserted) for n, c in slow.entities.items()]


def test_values_are_read_as_a_person_reads_them(tmp_path, good):
    settings = settings_in(tmp_path / "ws")
    assert import_path(settings, good, source=SOURCE).ok
    con = duckdb.connect(str(settings.workspace / "analytics.duckdb"), read_only=True)
    try:
        deals = {r[0]: r[1:] for r in con.execute(
            "SELECT id, status, created_at, closed_at, amount, probability, custom::VARCHAR "
            "FROM deals").fetchall()}
        acts = {r[0]: r[1:] for r in con.execute(
            "SELECT id, type, occurred_at, direction, duration_s, selling FROM activities"
        ).fetchall()}
        reps = {r[0]: r[1:] for r in con.execute(
            "SELECT id, name, hired_at, custom::VARCHAR FROM reps").fetchall()}
    finally:
        con.close()
    utc = dt.datetime
    # 09:00 in Kyiv in January (UTC+2) is 07:00 UTC; 12:30+03:00 is 09:30 UTC.
    assert deals["d1"] == ("won", utc(2025, 1, 10, 7), utc(2025, 2, 1, 9, 30),
                           Decimal("1234.50"), 100.0,
                           '{"comment": "first line\\nsecond line, with a comma"}')
    # Z is UTC; 10:00:00.250 in March before the change (UTC+2) is 08:00:00.250 UTC.
    assert deals["d2"][:4] == ("lost", utc(2025, 1, 11, 10), utc(2025, 3, 1, 8, 0, 0, 250000),
                               None)
    # 12:00 in July (UTC+3) is 09:00 UTC; 12,5 is twelve and a half.
    assert deals["d3"] == ("open", utc(2025, 7, 1, 9), None, Decimal("99.90"), 12.5,
                           '{"comment": "said \\"maybe\\""}')
    assert deals["d4"] == ("open", None, None, Decimal("-15.00"), None, "{}")
    assert acts["a1"] == ("call", utc(2025, 1, 15, 10), "in", 60, True)
    assert acts["a2"] == ("meeting", utc(2025, 7, 1, 9), "out", 3600, False)
    # 03:30 on 30 March 2025 does not exist in Kyiv (03:00 -> 04:00): read with the
    # offset before the change (+2), as Python's zoneinfo does: 01:30 UTC.
    assert acts["a3"] == ("call", utc(2025, 3, 30, 1, 30), None, None, True)
    # 03:30 on 26 October 2025 happens twice: the first (+3) is meant: 00:30 UTC.
    assert acts["a4"] == ("email", utc(2025, 10, 26, 0, 30), "out", 0, False)
    assert acts["a5"][1] == utc(2025, 2, 1, 6)
    assert acts["a6"][1:] == (utc(2025, 1, 31, 22), None, None, False)
    assert acts["a7"][1] == utc(2025, 2, 2, 21, 59, 59, 500000)
    assert reps["r1"] == ("Коваленко, Олена", dt.date(2020, 1, 15),
                          '{"phone": "+380 44 000 00 01"}')
    assert reps["r2"][:3] == ('Bob "Bobby" Jones', dt.date(2021, 3, 1), "{}")
    assert reps["r3"][0] == "Іван Петренко"


def test_importing_twice_changes_nothing(tmp_path, good):
    settings = settings_in(tmp_path / "ws")
    assert import_path(settings, good, source=SOURCE).ok
    before = snapshot(settings)

    again = import_path(settings, good, source=SOURCE)

    assert again.ok and sorted(again.fast_files) == ["activities.csv", "deals.csv", "reps.csv"]
    assert {n: (c.inserted, c.updated, c.unchanged) for n, c in again.entities.items()} == {
        "reps": (0, 0, 3), "deals": (0, 0, 4), "activities": (0, 0, 7)}
    assert snapshot(settings) == before


# a7 with one value changed in one column at a time (the custom column "note" too),
# and the value then stored (2025-02-03 10:00 in Kyiv in February is 08:00 UTC).
A7 = 'a7,call,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,Так,'
A7_CHANGED = {
    "type": ('a7,meeting,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,Так,', "meeting"),
    "rep_id": ('a7,call,r1,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,Так,', "r1"),
    "occurred_at": ('a7,call,r3,2025-02-03 10:00:00,d4,out,"text, quoted",31,Так,',
                    dt.datetime(2025, 2, 3, 8)),
    "deal_id": ('a7,call,r3,2025-02-02 23:59:59.5,d3,out,"text, quoted",31,Так,', "d3"),
    "direction": ('a7,call,r3,2025-02-02 23:59:59.5,d4,in,"text, quoted",31,Так,', "in"),
    "outcome": ("a7,call,r3,2025-02-02 23:59:59.5,d4,out,busy,31,Так,", "busy"),
    "duration_s": ('a7,call,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",32,Так,', 32),
    "selling": ('a7,call,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,ні,', False),
    "custom": ('a7,call,r3,2025-02-02 23:59:59.5,d4,out,"text, quoted",31,Так,called back',
               '{"note": "called back"}'),
}


def activities_file(a7: str) -> str:
    header, *rows = ACTIVITIES.splitlines()
    return "\n".join([header + ",note", *(r + "," for r in rows if not r.startswith("a7,")),
                      a7]) + "\n"


@pytest.mark.parametrize("column", A7_CHANGED)
def test_a_value_changed_in_any_column_is_stored_by_the_import_again(tmp_path, column):
    """Re-imported rows are compared column by column: one changed value in any column
    (a custom one too) makes its row updated, and only that row."""
    settings = settings_in(tmp_path / "ws")
    first = write(tmp_path / "first", {"reps.csv": REPS, "deals.csv": DEALS,
                                       "activities.csv": activities_file(A7)})
    assert import_path(settings, first, source=SOURCE).ok
    before = snapshot(settings)["activities"]
    row, expected = A7_CHANGED[column]
    second = write(tmp_path / "second", {"reps.csv": REPS, "deals.csv": DEALS,
                                         "activities.csv": activities_file(row)})

    again = import_path(settings, second, source=SOURCE)

    assert again.ok, again.errors
    assert again.fast_files and "activities.csv" in again.fast_files
    counts = again.entities["activities"]
    assert (counts.inserted, counts.updated, counts.unchanged) == (0, 1, 6)
    value = f"{column}::VARCHAR" if column == "custom" else f'"{column}"'
    con = duckdb.connect(str(settings.workspace / "analytics.duckdb"), read_only=True)
    try:
        stored = con.execute(f"SELECT {value} FROM activities WHERE id = 'a7'").fetchall()
        others = sorted(con.execute("SELECT * FROM activities WHERE id <> 'a7'").fetchall(),
                        key=repr)
    finally:
        con.close()
    assert stored == [(expected,)]
    assert others == sorted((r for r in before if r[0] != "a7"), key=repr)


def test_a_file_first_imported_the_python_way_is_unchanged_by_the_fast_way(tmp_path, good):
    settings = settings_in(tmp_path / "ws")
    assert import_path(settings, good, source=SOURCE, fast=False).ok
    before = snapshot(settings)

    again = import_path(settings, good, source=SOURCE)

    assert sum(c.updated + c.inserted for c in again.entities.values()) == 0
    assert snapshot(settings) == before


def deals_with(row: str) -> str:
    return DEALS + row + "\n"


def activities_with(row: str) -> str:
    return ACTIVITIES + row + "\n"


# Each case: the files replaced in the good folder, and where its error is (counted by
# hand: the header is row 1; DEALS has a two-line value in row 2, so its 4 rows are
# rows 2-5 and an added row is row 6; ACTIVITIES' 7 rows are 2-8, an added one is 9).
BROKEN: dict[str, tuple[dict[str, str | bytes], tuple[str, int | None, str | None]]] = {
    "bad date": ({"deals.csv": deals_with("d5;r1;open;2025-02-30;;1;USD;;")},
                 ("deals.csv", 6, "created_at")),
    "hour 24": ({"activities.csv": activities_with("a8,call,r1,2025-02-01 24:00:00,,,,,")},
                ("activities.csv", 9, "occurred_at")),
    "bad number": ({"deals.csv": deals_with("d5;r1;open;;;12 abc;USD;;")},
                   ("deals.csv", 6, "amount")),
    "out of range": ({"activities.csv": activities_with("a8,call,r1,2025-02-01,,,,99999999,")},
                     ("activities.csv", 9, "duration_s")),
    "year out of range": ({"deals.csv": deals_with("d5;r1;open;1899-12-31;;1;USD;;")},
                          ("deals.csv", 6, "created_at")),
    "bad boolean": ({"activities.csv": activities_with("a8,call,r1,2025-02-01,,,,,maybe")},
                    ("activities.csv", 9, "selling")),
    "bad choice": ({"activities.csv": activities_with("a8,call,r1,2025-02-01,,sideways,,,")},
                   ("activities.csv", 9, "direction")),
    "empty required": ({"activities.csv": activities_with("a8,,r1,2025-02-01,,,,,")},
                       ("activities.csv", 9, "type")),
    "unknown rep": ({"activities.csv": activities_with("a8,call,r9,2025-02-01,,,,,")},
                    ("activities.csv", 9, "rep_id")),
    "duplicate key": ({"activities.csv": activities_with("a3,call,r1,2025-02-01,,,,,")},
                      ("activities.csv", 9, "id")),
    "won without closed_at": ({"deals.csv": deals_with("d5;r1;won;2025-02-01;;1;USD;;")},
                              ("deals.csv", 6, "closed_at")),
    "missing column": ({"activities.csv": "id,type,occurred_at\na1,call,2025-01-01\n"},
                       ("activities.csv", 1, "rep_id")),
    "control character": ({"reps.csv": REPS + "r4,Eve\x07,,,,,,,\n"}, ("reps.csv", 5, "name")),
    "wrong number of values": ({"reps.csv": REPS + "r4,Eve\n"}, ("reps.csv", 5, None)),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_file_gets_the_same_errors_and_changes_nothing(tmp_path, good, case):
    files, (file, row, column) = BROKEN[case]
    folder = write(tmp_path / "broken", {"reps.csv": REPS, "deals.csv": DEALS,
                                         "activities.csv": ACTIVITIES, **files})
    fast_settings, slow_settings = settings_in(tmp_path / "fast"), settings_in(tmp_path / "slow")
    for settings in (fast_settings, slow_settings):
        assert import_path(settings, good, source=SOURCE).ok
    before = snapshot(fast_settings)

    fast = import_path(fast_settings, folder, source=SOURCE)
    slow = import_path(slow_settings, folder, source=SOURCE, fast=False)

    assert not fast.ok
    assert located(fast) == located(slow)
    assert (file, row, column) in [(e.file, e.row, e.column) for e in fast.errors], fast.errors
    assert fast.errors_not_shown == slow.errors_not_shown
    assert snapshot(fast_settings) == before


def test_files_the_fast_path_cannot_read_alike_go_the_python_way(tmp_path):
    folder = write(tmp_path / "in", {
        # cp1251 with ';' (Russian Excel): encoding.py decides, not DuckDB.
        "reps.csv": "id;name;team\nr1;Иван Петров;Москва\n".encode("cp1251"),
        # An amount with a thousands space: only the Python path reads it.
        "deals.csv": "id,rep_id,status,amount\nd1,r1,open,1 234.50\n",
        "activities.csv": "id,type,rep_id,occurred_at\na1,call,r1,2025-01-15 12:00\n",
    })
    fast, slow, fast_settings, slow_settings = both_paths(tmp_path, folder)

    assert fast.ok and slow.ok, fast.errors
    assert fast.fast_files == ["activities.csv"]
    assert snapshot(fast_settings) == snapshot(slow_settings)
    assert snapshot(fast_settings)["deals"][0][9] == Decimal("1234.50")
    assert snapshot(fast_settings)["reps"][0][:2] == ("r1", "Иван Петров")


# Day-first dotted dates, as amoCRM, Bitrix24 and Russian or Ukrainian Excel write them,
# mixed with ISO ones; summer and winter times of Kyiv, a day alone, one digit days.
DOTTED_DEALS = """\
id;rep_id;status;created_at;closed_at;amount;currency
d1;r1;won;10.01.2025 09:00;01.02.2025 12:30:15;100;UAH
d2;r2;lost;1.7.2025 9:05;2025-07-02 10:00;50;UAH
d3;r3;open;31.12.2024;;7;UAH
"""
DOTTED_REPS = "id,name,hired_at\nr1,Olena,15.01.2020\nr2,Bob,2021-03-01\nr3,Ivan,1.7.2022 10:00\n"


def test_dotted_dates_take_the_fast_path_and_store_what_python_stores(tmp_path):
    folder = write(tmp_path / "dotted", {"reps.csv": DOTTED_REPS, "deals.csv": DOTTED_DEALS})
    fast, slow, fast_settings, slow_settings = both_paths(tmp_path, folder)

    assert fast.ok and slow.ok, (fast.errors, slow.errors)
    assert sorted(fast.fast_files) == ["deals.csv", "reps.csv"]
    stored = snapshot(fast_settings)
    assert stored == snapshot(slow_settings)
    deals = {row[0]: row for row in stored["deals"]}
    utc = dt.datetime
    # Read in Kyiv: 09:00 in January is 07:00 UTC (UTC+2); 09:05 in July 06:05 (UTC+3).
    assert utc(2025, 1, 10, 7) in deals["d1"] and utc(2025, 2, 1, 10, 30, 15) in deals["d1"]
    assert utc(2025, 7, 1, 6, 5) in deals["d2"] and utc(2025, 7, 2, 7) in deals["d2"]
    assert utc(2024, 12, 30, 22) in deals["d3"]  # midnight of 31 December in Kyiv
    hired = {row[0]: row for row in stored["reps"]}
    assert dt.date(2020, 1, 15) in hired["r1"] and dt.date(2022, 7, 1) in hired["r3"]


@pytest.mark.parametrize("bad", ["31.02.2025", "10.01.2025 24:00", "10.01.2025 10:15:60",
                                 "10.13.2025", "10.01.25", "10.01.2025 9"])
def test_a_dotted_date_python_refuses_is_named_the_same_way(tmp_path, bad):
    deals = DOTTED_DEALS.replace("31.12.2024", bad)
    folder = write(tmp_path / "bad", {"reps.csv": DOTTED_REPS, "deals.csv": deals})
    fast, slow, fast_settings, _slow_settings = both_paths(tmp_path, folder)

    assert not fast.ok and not slow.ok
    assert located(fast) == located(slow)
    assert ("deals.csv", 4, "created_at") in [(e.file, e.row, e.column) for e in fast.errors]
    assert not any(snapshot(fast_settings).values())  # nothing stored


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_spaces_at_the_edges_of_values_in_a_file_without_tabs_or_quotes(tmp_path, newline):
    """Without tabs or quotes only a space can be at a value's edge: the fast path then
    tests two edges for a space (not each value's last character), and still stores
    what the Python path stores, spaces stripped."""
    rows = ["id,type,rep_id,occurred_at,deal_id,direction,outcome,duration_s,selling,note",
            "a1,  call , r1,2025-01-15 12:00:00 ,d1 , In,no answer  ,60 , да,  a note ",
            "b2,meeting,r1,  2025-07-01 12:00:00,,out,,   ,ні,   ",
            "c3 ,email,r1 ,2025-02-01,d1,,connected,0,true,x"]
    folder = write(tmp_path / "in", {
        "reps.csv": "id,name\nr1,Olena\n",
        "deals.csv": "id,rep_id,status\nd1,r1,open\n",
        "activities.csv": newline.join(rows) + newline})
    fast, slow, fast_settings, slow_settings = both_paths(tmp_path, folder)

    assert fast.ok and slow.ok, (fast.errors, slow.errors)
    assert "activities.csv" in fast.fast_files
    assert snapshot(fast_settings) == snapshot(slow_settings)
    con = duckdb.connect(str(fast_settings.workspace / "analytics.duckdb"), read_only=True)
    try:
        stored = con.execute(
            "SELECT id, type, rep_id, occurred_at, deal_id, direction, outcome, duration_s, "
            "selling, custom::VARCHAR FROM activities ORDER BY id").fetchall()
    finally:
        con.close()
    utc = dt.datetime
    # 12:00 in Kyiv is 10:00 UTC in January, 09:00 in July; 1 February 00:00 is 22:00 UTC.
    assert stored == [
        ("a1", "call", "r1", utc(2025, 1, 15, 10), "d1", "in", "no answer", 60, True,
         '{"note": "a note"}'),
        ("b2", "meeting", "r1", utc(2025, 7, 1, 9), None, "out", None, None, False, "{}"),
        ("c3", "email", "r1", utc(2025, 1, 31, 22), "d1", None, "connected", 0, True,
         '{"note": "x"}'),
    ]


def test_a_mapping_keeps_the_python_path(tmp_path):
    folder = write(tmp_path / "in", {"reps.csv": "id,name\nr1,Ann\n"})
    mapping = tmp_path / "m.yaml"
    mapping.write_text("name: m\nfiles:\n  - file: reps.csv\n    entity: reps\n",
                       encoding="utf-8")
    from saleskpi.sources.ingest.mapping import load_mapping

    report = import_path(settings_in(tmp_path / "ws"), folder,
                         mapping=load_mapping(str(mapping)), source=SOURCE)
    assert report.ok and report.fast_files == []


def test_every_backend_stores_the_fast_path_as_the_python_path(
        tmp_path: Path, good: Path, backend: BackendChoice) -> None:
    """PostgreSQL and ClickHouse take the fast path's rows through their own staging
    (COPY, Arrow): the stored tables match the Python path's on the same backend."""
    stored = []
    for fast in (True, False):
        workspace = tmp_path / f"ws-{fast}"
        save_workspace_settings(Settings(workspace=workspace), timezone=ZONE,
                                **backend.settings())
        report = import_path(Settings(workspace=workspace), good, source=SOURCE, fast=fast)
        assert report.ok, report.errors
        assert len(report.fast_files) == (3 if fast else 0)
        again = import_path(Settings(workspace=workspace), good, source=SOURCE, fast=fast)
        assert sum(c.inserted + c.updated for c in again.entities.values()) == 0
        stored.append(facts_snapshot(workspace))
    assert stored[0] == stored[1]
    assert len(stored[0]["activities"]) == 7
