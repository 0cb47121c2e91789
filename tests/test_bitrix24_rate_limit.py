"""Bitrix24's leaky bucket (the shared ``pacing.LeakyBucket``) on a fake clock, thousands of calls.

The portal's rule, written out here independently of the limiter: every request adds
1 to a counter that drains ``per_second`` a second; a request that would take the
counter over ``capacity`` is refused. Over any stretch of T seconds, a client that
keeps the rule sends at most ``capacity + per_second * T`` requests.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from saleskpi.sources.connectors.base import ClientOptions
from saleskpi.sources.connectors.crms.bitrix24 import Bitrix24Connector
from saleskpi.sources.connectors.crms.bitrix24.api import BURST, PORTAL_BURST, RATE_LIMIT
from saleskpi.sources.connectors.crms.bitrix24.connector import decode_ids
from saleskpi.sources.connectors.pacing import LeakyBucket
from tests.fakes.bitrix24 import FakeBitrix24, PortalBucket
from tests.fakes.server import Request, Response


class FakeClock:
    """Time that moves only when someone sleeps (or the test lets it pass)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def portal_refusals(times: list[float], capacity: float, per_second: float) -> int:
    """How many of these request times the portal's bucket would refuse."""
    level, last, refused = 0.0, times[0], 0
    for moment in times:
        level = max(0.0, level - (moment - last) * per_second)
        last = moment
        if level + 1 > capacity + 1e-9:
            refused += 1
        else:
            level += 1
    return refused


def most_in_a_window(times: list[float], seconds: float) -> int:
    """The most requests sent within any ``seconds`` (windows start at a request)."""
    best, end = 0, 0
    for start, moment in enumerate(times):
        while end < len(times) and times[end] - moment <= seconds + 1e-9:
            end += 1
        best = max(best, end - start)
    return best


@pytest.mark.parametrize("think", [0.0, 0.1, "random"])
def test_thousands_of_calls_never_overflow_the_portals_bucket(think: float | str) -> None:
    clock = FakeClock()
    bucket = LeakyBucket(RATE_LIMIT, capacity=BURST, clock=clock)
    chance = random.Random(17)
    times: list[float] = []
    for _call in range(5000):
        bucket.wait(clock.sleep)
        times.append(clock())
        # The client's own work between requests: none, steady, or bursty.
        gap = think if isinstance(think, float) else chance.choice([0.0, 0.0, 0.05, 0.3, 4.0])
        clock.now += gap
    assert portal_refusals(times, PORTAL_BURST, 2.0) == 0
    assert portal_refusals(times, BURST, 2.0) == 0  # our own margin held as well
    for window in (0.5, 1.0, 10.0, 60.0, 600.0):
        assert most_in_a_window(times, window) <= BURST + 2.0 * window + 1


def test_it_waits_only_as_long_as_the_bucket_needs() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(RATE_LIMIT, capacity=BURST, clock=clock)
    for _call in range(BURST):
        bucket.wait(clock.sleep)
    assert clock.slept == []  # the burst goes at once
    for _call in range(3000):
        bucket.wait(clock.sleep)
    # Then exactly one every half second: 3000 more take 1500 s, not a moment longer
    # (the old limiter counted each pause twice and went ~1.5x too fast; a limiter
    # that paused too long would take more).
    assert clock.now - 1000.0 == pytest.approx(3000 / 2.0)
    assert all(p == pytest.approx(0.5) for p in clock.slept)
    # An idle spell drains the bucket: the next burst again goes without a pause.
    clock.now += BURST / 2.0
    before = len(clock.slept)
    for _call in range(BURST):
        bucket.wait(clock.sleep)
    assert len(clock.slept) == before
    assert bucket.level == pytest.approx(BURST)


def test_a_sleep_that_returns_early_still_counts_as_the_pause() -> None:
    clock = FakeClock()
    bucket = LeakyBucket(2.0, capacity=5, clock=clock)
    pauses: list[float] = []
    for _call in range(25):
        bucket.wait(pauses.append)  # never moves the clock
    # Five at once, then twenty pauses of half a second each, none counted twice.
    assert len(pauses) == 20 and sum(pauses) == pytest.approx(10.0)


# -- a whole sync against a portal that enforces the bucket --------------------------------
def connect(fake: FakeBitrix24, clock: FakeClock) -> Bitrix24Connector:
    """The connector with Bitrix24's default limits, on the same fake clock as the portal."""
    connector = Bitrix24Connector({"webhook_url": fake.webhook_url}, ClientOptions())
    assert connector.api.client.rate.per_second == RATE_LIMIT
    connector.api.client.rate = LeakyBucket(RATE_LIMIT, capacity=BURST, clock=clock)
    connector.api.client.sleep = clock.sleep
    return connector


def run(connector: Bitrix24Connector, cursor: dict[str, str]) -> tuple[dict[str, str], int]:
    """A sync's batches, not stored: the cursor it ends with and the rows it read."""
    rows = 0
    for batch in connector.batches(cursor):
        cursor, rows = batch.cursor, rows + batch.rows()
    return cursor, rows


@pytest.fixture
def portal() -> Iterator[tuple[FakeBitrix24, FakeClock]]:
    """Bitrix24's real page (50) and bucket (50 at once, 2 a second), on a fake clock."""
    clock = FakeClock()
    fake = FakeBitrix24(page_size=50, bucket=PortalBucket(PORTAL_BURST, 2.0, clock=clock))
    fake.grow(leads=2000, deals=600, activities=1500)
    fake.start()
    try:
        yield fake, clock
    finally:
        fake.stop()


def test_a_full_and_an_incremental_sync_are_never_refused(
        portal: tuple[FakeBitrix24, FakeClock]) -> None:
    fake, clock = portal
    connector = connect(fake, clock)

    cursor, rows = run(connector, {})

    full = len(fake.requests())
    assert fake.refused == [] and fake.bucket.peak <= BURST
    assert rows >= 2007 + 609 + 1513  # leads, deals, activities at least
    # Counted by hand: 4 directory calls (users, departments, categories, statuses), then
    # per list its first page alone and the rest in batches of up to 50 pages:
    # companies 4 (1 page), leads 2,007 (41 pages: 1 + 1), deals 609 (13: 1 + 1), stage
    # history 18 + 1,600 (33: 1 + 1), activities 1,513 (31: 1 + 1). A page a request
    # took 4 + 1 + 41 + 13 + 33 + 31 = 123.
    assert full == 4 + 1 + 2 + 2 + 2 + 2
    # 2,000 leads in work or not, 1,200 of them open: their ids travel in the cursor.
    assert len(decode_ids(cursor["open_leads"])) == 1204

    fake.delete_lead(1003)  # an open lead deleted
    fake.add_lead(9000, rep=2, status="NEW", source="WEB")
    clock.now += 3600  # an hour later
    cursor, rows = run(connect(fake, clock), cursor)

    incremental = len(fake.requests()) - full
    assert fake.refused == []
    assert 1003 not in decode_ids(cursor["open_leads"])
    assert 9000 in decode_ids(cursor["open_leads"])
    # 4 directory calls, one page of changes per list, and one batch asking whether
    # 1,205 open leads and 204 open deals still exist (25 + 5 calls of 50 ids). One
    # call per 50 ids took 4 + 5 + 30 = 39.
    assert incremental == 4 + 5 + 1
    checks = [r for r in fake.api.log[-40:] if "ID" in (r.json() or {}).get("filter", {})]
    assert len(checks) == 30 and all("x-batch-call" in r.headers for r in checks)


def test_a_record_deleted_while_a_batch_runs_does_not_make_the_sync_skip_one(
        portal: tuple[FakeBitrix24, FakeClock]) -> None:
    fake, clock = portal
    deleted: list[int] = []

    def delete_midway(request: Request) -> bool:
        # The batch's second page of leads: the first has been read, so 1050 goes away
        # behind it and every later record moves one place up.
        if (not deleted and request.headers.get("x-batch-call") == "c1"
                and request.path.endswith("/crm.lead.list.json")):
            fake.delete_lead(1050)
            deleted.append(1050)
        return False

    fake.api.fail(delete_midway, Response(500), times=1)
    read: set[str] = set()
    for batch in connect(fake, clock).batches({}):
        if "leads" in batch.frames:
            read.update(batch.frames["leads"]["id"])
    assert deleted == [1050]
    assert {str(i) for i in fake.leads} <= read  # 1093, first of the shifted page, too
    assert fake.refused == []


def test_a_call_refused_inside_a_batch_is_asked_again_and_nothing_is_lost(
        portal: tuple[FakeBitrix24, FakeClock]) -> None:
    fake, clock = portal

    def fourth_page_of_leads(request: Request) -> bool:
        return (request.headers.get("x-batch-call") == "c3"
                and request.path.endswith("/crm.lead.list.json"))

    fake.api.fail(fourth_page_of_leads, Response(503, {
        "error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}))
    read: list[str] = []
    for batch in connect(fake, clock).batches({}):
        if "leads" in batch.frames:
            read += list(batch.frames["leads"]["id"])
    assert sorted(read, key=int) == sorted((str(i) for i in fake.leads), key=int)  # once each
    lead_batches = [r for r in fake.requests() if r.path.endswith("/batch.json")
                    and "crm.lead.list" in str((r.json() or {}).get("cmd"))]
    assert len(lead_batches) == 2  # the pages from the refused one on, asked again
    assert fake.refused == []
