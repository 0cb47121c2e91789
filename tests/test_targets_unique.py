"""One target per KPI, period and rep, team or company (issue 13, item 3): setting it again
replaces it whatever its source, each change is logged, old duplicates are merged by
migration 0008, and a month's targets copy to the next."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from saleskpi.store.state import MIGRATIONS, engine_for
from saleskpi.store.targets import TargetStore

DEC = (dt.date(2026, 12, 1), dt.date(2026, 12, 31))


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def test_migration_0008_keeps_the_newest_of_duplicates_and_logs_the_others(
        tmp_path: Path) -> None:
    db = tmp_path / "state.sqlite"
    engine = create_engine(f"sqlite:///{db}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
    with sqlite3.connect(db) as con:
        con.executemany(
            "INSERT INTO targets (source, kpi, period_start, period_end, rep_id, team, value, "
            "updated_at) VALUES (?, 'deals_won', '2026-12-01', '2026-12-31', ?, ?, ?, ?)", [
                ("demo", "r1", None, 3, "2026-11-30 10:00:00"),
                ("manual", "r1", None, 5, "2026-12-01 09:00:00"),  # newest: kept
                ("crm", "r1", "North", 4, "2026-11-01 09:00:00"),  # the same rep's
                ("demo", None, "North", 20, "2026-12-01 10:00:00"),  # a team's: kept
                ("demo", None, None, 50, "2026-12-01 10:00:00"),  # the company's: kept
            ])
    engine_for(f"sqlite:///{db}")  # upgrades to the head
    kept = _rows(db, "SELECT source, rep_id, team, value FROM targets ORDER BY value")
    assert kept == [("manual", "r1", None, 5.0), ("demo", None, "North", 20.0),
                    ("demo", None, None, 50.0)]
    logged = _rows(db, "SELECT action, source, old_value FROM target_changes ORDER BY old_value")
    assert logged == [("deduplicated", "demo", 3.0), ("deduplicated", "crm", 4.0)]


def test_setting_again_replaces_whatever_the_source_and_logs_who(tmp_path: Path) -> None:
    store = TargetStore(f"sqlite:///{tmp_path / 'state.sqlite'}")
    first, last = DEC
    store.set(kpi="calls", period_start=first, period_end=last, value=100, rep_id="r1",
              source="crm", actor="import:crm")
    _record, change = store.set(kpi="calls", period_start=first, period_end=last, value=120,
                               rep_id="r1", team="North", actor="boss")
    assert change == "updated"
    targets = store.list(at=first)
    assert [(t.source, t.value) for t in targets] == [("manual", 120.0)]
    log = store.changes()
    assert [(c["actor"], c["action"], c["old_value"], c["new_value"]) for c in log] == [
        ("boss", "replaced", 100.0, 120.0), ("import:crm", "set", None, 100.0)]
    assert store.delete(kpi="calls", period_start=first, period_end=last, rep_ids=("r1",),
                        actor="boss") == 1
    assert store.changes(1)[0]["action"] == "deleted"


def _two_reps(run_cli: Any, workspace: Path, tmp_path: Path) -> None:
    """Ann (r1) and Bob (r2) of team North, imported into ``workspace``."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Ann,North\nr2,Bob,North\n",
                                   encoding="utf-8")
    assert run_cli(workspace, "import", data).returncode == 0


def test_cli_set_twice_keeps_one_and_copy_makes_next_month(run_cli: Any, workspace: Path,
                                                           tmp_path: Path) -> None:
    _two_reps(run_cli, workspace, tmp_path)
    for value in (5, 6):
        result = run_cli(workspace, "target", "set", "deals_won", value, "--rep", "Ann",
                         "--start", "2026-11-10")
        assert result.returncode == 0, result.stderr
    run_cli(workspace, "target", "set", "calls", 300, "--team", "North", "--start",
            "2026-11-10")
    run_cli(workspace, "target", "set", "calls", 999, "--team", "North", "--start",
            "2026-12-10")  # already set in December: kept by copy
    listed = run_cli(workspace, "target", "list", "--at", "2026-11-15", "--format", "json")
    assert [(t["kpi"], t["value"]) for t in listed.json()["targets"]] == [
        ("calls", 300), ("deals_won", 6)]
    copied = run_cli(workspace, "target", "copy", "--from", "2026-11", "--to", "2026-12",
                     "--format", "json")
    assert copied.returncode == 0, copied.stderr
    assert (copied.json()["inserted"], copied.json()["kept"]) == (1, 1)
    december = run_cli(workspace, "target", "list", "--at", "2026-12-15", "--format", "json")
    assert sorted((t["kpi"], t["value"], t["period_end"])
                  for t in december.json()["targets"]) == [
        ("calls", 999, "2026-12-31"), ("deals_won", 6, "2026-12-31")]
    history = run_cli(workspace, "target", "history", "--format", "json").json()["changes"]
    assert [c["action"] for c in history][:2] == ["copied", "set"]
    assert any(c["action"] == "replaced" and c["old_value"] == 5 and c["new_value"] == 6
               for c in history)


def test_a_grid_of_reps_by_months_sets_one_kpi_all_or_nothing(run_cli: Any, workspace: Path,
                                                               tmp_path: Path) -> None:
    _two_reps(run_cli, workspace, tmp_path)
    # As pasted from a spreadsheet: tabs, a name or an id, an empty cell, "1 200".
    grid = tmp_path / "plans.tsv"
    grid.write_text("rep\t2026-11\t2026-12\nAnn\t5\t6\nr2\t\t1 200\n", encoding="utf-8")
    done = run_cli(workspace, "target", "import", "--grid", grid, "--kpi", "calls",
                   "--format", "json")
    assert done.returncode == 0, done.stderr
    assert (done.json()["inserted"], done.json()["updated"]) == (3, 0)
    listed = run_cli(workspace, "target", "list", "--kpi", "calls", "--format", "json")
    assert sorted((t["rep_id"], t["period_start"], t["value"])
                  for t in listed.json()["targets"]) == [
        ("r1", "2026-11-01", 5), ("r1", "2026-12-01", 6), ("r2", "2026-12-01", 1200)]
    # A rep that is not known: nothing is set, and the line is named.
    bad = tmp_path / "bad.csv"
    bad.write_text("rep,2026-12,2027-01\nAnn,7,8\nAnne Smith,1,2\n", encoding="utf-8")
    refused = run_cli(workspace, "target", "import", "--grid", bad, "--kpi", "calls")
    assert refused.returncode == 2
    said = " ".join(refused.stderr.split())
    assert "bad.csv, line 3" in said and "'Anne Smith'" in said
    again = run_cli(workspace, "target", "list", "--kpi", "calls", "--format", "json")
    assert again.json() == listed.json()
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("rep,December\nAnn,7\n", encoding="utf-8")
    said = " ".join(run_cli(workspace, "target", "import", "--grid", wrong, "--kpi",
                            "calls").stderr.split())
    assert "line 1, column 'December': not a period" in said
