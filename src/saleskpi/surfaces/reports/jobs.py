"""The scheduled reports as a job of ``saleskpi serve``'s runner.

Every minute it reads reports.yaml again (an edit applies without a restart) and
sends each schedule's digests whose run fell since the last check. Each run's
notices share one key (``report:<schedule>:<run time>``), so a digest already sent
is never sent again: not by a second server, not after a restart. A server started
up to ``CATCH_UP`` after a run sends that run's digests then.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from collections.abc import Callable

from saleskpi.domain.errors import SalesKpiError
from saleskpi.service.core import SalesKpiService
from saleskpi.service.report_schedules import due_run, load_schedules
from saleskpi.service.scheduler import JobRunner
from saleskpi.surfaces.reports.send import Sent, recipients, send_digests
from saleskpi.views.digests import DigestParams

log = logging.getLogger("saleskpi.reports")
CHECK_EVERY_SECONDS = 60.0
CATCH_UP = dt.timedelta(hours=1)
JOB_NAME = "reports"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_key(schedule_name: str, run: dt.datetime) -> str:
    return f"report:{schedule_name}:{run.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%MZ')}"


class ReportJob:
    def __init__(self, service: SalesKpiService, *,
                 clock: Callable[[], dt.datetime] = _utc_now) -> None:
        self.service = service
        self.clock = clock
        self.checked = clock() - CATCH_UP
        self._last_problem: str | None = None

    def run(self) -> list[Sent]:
        """Send what fell due since the last check; what was sent, per person."""
        now = self.clock()
        since, self.checked = self.checked, now
        try:
            schedules = load_schedules(self.service.settings)
        except SalesKpiError as exc:
            if exc.message != self._last_problem:  # once, not every minute
                log.error("scheduled reports stopped: %s", exc.message)
            self._last_problem = exc.message
            return []
        self._last_problem = None
        zone = self.service.settings.timezone
        sent: list[Sent] = []
        for schedule in schedules:
            run = due_run(schedule, since, now, zone)
            if run is None:
                continue
            try:
                people = recipients(self.service, schedule.to)
            except SalesKpiError as exc:
                log.error("schedule %s: %s", schedule.name, exc.message)
                continue
            log.info("schedule %s: %s digests for %d people", schedule.name, schedule.digest,
                     len(people))
            # The last whole day before the run, in the company's time (also when caught up).
            day = run.astimezone(zoneinfo.ZoneInfo(zone)).date() - dt.timedelta(days=1)
            params = DigestParams.model_validate({"digest": schedule.digest, "at": day})
            sent += send_digests(self.service, people, params, run_key(schedule.name, run))
        return sent


def add_report_job(runner: JobRunner, service: SalesKpiService) -> ReportJob:
    """Register the scheduled reports on ``runner`` (``saleskpi serve`` does)."""
    job = ReportJob(service)
    runner.add(JOB_NAME, CHECK_EVERY_SECONDS, job.run, first_after=5.0)
    return job
