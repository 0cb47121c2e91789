"""The demo company: generated, imported in place of the previous one, with demo users."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saleskpi.domain.i18n import _
from saleskpi.domain.query import KpiQuery, next_period, period_start
from saleskpi.domain.reports import ImportReport, Progress
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.bonus import write_example_plans
from saleskpi.service.demo_users import DemoLogin, ensure_demo_users
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.backend import open_store

DEMO_SOURCE = "demo"
ALERTS_EXAMPLE = Path(__file__).with_name("alerts_example.yaml")
DEMO_TIMEZONE = "Europe/Kyiv"
DEMO_CURRENCY = "USD"
SCORECARD_KPIS = (
    "calls", "meetings", "deals_won", "revenue", "win_rate", "lead_response_time",
    "speed_to_lead_5min",
)


@dataclass
class DemoCompany:
    """What ``build_demo`` made: the import report, the sign-ins, and the month to show."""

    settings: Settings
    report: ImportReport
    seconds: float
    logins: list[DemoLogin] = field(default_factory=list)
    end: dt.date = dt.date.min

    def counts(self) -> dict[str, int]:
        return {name: c.inserted + c.updated + c.unchanged
                for name, c in self.report.entities.items()}

    def last_month(self) -> KpiQuery:
        """The rep scorecard of the last whole month: what ``saleskpi demo`` prints."""
        last_month_end = period_start(self.end, "month") - dt.timedelta(days=1)
        first = period_start(last_month_end, "month")
        assert next_period(first, "month") > last_month_end
        return KpiQuery(SCORECARD_KPIS, by=("rep",), start=first, end=last_month_end)


def build_demo(settings: Settings, *, size: float, seed: int, end: dt.date | None = None,
               progress: Progress | None = None) -> DemoCompany:
    """Replace the workspace's demo data with a fresh company (and its demo users)."""
    from saleskpi.sources.demo import generate_company

    notify = progress or (lambda _message: None)
    save_workspace_settings(settings, timezone=DEMO_TIMEZONE, currency=DEMO_CURRENCY)
    settings = Settings(workspace=settings.workspace)
    end = end or dt.date.today()
    started = time.perf_counter()
    notify(_("Generating the demo company…"))
    frames = generate_company(
        size, seed=seed, end=end, timezone=settings.timezone, currency=settings.currency,
        progress=notify,
    )
    notify(_("Importing…"))
    with open_store(settings) as store:
        with store.transaction():
            # The demo is regenerated as of today: replace, never mix, old demo rows.
            store.forget_source(DEMO_SOURCE)
        report = import_frames(settings, frames, source=DEMO_SOURCE, store=store,
                               progress=notify)
    company = DemoCompany(settings, report, time.perf_counter() - started, end=end)
    if report.ok:
        company.logins = ensure_demo_users(settings, frames["reps"])
        # A bonus plan, alert rules and a contest to show on their pages; the
        # workspace's own are kept.
        write_example_plans(settings)
        _example_alerts(settings)
        _example_contest(settings, frames["reps"], end)
    return company


def _example_alerts(settings: Settings) -> None:
    """The example alert rules (unless the workspace has its own), evaluated once so
    that /alerts shows what they find in the demo's data."""
    from saleskpi.domain.files import write_private
    from saleskpi.service.alert_rules import rules_path
    from saleskpi.service.alerting import evaluate_alerts, notice_sender

    path = rules_path(settings)
    if not path.exists():
        write_private(path, ALERTS_EXAMPLE.read_text(encoding="utf-8"))
    evaluate_alerts(settings, dt.datetime.now(dt.UTC), notice_sender(settings),
                    trigger="demo")


def _example_contest(settings: Settings, reps: Any, end: dt.date) -> None:
    """A points race over the demo's month, unless the workspace has a contest."""
    from saleskpi.domain.contests import parse_definition
    from saleskpi.service import contests
    from saleskpi.service.core import SalesKpiService

    service = SalesKpiService(settings)
    if contests.all_contests(service):
        return
    first = period_start(end, "month")
    contests.create(service, parse_definition({
        "name": _("Points race"),
        "description": _("1 point a call, 5 a meeting, 20 a deal won"),
        "points": [{"kpi": "calls", "points": 1}, {"kpi": "meetings", "points": 5},
                   {"kpi": "deals_won", "points": 20}],
        "start": first.isoformat(),
        "end": (next_period(first, "month") - dt.timedelta(days=1)).isoformat(),
        "members": sorted(str(rep) for rep in reps["id"]), "head_to_head": True}),
        actor="demo")
