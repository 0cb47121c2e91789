"""The alert rules on their schedules: while the server runs, due rules are evaluated.

Every minute (the shortest ``every`` a rule may have) the rules whose ``every`` has
passed since they last ran are evaluated, and the notices of alerts still firing
are repeated when their ``repeat`` is due.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from saleskpi.service.alert_rules import rules_path
from saleskpi.service.alerting import evaluate_alerts, notice_sender
from saleskpi.service.core import SalesKpiService

log = logging.getLogger("saleskpi.alerts")
TICK_SECONDS = 60.0


class AlertScheduler:
    def __init__(self, service: SalesKpiService, every: float = TICK_SECONDS) -> None:
        self.service = service
        self.every = every
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="saleskpi-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> None:
        settings = self.service.settings
        if not rules_path(settings).is_file():
            return
        try:
            report = evaluate_alerts(settings, dt.datetime.now(dt.UTC), notice_sender(settings),
                                     due_only=True, trigger="schedule", service=self.service)
        except Exception:  # the scheduler must outlive any one evaluation
            log.exception("scheduled alert evaluation failed")
            return
        for problem in report.errors:
            log.error("scheduled alerts: %s", problem)
        self.runs += 1

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()
