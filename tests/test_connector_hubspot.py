"""The HubSpot connector against a fake HubSpot over real HTTP, into real stores.

The yardstick is the product's own file import: whatever the fake HubSpot
holds, written by hand as canonical CSV files and imported into a fresh
workspace, must give the same tables and the same KPIs as syncing it. Nothing
lost, nothing counted twice, after a full sync, an incremental one, a sync
resumed after a crash and a webhook.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import saleskpi.sources.connectors.crms  # noqa: F401  (registers the connectors, as the CLI does)
import saleskpi.sources.connectors.sync as sync_module
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.connectors.base import (
    REGISTRY,
    ClientOptions,
    WebhookRejected,
    WebhookRequest,
)
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.http import AuthError, ConnectorError
from saleskpi.sources.connectors.sync import SyncReport, sync
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.state.sync_state import load_cursor
from saleskpi.surfaces.server import create_app
from tests.fakes.hubspot import CLIENT_SECRET, OBJECT_TYPES, TOKEN, FakeHubSpot, sign_v3
from tests.fakes.server import Request

FAST = ClientOptions(rate_limit=1000, backoff=0.01)
KPIS = ("deals_won", "revenue", "win_rate", "calls", "meetings", "leads", "pipeline_volume")
SYNCED = ("reps", "accounts", "leads", "deals", "stage_changes", "activities")
PUBLIC_URL = "https://kpi.example.com/webhooks/hubspot"


@pytest.fixture(scope="module")
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(autouse=True)
def initial_data(hubspot: FakeHubSpot) -> None:
    hubspot.reset()


@dataclass
class FullSync:
    """The module's full sync: stopped midway by a failing page, then resumed."""

    settings: Settings
    error: ConnectorError  # why the first attempt stopped
    cursor: dict[str, str]  # the cursor it had saved
    counts: dict[str, int]  # rows it had stored
    stopped_log: list[Request]  # the requests of the stopped attempt
    resumed_log: list[Request]  # ... and of the one that finished it
    report: SyncReport


@pytest.fixture(scope="module")
def full_sync(hubspot: FakeHubSpot, tmp_path_factory: pytest.TempPathFactory) -> FullSync:
    """A full sync of the initial data through a 429 and a 503 (both retried) and a page
    that fails beyond the retries (the sync stops), then run again once it is healed."""
    hubspot.reset()
    hubspot.flaky()
    hubspot.break_page("deals", 2)
    settings = Settings(workspace=tmp_path_factory.mktemp("full") / "ws")
    CredentialStore(settings).put("hubspot", hubspot.credentials())
    with pytest.raises(ConnectorError) as stopped:
        run_sync(settings)
    cursor = load_cursor(settings, "hubspot")
    counts = {name: count(settings, name) for name in SYNCED}
    stopped_log = list(hubspot.api.log)
    hubspot.heal()
    hubspot.api.log.clear()
    report = run_sync(settings)
    return FullSync(settings, stopped.value, cursor, counts, stopped_log,
                    list(hubspot.api.log), report)


@pytest.fixture
def synced(full_sync: FullSync, tmp_path: Path) -> Settings:
    """A workspace as the full sync left it (a copy: tests change it)."""
    shutil.copytree(full_sync.settings.workspace, tmp_path / "synced")
    return Settings(workspace=tmp_path / "synced")


@pytest.fixture
def settings(tmp_path: Path, hubspot: FakeHubSpot) -> Settings:
    """A workspace connected to the fake, never synced."""
    connected = Settings(workspace=tmp_path / "ws")
    CredentialStore(connected).put("hubspot", hubspot.credentials())
    return connected


def run_sync(settings: Settings, **kwargs: Any) -> SyncReport:
    return sync(settings, "hubspot", options=FAST, **kwargs)


def kpis(settings: Settings) -> dict[str, Any]:
    card = SalesKpiService(settings).scorecard(KpiQuery(KPIS, by=("rep",)))
    rows = {row.keys["rep"]: {k: v.to_dict() for k, v in row.values.items()}
            for row in card.rows}
    rows["total"] = {k: v.to_dict() for k, v in card.totals[0].values.items()}
    return rows


def tables(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced table's contract columns, sorted (not the source or custom fields)."""
    with AnalyticsStore(settings.analytics_path) as store:
        return {name: sorted((store.fetch(
                    "SELECT " + ", ".join(f'"{c}"' for c in ENTITIES[name].column_names)
                    + f' FROM "{name}"')), key=repr) for name in SYNCED}


Snapshot = tuple[dict[str, list[tuple[Any, ...]]], dict[str, Any]]
_REFERENCES: dict[str, Snapshot] = {}


def from_csv(hubspot: FakeHubSpot, root: Path) -> Snapshot:
    """Tables and KPIs of the fake's current data imported from canonical CSV files."""
    folder = hubspot.write_canonical_csv(root / f"csv-{time.monotonic_ns()}")
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()
    if key not in _REFERENCES:  # several tests end with the same data: import it once
        reference = Settings(workspace=root / f"csv-ws-{time.monotonic_ns()}")
        report = SalesKpiService(reference).import_path(folder, mapping=None, source=None,
                                                        dry_run=False)
        assert report.ok, report.errors
        _REFERENCES[key] = (tables(reference), kpis(reference))
    return _REFERENCES[key]


def assert_same_as_csv(settings: Settings, hubspot: FakeHubSpot, root: Path) -> None:
    reference_tables, reference_kpis = from_csv(hubspot, root)
    assert tables(settings) == reference_tables
    assert kpis(settings) == reference_kpis


def count(settings: Settings, table: str) -> int:
    with AnalyticsStore(settings.analytics_path) as store:
        return store.count(table)


# -- sync ---------------------------------------------------------------------------------
def test_full_sync_equals_importing_the_same_data(full_sync: FullSync, hubspot: FakeHubSpot,
                                                  tmp_path: Path) -> None:
    assert_same_as_csv(full_sync.settings, hubspot, tmp_path)
    log = full_sync.stopped_log + full_sync.resumed_log
    first_deals = [r for r in log if r.path == "/crm/v3/objects/deals" and not r.arg("after")
                   and r.arg("archived") == "false"]
    assert len(first_deals) == 2  # the 429, then the retry
    assert len([r for r in log if r.path == "/crm/v3/objects/companies"
                and r.arg("after") == "2"]) == 2  # the 503, then the retry
    for object_type in OBJECT_TYPES:  # every type came in two pages or more
        pages = [r for r in log if r.path == f"/crm/v3/objects/{object_type}"
                 and r.arg("archived") == "false" and r.arg("after")]
        assert pages, object_type
    # Deals without a HubSpot owner are kept under one placeholder rep.
    assert kpis(full_sync.settings)["unassigned"]["pipeline_volume"]["value"] == 1
    assert load_cursor(full_sync.settings, "hubspot")["phase"] == "done"


def test_a_sync_stopped_midway_resumes_after_the_last_stored_batch(
        full_sync: FullSync) -> None:
    assert "500" in str(full_sync.error)  # page 2 of deals failed beyond the retries
    cursor = full_sync.cursor
    assert (cursor["mode"], cursor["phase"], cursor["page"]) == ("full", "deals", "1")
    assert full_sync.counts["accounts"] == 5 and full_sync.counts["leads"] == 7
    assert full_sync.counts["deals"] == 2  # the first page of deals, nothing after it
    # The next sync carried on with that page: nothing before it was listed again.
    listed = [(r.path, r.arg("after")) for r in full_sync.resumed_log
              if r.path.startswith("/crm/v3/objects/") and r.arg("archived") == "false"]
    assert listed[0] == ("/crm/v3/objects/deals", "2")
    assert not {p for p, _after in listed} & {"/crm/v3/objects/companies",
                                               "/crm/v3/objects/contacts"}


def test_incremental_sync_brings_new_won_deleted_and_merged_records(
        hubspot: FakeHubSpot, synced: Settings, tmp_path: Path) -> None:
    settings = synced
    before = kpis(settings)
    hubspot.change_everything()  # new lead, deal won, deal deleted, new call, merge
    seen = len(hubspot.api.log)
    report = run_sync(settings)
    assert not report.full
    assert report.deleted == {"deals": 1, "stage_changes": 1, "leads": 1}
    assert_same_as_csv(settings, hubspot, tmp_path)
    after = kpis(settings)
    assert after["102"]["deals_won"]["value"] == before["102"]["deals_won"]["value"] + 1
    assert after["103"]["calls"]["value"] == before["103"]["calls"]["value"] + 1
    # Changes came from searches, not from listing everything again.
    new = hubspot.api.log[seen:]
    assert not [r for r in new if r.method == "GET" and r.path.startswith("/crm/v3/objects/")
                and r.arg("archived") == "false"]
    searched = {r.path for r in new if r.path.endswith("/search")}
    assert searched == {f"/crm/v3/objects/{t}/search" for t in OBJECT_TYPES}
    # A sync with nothing new changes nothing (it re-reads a short overlap: harmless).
    snapshot = tables(settings)
    again = run_sync(settings)
    assert all(c.inserted == c.updated == 0 for c in again.entities.values())
    assert not any(again.deleted.values())
    assert tables(settings) == snapshot


def test_changes_made_in_the_same_millisecond_are_all_found(
        hubspot: FakeHubSpot, synced: Settings, tmp_path: Path) -> None:
    same = "2099-01-01T00:00:00.000Z"  # more ties than a search page holds
    for oid in ("301", "302", "303", "304", "305"):
        hubspot.touch("contacts", oid, same).props["hs_lead_status"] = "CONNECTED"
    run_sync(synced)
    assert_same_as_csv(synced, hubspot, tmp_path)
    pages = [r.json().get("after") for r in hubspot.requests_to(
        "/crm/v3/objects/contacts/search", "POST")]
    # From the newest change seen, then the ties paged by offset.
    assert pages == [None, None, "2", "4"]


@pytest.mark.parametrize(("kind", "field"), [
    ("missing_id", "results[0].id"),
    ("wrong_type", "properties.hubspot_owner_id"),
    ("not_json", "JSON"),
])
def test_a_malformed_page_is_refused_and_nothing_of_it_stored(
        hubspot: FakeHubSpot, synced: Settings, tmp_path: Path, kind: str, field: str) -> None:
    hubspot.add_contact("308", "2024-05-10T09:00:00.000Z", "102", "PAID_SEARCH")
    hubspot.add_contact("309", "2024-05-11T09:00:00.000Z", "101", "REFERRALS")
    hubspot.malformed = ("contacts", kind)  # the page with both comes back broken
    with pytest.raises(ConnectorError) as caught:
        run_sync(synced)
    message = str(caught.value)
    assert "/crm/v3/objects/contacts/search" in message and field in message
    assert count(synced, "leads") == 7  # neither new contact
    assert load_cursor(synced, "hubspot")["phase"] in ("companies", "contacts")
    hubspot.heal()
    run_sync(synced)
    assert count(synced, "leads") == 9
    assert_same_as_csv(synced, hubspot, tmp_path)


# -- credentials --------------------------------------------------------------------------
def test_an_expired_token_asks_to_reconnect_and_is_never_shown(
        hubspot: FakeHubSpot, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    connector = REGISTRY["hubspot"](hubspot.credentials(), FAST)
    assert "4242424" in connector.check()
    hubspot.expired = True
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as checked:
        connector.check()
    with pytest.raises(AuthError) as synced:
        run_sync(settings)
    for error in (checked.value, synced.value):
        assert "saleskpi connect hubspot" in str(error)
        assert "expired" in str(error)
        assert TOKEN not in str(error) and CLIENT_SECRET not in str(error)
    assert TOKEN not in caplog.text and CLIENT_SECRET not in caplog.text
    assert count(settings, "reps") == 0


def test_the_cli_never_prints_the_token(run_cli: Any, workspace: Path,
                                        hubspot: FakeHubSpot) -> None:
    given = [f"--set={k}={v}" for k, v in hubspot.credentials().items()]
    connected = run_cli(workspace, "connect", "hubspot", *given)
    assert connected.returncode == 0, connected.stderr
    assert "Connected to hubspot" in connected.stdout and "4242424" in connected.stdout
    hubspot.expired = True
    synced = run_cli(workspace, "sync", "hubspot")
    for result in (synced,):
        assert result.returncode == 1
        output = result.stdout + result.stderr
        assert "saleskpi connect hubspot" in output
        assert TOKEN not in output and CLIENT_SECRET not in output
    assert TOKEN not in connected.stdout + connected.stderr


# -- webhooks -------------------------------------------------------------------------------
@pytest.fixture
def app(synced: Settings, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    # The router syncs with default options (5 requests a second): keep the test fast.
    monkeypatch.setattr(sync_module, "ClientOptions", lambda: FAST)
    return TestClient(create_app(synced))


def deliver(client: TestClient, body: bytes, *, timestamp: str | None = None,
            signature: str | None = None, secret: str = CLIENT_SECRET,
            signed: bool = True) -> Any:
    stamp = timestamp or str(int(time.time() * 1000))
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-HubSpot-Request-Timestamp"] = stamp
        headers["X-HubSpot-Signature-v3"] = (
            signature or sign_v3(secret, "POST", PUBLIC_URL, body, stamp))
    # The app sees http://testserver/...: as behind a proxy, the host differs from the
    # public URL HubSpot signed.
    return client.post("/webhooks/hubspot", content=body, headers=headers)


def test_a_signed_webhook_brings_the_change_at_once(
        app: TestClient, hubspot: FakeHubSpot, synced: Settings, tmp_path: Path) -> None:
    hubspot.move_deal("403", "closedwon", "2024-05-15T12:00:00.000Z")
    response = deliver(app, hubspot.webhook_body((1001, "deal.propertyChange", "403")))
    assert response.status_code == 200, response.text
    assert_same_as_csv(synced, hubspot, tmp_path)
    assert kpis(synced)["102"]["deals_won"]["value"] == 2


@pytest.mark.parametrize("attack", ["forged", "wrong_secret", "unsigned", "stale", "future",
                                    "oversized", "not_json"])
def test_a_rejected_webhook_changes_nothing(app: TestClient, hubspot: FakeHubSpot,
                                            synced: Settings, attack: str) -> None:
    hubspot.move_deal("403", "closedwon", "2024-05-15T12:00:00.000Z")  # a sync would show it
    before = tables(synced)
    body = hubspot.webhook_body((2002, "deal.propertyChange", "403"))
    now = int(time.time() * 1000)
    if attack == "forged":
        response = deliver(app, body, signature=sign_v3(CLIENT_SECRET, "POST", PUBLIC_URL,
                                                         body + b" ", str(now)))
    elif attack == "wrong_secret":
        response = deliver(app, body, secret="not-the-secret")
    elif attack == "unsigned":
        response = deliver(app, body, signed=False)
    elif attack == "stale":
        response = deliver(app, body, timestamp=str(now - 6 * 60 * 1000))
    elif attack == "future":
        response = deliver(app, body, timestamp=str(now + 10 * 60 * 1000))
    elif attack == "oversized":
        response = deliver(app, b"[" + b" " * (300 * 1024) + b"]")
    else:
        response = deliver(app, b"<xml>not json</xml>")
    assert response.status_code == (413 if attack == "oversized" else 401), response.text
    assert tables(synced) == before


def test_a_replayed_webhook_is_refused(app: TestClient, hubspot: FakeHubSpot,
                                       synced: Settings) -> None:
    body = hubspot.webhook_body((3003, "contact.creation", "308"))
    stamp = str(int(time.time() * 1000))
    hubspot.add_contact("308", "2024-05-10T09:00:00.000Z", "102", "PAID_SEARCH")
    assert deliver(app, body, timestamp=stamp).status_code == 200
    hubspot.delete("deals", "401")  # the replay must not sync this
    before = tables(synced)
    replay = deliver(app, body, timestamp=stamp)
    assert replay.status_code == 409
    assert tables(synced) == before


def test_webhook_signature_uses_the_public_url_or_the_received_one(
        hubspot: FakeHubSpot) -> None:
    connector = REGISTRY["hubspot"](hubspot.credentials(webhook_url=""), FAST)
    body = hubspot.webhook_body((4004, "deal.creation", "401"))
    stamp = str(int(time.time() * 1000))
    url = "http://127.0.0.1:8000/webhooks/hubspot?portal=4242424"

    def request(signature: str) -> WebhookRequest:
        return WebhookRequest("POST", url, None, {
            "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": stamp},
            body, time.time())

    first = connector.verify_webhook(request(sign_v3(CLIENT_SECRET, "POST", url, body, stamp)))
    retry = hubspot.webhook_body((4004, "deal.creation", "401")).replace(
        b'"attemptNumber": 0', b'"attemptNumber": 1')
    again = connector.verify_webhook(WebhookRequest(
        "POST", url, None, {"x-hubspot-signature-v3": sign_v3(CLIENT_SECRET, "POST", url,
                                                              retry, stamp),
                            "x-hubspot-request-timestamp": stamp}, retry, time.time()))
    assert first != again  # HubSpot's retry of an event is a new delivery
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(request(sign_v3(CLIENT_SECRET, "POST", PUBLIC_URL, body,
                                                 stamp)))
