"""Alerts after every import: a listener on the service, which cannot import alerting
itself (alerting asks the service for its numbers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saleskpi.domain.reports import ImportReport
    from saleskpi.service.core import SalesKpiService


def watch_imports(service: SalesKpiService) -> Callable[[ImportReport], None]:
    """Evaluate the alert rules after each import ``service`` stores; the listener added
    (``saleskpi serve`` replaces it with its alert job's, which does not hold up imports)."""

    def evaluate(report: ImportReport) -> None:
        # Here, not at the top: alerting's imports (the checks, SQLAlchemy) are for
        # imports that happen, not for every command that makes a service.
        from saleskpi.service.alerting import after_data_change

        after_data_change(service.settings, f"import:{report.source}", service)

    service.after_import.append(evaluate)
    return evaluate
