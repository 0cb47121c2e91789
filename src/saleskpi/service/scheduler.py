"""What ``saleskpi serve`` runs on timers: syncs of connected CRMs, due reports, and more.

``JobRunner`` runs each job in its own thread on its own interval, so a long sync
never delays the morning's digests. Jobs are registered by name (``add``); a job can
be asked to run at once (``wake``: e.g. alert evaluation after an import). A job that
raises is logged and runs again at its next time.

``SyncScheduler`` is the sync job: every connected CRM synced every N minutes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from saleskpi.domain.settings import Settings
from saleskpi.service.syncs import run_sync
from saleskpi.sources.connectors.credentials import CredentialError, CredentialStore
from saleskpi.sources.connectors.http import ConnectorError

log = logging.getLogger("saleskpi.scheduler")


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], object]
    first_after: float
    runs: int = 0
    failures: int = 0
    wake: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class JobRunner:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._stop = threading.Event()
        self._started = False

    def add(self, name: str, every_seconds: float, run: Callable[[], object], *,
            first_after: float | None = None) -> Job:
        """Run ``run()`` every ``every_seconds`` (first after ``first_after``, default one
        interval); a job added after ``start`` starts at once."""
        if name in self.jobs:
            raise ValueError(f"a job named {name!r} is already registered")
        job = Job(name, every_seconds, run,
                  every_seconds if first_after is None else first_after)
        self.jobs[name] = job
        if self._started:
            self._launch(job)
        return job

    def start(self) -> None:
        self._started = True
        for job in self.jobs.values():
            self._launch(job)

    def _launch(self, job: Job) -> None:
        if job.every_seconds <= 0 or job.thread is not None:
            return
        job.thread = threading.Thread(target=self._loop, args=(job,),
                                      name=f"saleskpi-{job.name}", daemon=True)
        job.thread.start()

    def stop(self) -> None:
        self._stop.set()
        for job in self.jobs.values():
            job.wake.set()

    def wake(self, name: str) -> None:
        """Run job ``name`` now (its timer starts again after it)."""
        job = self.jobs.get(name)
        if job is not None:
            job.wake.set()

    def runs(self, name: str) -> int:
        job = self.jobs.get(name)
        return job.runs if job else 0

    def _loop(self, job: Job) -> None:
        wait = job.first_after
        while True:
            job.wake.wait(wait)
            if self._stop.is_set():
                return
            job.wake.clear()
            try:
                job.run()
            except Exception:  # a failing job must not end its thread: it runs again
                job.failures += 1
                log.exception("scheduled job %s failed", job.name)
            job.runs += 1
            wait = job.every_seconds


class SyncScheduler:
    """Every connected CRM synced every ``every_minutes`` (0: never), as a job of ``runner``."""

    def __init__(self, settings: Settings, every_minutes: float,
                 runner: JobRunner | None = None) -> None:
        self.settings = settings
        self.interval = every_minutes * 60
        self.runner = runner or JobRunner()
        if self.interval > 0:
            self.runner.add("sync", self.interval, self.run_once)

    @property
    def runs(self) -> int:
        return self.runner.runs("sync")

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()

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
