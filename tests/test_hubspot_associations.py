"""HubSpot's v4 associations batch read pages each object's links on its own.

An object with more links than one page holds comes back with ``paging.next.after``
in its own result; the connector sends that cursor back with the object's id until no
``paging`` is left. Against the fake (tests/fakes/hubspot.py), which pages links the
way HubSpot does, nothing may be lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings
from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.sources.connectors.crms.hubspot.api import HubSpotApi
from saleskpi.sources.connectors.sync import sync
from saleskpi.store.analytics import AnalyticsStore
from tests.fakes.hubspot import TOKEN, FakeHubSpot, Obj

FAST = ClientOptions(rate_limit=1000, backoff=0.01)
PATH = "/crm/v4/associations/companies/deals/batch/read"


@pytest.fixture
def hubspot() -> Iterator[FakeHubSpot]:
    fake = FakeHubSpot(association_page=100).start()
    try:
        yield fake
    finally:
        fake.stop()


def test_a_company_with_hundreds_of_deals_keeps_every_one(hubspot: FakeHubSpot) -> None:
    many = [str(7000 + n) for n in range(350)]  # 3.5 pages of 100
    few = ["8001", "8002", "8003"]
    hubspot.objects["companies"]["9001"] = Obj("9001", {}, {"deals": many})
    hubspot.objects["companies"]["9002"] = Obj("9002", {}, {"deals": few})
    hubspot.objects["companies"]["9003"] = Obj("9003", {}, {})  # no deals at all
    api = HubSpotApi(hubspot.url, TOKEN, FAST)
    try:
        links = api.associations("companies", "deals", ["9001", "9002", "9003"])
    finally:
        api.close()

    assert links == {"9001": many, "9002": few}
    asked = hubspot.requests_to(PATH, "POST")
    # Both companies at first; then only the one with more, from where its page ended.
    assert [r.json()["inputs"] for r in asked] == [
        [{"id": "9001"}, {"id": "9002"}, {"id": "9003"}],
        [{"id": "9001", "after": "100"}],
        [{"id": "9001", "after": "200"}],
        [{"id": "9001", "after": "300"}],
    ]


def test_more_than_a_thousand_objects_go_in_requests_of_a_thousand(
        hubspot: FakeHubSpot) -> None:
    ids = [str(10_000 + n) for n in range(2500)]
    for oid in ids:
        hubspot.objects["companies"][oid] = Obj(oid, {}, {"deals": [str(int(oid) + 50_000)]})
    api = HubSpotApi(hubspot.url, TOKEN, FAST)
    try:
        links = api.associations("companies", "deals", ids)
    finally:
        api.close()
    assert links == {oid: [str(int(oid) + 50_000)] for oid in ids}
    assert [len(r.json()["inputs"]) for r in hubspot.requests_to(PATH, "POST")] == [
        1000, 1000, 500]


def test_a_primary_company_on_a_later_page_is_still_the_deals_account(
        tmp_path: Path) -> None:
    fake = FakeHubSpot().start()  # two links a page
    try:
        settings = Settings(workspace=tmp_path / "ws")
        CredentialStore(settings).put("hubspot", fake.credentials())
        sync(settings, "hubspot", options=FAST)
        # Deal 401 is now linked to all five companies; the primary one is the fourth,
        # on the second page of its links. An incremental sync reads them through v4.
        deal = fake.touch("deals", "401")
        deal.assoc["companies"] = ["201", "202", "203", "204", "205"]
        fake.primary[("deals", "401", "companies")] = "204"
        sync(settings, "hubspot", options=FAST)
    finally:
        fake.stop()
    with AnalyticsStore(settings.analytics_path, read_only=True) as store:
        assert store.fetch("SELECT account_id FROM deals WHERE id = '401'") == [("204",)]
    asked = [r.json()["inputs"] for r in fake.requests_to(
        "/crm/v4/associations/deals/companies/batch/read", "POST")]
    assert [{"id": "401", "after": "2"}] in asked and [{"id": "401", "after": "4"}] in asked
