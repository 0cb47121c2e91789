"""Importing canonical CSV folders: bad files are rejected whole, good ones upsert.

Each bad folder in ``tests/data/bad/<case>/`` holds a valid ``reps.csv`` (adding a new
rep r3) and a ``deals.csv`` with exactly one mistake; the expected file, row and column
are counted by hand (the header is row 1, the first data row is row 2). A rejected import
must leave ``analytics.duckdb`` exactly as it was, so each case first imports a valid
base set and compares the full contents of every table before and after.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

BAD_DIR = Path(__file__).parent / "data" / "bad"
SOURCE = "crm"  # one source name for every import, so references resolve across imports

BASE_REPS = """\
id,name,team
r1,Alice Smith,North
r2,Bob Jones,South
"""
BASE_DEALS = """\
id,rep_id,status,created_at,closed_at,amount,currency
d1,r1,won,2024-01-05,2024-02-01,1000.00,USD
d2,r1,lost,2024-01-10,2024-02-15,,USD
d3,r2,open,2024-03-01,,500.00,USD
"""


# ---------------------------------------------------------------- helpers


def write_folder(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8", newline="")
    return folder


def import_folder(run_cli, workspace: Path, folder: Path, *extra: str):
    return run_cli(workspace, "import", folder, "--source", SOURCE, "--format", "json", *extra)


def store_sql(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(workspace / "analytics.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def store_snapshot(workspace: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Full contents of every table in analytics.duckdb, sorted."""
    tables = [
        t
        for (t,) in store_sql(
            workspace,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' ORDER BY table_name",
        )
    ]
    return {t: store_sql(workspace, f'SELECT * FROM "{t}" ORDER BY ALL') for t in tables}


def counts(report: dict[str, Any], entity: str) -> tuple[int, int, int, int]:
    c = report["entities"][entity]
    return c["inserted"], c["updated"], c["unchanged"], c["rejected"]


@pytest.fixture
def base_folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "base", {"reps.csv": BASE_REPS, "deals.csv": BASE_DEALS})


@pytest.fixture
def base_workspace(run_cli, workspace: Path, base_folder: Path) -> Path:
    """A workspace holding the valid base set (2 reps, 3 deals)."""
    result = import_folder(run_cli, workspace, base_folder)
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.json()
    assert report["ok"] is True
    assert counts(report, "reps") == (2, 0, 0, 0)
    assert counts(report, "deals") == (3, 0, 0, 0)
    return workspace


# ---------------------------------------------------------------- rejected imports

BAD_CASES = [
    # case folder, file, row, column
    pytest.param("bad_date", "deals.csv", 3, "closed_at", id="bad_date"),
    pytest.param("bad_amount", "deals.csv", 4, "amount", id="bad_amount"),
    pytest.param("duplicate_id", "deals.csv", 4, "id", id="duplicate_id_second_occurrence"),
    pytest.param("unknown_rep", "deals.csv", 3, "rep_id", id="unknown_rep"),
]


@pytest.mark.parametrize(("case", "file", "row", "column"), BAD_CASES)
def test_bad_file_is_rejected_with_file_row_column(
    run_cli, base_workspace, case, file, row, column
):
    before = store_snapshot(base_workspace)
    result = import_folder(run_cli, base_workspace, BAD_DIR / case)
    report = result.json()

    assert result.returncode == 1, result.stderr
    assert report["ok"] is False
    located = [(e["file"], e["row"], e["column"]) for e in report["errors"]]
    assert (file, row, column) in located
    error = report["errors"][located.index((file, row, column))]
    assert error["message"].strip()
    assert "hint" in error

    assert store_snapshot(base_workspace) == before


def test_missing_required_column_is_rejected(run_cli, base_workspace):
    before = store_snapshot(base_workspace)
    result = import_folder(run_cli, base_workspace, BAD_DIR / "missing_column")
    report = result.json()

    assert result.returncode == 1, result.stderr
    assert report["ok"] is False
    # The header is at fault: row 1 (the contract allows that; no data row is wrong).
    located = [(e["file"], e["row"], e["column"]) for e in report["errors"]]
    assert ("deals.csv", 1, "status") in located
    assert store_snapshot(base_workspace) == before


def test_bad_file_into_empty_workspace_writes_no_rows(run_cli, workspace):
    result = import_folder(run_cli, workspace, BAD_DIR / "bad_date")
    assert result.returncode == 1
    assert result.json()["ok"] is False
    # The fast path reads into the store it opens first; refused, the store it made is
    # gone, so the workspace still says "import first" rather than show zeros.
    assert not (workspace / "analytics.duckdb").exists()
    assert not (workspace / "analytics.duckdb.wal").exists()


def test_a_dry_run_into_an_empty_workspace_leaves_no_store(run_cli, workspace, tmp_path):
    folder = write_folder(tmp_path / "new", {"reps.csv": BASE_REPS})
    result = import_folder(run_cli, workspace, folder, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.json()["ok"] is True
    assert not (workspace / "analytics.duckdb").exists()
    # The real import then stores the rows.
    assert import_folder(run_cli, workspace, folder).returncode == 0
    assert (workspace / "analytics.duckdb").exists()


# ---------------------------------------------------------------- dry run, re-import, update


def test_dry_run_reports_inserts_but_writes_nothing(run_cli, base_workspace, tmp_path):
    new_deals = (
        "id,rep_id,status,created_at,closed_at,amount,currency\n"
        "d4,r1,won,2024-04-01,2024-04-10,250.00,USD\n"
        "d5,r2,open,2024-04-02,,300.00,USD\n"
    )
    folder = write_folder(tmp_path / "new", {"reps.csv": BASE_REPS, "deals.csv": new_deals})
    before = store_snapshot(base_workspace)

    result = import_folder(run_cli, base_workspace, folder, "--dry-run")
    report = result.json()

    assert result.returncode == 0, result.stderr
    assert report["ok"] is True
    assert report["dry_run"] is True
    assert counts(report, "deals") == (2, 0, 0, 0)
    assert counts(report, "reps") == (0, 0, 2, 0)
    assert store_snapshot(base_workspace) == before


def test_reimporting_same_folder_changes_nothing(run_cli, base_workspace, base_folder):
    before = store_snapshot(base_workspace)
    result = import_folder(run_cli, base_workspace, base_folder)
    report = result.json()

    assert result.returncode == 0, result.stderr
    assert report["ok"] is True
    assert counts(report, "reps") == (0, 0, 2, 0)
    assert counts(report, "deals") == (0, 0, 3, 0)
    assert store_snapshot(base_workspace) == before


def test_changed_row_is_updated_not_duplicated(run_cli, base_workspace, tmp_path):
    changed = BASE_DEALS.replace(
        "d1,r1,won,2024-01-05,2024-02-01,1000.00", "d1,r1,won,2024-01-05,2024-02-01,1500.00"
    )
    assert changed != BASE_DEALS
    folder = write_folder(tmp_path / "changed", {"reps.csv": BASE_REPS, "deals.csv": changed})

    result = import_folder(run_cli, base_workspace, folder)
    report = result.json()

    assert result.returncode == 0, result.stderr
    assert counts(report, "deals") == (0, 1, 2, 0)
    assert store_sql(base_workspace, "SELECT id, amount FROM deals ORDER BY id") == [
        ("d1", Decimal("1500.00")),
        ("d2", None),
        ("d3", Decimal("500.00")),
    ]


# ---------------------------------------------------------------- encodings and number formats


def test_cp1251_semicolon_decimal_comma_file_imports(run_cli, workspace, tmp_path):
    reps = (
        "id;name;team\r\n"
        "r1;Иван Петров;Отдел продаж\r\n"
        "r2;Мария Сидорова;Отдел продаж\r\n"
        "r3;Олег Ковальчук;Региональный отдел\r\n"
    )
    deals = (
        "id;rep_id;status;created_at;closed_at;amount\r\n"
        "d1;r1;won;2024-01-10;2024-02-01;1 234,50\r\n"
        "d2;r2;lost;2024-01-12;2024-02-03;\r\n"
        "d3;r3;open;2024-01-15;;10 000,00\r\n"
    )
    folder = write_folder(
        tmp_path / "cp1251",
        {"reps.csv": reps.encode("cp1251"), "deals.csv": deals.encode("cp1251")},
    )

    result = import_folder(run_cli, workspace, folder)
    report = result.json()

    assert result.returncode == 0, f"{report.get('errors')} {result.stderr}"
    assert report["ok"] is True
    assert counts(report, "reps") == (3, 0, 0, 0)
    assert counts(report, "deals") == (3, 0, 0, 0)
    assert store_sql(workspace, "SELECT id, name, team FROM reps ORDER BY id") == [
        ("r1", "Иван Петров", "Отдел продаж"),
        ("r2", "Мария Сидорова", "Отдел продаж"),
        ("r3", "Олег Ковальчук", "Региональный отдел"),
    ]
    assert store_sql(workspace, "SELECT id, amount FROM deals ORDER BY id") == [
        ("d1", Decimal("1234.50")),
        ("d2", None),
        ("d3", Decimal("10000.00")),
    ]


def test_utf8_with_bom_file_imports(run_cli, workspace, tmp_path):
    bom = b"\xef\xbb\xbf"
    reps = "id,name,team\nr1,Олена Шевченко,Київ\nr2,Bob Jones,South\n"
    deals = (
        "id,rep_id,status,created_at,closed_at,amount,currency\n"
        "d1,r1,won,2024-01-05,2024-02-01,1000.00,USD\n"
    )
    folder = write_folder(
        tmp_path / "bom",
        {"reps.csv": bom + reps.encode("utf-8"), "deals.csv": bom + deals.encode("utf-8")},
    )

    result = import_folder(run_cli, workspace, folder)
    report = result.json()

    assert result.returncode == 0, f"{report.get('errors')} {result.stderr}"
    assert report["ok"] is True
    assert store_sql(workspace, "SELECT id, name, team FROM reps ORDER BY id") == [
        ("r1", "Олена Шевченко", "Київ"),
        ("r2", "Bob Jones", "South"),
    ]
    assert store_sql(workspace, "SELECT id, rep_id, amount FROM deals") == [
        ("d1", "r1", Decimal("1000.00"))
    ]


def test_day_first_dotted_dates_import_without_a_mapping(run_cli, workspace, tmp_path):
    """31.01.2024 (10:15) as amoCRM, Bitrix24 and Excel in Russian write dates: read day
    first in the company's zone. Slashes stay ambiguous (01/02: January or February?)."""
    assert run_cli(workspace, "settings", "--timezone", "Europe/Kyiv").returncode == 0
    reps = "id,name,team\nr1,Олена Шевченко,Київ\n"
    deals = (
        "id,rep_id,status,created_at,closed_at,amount\n"
        "d1,r1,won,05.01.2024,31.01.2024 10:15,100\n"
        "d2,r1,lost,5.1.2024,01.02.2024 09:05:30,\n"
        "d3,r1,open,2024-01-07,,50\n"
    )
    folder = write_folder(tmp_path / "dotted", {"reps.csv": reps, "deals.csv": deals})
    result = import_folder(run_cli, workspace, folder)
    assert result.returncode == 0, result.stdout + result.stderr
    # Kyiv is UTC+2 in winter: 10:15 there is 08:15 UTC; a date alone is its midnight.
    assert store_sql(workspace, "SELECT id, closed_at FROM deals ORDER BY id") == [
        ("d1", dt.datetime(2024, 1, 31, 8, 15)),
        ("d2", dt.datetime(2024, 2, 1, 7, 5, 30)),
        ("d3", None),
    ]
    assert [str(r[0])[:10] for r in store_sql(
        workspace, "SELECT created_at FROM deals ORDER BY id")] == [
        "2024-01-04", "2024-01-04", "2024-01-06"]  # midnight in Kyiv: 22:00 UTC the day before

    for bad, column in (("31.02.2024", "closed_at"), ("01/02/2024", "closed_at")):
        folder = write_folder(tmp_path / f"bad{len(bad)}{bad[:2]}", {
            "reps.csv": reps,
            "deals.csv": f"id,rep_id,status,closed_at\nd9,r1,won,{bad}\n"})
        rejected = import_folder(run_cli, workspace, folder)
        assert rejected.returncode != 0
        error = rejected.json()["errors"][0]
        assert (error["file"], error["row"], error["column"]) == ("deals.csv", 2, column)
