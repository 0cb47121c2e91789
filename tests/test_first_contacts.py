"""First contacts kept at write time: always what grouping the activities gives.

The store keeps each lead's and deal's first outbound contact in
``lead_first_contacts`` and ``deal_first_contacts``, updated by every import and
sync. The yardstick is SQL written here over the raw ``activities`` table (never
the code under test), plus values counted by hand from the fixture below. All
times are UTC (the workspace's zone), so the counting needs no conversion.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.connectors.base import Batch
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.sync import store_batch, sync
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.analytics import SCHEMA_VERSION, AnalyticsStore
from saleskpi.store.loader import Loader
from tests.fakes.pipedrive import Activity, FakePipedrive
from tests.test_connector_pipedrive import FAST, credentials

SOURCE = "crm"
NOW = dt.datetime(2024, 12, 1)

REPS = """id,name,team
r1,Anna Lee,North
r2,Boris Kim,South
"""
LEADS = """id,created_at,rep_id,source
L1,2024-03-01 10:00:00,r1,web
L2,2024-03-01 09:00:00,r1,ads
L3,2024-03-02 12:00:00,r1,web
L4,2024-03-03 08:00:00,r2,web
L5,2024-03-04 15:00:00,r2,ads
L6,2024-03-05 11:00:00,r2,web
L7,2024-03-06 11:00:00,r2,web
"""
DEALS = """id,rep_id,status,created_at,lead_id,amount,currency,closed_at
D1,r1,won,2024-03-01 12:00:00,L1,1000,USD,2024-03-11 12:00:00
D2,r1,open,2024-03-02 13:00:00,L3,500,USD,
D3,r2,won,2024-03-04 09:00:00,,700,USD,2024-03-20 09:00:00
"""
HEADER = "id,type,rep_id,occurred_at,lead_id,deal_id,direction\n"
ACTIVITIES = HEADER + """\
A1,call,r1,2024-03-01 10:04:00,L1,D1,out
A2,email,r1,2024-03-01 10:20:00,L1,,
A3,call,r1,2024-03-01 09:01:00,L2,,in
A4,call,r1,2024-03-01 09:30:00,L2,,out
A5,note,r1,2024-03-02 12:01:00,L3,,
A6,meeting,r1,2024-03-02 14:00:00,L3,D2,
A7,call,r2,2024-03-03 08:03:00,L4,,out
A8,email,r2,2024-03-03 09:00:00,L4,,out
A9,call,r2,2024-03-04 14:00:00,L5,,out
A10,call,r2,2024-03-03 10:00:00,,D3,out
A11,task,r2,2024-03-05 11:02:00,L6,,
"""
# The second import: new, moved and changed activities.
CHANGES = HEADER + """\
A12,call,r1,2024-03-01 09:03:00,L2,,out
A13,call,r2,2024-03-05 11:01:00,L6,,in
A7,call,r2,2024-03-05 11:10:00,L6,,out
A1,call,r1,2024-03-01 10:25:00,L1,D1,out
A5,call,r1,2024-03-02 12:01:00,L3,,out
A14,email,r2,2024-03-02 10:00:00,,D3,out
"""


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Counted by hand. Before the changes: A3 is inbound, A5 a note, A11 a task; L5's
# only contact (A9) predates the lead; L6 and L7 were never contacted.
LEADS_BEFORE = {"L1": at("2024-03-01 10:04"), "L2": at("2024-03-01 09:30"),
                "L3": at("2024-03-02 14:00"), "L4": at("2024-03-03 08:03"),
                "L5": at("2024-03-04 14:00")}
DEALS_BEFORE = {"D1": at("2024-03-01 10:04"), "D2": at("2024-03-02 14:00"),
                "D3": at("2024-03-03 10:00")}
# After: A12 is L2's earlier call; the inbound A13 counts for nothing; A7 moved from
# L4 (whose first contact falls back to A8) to L6; A1 moved later, so L1 falls back
# to A2 and D1 to A1's new time; A5 became a call; A14 is D3's earlier email.
LEADS_AFTER = {"L1": at("2024-03-01 10:20"), "L2": at("2024-03-01 09:03"),
               "L3": at("2024-03-02 12:01"), "L4": at("2024-03-03 09:00"),
               "L5": at("2024-03-04 14:00"), "L6": at("2024-03-05 11:10")}
DEALS_AFTER = {"D1": at("2024-03-01 10:25"), "D2": at("2024-03-02 14:00"),
               "D3": at("2024-03-02 10:00")}

# The rule, written out again here on purpose.
IS_CONTACT = ("type IN ('call', 'email', 'mail', 'meeting', 'presentation', 'demo', "
              "'proposal') AND (direction IS NULL OR direction <> 'in')")


def hand_firsts(key: str) -> str:
    return (f"SELECT datasource, {key}, min(occurred_at) FROM activities "
            f"WHERE {key} IS NOT NULL AND {IS_CONTACT} GROUP BY ALL ORDER BY ALL")


HAND_RESPONSE = f"""
    WITH firsts AS (
        SELECT datasource, lead_id, min(occurred_at) AS first_at FROM activities
        WHERE lead_id IS NOT NULL AND {IS_CONTACT} GROUP BY ALL),
    responses AS (
        SELECT l.rep_id, epoch(f.first_at) - epoch(l.created_at) AS s
        FROM leads l LEFT JOIN firsts f ON f.lead_id = l.id AND f.datasource = l.datasource)
    SELECT rep_id,
           quantile_cont(s, 0.5) FILTER (WHERE s >= 0) / 60,
           quantile_cont(s, 0.9) FILTER (WHERE s >= 0) / 60,
           avg(s) FILTER (WHERE s >= 0) / 60,
           count(*) FILTER (WHERE s BETWEEN 0 AND 300) / count(*)
    FROM responses GROUP BY rep_id ORDER BY rep_id"""

HAND_CYCLE = f"""
    WITH lead_firsts AS (
        SELECT datasource, lead_id, min(occurred_at) AS first_at FROM activities
        WHERE lead_id IS NOT NULL AND {IS_CONTACT} GROUP BY ALL),
    deal_firsts AS (
        SELECT datasource, deal_id, min(occurred_at) AS first_at FROM activities
        WHERE deal_id IS NOT NULL AND {IS_CONTACT} GROUP BY ALL)
    SELECT d.rep_id,
           quantile_cont(epoch(d.closed_at) - epoch(least(d.created_at, l.created_at,
                                                          df.first_at, lf.first_at)),
                         0.5) / 86400
    FROM deals d
    LEFT JOIN leads l ON l.id = d.lead_id AND l.datasource = d.datasource
    LEFT JOIN deal_firsts df ON df.deal_id = d.id AND df.datasource = d.datasource
    LEFT JOIN lead_firsts lf ON lf.lead_id = d.lead_id AND lf.datasource = d.datasource
    WHERE d.status = 'won' GROUP BY d.rep_id ORDER BY d.rep_id"""

RESPONSE_KPIS = ("lead_response_time", "lead_response_time_p90", "lead_response_time_mean",
                 "speed_to_lead_5min")


# -- helpers -------------------------------------------------------------------------------
def new_settings(workspace: Path) -> Settings:
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    return Settings(workspace=workspace)


def folder(root: Path, name: str, **files: str) -> Path:
    path = root / name
    path.mkdir(parents=True)
    for entity, text in files.items():
        (path / f"{entity}.csv").write_text(text, encoding="utf-8")
    return path


def import_folder(settings: Settings, path: Path) -> Any:
    return SalesKpiService(settings).import_path(path, mapping=None, source=SOURCE,
                                                 dry_run=False)


def store_sql(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.analytics_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def stored_firsts(settings: Settings, kind: str) -> list[tuple[Any, ...]]:
    return store_sql(settings, f"SELECT * FROM {kind}_first_contacts ORDER BY ALL")


def as_dict(rows: list[tuple[Any, ...]]) -> dict[str, dt.datetime]:
    assert all(source == SOURCE for source, _, _ in rows)
    return {key: first for _, key, first in rows}


def assert_tables_match_activities(settings: Settings) -> None:
    assert stored_firsts(settings, "lead") == store_sql(settings, hand_firsts("lead_id"))
    assert stored_firsts(settings, "deal") == store_sql(settings, hand_firsts("deal_id"))


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the store, sorted."""
    tables = [t for (t,) in store_sql(
        settings, "SELECT table_name FROM information_schema.tables "
                  "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'")]
    return {t: store_sql(settings, f'SELECT * FROM "{t}" ORDER BY ALL') for t in tables}


def kpis_by_rep(settings: Settings, *kpis: str) -> dict[str, list[float | None]]:
    card = SalesKpiService(settings).scorecard(KpiQuery(kpis, by=("rep",)), now=NOW)
    return {str(row.keys["rep"]): [row.values[k].value for k in kpis] for row in card.rows}


def approx_rows(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {rep: pytest.approx([None if v is None else float(v) for v in values])
            for rep, *values in rows}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A workspace with the base company imported."""
    settings = new_settings(tmp_path / "ws")
    base = folder(tmp_path, "base", reps=REPS, leads=LEADS, deals=DEALS, activities=ACTIVITIES)
    report = import_folder(settings, base)
    assert report.ok, report.errors
    return settings


# -- imports -------------------------------------------------------------------------------
def test_imports_keep_first_contacts_equal_to_the_activities(
        settings: Settings, tmp_path: Path) -> None:
    assert as_dict(stored_firsts(settings, "lead")) == LEADS_BEFORE
    assert as_dict(stored_firsts(settings, "deal")) == DEALS_BEFORE
    assert_tables_match_activities(settings)
    # r1: L1 4, L2 30, L3 120 minutes; r2: L4 3 (L5 contacted before it existed).
    assert kpis_by_rep(settings, "lead_response_time", "speed_to_lead_5min") == {
        "r1": [30, pytest.approx(1 / 3)], "r2": [3, 1 / 4]}

    report = import_folder(settings, folder(tmp_path, "changes", activities=CHANGES))
    assert report.ok, report.errors
    assert (report.entities["activities"].inserted, report.entities["activities"].updated) \
        == (3, 3)

    assert as_dict(stored_firsts(settings, "lead")) == LEADS_AFTER
    assert as_dict(stored_firsts(settings, "deal")) == DEALS_AFTER
    assert_tables_match_activities(settings)
    # r1: L1 20, L2 3, L3 1 minutes; r2: L4 60, L6 10.
    response = kpis_by_rep(settings, *RESPONSE_KPIS)
    assert response == approx_rows(store_sql(settings, HAND_RESPONSE))
    assert response["r1"][0] == 3 and response["r2"][0] == 35
    assert response["r1"][3] == pytest.approx(2 / 3) and response["r2"][3] == 0
    # D1 starts at L1's arrival (Mar 1 10:00, closed Mar 11 12:00); D3 at A14 (Mar 2
    # 10:00, closed Mar 20 09:00).
    cycle = kpis_by_rep(settings, "sales_cycle_length")
    assert cycle == approx_rows(store_sql(settings, HAND_CYCLE))
    assert cycle == {"r1": [pytest.approx(10 + 2 / 24)], "r2": [pytest.approx(17 + 23 / 24)]}


def test_importing_the_same_file_twice_changes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    before = snapshot(settings)
    base = folder(tmp_path, "again", reps=REPS, leads=LEADS, deals=DEALS,
                  activities=ACTIVITIES)
    report = import_folder(settings, base)
    assert report.ok, report.errors
    assert all(c.inserted == 0 and c.updated == 0 for c in report.entities.values())
    assert snapshot(settings) == before


@pytest.mark.parametrize("bad_row", [
    "A99,call,r9,2024-03-01 09:02:00,L4,,out",  # a rep nobody knows
    "A99,call,r2,2024-03-32 09:02:00,L4,,out",  # no such day
], ids=["unknown rep", "bad date"])
def test_a_rejected_import_leaves_first_contacts_as_they_were(
        settings: Settings, tmp_path: Path, bad_row: str) -> None:
    before = snapshot(settings)
    report = import_folder(settings, folder(tmp_path, "bad", activities=CHANGES + bad_row))
    assert not report.ok
    assert snapshot(settings) == before


def test_a_write_failing_after_the_activities_undoes_their_first_contacts(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection inside the write transaction, after activities and their first
    contacts were written: the rollback must take both back."""
    write = Loader._write

    def write_then_fail(self: Loader, entity: Any) -> None:
        write(self, entity)
        if entity.name == "activities":
            raise OSError("disk full")

    monkeypatch.setattr(Loader, "_write", write_then_fail)
    before = snapshot(settings)
    with pytest.raises(OSError, match="disk full"):
        import_folder(settings, folder(tmp_path, "changes", activities=CHANGES))
    assert snapshot(settings) == before


def test_random_upserts_and_deletions_keep_first_contacts_right(tmp_path: Path) -> None:
    """Many small batches (as syncs bring them): ties, moves, inbound and non-contacts."""
    settings = new_settings(tmp_path / "ws")
    rng = random.Random(20240301)
    reps = pd.DataFrame({"id": ["r1", "r2"], "name": ["Anna", "Boris"]})
    assert import_frames(settings, {"reps": reps}, source=SOURCE, log=False).ok
    day = dt.datetime(2024, 3, 1, 9)

    def activity(activity_id: str) -> dict[str, object]:
        return {
            "id": activity_id, "rep_id": rng.choice(["r1", "r2"]),
            "type": rng.choice(["call", "email", "meeting", "note", "task", "demo"]),
            "direction": rng.choice([None, "in", "out"]),
            # Few distinct times, so that first contacts tie.
            "occurred_at": day + dt.timedelta(minutes=15 * rng.randrange(8)),
            "lead_id": rng.choice([None, "L1", "L2", "L3", "L4"]),
            "deal_id": rng.choice([None, "D1", "D2", "D3"]),
        }

    ids = [f"A{n}" for n in range(24)]
    with AnalyticsStore(settings.analytics_path) as store:
        for step in range(40):
            upserts = [activity(i) for i in rng.sample(ids, rng.randrange(0, 6))]
            deleted = rng.sample(ids, rng.randrange(0, 4)) if step % 3 else []
            batch = Batch(
                frames={"activities": pd.DataFrame(upserts)} if upserts else {},
                deleted={"activities": deleted} if deleted else {})
            store_batch(settings, SOURCE, batch, store)
            for key in ("lead_id", "deal_id"):
                kind = key.removesuffix("_id")
                assert store.fetch(f"SELECT * FROM {kind}_first_contacts ORDER BY ALL") \
                    == store.fetch(hand_firsts(key)), f"step {step}, {kind}s"
        assert store.count("lead_first_contacts") > 0


# -- syncs ---------------------------------------------------------------------------------
E2 = "2c1f1a10-0e10-11eb-879b-05d71fb426e2"  # the fake's trade-fair lead: call 105 only


@pytest.fixture
def fake() -> Iterator[FakePipedrive]:
    """The fake Pipedrive of tests/test_connector_pipedrive.py, over real HTTP."""
    yield from FakePipedrive(page_limit=100).serve()


def synced_firsts(settings: Settings, kind: str) -> dict[str, dt.datetime]:
    rows = stored_firsts(settings, kind)
    assert {source for source, _, _ in rows} == {"pipedrive"}
    return {key: first for _, key, first in rows}


def test_a_sync_deleting_an_activity_updates_first_contacts(
        fake: FakePipedrive, tmp_path: Path) -> None:
    settings = new_settings(tmp_path / "ws")
    CredentialStore(settings).put("pipedrive", credentials(fake))
    sync(settings, "pipedrive", options=FAST)
    # Call 105 (Jan 21 10:00) is the lead's only activity; call 104 (Jan 16 14:00) is
    # deal 3's.
    assert synced_firsts(settings, "lead")[E2] == at("2024-01-21 10:00")
    assert synced_firsts(settings, "deal")["3"] == at("2024-01-16 14:00")
    assert_tables_match_activities(settings)

    # A later call on the lead; then the first one is deleted, and deal 3's only call.
    later = Activity(fake.new_id(), "call", 2, dt.date(2024, 1, 25), "10:00", True,
                     at("2024-01-25 09:00"), "00:05", lead=E2,
                     updated=dt.datetime.now(dt.UTC).replace(tzinfo=None))
    fake.data.activities[later.id] = later
    sync(settings, "pipedrive", options=FAST)
    assert synced_firsts(settings, "lead")[E2] == at("2024-01-21 10:00")
    fake.delete_activity(105)
    fake.delete_activity(104)
    report = sync(settings, "pipedrive", options=FAST)

    assert report.deleted["activities"] == 2
    assert synced_firsts(settings, "lead")[E2] == at("2024-01-25 10:00")
    assert "3" not in synced_firsts(settings, "deal")
    assert_tables_match_activities(settings)


# -- workspaces made before first contacts were kept ---------------------------------------
@pytest.mark.parametrize("read_only", [True, False], ids=["read-only open", "read-write open"])
def test_an_older_store_is_upgraded_once_on_open(settings: Settings, read_only: bool) -> None:
    con = duckdb.connect(str(settings.analytics_path))
    con.execute("DROP TABLE lead_first_contacts")
    con.execute("DROP TABLE deal_first_contacts")
    con.execute("DROP TABLE saleskpi_meta")
    con.close()

    AnalyticsStore(settings.analytics_path, read_only=read_only).close()

    assert store_sql(settings, "SELECT value FROM saleskpi_meta") == [(str(SCHEMA_VERSION),)]
    assert as_dict(stored_firsts(settings, "lead")) == LEADS_BEFORE
    assert as_dict(stored_firsts(settings, "deal")) == DEALS_BEFORE
    assert kpis_by_rep(settings, *RESPONSE_KPIS) == approx_rows(
        store_sql(settings, HAND_RESPONSE))
    # Upgraded once: later opens, read-only or not, write nothing.
    files = [settings.analytics_path,
             settings.analytics_path.with_name(settings.analytics_path.name + ".wal")]
    stamps = [p.stat().st_mtime_ns if p.exists() else 0 for p in files]
    for again in (True, False, True):
        AnalyticsStore(settings.analytics_path, read_only=again).close()
    kpis_by_rep(settings, "lead_response_time")
    assert [p.stat().st_mtime_ns if p.exists() else 0 for p in files] == stamps


def test_a_new_store_is_made_current(tmp_path: Path) -> None:
    settings = new_settings(tmp_path / "ws")
    AnalyticsStore(settings.analytics_path).close()
    assert store_sql(settings, "SELECT value FROM saleskpi_meta") == [(str(SCHEMA_VERSION),)]
    assert stored_firsts(settings, "lead") == stored_firsts(settings, "deal") == []


def test_concurrent_opens_of_an_older_store_all_succeed(settings: Settings) -> None:
    """The server opens the store per request: the first requests after an upgrade of
    saleskpi arrive together, and must neither fail nor upgrade twice."""
    con = duckdb.connect(str(settings.analytics_path))
    con.execute("DROP TABLE lead_first_contacts")
    con.execute("DROP TABLE saleskpi_meta")
    con.close()
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            AnalyticsStore(settings.analytics_path).close()
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert as_dict(stored_firsts(settings, "lead")) == LEADS_BEFORE
    assert as_dict(stored_firsts(settings, "deal")) == DEALS_BEFORE
