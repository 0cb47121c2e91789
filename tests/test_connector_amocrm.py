"""The amoCRM / Kommo connector against a fake amoCRM over real HTTP.

The yardstick is a plain file import: after every sync, the KPIs must equal the
KPIs of the same account written by hand as canonical CSV files and imported
into a fresh workspace — nothing lost, nothing counted twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.connectors.base import ClientOptions, WebhookRejected, WebhookRequest
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.crms.amocrm import AmoCrmConnector
from saleskpi.sources.connectors.http import AuthError, ConnectorError
from saleskpi.sources.connectors.sync import sync
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.state.sync_state import load_cursor
from saleskpi.surfaces.server import create_app
from tests.fakes.amocrm import LOST, TOKEN, WON, FakeAmoCrm, now
from tests.fakes.server import Response

FAST = ClientOptions(rate_limit=1000, backoff=0.01)
SECRET = "hook-secret-8d2e61c4b0"
KPIS = ("deals_won", "revenue", "win_rate", "calls", "meetings", "leads", "pipeline_volume")


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeAmoCrm]:
    """Three records a page, so every list spans pages; webhook tests ask for bigger pages."""
    api = FakeAmoCrm(page_size=getattr(request, "param", 3)).start()
    try:
        yield api
    finally:
        api.stop()


def new_workspace(root: Path) -> Settings:
    save_workspace_settings(Settings(workspace=root), currency="RUB")
    return Settings(workspace=root)


@pytest.fixture
def settings(tmp_path: Path, fake: FakeAmoCrm) -> Settings:
    connected = new_workspace(tmp_path / "synced")
    CredentialStore(connected).put("amocrm", {
        "base_url": fake.url, "access_token": TOKEN, "webhook_secret": SECRET})
    return connected


def scorecard(settings: Settings) -> dict[str, dict[str, object]]:
    card = SalesKpiService(settings).scorecard(KpiQuery(KPIS, by=("rep",)))
    rows = {str(row.keys["rep"]): {k: v.to_dict() for k, v in row.values.items()}
            for row in card.rows}
    rows["(total)"] = {k: v.to_dict() for k, v in card.totals[0].values.items()}
    return rows


def imported_from_csv(fake: FakeAmoCrm, root: Path) -> dict[str, dict[str, object]]:
    """KPIs of the fake's current data, imported from canonical CSV in a fresh workspace."""
    reference = new_workspace(root / "ws")
    report = SalesKpiService(reference).import_path(
        fake.write_canonical_csv(root / "csv"), mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return scorecard(reference)


def value(card: dict[str, dict[str, Any]], rep: str, kpi: str) -> object:
    return card[rep][kpi]["value"]


def tables(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        return {name: sorted(store.fetch(f'SELECT * FROM "{name}"'), key=repr)
                for name in ENTITIES if name != "targets"}


def ids(settings: Settings, entity: str) -> set[str]:
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        return {row[0] for row in store.fetch(f'SELECT id FROM "{entity}"')}


# -- syncs ------------------------------------------------------------------------------
def test_full_sync_equals_a_file_import_despite_rate_limits_and_outages(
        fake: FakeAmoCrm, settings: Settings, tmp_path: Path) -> None:
    fake.api.fail(lambda r: r.path == "/api/v4/users" and r.arg("page") == "2",
                  Response(429, {"title": "Too Many Requests"}, {"Retry-After": "0"}))
    fake.api.fail(lambda r: r.path == "/api/v4/leads" and r.arg("page") == "2",
                  Response(503, {"title": "Service Unavailable"}), times=2)

    report = sync(settings, "amocrm", options=FAST)

    assert report.full
    assert len([r for r in fake.requests("/api/v4/users") if r.arg("page") == "2"]) == 2
    assert len([r for r in fake.requests("/api/v4/leads") if r.arg("page") == "2"]) == 3
    card = scorecard(settings)
    assert card == imported_from_csv(fake, tmp_path / "reference")
    # Counted by hand from the fake's data set:
    # Anna (1001): 7001 won 120 000, 7002 lost; calls 8001 out (8002 is inbound), 8003
    # out and contact call 8104; meeting 9501; leads 7001-7003; 7003 open.
    assert {k: value(card, "1001", k) for k in KPIS} == {
        "deals_won": 1, "revenue": 120_000, "win_rate": 0.5, "calls": 3, "meetings": 1,
        "leads": 3, "pipeline_volume": 1}
    # Olena (1003): 7008 won (deleted and restored: still there), 7007 lost by a robot;
    # calls 8005 and contact call 8103 (8102 is inbound); meeting 9505 on a company
    # (9504 is not done yet).
    assert {k: value(card, "1003", k) for k in KPIS} == {
        "deals_won": 1, "revenue": 75_000, "win_rate": 0.5, "calls": 2, "meetings": 1,
        "leads": 3, "pipeline_volume": 1}
    assert value(card, "1002", "revenue") == pytest.approx(30_000.5)
    assert value(card, "1004", "leads") == 0
    assert "7009" not in ids(settings, "deals")  # deleted before the first sync
    assert load_cursor(settings, "amocrm").keys() == {"since"}
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        history = store.fetch("SELECT stage, entered_at, rep_id, pipeline FROM stage_changes "
                              "WHERE deal_id = '7001' ORDER BY entered_at")
    # Names, not ids; naive UTC, as the store keeps every timestamp.
    assert history == [
        ("Переговоры", dt.datetime(2024, 3, 5, 10, 0), "1001", "Продажи"),
        ("Успешно реализовано", dt.datetime(2024, 3, 20, 15, 0), "1001", "Продажи"),
    ]


def test_incremental_sync_reads_only_changes_and_applies_deletions(
        fake: FakeAmoCrm, settings: Settings, tmp_path: Path) -> None:
    sync(settings, "amocrm", options=FAST)
    before = len(fake.api.log)
    fake.add_lead(7010, rep=1002, status=50011, price=15_000, company=9003, utm="google")
    fake.move_lead(7005, WON)
    fake.leads[7005]["price"] = 64_000
    fake.delete_lead(7003)
    fake.add_call(8007, 7010, rep=1002, direction="out", duration=240)
    fake.add_task(9506, "leads", 7010, rep=1002, kind=2, due=now() - 60, done=True)

    report = sync(settings, "amocrm", options=FAST)

    assert not report.full
    assert report.entities["deals"].inserted == 1 and report.entities["deals"].updated == 1
    card = scorecard(settings)
    assert card == imported_from_csv(fake, tmp_path / "reference")
    assert value(card, "1002", "deals_won") == 2
    assert value(card, "1002", "revenue") == pytest.approx(94_000.5)
    assert value(card, "1002", "calls") == 3  # 8004, contact call 8101, new 8007
    assert value(card, "1002", "meetings") == 2
    assert value(card, "1001", "pipeline_volume") == 0  # 7003 deleted
    assert "7003" not in ids(settings, "deals") | ids(settings, "leads")
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        assert not store.fetch("SELECT * FROM stage_changes WHERE deal_id = '7003'")
    # Only changes were asked for: every list request of the second sync had a lower bound.
    second = [r for r in fake.api.log[before:] if r.path in (
        "/api/v4/leads", "/api/v4/companies", "/api/v4/tasks", "/api/v4/leads/notes",
        "/api/v4/contacts/notes")]
    assert second and all(r.arg("filter[updated_at][from]") for r in second)
    events = [r for r in fake.api.log[before:] if r.path == "/api/v4/events"]
    assert events and all(r.arg("filter[created_at][from]") for r in events)

    again = sync(settings, "amocrm", options=FAST)  # nothing changed: nothing written
    assert all(c.inserted == 0 and c.updated == 0 for c in again.entities.values())
    assert scorecard(settings) == card


def test_a_sync_killed_midway_resumes_from_the_last_stored_batch(
        fake: FakeAmoCrm, settings: Settings, tmp_path: Path) -> None:
    fake.api.fail(lambda r: r.path == "/api/v4/leads" and r.arg("page") == "3",
                  Response(500, {"title": "Internal Server Error"}), times=1000)

    with pytest.raises(ConnectorError, match="/api/v4/leads"):
        sync(settings, "amocrm", options=FAST)

    cursor = load_cursor(settings, "amocrm")
    assert (cursor["phase"], cursor["page"]) == ("deals", "3")
    assert ids(settings, "reps") == {"1001", "1002", "1003", "1004"}
    assert ids(settings, "accounts") == {"9001", "9002", "9003", "9004"}
    assert ids(settings, "deals") == {"7001", "7002", "7003", "7004", "7005", "7006"}
    assert ids(settings, "activities") == set()

    fake.api.faults.clear()
    before = len(fake.api.log)
    sync(settings, "amocrm", options=FAST)

    pages = [r.arg("page") for r in fake.api.log[before:] if r.path == "/api/v4/leads"]
    assert pages == ["3"]  # resumed where it stopped, no page read twice
    assert scorecard(settings) == imported_from_csv(fake, tmp_path / "reference")
    assert load_cursor(settings, "amocrm").keys() == {"since"}


@pytest.mark.parametrize(("kind", "field"), [
    ("missing-id", "_embedded.leads[0].id"),
    ("wrong-type", "_embedded.leads[0].price"),
    ("not-json", "JSON"),
])
def test_a_malformed_page_stops_the_sync_and_stores_nothing_from_it(
        fake: FakeAmoCrm, settings: Settings, kind: str, field: str) -> None:
    fake.malformed = kind
    with pytest.raises(ConnectorError) as caught:
        sync(settings, "amocrm", options=FAST)
    assert "/api/v4/leads" in str(caught.value) and field in str(caught.value)
    assert ids(settings, "deals") == {"7001", "7002", "7003"}  # page 1 only
    assert ids(settings, "leads") == {"7001", "7002", "7003"}
    assert load_cursor(settings, "amocrm")["page"] == "2"


# -- credentials -------------------------------------------------------------------------
def test_an_expired_token_says_reconnect_and_never_shows_the_token(
        fake: FakeAmoCrm, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = AmoCrmConnector({"base_url": fake.url, "access_token": TOKEN,
                                 "webhook_secret": SECRET}, FAST)
    assert connector.check() == f"Acme Trading ({fake.subdomain})"
    fake.expired = True
    with pytest.raises(AuthError) as checked:
        connector.check()
    with pytest.raises(AuthError) as synced:
        sync(settings, "amocrm", options=FAST)
    for error in (checked.value, synced.value):
        assert "saleskpi connect amocrm" in str(error)
        assert TOKEN not in str(error) and SECRET not in str(error)
    assert TOKEN not in caplog.text and SECRET not in caplog.text


def test_cli_connect_and_sync_keep_the_token_out_of_the_output(
        run_cli: Any, workspace: Path, fake: FakeAmoCrm) -> None:
    CredentialStore(Settings(workspace=workspace)).put("amocrm", {
        "base_url": fake.url, "access_token": TOKEN, "webhook_secret": SECRET})
    fake.expired = True
    connect = ["connect", "amocrm", "--set", f"base_url={fake.url}",
               "--set", f"access_token={TOKEN}", "--set", f"webhook_secret={SECRET}"]
    for result in (run_cli(workspace, "sync", "amocrm"), run_cli(workspace, *connect)):
        assert result.returncode == 1
        said = " ".join((result.stdout + result.stderr).split())  # rich wraps lines
        assert "has expired" in said and "saleskpi connect amocrm" in said
        for secret in (TOKEN, SECRET):
            assert secret not in result.stdout and secret not in result.stderr


# -- webhooks ------------------------------------------------------------------------------
def webhook_body(fake: FakeAmoCrm, lead_id: int, status: int, modified: int) -> bytes:
    return "&".join([
        f"leads[status][0][id]={lead_id}", f"leads[status][0][status_id]={status}",
        "leads[status][0][pipeline_id]=5001", "leads[status][0][old_status_id]=50011",
        f"leads[status][0][last_modified]={modified}",
        f"leads[status][0][updated_at]={modified}", "leads[status][0][created_at]=1709283600",
        f"account[subdomain]={fake.subdomain}", "account[id]=30001",
    ]).encode()


def post(client: TestClient, path: str, body: bytes) -> int:
    response = client.post(path, content=body, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    return response.status_code


@pytest.mark.parametrize("fake", [250], indirect=True)
def test_a_webhook_syncs_at_once_and_anything_not_from_amocrm_changes_nothing(
        fake: FakeAmoCrm, settings: Settings) -> None:
    sync(settings, "amocrm", options=FAST)
    assert value(scorecard(settings), "1002", "deals_won") == 1
    client = TestClient(create_app(settings))
    fake.move_lead(7005, WON)
    delivered = webhook_body(fake, 7005, WON, now())

    assert post(client, f"/webhooks/amocrm/{SECRET}", delivered) == 200

    assert value(scorecard(settings), "1002", "deals_won") == 2  # visible at once
    stored = tables(settings)
    # Changes a sync would pick up: any accepted delivery below would show.
    fake.move_lead(7003, LOST)
    fake.add_call(8008, 7006, rep=1003, direction="out", duration=30)
    fresh = webhook_body(fake, 7003, LOST, now())
    other_account = fresh.replace(f"subdomain]={fake.subdomain}".encode(),
                                  b"subdomain]=evilcorp")

    assert post(client, f"/webhooks/amocrm/{SECRET}", delivered) == 409  # replayed
    assert post(client, "/webhooks/amocrm/wrong-secret-000000", fresh) == 401  # forged
    assert post(client, "/webhooks/amocrm", fresh) == 401  # unsigned
    assert post(client, f"/webhooks/amocrm/{SECRET}",
                webhook_body(fake, 7003, LOST, now() - 3600)) == 401  # stale
    assert post(client, f"/webhooks/amocrm/{SECRET}", other_account) == 401
    assert post(client, f"/webhooks/amocrm/{SECRET}", b'{"leads": [7003]}') == 401
    assert post(client, f"/webhooks/amocrm/{SECRET}", b"\xff\xfe=1") == 401
    assert post(client, f"/webhooks/amocrm/{SECRET}",
                fresh + b"&leads[status][0][name]=" + b"x" * (257 * 1024)) == 413

    assert tables(settings) == stored
    assert sync(settings, "amocrm", options=FAST).entities["deals"].updated == 1  # it was there


@pytest.mark.parametrize("body", [
    # deletions carry no time: accepted without the staleness check
    b"leads[delete][0][id]=7003&leads[delete][0][status_id]=50012&account[subdomain]=SUB",
    b"contacts[add][0][id]=6001&contacts[add][0][date_create]=NOW&account[subdomain]=SUB",
    b"leads[note][0][note][element_id]=7001&leads[note][0][note][created_at]=NOW"
    b"&leads[note][0][note][text]=&account[subdomain]=SUB",
])
def test_webhook_forms_amocrm_sends_are_accepted(body: bytes) -> None:
    connector = AmoCrmConnector({"base_url": "https://acme.kommo.com", "access_token": TOKEN,
                                 "webhook_secret": SECRET}, FAST)
    right_now = time.time()
    body = body.replace(b"SUB", b"acme").replace(b"NOW", str(int(right_now)).encode())
    request = WebhookRequest("POST", f"https://saleskpi.example/webhooks/amocrm/{SECRET}", SECRET,
                             {"content-type": "application/x-www-form-urlencoded"}, body,
                             right_now)
    first = connector.verify_webhook(request)
    assert first == connector.verify_webhook(request)  # a retry has the same id
    changed = WebhookRequest(request.method, request.url, SECRET, request.headers,
                             body + b"&account[id]=30001", request.received_at)
    assert connector.verify_webhook(changed) != first


def test_a_webhook_from_the_future_or_with_a_bad_time_is_rejected() -> None:
    connector = AmoCrmConnector({"base_url": "acme.amocrm.ru", "access_token": TOKEN,
                                 "webhook_secret": SECRET}, FAST)
    for modified in (str(now() + 3600), "yesterday"):
        body = (f"leads[update][0][id]=7001&leads[update][0][updated_at]={modified}"
                f"&account[subdomain]=acme").encode()
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(WebhookRequest(
                "POST", "https://saleskpi.example/webhooks/amocrm/x", SECRET, {}, body,
                time.time()))

