"""The postgres backend itself: settings, secrets, upserts, one writer, crashes.

The KPI, funnel and plan tests run on both backends (``backend`` in conftest.py);
these are what only the PostgreSQL store has: its URL as a secret, imports as
upserts that change nothing the second time, the data version, the writer's lock,
the query time limit and the write journal across a killed process. Every expected
value is counted by hand from the files below and read back with plain SQL
(psycopg), never with saleskpi's readers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from saleskpi.domain.backends import masked_url, without_secret
from saleskpi.domain.errors import QueryTimeout
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import BackendNotReady, data_version, open_store
from saleskpi.store.facts import StoreBusy
from saleskpi.store.pg_connection import psycopg_sql
from saleskpi.store.postgres import BackendSetupError, PostgresStore, StoreUnreachable
from tests.conftest import SRC_DIR
from tests.postgres_server import PostgresServer

REPS = "id,name,team,email\nr1,Anna,North,anna@example.com\nr2,Boris,South,\n"
LEADS = "id,created_at,rep_id\nL1,2024-01-10 10:00:00,r1\nL2,2024-01-11 10:00:00,r2\n"
# L1's first outbound contact is A2 (10:05); A1 is inbound. L2's is A3.
ACTIVITIES = ("id,type,rep_id,occurred_at,lead_id,direction\n"
              "A1,call,r1,2024-01-10 10:01:00,L1,in\n"
              "A2,call,r1,2024-01-10 10:05:00,L1,out\n"
              "A3,email,r2,2024-01-11 12:00:00,L2,out\n")
DEALS = ("id,rep_id,status,created_at,closed_at,amount,currency\n"
         "D1,r1,won,2024-01-12 10:00:00,2024-01-20 10:00:00,1000.50,USD\n"
         "D2,r2,open,2024-01-13 10:00:00,,300,USD\n")


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def workspace_on_postgres(tmp_path: Path, postgres_server: PostgresServer) -> Settings:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), currency="USD",
                            backend="postgres", backend_url=postgres_server.create_database())
    return Settings(workspace=workspace)


def plain(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the workspace's database with psycopg alone."""
    assert settings.backend_url is not None
    with psycopg.connect(settings.backend_url.get_secret_value()) as con:
        return con.execute(sql).fetchall()


def run(workspace: Path, *args: object, **env: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, SALESKPI_LANG="en", **env)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(SRC_DIR), environment.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "saleskpi", "--workspace", str(workspace),
                           *(str(a) for a in args)], capture_output=True, text=True,
                          encoding="utf-8", env=environment, timeout=300)


# ---------------------------------------------------------------- the SQL it is given


@pytest.mark.parametrize("sql, style, expected", [
    ("SELECT * FROM t WHERE a = ? AND b = ?", "list", "SELECT * FROM t WHERE a = %s AND b = %s"),
    ("SELECT id FROM reps WHERE id = $text OR name = $text", "named",
     "SELECT id FROM reps WHERE id = %(text)s OR name = %(text)s"),
    # Quoted text and names keep their ? and $, but every % is doubled for psycopg.
    ("SELECT '?', '$x', \"a?b\", 5 % 2 FROM t WHERE c LIKE '50%' AND d = ?", "list",
     "SELECT '?', '$x', \"a?b\", 5 %% 2 FROM t WHERE c LIKE '50%%' AND d = %s"),
    # SQL compiled for PostgreSQL already has psycopg's placeholders.
    ("SELECT 1 WHERE x = %(start)s AND y = 'it''s' AND z = $end", "named",
     "SELECT 1 WHERE x = %(start)s AND y = 'it''s' AND z = %(end)s"),
    ("SELECT x::VARCHAR[] -- a ? here\nFROM t WHERE y = ?", "list",
     "SELECT x::VARCHAR[] -- a ? here\nFROM t WHERE y = %s"),
])
def test_duckdb_placeholders_become_psycopg_ones(sql: str, style: str, expected: str) -> None:
    assert psycopg_sql(sql, style) == expected


def test_urls_are_shown_without_their_password() -> None:
    url = "postgresql://sales:s3cr%40t@db.example.com:5432/kpi?sslmode=require&password=p2"
    assert masked_url(url) == ("postgresql://sales:***@db.example.com:5432/kpi"
                               "?sslmode=require&password=***")
    text = f"could not connect to {url}: password s3cr@t and s3cr%40t rejected (p2)"
    cleaned = without_secret(text, url)
    assert "s3cr" not in cleaned and "p2" not in cleaned
    assert "postgresql://sales:***@db.example.com:5432/kpi" in cleaned


# ---------------------------------------------------------------- settings


def test_backend_and_its_url_come_from_the_environment(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://sales:hunter2@db.example.com/kpi"
    monkeypatch.setenv("SALESKPI_BACKEND", "Postgres")
    monkeypatch.setenv("SALESKPI_BACKEND_URL", url)
    settings = Settings(workspace=tmp_path, _env_file=None)
    assert settings.backend == "postgres"
    assert settings.backend_url is not None and settings.backend_url.get_secret_value() == url
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_bad_backend_settings_are_clear_and_never_echo_the_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown backend 'oracle'"):
        Settings(workspace=tmp_path, backend="oracle", _env_file=None)
    with pytest.raises(ValueError, match="must start with postgresql://") as bad:
        Settings(workspace=tmp_path, backend_url="mysql://u:hunter2@h/db", _env_file=None)
    assert "hunter2" not in str(bad.value)
    no_url = Settings(workspace=tmp_path, backend="postgres", _env_file=None)
    with pytest.raises(BackendNotReady, match="SALESKPI_BACKEND_URL"):
        open_store(no_url)
    clickhouse = Settings(workspace=tmp_path, backend="clickhouse", _env_file=None)
    with pytest.raises(BackendNotReady, match=r"SALESKPI_BACKEND_URL.*clickhouse://"):
        open_store(clickhouse)
    mixed = Settings(workspace=tmp_path, backend="clickhouse", _env_file=None,
                     backend_url="postgresql://u:hunter2@db.example.com/kpi")
    with pytest.raises(BackendNotReady, match="not a URL of the clickhouse backend") as wrong:
        open_store(mixed)
    assert "hunter2" not in str(wrong.value)


def test_a_wrong_password_is_an_error_that_does_not_show_it(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    wrong = postgres_server.url().replace(postgres_server.password, "Wr0ngPassw0rd")
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), backend="postgres")
    result = run(workspace, "kpi", "calls", SALESKPI_BACKEND_URL=wrong)
    assert result.returncode == 3, result.stderr  # busy: the database is unavailable
    assert "cannot connect to the PostgreSQL database" in result.stderr
    assert f"postgresql://postgres:***@127.0.0.1:{postgres_server.port}/postgres" in result.stderr
    assert "Wr0ngPassw0rd" not in result.stdout + result.stderr
    shown = run(workspace, "settings", SALESKPI_BACKEND_URL=wrong)
    assert shown.returncode == 0, shown.stderr
    assert "backend: postgres postgresql://postgres:***@127.0.0.1" in shown.stdout
    assert "Wr0ngPassw0rd" not in shown.stdout


def test_a_database_that_cannot_lower_case_cyrillic_is_refused(
        tmp_path: Path, postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url(), autocommit=True) as con:
        con.execute("CREATE DATABASE c_ctype TEMPLATE template0 LC_CTYPE 'C' LC_COLLATE 'C'")
    with pytest.raises(BackendSetupError, match="character type C"):
        PostgresStore(postgres_server.url("c_ctype"), tmp_path / "analytics.duckdb")


# ---------------------------------------------------------------- imports as upserts


def test_importing_twice_changes_nothing_and_a_change_is_an_update(
        workspace_on_postgres: Settings, tmp_path: Path) -> None:
    settings = workspace_on_postgres
    service = SalesKpiService(settings)
    data = write(tmp_path / "data", {"reps.csv": REPS, "leads.csv": LEADS,
                                     "activities.csv": ACTIVITIES, "deals.csv": DEALS})
    first = service.import_path(data, mapping=None, source=None, dry_run=False)
    assert first.ok, first.errors
    assert {e: c.inserted for e, c in first.entities.items()} == {
        "reps": 2, "leads": 2, "activities": 3, "deals": 2}
    # Read back with plain SQL: amounts exact, custom JSON as JSONB, source "files".
    assert plain(settings, "SELECT id, amount, currency, datasource FROM deals ORDER BY id") == [
        ("D1", Decimal("1000.50"), "USD", "files"),
        ("D2", Decimal("300.00"), "USD", "files")]
    assert plain(settings, "SELECT lead_id, first_contact_at FROM lead_first_contacts "
                 "ORDER BY 1") == [("L1", dt.datetime(2024, 1, 10, 10, 5)),
                                  ("L2", dt.datetime(2024, 1, 11, 12, 0))]
    version = data_version(settings)
    before = plain(settings, "SELECT * FROM activities ORDER BY id")

    again = service.import_path(data, mapping=None, source=None, dry_run=False)
    assert again.ok, again.errors
    assert {e: (c.inserted, c.updated, c.unchanged) for e, c in again.entities.items()} == {
        "reps": (0, 0, 2), "leads": (0, 0, 2), "activities": (0, 0, 3), "deals": (0, 0, 2)}
    assert plain(settings, "SELECT * FROM activities ORDER BY id") == before
    assert data_version(settings) == version  # nothing changed: answers kept stay valid

    # A1 turns outbound: it is now L1's first contact (10:01), in the same write.
    changed = write(tmp_path / "changed", {"activities.csv": ACTIVITIES.replace(
        "10:01:00,L1,in", "10:01:00,L1,out")})
    third = service.import_path(changed, mapping=None, source=None, dry_run=False)
    assert third.ok, third.errors
    counted = third.entities["activities"]
    assert (counted.inserted, counted.updated, counted.unchanged) == (0, 1, 2)
    assert plain(settings, "SELECT count(*) FROM activities") == [(3,)]
    assert plain(settings, "SELECT first_contact_at FROM lead_first_contacts "
                 "WHERE lead_id = 'L1'") == [(dt.datetime(2024, 1, 10, 10, 1),)]
    assert data_version(settings) == (version[0] + 1,)


def test_a_failing_import_leaves_the_database_as_it_was(
        workspace_on_postgres: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from saleskpi.store.loader import Loader
    from tests.backends import facts_snapshot

    settings = workspace_on_postgres
    service = SalesKpiService(settings)
    assert service.import_path(write(tmp_path / "a", {"reps.csv": REPS, "leads.csv": LEADS}),
                               mapping=None, source=None, dry_run=False).ok
    before = facts_snapshot(settings.workspace)
    version = data_version(settings)
    original = Loader._write

    def failing(self: Loader, entity: Any) -> None:
        original(self, entity)
        if entity.name == "activities":  # written (with first contacts), then a failure
            raise RuntimeError("disk full")

    monkeypatch.setattr(Loader, "_write", failing)
    more = write(tmp_path / "b", {"reps.csv": REPS + "r3,Clara,North,\n",
                                  "activities.csv": ACTIVITIES, "deals.csv": DEALS})
    with pytest.raises(RuntimeError, match="disk full"):
        service.import_path(more, mapping=None, source=None, dry_run=False)
    assert facts_snapshot(settings.workspace) == before
    assert data_version(settings) == version
    assert plain(settings, "SELECT count(*) FROM reps") == [(2,)]


def test_deleting_a_first_contact_moves_it_to_the_next(workspace_on_postgres: Settings,
                                                        tmp_path: Path) -> None:
    """As a sync does for records deleted in the CRM (``delete_ids``)."""
    settings = workspace_on_postgres
    more = ACTIVITIES + "A4,meeting,r1,2024-01-10 11:00:00,L1,\n"  # L1's next contact
    assert SalesKpiService(settings).import_path(
        write(tmp_path / "d", {"reps.csv": REPS, "leads.csv": LEADS, "activities.csv": more}),
        mapping=None, source="crm", dry_run=False).ok
    with open_store(settings) as store:
        assert store.delete_ids("crm", {"activities": ["A2", "A3", "nope"]}) == {
            "activities": 2}
    # L1: A2 (10:05) gone, A1 inbound, so A4 (11:00); L2 lost its only contact.
    assert plain(settings, "SELECT lead_id, first_contact_at FROM lead_first_contacts") == [
        ("L1", dt.datetime(2024, 1, 10, 11, 0))]
    assert plain(settings, "SELECT id FROM activities ORDER BY id") == [("A1",), ("A4",)]


# ---------------------------------------------------------------- one writer, many readers


def test_one_writer_at_a_time_and_readers_never_wait(workspace_on_postgres: Settings,
                                                     tmp_path: Path) -> None:
    settings = workspace_on_postgres
    SalesKpiService(settings).import_path(write(tmp_path / "d", {"reps.csv": REPS}),
                                          mapping=None, source=None, dry_run=False)
    with open_store(settings) as writer:
        with pytest.raises(StoreBusy, match="another import is still running"):
            open_store(settings, wait=0.2)
        with writer.transaction() as con:
            con.execute("DELETE FROM reps WHERE id = 'r2'")
            # A reader sees the last committed data while the write is open.
            with open_store(settings, read_only=True) as reader:
                assert sorted(reader.rep_names()) == ["r1", "r2"]
    with open_store(settings, read_only=True) as reader:
        assert sorted(reader.rep_names()) == ["r1"]
    with open_store(settings, wait=0.2):  # the lock went with the writer
        pass


def test_a_question_over_the_time_limit_is_stopped(workspace_on_postgres: Settings) -> None:
    with open_store(workspace_on_postgres, read_only=True) as store, \
            pytest.raises(QueryTimeout, match=r"longer than 0\.3 s"), store.time_limit(0.3):
        store.fetch("SELECT pg_sleep(5)")


def test_cached_answers_follow_the_data_version(workspace_on_postgres: Settings,
                                                tmp_path: Path) -> None:
    settings = workspace_on_postgres.model_copy(update={"cache_seconds": 3600})
    service = SalesKpiService(settings)
    service.import_path(write(tmp_path / "d", {"reps.csv": REPS, "deals.csv": DEALS}),
                        mapping=None, source=None, dry_run=False)
    query = KpiQuery(("deals_won",))
    assert service.scorecard(query).rows[0].values["deals_won"].value == 1  # D1
    assert service.scorecard(query).rows[0].values["deals_won"].value == 1
    assert service.cache_hits == 1
    won = DEALS.replace("D2,r2,open,2024-01-13 10:00:00,,",
                        "D2,r2,won,2024-01-13 10:00:00,2024-01-25 10:00:00,")
    service.import_path(write(tmp_path / "e", {"deals.csv": won}), mapping=None, source=None,
                        dry_run=False)
    assert service.scorecard(query).rows[0].values["deals_won"].value == 2  # D1, D2
    assert service.cache_hits == 1


# ---------------------------------------------------------------- the write journal


@pytest.mark.process
@pytest.mark.parametrize("fault, stored", [("facts_written", False),
                                           ("after_duckdb_commit", True)])
def test_an_import_killed_mid_write_is_settled_by_the_next_open(
        workspace_on_postgres: Settings, tmp_path: Path, fault: str, stored: bool) -> None:
    """Killed before PostgreSQL's commit: nothing of it anywhere. Killed after it, before
    SQLite's: the next open makes SQLite's side (the targets) from the journal."""
    settings = workspace_on_postgres
    data = write(tmp_path / "d", {
        "reps.csv": REPS, "deals.csv": DEALS,
        "targets.csv": "kpi,period_start,period_end,value,rep_id,team\n"
                       "deals_won,2024-01-01,2024-01-31,3,r1,\n"})
    killed = run(settings.workspace, "import", data, SALESKPI_FAULT=fault)
    assert killed.returncode == -9, killed.stderr
    assert plain(settings, "SELECT count(*) FROM deals") == [(2 if stored else 0,)]
    # A page's read settles a committed write (its marker is there); the next writer
    # (an import) settles any entry left.
    service = SalesKpiService(settings)
    service.visible_reps()

    def targets() -> list[tuple[str, str | None, float]]:
        return [(t.kpi, t.rep_id, t.value) for t in service.list_targets()]

    assert targets() == ([("deals_won", "r1", 3.0)] if stored else [])
    open_store(settings).close()
    assert targets() == ([("deals_won", "r1", 3.0)] if stored else [])
    assert plain(settings, "SELECT count(*) FROM saleskpi_writes") == [(0,)]
    # The import log (SQLite) has the import once: completed, or interrupted.
    con = sqlite3.connect(settings.workspace / "state.sqlite")
    try:
        (ok, report), = con.execute("SELECT ok, report FROM import_runs").fetchall()
    finally:
        con.close()
    assert bool(ok) is stored
    assert bool(json.loads(report).get("interrupted")) is not stored


def test_unreachable_database_names_it_masked(tmp_path: Path) -> None:
    url = "postgresql://u:Sup3rS3cret@127.0.0.1:1/none"
    with pytest.raises(StoreUnreachable) as caught:
        PostgresStore(url, tmp_path / "analytics.duckdb")
    assert "Sup3rS3cret" not in str(caught.value)
    assert "postgresql://u:***@127.0.0.1:1/none" in str(caught.value)
