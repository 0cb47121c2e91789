"""The alert rules while the server runs: one job of the server's ``JobRunner``.

Every minute (the shortest ``every`` a rule may have) the rules whose ``every`` has
passed since they last ran are evaluated, and the notices of alerts still firing
are repeated when their ``repeat`` is due. After an import through the server (a
page, the REST API, a webhook) every rule is evaluated at once, in the job's own
thread: the import's answer does not wait for the alerts.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING

from saleskpi.service.alert_rules import rules_path
from saleskpi.service.alerting import after_data_change, evaluate_alerts, notice_sender
from saleskpi.service.core import SalesKpiService

if TYPE_CHECKING:
    from saleskpi.domain.reports import ImportReport
    from saleskpi.service.scheduler import JobRunner

log = logging.getLogger("saleskpi.alerts")
TICK_SECONDS = 60.0
JOB_NAME = "alerts"


class AlertJob:
    """Due rules every ``every`` seconds; every rule after each import it is told of.

    Without a runner (tests, one-off use) ``after_import`` evaluates at once.
    """

    def __init__(self, service: SalesKpiService, runner: JobRunner | None = None,
                 every: float = TICK_SECONDS) -> None:
        self.service = service
        self.runner = runner
        self._imports: list[str] = []
        self._lock = threading.Lock()
        if runner is not None:
            runner.add(JOB_NAME, every, self.run_once)

    def after_import(self, report: ImportReport) -> None:
        with self._lock:
            self._imports.append(f"import:{report.source}")
        if self.runner is not None:
            self.runner.wake(JOB_NAME)
        else:
            self.run_once()

    def run_once(self) -> None:
        with self._lock:
            imports, self._imports = self._imports, []
        for trigger in dict.fromkeys(imports):  # two imports of one source: once
            after_data_change(self.service.settings, trigger, self.service)
        self.evaluate_due()

    def evaluate_due(self) -> None:
        settings = self.service.settings
        if not rules_path(settings).is_file():
            return
        try:
            report = evaluate_alerts(settings, dt.datetime.now(dt.UTC), notice_sender(settings),
                                     due_only=True, trigger="schedule", service=self.service)
        except Exception:  # the job must outlive any one evaluation
            log.exception("scheduled alert evaluation failed")
            return
        for problem in report.errors:
            log.error("scheduled alerts: %s", problem)
