"""The Pipedrive connector against a fake Pipedrive over real HTTP.

Every end-to-end test compares the KPIs of a sync with the KPIs of importing
the same company from canonical CSV files (written by hand by the fake, not by
the connector's mapping) into a fresh workspace: nothing lost, nothing twice.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.connectors.base import (
    REGISTRY,
    ClientOptions,
    WebhookRejected,
    WebhookRequest,
)
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.crms.pipedrive import PipedriveConnector, normalize_base_url
from saleskpi.sources.connectors.http import AuthError, ConnectorError
from saleskpi.sources.connectors.sync import sync
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.state.sync_state import load_cursor
from saleskpi.surfaces.server import create_app
from tests.fakes.pipedrive import TOKEN, FakePipedrive

FAST = ClientOptions(rate_limit=1000, backoff=0.01)
KPIS = ("deals_won", "revenue", "win_rate", "calls", "meetings", "leads", "pipeline_volume")
NOW = dt.datetime.now() + dt.timedelta(days=1)
TABLES = ("reps", "accounts", "leads", "deals", "stage_changes", "activities")
HOOK_USER, HOOK_PASSWORD = "saleskpi-hook", "hook-pass-7c1e0d9b"


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakePipedrive]:
    """The fake with 3-record pages (every list spans pages), or ``BIG_PAGES``."""
    yield from FakePipedrive(page_limit=getattr(request, "param", 3)).serve()


# For tests about something other than paging: fewer batches, a faster test.
BIG_PAGES = pytest.mark.parametrize("fake", [100], indirect=True, ids=["big pages"])


def make_settings(workspace: Path) -> Settings:
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="EUR")
    return Settings(workspace=workspace)


def credentials(fake: FakePipedrive, token: str = TOKEN) -> dict[str, str]:
    return {"base_url": fake.url, "api_token": token, "webhook_user": HOOK_USER,
            "webhook_password": HOOK_PASSWORD}


@pytest.fixture
def settings(workspace: Path, fake: FakePipedrive) -> Settings:
    """A workspace connected to the fake."""
    settings = make_settings(workspace)
    CredentialStore(settings).put("pipedrive", credentials(fake))
    return settings


def kpis(settings: Settings) -> dict[str, Any]:
    card = SalesKpiService(settings).scorecard(KpiQuery(KPIS, by=("rep",)), now=NOW)

    def plain(row: Any) -> dict[str, Any]:
        return {k: {f: round(x, 6) if isinstance(x, float) else x
                    for f, x in v.to_dict().items()} for k, v in row.values.items()}

    return {"rows": {row.keys["rep"]: plain(row) for row in card.rows},
            "totals": [plain(row) for row in card.totals]}


def import_expected(fake: FakePipedrive, root: Path) -> Settings:
    """A fresh workspace with the fake's company imported from canonical CSV files."""
    root = root / f"expected-{time.monotonic_ns()}"
    settings = make_settings(root / "ws")
    folder = fake.write_canonical_csv(root / "csv")
    report = SalesKpiService(settings).import_path(folder, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings


def rows(settings: Settings, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        return sorted(store.fetch(f'SELECT {columns} FROM "{table}"'), key=repr)


def snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows(settings, table) for table in TABLES}


def assert_same_as_files(settings: Settings, fake: FakePipedrive, root: Path) -> None:
    expected = import_expected(fake, root)
    assert kpis(settings) == kpis(expected)
    history = 'deal_id, stage, entered_at, rep_id, pipeline'
    assert rows(settings, "stage_changes", history) == rows(expected, "stage_changes", history)
    activity = "id, type, rep_id, occurred_at, lead_id, deal_id, account_id, duration_s"
    assert rows(settings, "activities", activity) == rows(expected, "activities", activity)


# -- end to end: full, incremental, resumed ------------------------------------------------


def test_full_sync_stores_what_a_file_import_of_the_same_company_stores(
        settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    fake.fail_page("/api/v2/deals", 3, 429)  # rate limited, Retry-After: 0
    fake.fail_page("/api/v2/activities", 0, 503)
    fake.fail_page("/v1/deals/5/flow", 3, 502)
    report = sync(settings, "pipedrive", options=FAST)

    assert report.full
    assert report.batches >= 12  # every entity came in 2+ pages
    assert_same_as_files(settings, fake, tmp_path)
    # The faults were retried, not skipped.
    assert sum(fake.offset(r) == 3 for r in fake.requests_to("/api/v2/deals")) == 2
    assert len([r for r in fake.requests_to("/api/v2/activities") if not r.arg("cursor")]) == 2
    # Only deals that moved cost a flow request; the token never went into a URL.
    assert {r.path for r in fake.api.log if r.path.endswith("/flow")} == {
        "/v1/deals/1/flow", "/v1/deals/3/flow", "/v1/deals/5/flow"}
    assert not any("api_token" in r.query for r in fake.api.log)
    assert load_cursor(settings, "pipedrive")["mode"] == "incremental"
    # A won deal is closed when it was won; the planned call is not an activity yet.
    assert rows(settings, "deals", "id, status, closed_at, amount, currency, pipeline, stage")[0] \
        == ("1", "won", dt.datetime(2024, 2, 1, 12), 1200, "EUR", "Sales", "Proposal Made")
    assert ("109",) not in rows(settings, "activities", "id")


def test_incremental_sync_brings_new_won_deleted_and_moved_records_once(
        settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    sync(settings, "pipedrive", options=FAST)
    hire = fake.add_user("New Hire", "new@acme.example")
    fake.add_lead("Inbound call", owner=hire.id)  # a new owner: reps must come first
    fake.win_deal(2)
    fake.delete_deal(4)
    fake.move_deal(5, 3)  # back to an earlier stage: a new stage entry
    fake.add_activity("call", 3, deal=5)
    fake.delete_activity(104)
    before = len(fake.api.log)

    report = sync(settings, "pipedrive", options=FAST)

    assert not report.full
    assert report.deleted["deals"] >= 1  # a change may be read twice: harmless
    assert_same_as_files(settings, fake, tmp_path)
    assert ("4",) not in rows(settings, "deals", "id")
    assert not [r for r in rows(settings, "stage_changes") if r[0] == "4"]
    # Incremental: every list asked only for what changed since the last sync (API v2's
    # updated_since; v1 for notes), recents only for the deletions v2 does not list.
    asked = fake.api.log[before:]
    paths = {r.path for r in asked}
    changed = {"/api/v2/deals", "/api/v2/deals/archived", "/api/v2/activities",
               "/api/v2/organizations", "/v1/notes"}
    assert changed <= paths and "/v1/deals" not in paths
    assert all(r.arg("updated_since") for r in asked if r.path in changed)
    assert {r.arg("items") for r in asked if r.path == "/v1/recents"} == {
        "activity,organization,note"}
    # Deleted deals come from v2 (status=deleted), not from recents.
    assert all("deleted" in (r.arg("status") or "").split(",") for r in asked
               if r.path == "/api/v2/deals")
    assert {p for p in paths if p.endswith("/flow")} == {"/v1/deals/5/flow"}
    # Only the far fewer changed records were read: 7 deals, 1 changed + 1 deleted + 1 moved.
    deal_pages = [r for r in asked if r.path == "/api/v2/deals"]
    assert len(deal_pages) == 1

    # A second sync with nothing new changes nothing.
    stored = snapshot(settings)
    again = sync(settings, "pipedrive", options=FAST)
    assert all(c.inserted == 0 and c.updated == 0 for c in again.entities.values())
    assert snapshot(settings) == stored


def test_archived_won_deals_and_archived_leads_are_read_in_full_and_incremental_syncs(
        settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    # Three won deals archived before the first sync: only /api/v2/deals/archived lists them.
    archived = [fake.add_deal(f"Archived win {n}", owner=2, value=value, won=True,
                              archived=True)
                for n, value in enumerate((400.0, 650.0, 1100.0), start=1)]
    sync(settings, "pipedrive", options=FAST)

    # Counted by hand from the fake's own data, archived or not.
    won = [d for d in fake.data.deals.values()
           if d.owner == 2 and d.status == "won" and not d.deleted]
    assert len(won) == 3  # James had no won deal of his own: all three are archived
    james = kpis(settings)["rows"]["2"]
    assert james["deals_won"]["value"] == len(won)
    assert james["revenue"]["value"] == sum(d.value for d in won) == 2150.0
    flags = {deal_id: json.loads(custom).get("archived")
             for deal_id, custom in rows(settings, "deals", "id, custom")}
    assert {deal_id for deal_id, flag in flags.items() if flag} == {
        str(d.id) for d in archived}
    assert_same_as_files(settings, fake, tmp_path)
    # The archived lead of the seed is stored, as archived.
    assert ("2c1f1a10-0e10-11eb-879b-05d71fb426e4", "archived") in rows(
        settings, "leads", "id, status")

    # Archived after the first sync: a deal and a lead, seen by the incremental sync.
    fake.win_deal(2)
    fake.archive_deal(2)
    fake.archive_lead("2c1f1a10-0e10-11eb-879b-05d71fb426e1")
    before = len(fake.api.log)
    sync(settings, "pipedrive", options=FAST)

    paths = {r.path for r in fake.api.log[before:]}
    assert {"/api/v2/deals/archived", "/v1/leads/archived"} <= paths
    assert "/v1/deals" not in paths
    # The incremental reads ask only for what changed since the last sync.
    assert all(r.arg("updated_since") for r in fake.api.log[before:]
               if r.path.startswith("/api/v2/deals"))
    assert ("2", "won") in rows(settings, "deals", "id, status")
    assert json.loads(dict(rows(settings, "deals", "id, custom"))["2"])["archived"] is True
    assert ("2c1f1a10-0e10-11eb-879b-05d71fb426e1", "archived") in rows(
        settings, "leads", "id, status")
    assert_same_as_files(settings, fake, tmp_path)


def test_a_killed_sync_resumes_from_the_last_stored_batch(
        settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    fake.fail_page("/api/v2/deals", 3, 500, times=1000)  # beyond every retry
    with pytest.raises(ConnectorError, match="/api/v2/deals"):
        sync(settings, "pipedrive", options=FAST)

    cursor = load_cursor(settings, "pipedrive")
    assert (cursor["mode"], cursor["phase"], cursor["start"]) == ("full", "deals", "3")
    assert len(rows(settings, "reps")) == 4 and len(rows(settings, "leads")) == 5
    assert rows(settings, "deals", "id") == [("1",), ("2",), ("3",)]

    fake.clear_faults()
    before = len(fake.api.log)
    sync(settings, "pipedrive", options=FAST)  # the same full sync, carried on
    resumed = [r for r in fake.api.log[before:] if r.path not in ("/api/v2/pipelines",
                                                                     "/api/v2/stages")]
    assert (resumed[0].path, fake.offset(resumed[0])) == ("/api/v2/deals", 3)
    assert_same_as_files(settings, fake, tmp_path)


@BIG_PAGES
@pytest.mark.parametrize(("kind", "field"), [("missing_id", "id"), ("wrong_type", "value"),
                                             ("not_json", "JSON")])
def test_a_malformed_page_is_refused_whole_and_named(
        settings: Settings, fake: FakePipedrive, kind: str, field: str) -> None:
    fake.malformed["/api/v2/deals"] = kind
    with pytest.raises(ConnectorError) as caught:
        sync(settings, "pipedrive", options=FAST)
    message = str(caught.value)
    assert "/api/v2/deals" in message and field in message
    assert rows(settings, "deals") == []  # the page had good deals too: none stored
    assert len(rows(settings, "reps")) == 4
    fake.clear_faults()
    sync(settings, "pipedrive", options=FAST)
    assert len(rows(settings, "deals")) == 7


# -- credentials ------------------------------------------------------------------------


@BIG_PAGES
def test_an_expired_token_asks_to_reconnect_and_is_never_shown(
        settings: Settings, fake: FakePipedrive, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = REGISTRY["pipedrive"](credentials(fake), FAST)
    assert connector.check() == "Acme Trading, as Olena Koval"
    sync(settings, "pipedrive", options=FAST)
    fake.expire_token()
    for attempt in (connector.check, lambda: sync(settings, "pipedrive", options=FAST)):
        with pytest.raises(AuthError) as caught:
            attempt()
        assert "saleskpi connect pipedrive" in str(caught.value)
        assert TOKEN not in str(caught.value) and TOKEN not in repr(caught.value)
    assert TOKEN not in caplog.text


def test_cli_connect_and_sync_never_print_the_token(run_cli: Any, workspace: Path) -> None:
    # Larger pages: the CLI runs at the default, production rate limit.
    for fake in FakePipedrive(page_limit=500).serve():
        cli_round_trip(run_cli, workspace, fake)


def cli_round_trip(run_cli: Any, workspace: Path, fake: FakePipedrive) -> None:
    connect = ("connect", "pipedrive", "--set", f"base_url={fake.url}",
               "--set", f"api_token={TOKEN}", "--set", f"webhook_user={HOOK_USER}",
               "--set", f"webhook_password={HOOK_PASSWORD}")
    results = [run_cli(workspace, *connect)]
    assert results[-1].returncode == 0, results[-1].stderr
    assert "Acme Trading" in results[-1].stdout
    # A refused token is where a careless message would quote it (syncs that work
    # are the same code in process, tested above).
    fake.expire_token()
    results.append(run_cli(workspace, "sync", "pipedrive"))
    assert results[-1].returncode == 1
    assert "saleskpi connect pipedrive" in results[-1].stdout + results[-1].stderr
    for result in results:
        assert TOKEN not in result.stdout and TOKEN not in result.stderr
        assert HOOK_PASSWORD not in result.stdout + result.stderr


def test_company_addresses_are_normalized_and_plain_http_refused() -> None:
    for given in ("acme", "acme.pipedrive.com", "https://acme.pipedrive.com/v1/",
                  " https://acme.pipedrive.com "):
        assert normalize_base_url(given) == "https://acme.pipedrive.com"
    assert normalize_base_url("http://127.0.0.1:8123/") == "http://127.0.0.1:8123"
    with pytest.raises(ConnectorError, match="HTTPS"):
        normalize_base_url("http://acme.pipedrive.com")
    assert [f.name for f in PipedriveConnector.fields if f.secret] == [
        "api_token", "webhook_password"]


# -- webhooks through the real app ---------------------------------------------------------


def v1_delivery(obj: str = "deal", action: str = "updated", item_id: int = 5,
                sent: float | None = None, retry: int = 0) -> dict[str, Any]:
    """A webhook v1 delivery as Pipedrive sends it."""
    sent = time.time() if sent is None else sent
    return {
        "v": 1, "matches_filters": {"current": []}, "event": f"{action}.{obj}", "retry": retry,
        "meta": {"v": 1, "action": action, "object": obj, "id": item_id, "company_id": 77,
                 "user_id": 1, "host": "acme.pipedrive.com", "timestamp": int(sent),
                 "timestamp_micro": int(sent * 1_000_000), "permitted_user_ids": [1],
                 "trans_pending": False, "is_bulk_update": False,
                 "pipedrive_service_name": False, "change_source": "app",
                 "webhook_id": "42", "webhook_owner_id": 1},
        "current": {"id": item_id, "title": "Redwood platform"}, "previous": {"id": item_id},
    }


def basic(user: str = HOOK_USER, password: str = HOOK_PASSWORD) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


@pytest.fixture
def app(settings: Settings, fake: FakePipedrive) -> TestClient:
    sync(settings, "pipedrive", options=FAST)
    return TestClient(create_app(settings))


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, FakePipedrive,
                                                                       TestClient]]:
    """One synced workspace for the rejection cases: none of them may change it."""
    for fake in FakePipedrive(page_limit=100).serve():
        settings = make_settings(tmp_path_factory.mktemp("hooks") / "workspace")
        CredentialStore(settings).put("pipedrive", credentials(fake))
        sync(settings, "pipedrive", options=FAST)
        yield settings, fake, TestClient(create_app(settings))


@BIG_PAGES
def test_a_signed_webhook_shows_the_change_in_the_kpis_at_once(
        app: TestClient, settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    fake.add_activity("meeting", 2, deal=3)
    fake.win_deal(2)
    response = app.post("/webhooks/pipedrive", content=json.dumps(v1_delivery()),
                        headers=basic())
    assert response.status_code == 200, response.text
    assert_same_as_files(settings, fake, tmp_path)
    # The same delivery again is a replay, even though there is news to fetch.
    fake.add_activity("call", 2)
    before = snapshot(settings)
    again = app.post("/webhooks/pipedrive", content=json.dumps(v1_delivery(sent=time.time())),
                     headers=basic())
    assert again.status_code == 200  # a new event: fine
    replay = app.post("/webhooks/pipedrive", content=again.request.content, headers=basic())
    assert replay.status_code == 409
    assert snapshot(settings) != before  # the second event synced the new call


@pytest.mark.parametrize("case", ["forged", "unsigned", "wrong user", "stale", "future",
                                  "not json", "no meta", "oversized", "bearer"])
def test_a_rejected_webhook_changes_nothing(
        synced: tuple[Settings, FakePipedrive, TestClient], case: str) -> None:
    settings, fake, app = synced
    fake.win_deal(2)  # news a sync would bring: it must not run
    fake.add_activity("call", 1)
    delivery = json.dumps(v1_delivery()).encode()
    headers = basic()
    if case == "forged":
        headers = basic(password="guessed-password")
    elif case == "unsigned":
        del headers["Authorization"]
    elif case == "wrong user":
        headers = basic(user="admin")
    elif case == "stale":
        delivery = json.dumps(v1_delivery(sent=time.time() - 600)).encode()
    elif case == "future":
        delivery = json.dumps(v1_delivery(sent=time.time() + 600)).encode()
    elif case == "not json":
        delivery = b"event=updated.deal"
    elif case == "no meta":
        delivery = json.dumps({"v": 1, "current": {"id": 5}}).encode()
    elif case == "oversized":
        payload = v1_delivery()
        payload["current"]["notes"] = "x" * (300 * 1024)
        delivery = json.dumps(payload).encode()
    elif case == "bearer":
        headers["Authorization"] = f"Bearer {HOOK_PASSWORD}"
    before = snapshot(settings)
    response = app.post("/webhooks/pipedrive", content=delivery, headers=headers)
    assert response.status_code == (413 if case == "oversized" else 401), response.text
    assert snapshot(settings) == before


def test_webhook_verification_accepts_v2_and_names_each_delivery(fake: FakePipedrive) -> None:
    connector = REGISTRY["pipedrive"](credentials(fake), FAST)
    now = time.time()

    def request(payload: dict[str, Any], **headers: str) -> WebhookRequest:
        return WebhookRequest("POST", "https://kpi.example/webhooks/pipedrive", None,
                              {k.lower(): v for k, v in {**basic(), **headers}.items()},
                              json.dumps(payload).encode(), now)

    v2 = {"data": {"id": 5, "status": "won"}, "previous": None,
          "meta": {"action": "change", "entity": "deal", "entity_id": "5", "version": "2.0",
                   "id": "3f0c5cbe-6f0e-4a2b-9f5e-7c1a2b3c4d5e", "attempt": 1,
                   "timestamp": dt.datetime.now(dt.UTC).isoformat(), "webhook_id": "42"}}
    first = connector.verify_webhook(request(v2))
    assert first.startswith("pipedrive:")
    # The same event retried is a new delivery; the same deal changed again is too.
    retried = {**v2, "meta": {**v2["meta"], "attempt": 2}}
    assert connector.verify_webhook(request(retried)) != first
    assert connector.verify_webhook(request(v1_delivery(sent=now))) != connector.verify_webhook(
        request(v1_delivery(sent=now + 1)))
    # Key order and spacing do not make a replay new.
    same = WebhookRequest("POST", "u", None, {k.lower(): v for k, v in basic().items()},
                          json.dumps(v2, indent=2, sort_keys=True).encode(), now)
    assert connector.verify_webhook(same) == first
    unset = REGISTRY["pipedrive"]({**credentials(fake), "webhook_password": ""}, FAST)
    with pytest.raises(WebhookRejected):
        unset.verify_webhook(request(v2))


def test_an_unreadable_cursor_starts_a_full_sync_and_a_finished_one_goes_incremental() -> None:
    from saleskpi.sources.connectors.crms.pipedrive.reader import Cursor

    now = dt.datetime(2025, 3, 1, 12, 0)
    for stored in ({}, {"mode": "full"}, {"mode": "full", "phase": "nowhere", "since": "x"},
                   {"mode": "incremental", "phase": "recents", "start": "-1",
                    "since": "2025-01-01 00:00:00"}):
        assert Cursor.parse(stored, now) == Cursor.first(now)
    stamp = "2025-03-01 11:55:00"
    assert Cursor.first(now).to_dict() == {
        "mode": "full", "phase": "users", "start": "0", "since": stamp, "leads_since": stamp,
        "archived_leads_since": stamp, "accounts_since": stamp, "deals_since": stamp,
        "archived_deals_since": stamp, "activities_since": stamp, "notes_since": stamp}
    last = Cursor.parse({"mode": "full", "phase": "notes", "start": "6",
                         "since": "2025-03-01 11:55:00"}, now).next_phase()
    assert (last.mode, last.phase, last.start, last.since) == (
        "incremental", "users", 0, "2025-03-01 11:55:00")


def test_a_full_resync_reads_the_flow_only_of_deals_moved_since_their_stored_history(
        settings: Settings, fake: FakePipedrive, tmp_path: Path) -> None:
    sync(settings, "pipedrive", options=FAST)
    first = {r.path for r in fake.api.log if r.path.endswith("/flow")}
    assert first == {"/v1/deals/1/flow", "/v1/deals/3/flow", "/v1/deals/5/flow"}
    # Only stage changes are asked for: the flow's activities and notes add pages.
    assert {r.arg("items") for r in fake.api.log if r.path.endswith("/flow")} == {"dealChange"}
    fake.move_deal(3, 5)  # moved after the first sync: its stored history is stale
    before = len(fake.api.log)

    report = sync(settings, "pipedrive", options=FAST, full=True)

    assert report.full
    flows = {r.path for r in fake.api.log[before:] if r.path.endswith("/flow")}
    assert flows == {"/v1/deals/3/flow"}
    assert_same_as_files(settings, fake, tmp_path)  # the stage history is whole all the same
