"""Kill -9 at every step of an import and a sync that writes to either store.

``saleskpi import`` and ``saleskpi sync`` run as their own processes with
``SALESKPI_FAULT`` naming a fault point; the process kills itself there (SIGKILL,
exit -9 proves the point was reached). Then the workspace is opened again as a
page or ``saleskpi kpi`` would (read-only), and as the next import would
(read-write), and each time the two stores must agree:

* no split state: the import's facts (DuckDB), its targets and its import-log
  entry (SQLite) are all there or none is; a sync's cursor (SQLite) is the one of
  the last batch whose facts are stored;
* no lost log entry: every write that began is in the journal as completed or
  rolled back (none pending), and an import shows in the import log as completed
  or interrupted;
* the next run recovers by itself: running the same import or sync again gives
  exactly the state of a clean run, and once more changes nothing.

Expected counts come from the fixture files (counted by hand) and from a clean
run's stores read with plain SQL (sqlite3, DuckDB), never from saleskpi's readers.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from saleskpi.domain.schema import ENTITIES, FIRST_CONTACT_TABLES
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.sync import sync
from saleskpi.sources.ingest.run import import_path
from saleskpi.store.analytics import AnalyticsStore
from tests.conftest import SRC_DIR
from tests.fakes.amocrm import TOKEN, FakeAmoCrm

pytestmark = pytest.mark.slow

# The journaled write's points, in order; from after_duckdb_commit on, the write has
# happened (DuckDB's commit decides).
WRITE_POINTS = ("journal_begun", "facts_written", "state_written", "after_duckdb_commit",
                "after_state_commit", "after_marker_cleared")
COMMITTED = {"after_duckdb_commit", "after_state_commit", "after_marker_cleared"}
FAST = ClientOptions(rate_limit=1000, backoff=0.01, retries=1)

REPS = "id,name,team\nr1,Alice,North\nr2,Bob,North\nr3,Carol,South\n"
DEALS_A = ("id,rep_id,status,created_at,closed_at,amount,currency\n"
           "D1,r1,won,2024-01-02 10:00:00,2024-02-01 10:00:00,1000,USD\n"
           "D2,r2,won,2024-01-03 10:00:00,2024-02-03 10:00:00,2000,USD\n"
           "D3,r3,lost,2024-01-04 10:00:00,2024-02-05 10:00:00,500,USD\n"
           "D4,r1,open,2024-01-05 10:00:00,,700,USD\n")
# B: D4 is now won (updated), D5 and D6 are new; two calls; three targets.
DEALS_B = ("id,rep_id,status,created_at,closed_at,amount,currency\n"
           "D1,r1,won,2024-01-02 10:00:00,2024-02-01 10:00:00,1000,USD\n"
           "D2,r2,won,2024-01-03 10:00:00,2024-02-03 10:00:00,2000,USD\n"
           "D3,r3,lost,2024-01-04 10:00:00,2024-02-05 10:00:00,500,USD\n"
           "D4,r1,won,2024-01-05 10:00:00,2024-03-01 10:00:00,700,USD\n"
           "D5,r2,won,2024-02-10 10:00:00,2024-03-02 10:00:00,900,USD\n"
           "D6,r3,open,2024-02-11 10:00:00,,400,USD\n")
ACTIVITIES_B = ("id,type,rep_id,occurred_at,direction\n"
                "A1,call,r1,2024-03-01 09:00:00,out\nA2,call,r2,2024-03-01 10:00:00,out\n")
TARGETS_B = ("kpi,period_start,period_end,value,rep_id,team\n"
             "deals_won,2024-03-01,2024-03-31,3,r1,\n"
             "revenue,2024-03-01,2024-03-31,5000,,North\n"
             "calls,2024-03-01,2024-03-31,40,,\n")
# By hand: (deals, of them won, activities, targets) before and after import B.
BEFORE_B = (4, 2, 0, 0)
AFTER_B = (6, 4, 2, 3)

RESULTS: dict[str, list[dict[str, Any]]] = {"import": [], "sync": []}


def killed_cli(workspace: Path, fault: str, *args: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SALESKPI_LANG="en", SALESKPI_FAULT=fault)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", ""))
                                        if p)
    return subprocess.run(
        [sys.executable, "-m", "saleskpi", "--workspace", str(workspace),
         *(str(a) for a in args)],
        capture_output=True, text=True, encoding="utf-8", env=env, timeout=300)


def new_workspace(root: Path) -> Settings:
    save_workspace_settings(Settings(workspace=root), currency="USD", timezone="UTC")
    return Settings(workspace=root)


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# -- the stores, read with plain SQL ----------------------------------------------------
def facts(workspace: Path, source: str) -> dict[str, list[tuple[str, ...]]]:
    """Every stored row of ``source`` (and every first contact), sorted, as text."""
    # Read-write, as the clean sync's own connection in this process is (DuckDB
    # allows no mix of modes within a process).
    con = duckdb.connect(str(workspace / "analytics.duckdb"))
    try:
        tables = {name: f"WHERE datasource = '{source}'" for name in ENTITIES}
        tables.update({name: "" for name in FIRST_CONTACT_TABLES.values()})
        return {name: sorted(tuple(str(v) for v in row) for row in con.execute(
            f'SELECT * EXCLUDE (custom) FROM "{name}" {where}'
            if name in ENTITIES else f'SELECT * FROM "{name}"').fetchall())
            for name, where in tables.items()}
    finally:
        con.close()


def state_rows(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(workspace / "state.sqlite")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def targets(workspace: Path) -> list[tuple[Any, ...]]:
    return sorted(state_rows(workspace, "SELECT source, kpi, period_start, period_end, "
                                        "rep_id, team, value FROM targets"))


def import_log(workspace: Path) -> list[tuple[str, bool, bool]]:
    """(origin, ok, interrupted) of each import-log entry, oldest first."""
    return [(str(origin), bool(ok), bool(json.loads(report).get("interrupted")))
            for origin, ok, report in state_rows(
                workspace, "SELECT origin, ok, report FROM import_runs ORDER BY id")]


def journal(workspace: Path) -> list[str]:
    return [str(s) for (s,) in state_rows(
        workspace, "SELECT status FROM write_journal ORDER BY started_at, rowid")]


def counts(workspace: Path) -> tuple[int, int, int, int]:
    rows = facts(workspace, "files")
    won = sum(1 for row in rows["deals"] if "won" in row)
    return len(rows["deals"]), won, len(rows["activities"]), len(targets(workspace))


def reopen(workspace: Path, *, read_only: bool) -> None:
    """Open the store as the next command would (recovery runs on open)."""
    AnalyticsStore(workspace / "analytics.duckdb", read_only=read_only).close()


# -- import ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Files:
    a: Path
    b: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    root = tmp_path_factory.mktemp("files")
    return Files(write_folder(root / "a", {"reps.csv": REPS, "deals.csv": DEALS_A}),
                 write_folder(root / "b", {"reps.csv": REPS, "deals.csv": DEALS_B,
                                           "activities.csv": ACTIVITIES_B,
                                           "targets.csv": TARGETS_B}))


@pytest.fixture(scope="module")
def clean_import(files: Files, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A, then B, imported without a fault."""
    settings = new_workspace(tmp_path_factory.mktemp("clean"))
    assert import_path(settings, files.a).ok
    assert import_path(settings, files.b).ok
    assert counts(settings.workspace) == AFTER_B
    return settings.workspace


@pytest.mark.parametrize("point", WRITE_POINTS)
def test_import_killed_at_each_point(point: str, files: Files, clean_import: Path,
                                     tmp_path: Path) -> None:
    settings = new_workspace(tmp_path / "ws")
    ws = settings.workspace
    assert import_path(settings, files.a).ok
    killed = killed_cli(ws, point, "import", files.b)
    assert killed.returncode == -9, killed.stderr  # the process died at the point
    stored = point in COMMITTED
    expected = AFTER_B if stored else BEFORE_B

    reopen(ws, read_only=True)  # a page, 'saleskpi kpi'
    split_read = counts(ws) != expected
    reopen(ws, read_only=False)  # the next import or sync
    split = split_read or counts(ws) != expected
    log = import_log(ws)
    lost = log != [(str(files.a), True, False), (str(files.b), stored, not stored)] \
        or journal(ws) != ["completed", "completed" if stored else "rolled_back"]
    RESULTS["import"].append({"point": point, "split": split, "lost": lost})
    assert not split, (point, counts(ws))
    assert not lost, (point, log, journal(ws))

    # The same import again: the state of a clean run; and once more: nothing changes.
    assert import_path(settings, files.b).ok
    assert facts(ws, "files") == facts(clean_import, "files")
    assert targets(ws) == targets(clean_import)
    again = import_path(settings, files.b)
    assert again.ok
    assert all(c.inserted == c.updated == 0 for c in again.entities.values()), again
    assert facts(ws, "files") == facts(clean_import, "files")
    assert targets(ws) == targets(clean_import)
    assert "pending" not in journal(ws)


# -- sync --------------------------------------------------------------------------------
@dataclass
class SyncReference:
    """The consistent states of a clean sync (after each batch) and its final state."""

    fake: FakeAmoCrm
    states: list[tuple[str, bool, str]]
    final: tuple[str, bool, str]
    writes: int  # journaled writes of one full sync (batches, then its end)


TIME_KEYS = ("started", "since")


def sync_state(workspace: Path) -> tuple[str, bool, str]:
    """(cursor, full sync running, digest of every stored amocrm row)."""
    cursor = state_rows(workspace, "SELECT cursor FROM sync_state WHERE crm = 'amocrm'")
    running = state_rows(workspace, "SELECT 1 FROM sync_full_runs WHERE crm = 'amocrm'")
    stored = facts(workspace, "amocrm")
    position = json.loads(cursor[0][0]) if cursor else {}
    # amoCRM's cursor holds when the sync started: the same position in another run
    # differs there only.
    position.update({k: "<time>" for k in TIME_KEYS if position.get(k)})
    return (json.dumps(position, sort_keys=True), bool(running),
            json.dumps(stored, sort_keys=True))


def connected(root: Path, fake: FakeAmoCrm) -> Settings:
    settings = new_workspace(root)
    CredentialStore(settings).put("amocrm", {"base_url": fake.url, "access_token": TOKEN})
    return settings


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncReference]:
    fake = FakeAmoCrm(page_size=50).start()
    try:
        settings = connected(tmp_path_factory.mktemp("clean-sync"), fake)
        states: list[tuple[str, bool, str]] = []
        # Before each batch is stored, the state the earlier batches left.
        report = sync(settings, "amocrm", options=FAST,
                      progress=lambda _m: states.append(sync_state(settings.workspace)))
        final = sync_state(settings.workspace)
        assert final[1] is False and report.batches >= 3 and not report.deleted
        # Every batch stored, the end not yet: as final, the full sync still running
        # (its end removes nothing here: the fake lists every row it ever had).
        states.append((final[0], True, final[2]))
        yield SyncReference(fake, states, final, report.batches + 1)
    finally:
        fake.stop()


def sync_cases() -> list[tuple[str, int | str]]:
    # The first write, one in the middle, and the last (the end of the full sync).
    return [("sync_started", 1)] + [(p, hit) for p in WRITE_POINTS
                                    for hit in (1, "middle", "last")]


@pytest.mark.parametrize(("point", "hit"), sync_cases())
def test_sync_killed_at_each_point(point: str, hit: int | str, reference: SyncReference,
                                   tmp_path: Path) -> None:
    nth = {"middle": reference.writes // 2, "last": reference.writes}.get(str(hit), hit)
    assert isinstance(nth, int)
    settings = connected(tmp_path / "ws", reference.fake)
    ws = settings.workspace
    killed = killed_cli(ws, f"{point}@{nth}", "sync", "amocrm")
    assert killed.returncode == -9, killed.stderr

    consistent = [*reference.states, reference.final]
    reopen(ws, read_only=True)
    split = sync_state(ws) not in consistent
    reopen(ws, read_only=False)
    split = split or sync_state(ws) not in consistent
    # Every write that began is journaled, settled: the killed one last.
    begun = 0 if point == "sync_started" else nth
    last = "completed" if point in COMMITTED else "rolled_back"
    want = ["completed"] * (begun - 1) + [last] if begun else []
    lost = journal(ws) != want
    RESULTS["sync"].append({"point": f"{point}@{nth}", "split": split, "lost": lost})
    assert not split, point
    assert not lost, journal(ws)

    # The next sync finishes the job; one more finds nothing to do.
    sync(settings, "amocrm", options=FAST)
    assert sync_state(ws) == reference.final
    again = sync(settings, "amocrm", options=FAST)
    assert all(c.inserted == c.updated == 0 for c in again.entities.values())
    assert sync_state(ws)[2] == reference.final[2]
    assert "pending" not in journal(ws)


def test_figures() -> None:
    """Print the figures SECURITY.md quotes (runs after the kills in this module)."""
    for kind, runs in RESULTS.items():
        print(f"{kind}: {len(runs)} kills, {sum(r['split'] for r in runs)} split states, "
              f"{sum(r['lost'] for r in runs)} lost log entries")
