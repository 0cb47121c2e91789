"""Scheduled syncs: while the server runs, every connected CRM is synced every N minutes."""

from __future__ import annotations

import logging
import threading

from saleskpi.domain.settings import Settings
from saleskpi.service.syncs import run_sync
from saleskpi.sources.connectors.credentials import CredentialError, CredentialStore
from saleskpi.sources.connectors.http import ConnectorError

log = logging.getLogger("saleskpi.scheduler")


class SyncScheduler:
    def __init__(self, settings: Settings, every_minutes: float) -> None:
        self.settings = settings
        self.interval = every_minutes * 60
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="saleskpi-sync", daemon=True)
        self.runs = 0

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> None:
        import saleskpi.sources.connectors.crms  # noqa: F401  (registers the connectors)

        try:
            names = CredentialStore(self.settings).names()
        except CredentialError as exc:
            log.error("scheduled sync skipped: %s", exc)
            return
        for crm in names:
            try:
                report = run_sync(self.settings, crm)
            except ConnectorError as exc:  # messages are already free of secrets
                log.error("scheduled sync of %s failed: %s", crm, exc)
                continue
            log.info("scheduled sync of %s: %d batches", crm, report.batches)
        self.runs += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()
