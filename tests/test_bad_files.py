"""Bad files (issue 16, items 1 and 2): each is refused naming its file, row and column,
never a traceback, a hang or a bad value stored; a refusal changes no stored data.

Every case below crashed, hung or was stored as it stood before this work (the issue's
measurements). The workspace holds a valid base import; after each refusal the
fingerprint of every analytics table (hand-written SQL, tests/malformed.py) is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.reports import ImportReport
from saleskpi.domain.settings import Settings
from saleskpi.sources.ingest.run import import_path
from tests.malformed import store_fingerprint, truncated_sheet, workbook_bytes, zip_bomb

SOURCE = "crm"
REPS = "id,name,team\nr1,Alice Smith,North\nr2,Bob Jones,South\n"
DEALS_HEADER = "id,rep_id,status,created_at,closed_at,amount,currency,probability\n"
DEAL = "d1,r1,won,2024-01-05,2024-02-01,1000.00,USD,0.5\n"
ACTIVITIES_HEADER = "id,type,rep_id,occurred_at,duration_s\n"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A workspace holding a valid base import (2 reps, 1 deal, 1 activity)."""
    root = tmp_path_factory.mktemp("bad-files")
    base = root / "base"
    base.mkdir()
    (base / "reps.csv").write_text(REPS)
    (base / "deals.csv").write_text(DEALS_HEADER + DEAL)
    (base / "activities.csv").write_text(ACTIVITIES_HEADER + "a1,call,r1,2024-01-02,60\n")
    settings = Settings(workspace=root / "ws", _env_file=None)
    report = import_path(settings, base, source=SOURCE)
    assert report.ok, report.errors
    return settings


def deals(amount: str = "1000.00", probability: str = "0.5", closed: str = "2024-02-01",
          ) -> str:
    return DEALS_HEADER + f"d2,r2,won,2024-01-05,{closed},{amount},USD,{probability}\n"


def activity(duration: str) -> str:
    return ACTIVITIES_HEADER + f"a2,call,r2,2024-01-03,{duration}\n"


def reps_hired(hired: str) -> str:
    return f"id,name,hired_at\nr3,Carol,{hired}\n"


def mixed_reps() -> bytes:
    """reps.csv whose first 11 lines are UTF-8 and the rest cp1251 (the issue's file)."""
    head = "id,name,team\n" + "".join(f"r{i},Иван {i},Москва\n" for i in range(10, 20))
    tail = "".join(f"r{i},Пётр {i},Москва\n" for i in range(20, 25))
    return head.encode("utf-8") + tail.encode("cp1251")


def bomb_folder(folder: Path) -> None:
    zip_bomb(folder / "book.xlsx", 300 * 1024 * 1024)


def columns_20000() -> str:
    extra = [f"c{i}" for i in range(20_000)]
    return ",".join(["id", "name", *extra]) + "\n" + ",".join(["r3", "Carol"] + ["x"] * 20_000)


# name -> (files, or a function filling the folder; expected file, row, column, words)
Files = dict[str, str | bytes] | Callable[[Path], None]
CASES: dict[str, tuple[Files, str, int | None, str | None, str]] = {
    "repeated header": ({"reps.csv": "id,id,name\nr3,r3,Carol\n"},
                        "reps.csv", 1, "id", "twice"),
    "cell over 128 KiB": ({"reps.csv": REPS + "r3," + "C" * 140_000 + ",North\n"},
                          "reps.csv", 4, None, "longer than 131072"),
    "folder named x.csv": (lambda folder: (folder / "x.csv").mkdir(),
                           "x.csv", None, None, "folder"),
    "byte 0x98": ({"reps.csv": b"id,name\nr3,Car\x98ol\n"},
                  "reps.csv", 2, None, "neither UTF-8"),
    "20,000 columns": ({"reps.csv": columns_20000()}, "reps.csv", 1, None, "at most 1000"),
    "inf probability": ({"deals.csv": deals(probability="inf")},
                        "deals.csv", 2, "probability", "not a finite number"),
    "1e400 probability": ({"deals.csv": deals(probability="1e400")},
                          "deals.csv", 2, "probability", "not a finite number"),
    "NaN probability": ({"deals.csv": deals(probability="NaN")},
                        "deals.csv", 2, "probability", "not a finite number"),
    "probability 150": ({"deals.csv": deals(probability="150")},
                        "deals.csv", 2, "probability", "0 .. 100"),
    "inf amount": ({"deals.csv": deals(amount="inf")}, "deals.csv", 2, "amount",
                   "not an amount"),
    "NaN amount": ({"deals.csv": deals(amount="NaN")}, "deals.csv", 2, "amount",
                   "not an amount"),
    "NUL in a name": ({"reps.csv": "id,name\nr3,Car\x00ol\n"}, "reps.csv", 2, "name",
                      "control character"),
    "escape in a name": ({"reps.csv": "id,name\nr3,Car\x1bol\n"}, "reps.csv", 2, "name",
                         "control character"),
    "NUL in the header": ({"reps.csv": "id,na\x00me\nr3,Carol\n"}, "reps.csv", 1, "na\\x00me",
                          "control character"),
    "date then text": ({"deals.csv": deals(closed="2024-03-01 garbage text")},
                       "deals.csv", 2, "closed_at", "not a date"),
    "date column then text": ({"reps.csv": reps_hired("2024-03-01 garbage text")},
                              "reps.csv", 2, "hired_at", "not a date"),
    "year 0001": ({"deals.csv": deals(closed="0001-01-01")}, "deals.csv", 2, "closed_at",
                  "1900-01-01 .. 2199-12-31"),
    "year 9999": ({"deals.csv": deals(closed="9999-12-31")}, "deals.csv", 2, "closed_at",
                  "1900-01-01 .. 2199-12-31"),
    "year 9999 in a date column": ({"reps.csv": reps_hired("9999-12-31")},
                                   "reps.csv", 2, "hired_at", "1900-01-01 .. 2199-12-31"),
    "duration 10^16 s": ({"activities.csv": activity("10000000000000000")},
                         "activities.csv", 2, "duration_s", "0 .. 2,678,400"),
    "negative duration": ({"activities.csv": activity("-5")},
                          "activities.csv", 2, "duration_s", "0 .. 2,678,400"),
    "Arabic-Indic amount": ({"deals.csv": deals(amount="١٠٠٠")}, "deals.csv", 2, "amount",
                            "not 0-9"),
    "full-width duration": ({"activities.csv": activity("６０")},
                            "activities.csv", 2, "duration_s", "not 0-9"),
    "Arabic-Indic date": ({"reps.csv": reps_hired("٢٠٢٤-٠٣-٠١")}, "reps.csv", 2, "hired_at",
                          "not 0-9"),
    "mixed UTF-8 and cp1251": ({"reps.csv": mixed_reps()}, "reps.csv", 12, None,
                               "encoding changes"),
    "cp1252 (Western) text": ({"reps.csv": "id,name\nr3,Jürgen Müller\n".encode("cp1252")},
                              "reps.csv", 2, None, "neither UTF-8"),
    "UTF-8 cut off mid-character": ({"reps.csv": "id,name\nr3,Иван\n".encode()[:-2]},
                                    "reps.csv", 2, None, "cut off"),
    "UTF-16 without a byte-order mark": (
        {"reps.csv": "id,name\nr3,Carol\n".encode("utf-16-le")}, "reps.csv", 1, "i\\x00d\\x00",
        "control character"),
    "truncated sheet XML": (
        {"book.xlsx": truncated_sheet(workbook_bytes(
            {"reps": [["id", "name"], *([f"r{i}", f"Rep {i}"] for i in range(3, 200))]}))},
        "book.xlsx:reps", 100, None, "damaged"),  # the rows before it were read
    "not a workbook": ({"book.xlsx": b"PK\x03\x04 not really"}, "book.xlsx", None, None,
                       "not an .xlsx"),
    "repeated header in a workbook": (
        {"book.xlsx": workbook_bytes({"reps": [["id", "name", "id"], ["r3", "Carol", "r3"]]})},
        "book.xlsx:reps", 1, "id", "twice"),
    "zip bomb (300 MB)": (bomb_folder, "book.xlsx", None, None, "at most 256 MB"),
}


def run_import(settings: Settings, folder: Path) -> tuple[ImportReport, float]:
    started = time.perf_counter()
    report = import_path(settings, folder, source=SOURCE)
    return report, time.perf_counter() - started


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_file_is_refused_naming_where(settings: Settings, tmp_path: Path,
                                            case: str) -> None:
    files, file, row, column, words = CASES[case]
    folder = tmp_path / "in"
    folder.mkdir()
    if callable(files):
        files(folder)
    else:
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else content
            (folder / name).write_bytes(data)
    before = store_fingerprint(settings.workspace)

    report, seconds = run_import(settings, folder)

    assert not report.ok, f"{case}: accepted"
    located = [(e.file, e.row, e.column) for e in report.errors]
    assert (file, row, column) in located, report.errors
    error = report.errors[located.index((file, row, column))]
    assert words in error.message, error.message
    assert error.hint or "empty" in error.message
    assert seconds < 10, f"{case}: {seconds:.1f} s"
    assert store_fingerprint(settings.workspace) == before


def stored_reps(settings: Settings, source: str) -> list[tuple[str, str, str | None]]:
    con = duckdb.connect(str(settings.analytics_path), read_only=True)
    try:
        return [(i, n, t) for i, n, t in con.execute(
            "SELECT id, name, team FROM reps WHERE datasource = ? ORDER BY id",
            [source]).fetchall()]
    finally:
        con.close()


CYRILLIC_REPS = [("k1", "Иван Петров", "Москва"), ("k2", "Пётр Сидоров", "Київ"),
                 ("k3", "ОЛЕНА ЇЖАК", "Львів")]


def encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1251", "koi8_r",
                                      "mac_cyrillic"])
def test_cyrillic_files_are_read_in_their_own_encoding(settings: Settings, tmp_path: Path,
                                                      encoding: str) -> None:
    rows = [r for r in CYRILLIC_REPS if encodable(",".join(r), encoding)]  # KOI8-R: no Ї
    text = "id,name,team\n" + "".join(",".join(r) + "\n" for r in rows)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "reps.csv").write_bytes(text.encode(encoding))

    report = import_path(settings, folder, source=f"enc-{encoding}")

    assert report.ok, report.errors
    assert stored_reps(settings, f"enc-{encoding}") == rows


def test_the_cli_refuses_a_bad_file_with_exit_code_1(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "reps.csv").write_bytes(mixed_reps())
    result = run_cli(tmp_path / "ws", "import", folder, "--format", "json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = result.json()
    assert report["ok"] is False
    assert report["errors"][0]["row"] == 12
    assert "UTF-8" in report["errors"][0]["hint"]


def test_uploads_of_bad_files_answer_a_report_not_a_500(tmp_path: Path) -> None:
    from saleskpi.service.auth import add_user
    from saleskpi.surfaces.server import create_app

    settings = Settings(workspace=tmp_path / "ws", _env_file=None)
    add_user(settings, "boss", "correct horse battery", "admin")
    client = TestClient(create_app(settings))
    signed = client.post("/api/v1/session",
                         json={"username": "boss", "password": "correct horse battery"})
    csrf = signed.json()["csrf"]
    broken = truncated_sheet(workbook_bytes(
        {"reps": [["id", "name"], *([f"r{i}", f"Rep {i}"] for i in range(200))]}))
    for name, content in [("reps.csv", b"id,id,name\nr1,r1,A\n"),
                          ("reps.csv", b"id,name\nr1,Al\x98ce\n"),
                          ("reps.csv", b"id,name\nr1,Al\x00ce\n"),
                          ("book.xlsx", broken)]:
        answer = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf},
                             files=[("files", (name, content, "application/octet-stream"))])
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["ok"] is False and report["confirm"] is None
        assert report["errors"][0]["file"].startswith(name), report["errors"]
