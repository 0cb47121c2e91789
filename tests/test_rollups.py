"""Rollups: kept in each write's transaction, equal to the raw rows, used by the engine.

On DuckDB and a real PostgreSQL server (ClickHouse keeps none: it answers from
the raw tables). Expected numbers are counted by hand from the fixture below, in
Europe/Kyiv (UTC+2 in winter): timestamps without an offset are Kyiv wall-clock
time. Besides the hand counts, ``verify_rollups`` compares every rollup-able KPI
from the rollups with the same KPI from the raw rows after each change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store import rollups
from saleskpi.store.backend import open_store
from tests.backends import BackendChoice

REPS = "id,name,team,email\nr1,Olena,Kyiv,\nr2,John,London,\n"
LEADS = """id,created_at,rep_id,source,segment,expo
L1,2024-01-10 10:00:00,r1,website,b2b,yes
L2,2024-01-31 23:30:00,r2,ads,b2c,
L3,2024-02-05 09:00:00,r2,referral,b2b,
"""
# A2 is on Jan 31 in Kyiv (21:50 UTC); A3 on Feb 1 in Kyiv but Jan 31 in UTC.
ACTIVITIES = """id,type,rep_id,occurred_at,lead_id,deal_id,direction,duration_s
A1,call,r1,2024-01-10 10:03:00,L1,,out,60
A2,call,r1,2024-01-31 23:50:00,L2,,out,120
A3,call,r2,2024-02-01 00:10:00,L2,,out,30
A4,meeting,r2,2024-02-02 11:00:00,L3,,,
A5,call,r2,2024-02-03 12:00:00,L3,,in,10
A6,email,r1,2024-02-04 12:00:00,,,out,
"""
DEALS = """id,rep_id,status,created_at,lead_id,amount,currency,closed_at
D1,r1,won,2024-01-11 09:00:00,L1,100,UAH,2024-01-20 09:00:00
D2,r2,lost,2024-02-06 09:00:00,L3,50,UAH,2024-02-10 09:00:00
D3,r2,won,2024-02-07 09:00:00,,70,USD,2024-02-28 09:00:00
"""
FX_RATES = "date,currency,rate\n2024-01-01,USD,40\n"
# The re-import: L1's source is now ads, A1 moved to Feb 15 and to r2, D1 closed on
# Feb 12 for 150 instead of Jan 20 for 100, D2 moved from lost to won.
LEADS_2 = LEADS.replace("L1,2024-01-10 10:00:00,r1,website", "L1,2024-01-10 10:00:00,r1,ads")
ACTIVITIES_2 = ACTIVITIES.replace("A1,call,r1,2024-01-10 10:03:00",
                                  "A1,call,r2,2024-02-15 10:03:00")
DEALS_2 = (DEALS.replace("100,UAH,2024-01-20 09:00:00", "150,UAH,2024-02-12 09:00:00")
           .replace("D2,r2,lost", "D2,r2,won"))
ON_CLICKHOUSE = True  # where it checks that ClickHouse keeps none and answers from raw
ROLLUP_KPIS = ("calls", "meetings", "emails", "leads", "deals_won", "deals_lost", "revenue")


def write_folder(folder: Path, leads: str = LEADS, activities: str = ACTIVITIES,
                 deals: str = DEALS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("reps", REPS), ("leads", leads), ("activities", activities),
                       ("deals", deals), ("fx_rates", FX_RATES)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def new_workspace(tmp_path: Path, backend: BackendChoice) -> SalesKpiService:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH", **backend.settings())
    svc = SalesKpiService(Settings(workspace=workspace))
    report = svc.import_path(write_folder(tmp_path / "one"), mapping=None, source=None,
                             dry_run=False)
    assert report.ok, report.errors
    return svc


@pytest.fixture
def service(tmp_path: Path, backend: BackendChoice) -> SalesKpiService:
    if backend.name == "clickhouse":
        pytest.skip("ClickHouse keeps no rollups (docs/rollups.md)")
    return new_workspace(tmp_path, backend)


def test_clickhouse_keeps_none_and_answers_from_raw_rows(tmp_path: Path,
                                                         backend: BackendChoice) -> None:
    if backend.name != "clickhouse":
        pytest.skip("the other backends keep rollups")
    svc = new_workspace(tmp_path, backend)
    result = svc.verify_rollups()
    assert result.rollups == [] and result.kpis == [] and result.ok
    assert grid(svc, ("calls",), ("team",), where=(("source", ("ads",)),)) == {
        ("Kyiv", "2024-01-01"): {"calls": 1}, ("London", "2024-02-01"): {"calls": 1}}


def grid(svc: SalesKpiService, kpis: tuple[str, ...], by: tuple[str, ...],
         **query: Any) -> dict[tuple[Any, ...], dict[str, float | None]]:
    """Non-zero values by (row keys..., period)."""
    card = svc.scorecard(KpiQuery(kpis, by=by, period="month", **query))
    found = {}
    for row in card.rows:
        values = {k: v.value for k, v in row.values.items() if v.value}
        if values:
            found[tuple(row.keys.values())] = values
    return found


def rollup_rows(svc: SalesKpiService) -> dict[str, list[tuple[Any, ...]]]:
    with open_store(svc.settings, read_only=True) as store:
        names = [r[0] for r in store.fetch("SELECT table_name FROM saleskpi_rollups")]
        return {name: sorted((tuple(r) for r in store.fetch(f'SELECT * FROM "{name}"')),
                             key=repr) for name in sorted(names)}


def assert_rollups_equal_raw(svc: SalesKpiService) -> None:
    result = svc.verify_rollups()
    assert len(result.rollups) >= 4
    assert set(ROLLUP_KPIS) <= set(result.kpis)
    assert result.values > 0
    assert result.ok, result.differences


def test_rollups_answer_the_hand_counted_figures(service: SalesKpiService) -> None:
    assert set(rollup_rows(service)) >= {
        "rollup_activities_occurred_at", "rollup_leads_created_at", "rollup_deals_closed_at"}
    # Calls (not inbound): A1, A2 by r1 in January (Kyiv days), A3 by r2 on Feb 1.
    assert grid(service, ("calls", "meetings", "emails"), ("rep",)) == {
        ("r1", "2024-01-01"): {"calls": 2}, ("r1", "2024-02-01"): {"emails": 1},
        ("r2", "2024-02-01"): {"calls": 1, "meetings": 1}}
    # A team by month with a source filter: an activity's source is its lead's.
    assert grid(service, ("calls",), ("team",), where=(("source", ("ads",)),)) == {
        ("Kyiv", "2024-01-01"): {"calls": 1}, ("London", "2024-02-01"): {"calls": 1}}
    assert grid(service, ("leads",), ("source",)) == {
        ("website", "2024-01-01"): {"leads": 1}, ("ads", "2024-01-01"): {"leads": 1},
        ("referral", "2024-02-01"): {"leads": 1}}
    assert grid(service, ("deals_won", "deals_lost"), ("rep",)) == {
        ("r1", "2024-01-01"): {"deals_won": 1},
        ("r2", "2024-02-01"): {"deals_won": 1, "deals_lost": 1}}
    # D1 100 UAH; D3 70 USD at 40 UAH.
    assert grid(service, ("revenue",), ("rep",)) == {
        ("r1", "2024-01-01"): {"revenue": 100}, ("r2", "2024-02-01"): {"revenue": 2800}}
    assert_rollups_equal_raw(service)


def test_new_rates_convert_the_rolled_up_money_again(service: SalesKpiService,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "rates"
    folder.mkdir()
    (folder / "fx_rates.csv").write_text("date,currency,rate\n2024-02-15,USD,41\n")
    report = service.import_path(folder, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    # D3 closed on Feb 28: 70 USD at the Feb 15 rate of 41.
    assert grid(service, ("revenue",), ("rep",)) == {
        ("r1", "2024-01-01"): {"revenue": 100}, ("r2", "2024-02-01"): {"revenue": 2870}}
    assert_rollups_equal_raw(service)


class Recording:
    """The store, with every statement the engine runs on its connection kept."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.statements: list[str] = []
        outer = self

        class Connection:
            def execute(self, sql: str, *args: Any) -> Any:
                outer.statements.append(sql)
                return store.con.execute(sql, *args)

            def __getattr__(self, name: str) -> Any:
                return getattr(store.con, name)

        self.con = Connection()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def recorded(service: SalesKpiService) -> Iterator[Any]:
    with service.engine() as engine:
        recording = Recording(engine.store)
        engine.store = recording
        yield engine, recording


def test_engine_reads_the_rollup_when_it_can_and_raw_rows_otherwise(recorded: Any) -> None:
    engine, recording = recorded
    card = engine.scorecard(KpiQuery(("calls",), by=("team",), period="week",
                                     where=(("source", ("ads",)),)))
    assert sum(r.values["calls"].value or 0 for r in card.rows) == 2
    assert any('"rollup_activities_occurred_at"' in s for s in recording.statements)
    assert not any('FROM "activities"' in s for s in recording.statements)
    # A median is computed from the per-record rows: the rollup holds sums only.
    recording.statements.clear()
    engine.scorecard(KpiQuery(("lead_response_time",), by=("rep",), period="month"))
    assert any('"leads"' in s for s in recording.statements)
    assert not any("rollup_" in s for s in recording.statements)
    # A custom field is not a key of the rollup: raw rows.
    recording.statements.clear()
    card = engine.scorecard(KpiQuery(("leads",), by=("expo",)))
    assert {r.keys["expo"]: r.values["leads"].value for r in card.rows} == {"yes": 1, None: 2}
    by_field = [s for s in recording.statements if "dim_expo" in s]
    assert by_field
    assert not any("rollup_" in s for s in by_field)
    # (its total row, by nothing, may come from the rollup)


def test_reimport_with_changed_rows_keeps_rollups_equal(service: SalesKpiService,
                                                        tmp_path: Path) -> None:
    same = rollup_rows(service)
    report = service.import_path(write_folder(tmp_path / "again"), mapping=None, source=None,
                                 dry_run=False)
    assert report.ok
    assert rollup_rows(service) == same  # the same data again changes nothing
    report = service.import_path(
        write_folder(tmp_path / "two", LEADS_2, ACTIVITIES_2, DEALS_2), mapping=None,
        source=None, dry_run=False)
    assert report.ok, report.errors
    # A1 is now r2's call of Feb 15 on L1 (now from ads): r1 keeps only A2.
    assert grid(service, ("calls",), ("rep",)) == {
        ("r1", "2024-01-01"): {"calls": 1}, ("r2", "2024-02-01"): {"calls": 2}}
    assert grid(service, ("calls",), ("team",), where=(("source", ("ads",)),)) == {
        ("Kyiv", "2024-01-01"): {"calls": 1}, ("London", "2024-02-01"): {"calls": 2}}
    assert grid(service, ("leads",), ("source",)) == {
        ("ads", "2024-01-01"): {"leads": 2}, ("referral", "2024-02-01"): {"leads": 1}}
    # D1 won in February now, D2 won instead of lost.
    assert grid(service, ("deals_won", "deals_lost"), ("rep",)) == {
        ("r1", "2024-02-01"): {"deals_won": 1}, ("r2", "2024-02-01"): {"deals_won": 2}}
    assert grid(service, ("revenue",), ("rep",)) == {
        ("r1", "2024-02-01"): {"revenue": 150}, ("r2", "2024-02-01"): {"revenue": 2850}}
    assert_rollups_equal_raw(service)


def test_sync_removal_updates_rollups(service: SalesKpiService) -> None:
    with open_store(service.settings) as store:
        deleted = store.delete_ids("files", {"activities": ["A2"], "leads": ["L2"]})
    assert deleted == {"activities": 1, "leads": 1}
    # Without L2, A3 has no source; A2 is gone.
    assert grid(service, ("calls",), ("rep",)) == {
        ("r1", "2024-01-01"): {"calls": 1}, ("r2", "2024-02-01"): {"calls": 1}}
    assert grid(service, ("calls",), ("team",), where=(("source", ("ads",)),)) == {}
    assert grid(service, ("leads",), ("source",)) == {
        ("website", "2024-01-01"): {"leads": 1}, ("referral", "2024-02-01"): {"leads": 1}}
    assert_rollups_equal_raw(service)


def test_killed_import_leaves_rollups_as_they_were(service: SalesKpiService,
                                                   tmp_path: Path) -> None:
    before = rollup_rows(service)
    folder = write_folder(tmp_path / "two", LEADS_2, ACTIVITIES_2, DEALS_2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path),
           # Killed after the facts and the rollups are written, before the commit.
           "SALESKPI_FAULT": "facts_written"}
    done = subprocess.run([sys.executable, "-m", "saleskpi", "-w",
                           str(service.settings.workspace), "import", str(folder)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert rollup_rows(service) == before
    assert grid(service, ("calls",), ("rep",)) == {
        ("r1", "2024-01-01"): {"calls": 2}, ("r2", "2024-02-01"): {"calls": 1}}
    assert_rollups_equal_raw(service)


def cli(svc: SalesKpiService, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "SALESKPI_LANG": "en"}
    return subprocess.run([sys.executable, "-m", "saleskpi", "-w", str(svc.settings.workspace),
                           "verify", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_verify_command_names_a_tampered_rollup_row(service: SalesKpiService) -> None:
    healthy = cli(service)
    assert healthy.returncode == 0, healthy.stderr
    assert "OK" in healthy.stdout
    calls = service.catalog.measures("calls")[0]
    with open_store(service.settings) as store:
        slot = rollups.kept(store)[("activities", "occurred_at")].slot(calls)
        with store.transaction() as con:
            # r1's January calls (A1, A2) are two; make the rollup say five.
            con.execute(f"UPDATE rollup_activities_occurred_at SET r{slot} = r{slot} + 3 "
                        "WHERE rep_id = 'r1' AND day = CAST('2024-01-10' AS DATE)")
    broken = cli(service, "--format", "csv")
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert lines[0].startswith("kpi,")
    assert "calls,r1,2024-01-01" in "\n".join(line[:len("calls,r1,2024-01-01")]
                                              for line in lines)
    row = next(line for line in lines if line.startswith("calls,r1,2024-01-01"))
    assert row.endswith(",2,5")
    repaired = cli(service, "--rebuild")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "rollup_activities_occurred_at" in repaired.stdout  # rebuilt
    assert grid(service, ("calls",), ("rep",))[("r1", "2024-01-01")] == {"calls": 2}


def test_rollup_rows_equal_hand_written_sql(service: SalesKpiService, tmp_path: Path) -> None:
    """The activities rollup, summed per rep and Kyiv day, against SQL written here."""
    service.import_path(write_folder(tmp_path / "two", LEADS_2, ACTIVITIES_2, DEALS_2),
                        mapping=None, source=None, dry_run=False)
    calls = service.catalog.measures("calls")[0]
    by_hand = ("SELECT rep_id, CAST(timezone('Europe/Kyiv', CAST(occurred_at AS TIMESTAMPTZ)) "
               "AS DATE) AS day, count(*) FROM activities WHERE type = 'call' "
               "AND (direction IS NULL OR direction <> 'in') GROUP BY 1, 2")
    with open_store(service.settings, read_only=True) as store:
        slot = rollups.kept(store)[("activities", "occurred_at")].slot(calls)
        rolled = {(str(r), str(d)): int(n) for r, d, n in store.fetch(
            f"SELECT rep_id, day, sum(r{slot}) FROM rollup_activities_occurred_at "
            "GROUP BY 1, 2") if n}
        expected = {(str(r), str(d)): int(n) for r, d, n in store.fetch(by_hand)}
    # A2 on Jan 31 in Kyiv; A3 on Feb 1 in Kyiv (Jan 31 in UTC); A1 moved to Feb 15.
    assert rolled == expected == {("r1", "2024-01-31"): 1, ("r2", "2024-02-01"): 1,
                                  ("r2", "2024-02-15"): 1}


# UTC instants around local midnights and a change of offset: Kolkata is UTC+5:30 (its
# midnight falls mid-hour in UTC); Lord Howe leaves summer time (UTC+11 -> +10:30) at
# 2024-04-06 15:00 UTC, and its midnight of April 7 is 13:00 UTC.
ZONE_INSTANTS = {
    "Asia/Kolkata": ("2024-01-31T18:20:00Z", "2024-01-31T18:29:59Z", "2024-01-31T18:30:00Z",
                     "2024-01-31T18:40:00Z", "2024-02-01T09:00:00Z"),
    "Australia/Lord_Howe": ("2024-04-06T12:50:00Z", "2024-04-06T12:59:59Z",
                            "2024-04-06T13:00:00Z", "2024-04-06T13:20:00Z",
                            "2024-04-06T14:50:00Z", "2024-04-06T15:10:00Z",
                            "2024-04-07T13:25:00Z", "2024-04-07T13:35:00Z"),
}


@pytest.mark.parametrize("zone", sorted(ZONE_INSTANTS))
def test_rollup_days_around_local_midnight_and_a_change_of_offset(
        tmp_path: Path, backend: BackendChoice, zone: str) -> None:
    """The rollup converts each distinct UTC hour to the local day, and row by row only
    in hours a local midnight or a change of offset splits: counted by zoneinfo here."""
    import datetime as dt
    from collections import Counter
    from zoneinfo import ZoneInfo

    if backend.name == "clickhouse":
        pytest.skip("ClickHouse keeps no rollups (docs/rollups.md)")
    instants = ZONE_INSTANTS[zone]
    expected = Counter(dt.datetime.fromisoformat(i).astimezone(ZoneInfo(zone)).date().isoformat()
                       for i in instants)
    assert len(expected) >= 2  # the instants straddle local days
    folder = tmp_path / "zone"
    folder.mkdir()
    (folder / "reps.csv").write_text(REPS, encoding="utf-8")
    (folder / "activities.csv").write_text(
        "id,type,rep_id,occurred_at,direction\n"
        + "".join(f"A{n},call,r1,{at},out\n" for n, at in enumerate(instants)),
        encoding="utf-8")
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=zone, currency="UAH",
                            **backend.settings())
    svc = SalesKpiService(Settings(workspace=workspace))
    report = svc.import_path(folder, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    card = svc.scorecard(KpiQuery(("calls",), period="day"))
    days = {str(r.keys["period"]): r.values["calls"].value for r in card.rows
            if r.values["calls"].value}
    assert days == dict(expected)
    assert "rollup_activities_occurred_at" in rollup_rows(svc)
    assert_rollups_equal_raw(svc)
