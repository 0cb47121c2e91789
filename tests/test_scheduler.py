"""saleskpi serve's scheduled syncs: every connected CRM, on a timer, one at a time."""

from __future__ import annotations

import time
from pathlib import Path

from saleskpi.domain.settings import Settings
from saleskpi.service.scheduler import SyncScheduler
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.store.analytics import AnalyticsStore
from tests.fakes.pipedrive import FakePipedrive
from tests.test_connector_pipedrive import credentials


def _deals(settings: Settings) -> int:
    with AnalyticsStore(settings.analytics_path) as store:
        return store.count("deals")


def test_scheduled_sync_brings_each_connected_crm_up_to_date(tmp_path: Path) -> None:
    for fake in FakePipedrive(page_limit=100).serve():
        settings = Settings(workspace=tmp_path / "ws")
        CredentialStore(settings).put("pipedrive", credentials(fake))
        scheduler = SyncScheduler(settings, every_minutes=0.01)  # every 0.6 s
        scheduler.start()
        try:
            deadline = time.monotonic() + 30
            while scheduler.runs < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            scheduler.stop()
        assert scheduler.runs >= 2
        assert _deals(settings) == len(fake.data.deals)


def test_no_schedule_when_the_interval_is_zero(tmp_path: Path) -> None:
    scheduler = SyncScheduler(Settings(workspace=tmp_path / "ws"), every_minutes=0)
    scheduler.start()
    time.sleep(0.2)
    assert scheduler.runs == 0
