"""The Bitrix24 connector against a fake Bitrix24 REST API over real HTTP.

The yardstick is a plain file import: after every sync, the KPIs must equal the
KPIs of the same portal written by hand as canonical CSV files and imported
into a fresh workspace — nothing lost, nothing counted twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.connectors.base import ClientOptions, WebhookRejected, WebhookRequest
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.crms.bitrix24 import Bitrix24Connector
from saleskpi.sources.connectors.crms.bitrix24.api import parse_webhook_url
from saleskpi.sources.connectors.crms.bitrix24.connector import decode_ids, encode_ids
from saleskpi.sources.connectors.http import AuthError, ConnectorError
from saleskpi.sources.connectors.sync import sync
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.state.sync_state import load_cursor
from saleskpi.surfaces.server import create_app
from tests.fakes.bitrix24 import APP_TOKEN, CODE, FakeBitrix24, PortalBucket
from tests.fakes.server import Response

FAST = ClientOptions(rate_limit=1000, backoff=0.01)
KPIS = ("deals_won", "revenue", "win_rate", "calls", "meetings", "leads", "pipeline_volume")


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[FakeBitrix24]:
    """Three records a page, so every list spans pages; webhook tests ask for bigger pages."""
    # The portal's bucket drains as fast as FAST lets the client go: tests shrink the
    # waits on both sides (tests/test_bitrix24_rate_limit.py runs the real numbers).
    api = FakeBitrix24(page_size=getattr(request, "param", 3),
                       bucket=PortalBucket(per_second=FAST.rate_limit)).start()
    try:
        yield api
    finally:
        api.stop()


def new_workspace(root: Path) -> Settings:
    save_workspace_settings(Settings(workspace=root), currency="RUB")
    return Settings(workspace=root)


def credentials(fake: FakeBitrix24) -> dict[str, str]:
    return {"webhook_url": fake.webhook_url, "outgoing_token": APP_TOKEN}


@pytest.fixture
def settings(tmp_path: Path, fake: FakeBitrix24) -> Settings:
    connected = new_workspace(tmp_path / "synced")
    CredentialStore(connected).put("bitrix24", credentials(fake))
    return connected


def scorecard(settings: Settings) -> dict[str, dict[str, object]]:
    card = SalesKpiService(settings).scorecard(KpiQuery(KPIS, by=("rep",)))
    rows = {str(row.keys["rep"]): {k: v.to_dict() for k, v in row.values.items()}
            for row in card.rows}
    rows["(total)"] = {k: v.to_dict() for k, v in card.totals[0].values.items()}
    return rows


def imported_from_csv(fake: FakeBitrix24, root: Path) -> dict[str, dict[str, object]]:
    """KPIs of the fake's current data, imported from canonical CSV in a fresh workspace."""
    reference = new_workspace(root / "ws")
    report = SalesKpiService(reference).import_path(
        fake.write_canonical_csv(root / "csv"), mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return scorecard(reference)


def values(card: dict[str, dict[str, Any]], rep: str) -> dict[str, object]:
    return {kpi: card[rep][kpi]["value"] for kpi in KPIS}


def tables(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        return {name: sorted(store.fetch(f'SELECT * FROM "{name}"'), key=repr)
                for name in ENTITIES if name != "targets"}


def ids(settings: Settings, entity: str) -> set[str]:
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        return {row[0] for row in store.fetch(f'SELECT id FROM "{entity}"')}


def body(request: Any) -> dict[str, Any]:
    return request.json() or {}


# -- syncs --------------------------------------------------------------------------------
def test_full_sync_equals_a_file_import_despite_rate_limits_and_outages(
        fake: FakeBitrix24, settings: Settings, tmp_path: Path) -> None:
    fake.api.fail(lambda r: r.path.endswith("/user.get.json") and body(r).get("start") == 3,
                  Response(429, {"error": "QUERY_LIMIT_EXCEEDED"}, {"Retry-After": "0"}))
    fake.api.fail(lambda r: r.path.endswith("/crm.deal.list.json") and fake.page_of(r) == 2,
                  Response(503, {"error": "QUERY_LIMIT_EXCEEDED",
                                 "error_description": "Too many requests"}), times=2)
    fake.api.fail(lambda r: r.path.endswith("/crm.status.list.json"),
                  Response(500, {"error": "INTERNAL_SERVER_ERROR"}))
    # Some proxies turn the 503 into a 200 that still says "too fast": retried as well.
    fake.api.fail(lambda r: r.path.endswith("/crm.activity.list.json"),
                  Response(200, {"error": "QUERY_LIMIT_EXCEEDED",
                                 "error_description": "Too many requests"}))

    report = sync(settings, "bitrix24", options=FAST)

    assert report.full
    assert len([r for r in fake.calls("user.get") if body(r).get("start") == 3]) == 2
    assert len([r for r in fake.calls("crm.deal.list") if fake.page_of(r) == 2]) == 3
    # Three pages of deals, each read once (plus the retries of page 2); a full load
    # has nothing to check for deletions.
    assert len(fake.calls("crm.deal.list")) == 3 + 2
    card = scorecard(settings)
    assert card == imported_from_csv(fake, tmp_path / "reference")
    # Counted by hand from the fake's portal:
    # Anna (1): 201 won 120 000, 202 lost, 203 open; calls 301 and 303 (302 is inbound);
    # meeting 306; leads 11 and 12.
    assert values(card, "1") == {"deals_won": 1, "revenue": 120_000, "win_rate": 0.5,
                                 "calls": 2, "meetings": 1, "leads": 2, "pipeline_volume": 1}
    # Olena (3): 208 won, 207 lost, 206 open; meeting 308 on a company (307 is planned).
    assert values(card, "3") == {"deals_won": 1, "revenue": 75_000, "win_rate": 0.5,
                                 "calls": 0, "meetings": 1, "leads": 2, "pipeline_volume": 1}
    assert card["2"]["revenue"]["value"] == pytest.approx(30_000.5)
    assert card["4"]["calls"]["value"] == 0  # 312 is planned, 313 a missed inbound call
    cursor = load_cursor(settings, "bitrix24")
    assert cursor.keys() == {"since", "open_deals", "open_leads"}
    assert decode_ids(cursor["open_deals"]) == {203, 205, 206, 209}
    assert decode_ids(cursor["open_leads"]) == {12, 14, 16, 17}
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        history = store.fetch("SELECT stage, entered_at, pipeline FROM stage_changes "
                              "WHERE deal_id = '201' ORDER BY entered_at")
        reps = store.fetch("SELECT id, name, team, manager_id FROM reps ORDER BY id")
        deal = store.fetch("SELECT status, amount, currency, closed_at, lead_id, account_id, "
                           "stage FROM deals WHERE id = '201'")
        activity = store.fetch("SELECT type, direction, duration_s, occurred_at, deal_id "
                               "FROM activities WHERE id = '301'")
    # Names, not codes; Moscow times (+03:00) stored as naive UTC.
    assert history == [
        ("Новая", dt.datetime(2024, 3, 1, 6, 0), "Продажи"),
        ("Подготовка документов", dt.datetime(2024, 3, 5, 7, 0), "Продажи"),
        ("Сделка успешна", dt.datetime(2024, 3, 20, 12, 0), "Продажи"),
    ]
    assert reps[:4] == [("1", "Анна Смирнова", "Продажи Москва", None),
                        ("2", "Борис Петров", "Продажи Москва", "1"),
                        ("3", "Олена Коваль", "Продажи Киев", "4"),
                        ("4", "Дмитро Шевченко", "Продажи Киев", "1")]
    assert [(s, float(a), c, t, lead, acc, st) for s, a, c, t, lead, acc, st in deal] == [
        ("won", 120_000.0, "RUB", dt.datetime(2024, 3, 20, 12, 0), "11", "101",
         "Сделка успешна")]
    assert activity == [("call", "out", 180, dt.datetime(2024, 3, 1, 6, 10), "201")]


def test_incremental_sync_reads_only_changes_and_applies_deletions(
        fake: FakeBitrix24, settings: Settings, tmp_path: Path) -> None:
    sync(settings, "bitrix24", options=FAST)
    before = len(fake.api.log)
    fake.add_lead(18, rep=2, status="NEW", source="WEB")
    fake.deals[205]["OPPORTUNITY"] = "64000.00"
    fake.move_deal(205, "WON")
    fake.delete_deal(209)
    fake.delete_lead(12)  # a lead in work, merged into another as a duplicate
    fake.add_activity(314, kind=2, owner=(2, 205), rep=2, direction=2, seconds=240)

    report = sync(settings, "bitrix24", options=FAST)

    assert not report.full
    assert report.entities["deals"].updated == 1 and report.entities["deals"].inserted == 0
    assert report.entities["leads"].inserted == 1
    assert report.deleted["deals"] == 1 and report.deleted["leads"] == 1
    card = scorecard(settings)
    assert card == imported_from_csv(fake, tmp_path / "reference")
    assert values(card, "2") == {"deals_won": 2, "revenue": pytest.approx(94_000.5),
                                 "win_rate": 1.0, "calls": 3, "meetings": 0, "leads": 3,
                                 "pipeline_volume": 0}
    assert card["4"]["pipeline_volume"]["value"] == 0  # 209 deleted
    assert card["1"]["leads"]["value"] == 1  # 12 merged away
    assert "209" not in ids(settings, "deals") and "12" not in ids(settings, "leads")
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        assert not store.fetch("SELECT * FROM stage_changes WHERE deal_id = '209'")
    # Only changes were asked for: every list request of the second sync had a lower bound.
    lists = [r for r in fake.api.log[before:] if r.path.endswith((
        "/crm.company.list.json", "/crm.lead.list.json", "/crm.deal.list.json",
        "/crm.activity.list.json", "/crm.stagehistory.list.json"))]
    bounded = [r for r in lists if any(k.startswith(">") and k != ">ID"
                                       for k in body(r).get("filter", {}))]
    checks = [r for r in lists if "ID" in body(r).get("filter", {})]  # "do these still exist?"
    assert bounded and len(bounded) + len(checks) == len(lists)
    cursor = load_cursor(settings, "bitrix24")
    assert decode_ids(cursor["open_deals"]) == {203, 206}
    assert decode_ids(cursor["open_leads"]) == {14, 16, 17, 18}

    again = sync(settings, "bitrix24", options=FAST)  # nothing changed: nothing written
    assert all(c.inserted == 0 and c.updated == 0
               for name, c in again.entities.items() if name != "reps")
    assert scorecard(settings) == card


def test_an_open_deal_found_deleted_takes_its_activities_along(
        fake: FakeBitrix24, settings: Settings, tmp_path: Path) -> None:
    fake.add_activity(315, kind=2, owner=(2, 209), rep=4, direction=2, seconds=90,
                      start=dt.datetime(2024, 5, 3, 10, 0))
    fake.add_activity(316, kind=1, owner=(2, 209), rep=4, direction=0,
                      start=dt.datetime(2024, 5, 6, 10, 0))
    sync(settings, "bitrix24", options=FAST)
    assert {"315", "316"} <= ids(settings, "activities")
    fake.delete_deal(209)  # open: the incremental sync's deletion check finds it gone

    report = sync(settings, "bitrix24", options=FAST)

    assert report.deleted["deals"] == 1 and report.deleted["activities"] == 2
    assert not {"315", "316"} & ids(settings, "activities")
    assert scorecard(settings) == imported_from_csv(fake, tmp_path / "reference")


def test_a_sync_killed_midway_resumes_from_the_last_stored_batch(
        fake: FakeBitrix24, settings: Settings, tmp_path: Path) -> None:
    fake.api.fail(lambda r: r.path.endswith("/crm.deal.list.json") and fake.page_of(r) == 3,
                  Response(500, {"error": "INTERNAL_SERVER_ERROR",
                                 "error_description": "Internal server error"}), times=1000)

    with pytest.raises(ConnectorError, match=r"crm\.deal\.list"):
        sync(settings, "bitrix24", options=FAST)

    cursor = load_cursor(settings, "bitrix24")
    assert (cursor["phase"], cursor["page"], cursor["after"]) == ("deals", "3", "206")
    assert ids(settings, "reps") == {"1", "2", "3", "4", "5"}
    assert ids(settings, "accounts") == {"101", "102", "103", "104"}
    assert ids(settings, "leads") == {str(i) for i in range(11, 18)}
    assert ids(settings, "deals") == {"201", "202", "203", "204", "205", "206"}
    assert ids(settings, "activities") == set()

    fake.api.faults.clear()
    before = len(fake.api.log)
    sync(settings, "bitrix24", options=FAST)

    pages = [fake.page_of(r) for r in fake.api.log[before:]
             if r.path.endswith("/crm.deal.list.json") and ">ID" in body(r).get("filter", {})]
    assert pages == [3]  # resumed where it stopped, no page read twice
    assert scorecard(settings) == imported_from_csv(fake, tmp_path / "reference")
    assert load_cursor(settings, "bitrix24").keys() == {"since", "open_deals", "open_leads"}


@pytest.mark.parametrize(("kind", "field"), [
    ("missing-id", "result[0].ID"),
    ("wrong-type", "result[0].OPPORTUNITY"),
    ("not-json", "JSON"),
])
def test_a_malformed_page_stops_the_sync_and_stores_nothing_from_it(
        fake: FakeBitrix24, settings: Settings, kind: str, field: str) -> None:
    fake.malformed = kind
    with pytest.raises(ConnectorError) as caught:
        sync(settings, "bitrix24", options=FAST)
    # Pages after the first come in a batch: an answer that is not JSON is the batch's.
    endpoint = "batch" if kind == "not-json" else "crm.deal.list"
    assert endpoint in str(caught.value) and field in str(caught.value)
    assert ids(settings, "deals") == {"201", "202", "203"}  # page 1 only
    cursor = load_cursor(settings, "bitrix24")
    assert (cursor["phase"], cursor["page"]) == ("deals", "2")


# -- credentials ---------------------------------------------------------------------------
def test_an_expired_webhook_says_reconnect_and_never_shows_the_key(
        fake: FakeBitrix24, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connector = Bitrix24Connector(credentials(fake), FAST)
    assert connector.check() == f"{fake.url.removeprefix('http://')} (Анна Смирнова)"
    fake.expired = True
    with pytest.raises(AuthError) as checked:
        connector.check()
    with pytest.raises(AuthError) as synced:
        sync(settings, "bitrix24", options=FAST)
    wrong = Bitrix24Connector({**credentials(fake), "webhook_url": fake.webhook_url.replace(
        CODE, "wrongkey0000")}, FAST)
    fake.expired = False
    with pytest.raises(AuthError) as refused:
        wrong.check()
    for error in (checked.value, synced.value, refused.value):
        assert "saleskpi connect bitrix24" in str(error)
        for secret in (CODE, APP_TOKEN, "wrongkey0000"):
            assert secret not in str(error)
    assert CODE not in caplog.text and APP_TOKEN not in caplog.text


def test_cli_connect_and_sync_keep_the_key_out_of_the_output(
        run_cli: Any, workspace: Path, fake: FakeBitrix24) -> None:
    CredentialStore(Settings(workspace=workspace)).put("bitrix24", credentials(fake))
    fake.expired = True
    connect = ["connect", "bitrix24", "--set", f"webhook_url={fake.webhook_url}",
               "--set", f"outgoing_token={APP_TOKEN}"]
    for result in (run_cli(workspace, "sync", "bitrix24"), run_cli(workspace, *connect)):
        assert result.returncode == 1
        said = " ".join((result.stdout + result.stderr).split())  # rich wraps lines
        assert "refused the inbound webhook" in said and "saleskpi connect bitrix24" in said
        squeezed = "".join(said.split())
        for secret in (CODE, APP_TOKEN):
            assert secret not in result.stdout and secret not in result.stderr
            assert secret not in squeezed


def test_the_webhook_address_is_checked_without_repeating_it() -> None:
    given = parse_webhook_url("https://acme.bitrix24.ru/rest/1/s3cr3tk3y99/profile.json")
    assert (given.origin, given.root, given.key) == (
        "https://acme.bitrix24.ru", "/rest/1/", "s3cr3tk3y99")
    assert parse_webhook_url("acme.bitrix24.ru/rest/7/s3cr3tk3y99").url == (
        "https://acme.bitrix24.ru/rest/7/s3cr3tk3y99/")
    assert parse_webhook_url("https://crm.acme.local:8443/b24/rest/7/s3cr3tk3y99/").url == (
        "https://crm.acme.local:8443/b24/rest/7/s3cr3tk3y99/")
    for wrong in ("https://acme.bitrix24.ru/crm/deal/s3cr3tk3y99/",
                  "http://acme.bitrix24.ru/rest/1/s3cr3tk3y99/"):
        with pytest.raises(ConnectorError) as caught:
            parse_webhook_url(wrong)
        assert "s3cr3tk3y99" not in str(caught.value)


def test_bitrix24s_rate_limit_is_the_default_and_open_ids_stay_short(
        fake: FakeBitrix24) -> None:
    assert Bitrix24Connector(credentials(fake), ClientOptions()).api.client.rate.per_second == 2.0
    assert Bitrix24Connector(credentials(fake), FAST).api.client.rate.per_second == 1000
    bucket = Bitrix24Connector(credentials(fake), ClientOptions()).api.client.rate
    pauses: list[float] = []
    for _request in range(42):
        bucket.wait(pauses.append)
    # Forty at once, ten below Bitrix24's bucket of 50, then one every half second.
    assert len(pauses) == 2 and all(0.45 < p <= 0.5 for p in pauses)
    assert encode_ids([5, 3, 4, 9, 12, 13, 7]) == "3-5,7,9,12-13"
    assert decode_ids("3-5,7,9,12-13") == {3, 4, 5, 7, 9, 12, 13}
    assert decode_ids("") == set()


# -- webhooks -------------------------------------------------------------------------------
def delivery(deal_id: int, *, event: str = "ONCRMDEALUPDATE", sent: int | None = None,
             token: str | None = APP_TOKEN) -> bytes:
    form = [("event", event), ("event_handler_id", "7"), ("data[FIELDS][ID]", str(deal_id)),
            ("ts", str(sent if sent is not None else int(time.time()))),
            ("auth[domain]", "acme.bitrix24.ru"),
            ("auth[client_endpoint]", "https://acme.bitrix24.ru/rest/"),
            ("auth[server_endpoint]", "https://oauth.bitrix.info/rest/"),
            ("auth[member_id]", "a223c6b3710f85df22e9377d6c4f7553")]
    if token is not None:
        form.append(("auth[application_token]", token))
    return urlencode(form).encode()


def post(client: TestClient, payload: bytes) -> int:
    response = client.post("/webhooks/bitrix24", content=payload, headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    return response.status_code


@pytest.mark.parametrize("fake", [50], indirect=True)
def test_a_webhook_syncs_at_once_and_anything_not_from_bitrix24_changes_nothing(
        fake: FakeBitrix24, settings: Settings) -> None:
    sync(settings, "bitrix24", options=FAST)
    assert scorecard(settings)["1"]["deals_won"]["value"] == 1
    client = TestClient(create_app(settings))
    fake.move_deal(203, "WON")
    delivered = delivery(203)

    assert post(client, delivered) == 200

    assert scorecard(settings)["1"]["deals_won"]["value"] == 2  # visible at once
    stored = tables(settings)
    # A change a sync would pick up: any accepted delivery below would show it.
    fake.move_deal(206, "C1:WON")

    assert post(client, delivered) == 409  # replayed
    assert post(client, delivery(206, token="b24apptoken-forged-0000000")) == 401  # forged
    assert post(client, delivery(206, token=None)) == 401  # unsigned
    assert post(client, delivery(206, sent=int(time.time()) - 3600)) == 401  # stale
    assert post(client, delivery(206, event="ONTASKADD")) == 401  # not a CRM event
    assert post(client, b'{"event": "ONCRMDEALUPDATE"}') == 401  # not a form
    assert post(client, b"\xff\xfe=1") == 401
    assert post(client, delivery(206) + b"&data[FIELDS][TITLE]=" + b"x" * (257 * 1024)) == 413

    assert tables(settings) == stored
    assert sync(settings, "bitrix24", options=FAST).entities["deals"].updated == 1  # it was there


def test_webhook_forms_bitrix24_sends_are_accepted_once_and_checked() -> None:
    connector = Bitrix24Connector({"webhook_url": "https://acme.bitrix24.ru/rest/1/s3cr3tk3y99/",
                                   "outgoing_token": APP_TOKEN}, FAST)
    right_now = time.time()

    def request(payload: bytes, *, method: str = "POST",
                content_type: str = "application/x-www-form-urlencoded") -> WebhookRequest:
        return WebhookRequest(method, "https://saleskpi.example/webhooks/bitrix24", None,
                              {"content-type": content_type}, payload, right_now)

    deleted = delivery(209, event="ONCRMDEALDELETE", sent=int(right_now) - 30)
    assert connector.verify_webhook(request(deleted)) == (
        f"ONCRMDEALDELETE:209:{int(right_now) - 30}")
    assert connector.verify_webhook(request(deleted)) == connector.verify_webhook(
        request(deleted))  # a repeat has the same id: the router refuses it
    assert connector.verify_webhook(request(delivery(209, event="ONCRMDEALUPDATE"))) != \
        connector.verify_webhook(request(deleted))
    for bad in (request(deleted, method="GET"),
                request(deleted, content_type="application/json"),
                request(delivery(209, sent=int(right_now) + 3600)),  # from the future
                request(delivery(209).replace(b"data%5BFIELDS%5D%5BID%5D=209",
                                              b"data%5BFIELDS%5D%5BID%5D=x")),
                request(delivery(209).replace(b"ts=", b"when=")),
                request(deleted + b"&auth%5Bapplication_token%5D=" + APP_TOKEN.encode())):
        with pytest.raises(WebhookRejected):
            connector.verify_webhook(bad)
    unconfigured = Bitrix24Connector(
        {"webhook_url": "https://acme.bitrix24.ru/rest/1/s3cr3tk3y99/"}, FAST)
    with pytest.raises(WebhookRejected):
        unconfigured.verify_webhook(request(deleted))


@pytest.mark.parametrize("fake", [50], indirect=True)
def test_a_deleted_won_deal_is_removed_by_its_delete_webhook(
        fake: FakeBitrix24, settings: Settings, tmp_path: Path) -> None:
    sync(settings, "bitrix24", options=FAST)
    client = TestClient(create_app(settings))
    fake.delete_deal(201)  # won: no later sync lists it, nor asks whether it still exists
    assert sync(settings, "bitrix24", options=FAST).deleted == {}
    assert "201" in ids(settings, "deals")

    assert post(client, delivery(201, event="ONCRMDEALDELETE")) == 200

    assert "201" not in ids(settings, "deals")
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        assert store.fetch("SELECT count(*) FROM deals WHERE id = '201'") == [(0,)]
        assert store.fetch("SELECT count(*) FROM stage_changes WHERE deal_id = '201'") == [(0,)]
    # Bitrix24 deleted the deal's two calls and its meeting with it: they go too.
    assert not {"301", "302", "306"} & ids(settings, "activities")
    card, expected = scorecard(settings), imported_from_csv(fake, tmp_path / "reference")
    for rep in expected:
        for kpi in ("deals_won", "revenue", "win_rate", "calls", "meetings"):
            assert card[rep][kpi] == expected[rep][kpi], (rep, kpi)
    # A delete event for a deal the portal still lists (signed, but wrong) removes nothing.
    assert post(client, delivery(203, event="ONCRMDEALDELETE")) == 200
    assert "203" in ids(settings, "deals")
