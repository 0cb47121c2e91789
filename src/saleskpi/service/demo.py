"""The demo company: generated, imported in place of the previous one, with demo users."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

from saleskpi.domain.i18n import _
from saleskpi.domain.query import KpiQuery, next_period, period_start
from saleskpi.domain.reports import ImportReport, Progress
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.bonus import write_example_plans
from saleskpi.service.demo_users import DemoLogin, ensure_demo_users
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.backend import open_store

DEMO_SOURCE = "demo"
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
        # A bonus plan to show on the bonus page; the workspace's own is kept.
        write_example_plans(settings)
    return company
