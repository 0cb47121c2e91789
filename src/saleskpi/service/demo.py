"""``saleskpi demo``: a synthetic company in the workspace, then its scorecard."""

from __future__ import annotations

import datetime as dt
import time

from rich.console import Console

from saleskpi.domain.i18n import _
from saleskpi.domain.query import KpiQuery, next_period, period_start
from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.first_contacts import forget_first_contacts
from saleskpi.surfaces.cli.output import print_import_report, scorecard_table

DEMO_SOURCE = "demo"
DEMO_TIMEZONE = "Europe/Kyiv"
DEMO_CURRENCY = "USD"
SCORECARD_KPIS = (
    "calls", "meetings", "deals_won", "revenue", "win_rate", "lead_response_time",
    "speed_to_lead_5min",
)


def run_demo(settings: Settings, *, size: float, seed: int, console: Console,
             status_console: Console, quiet: bool = False,
             end: dt.date | None = None) -> None:
    """Replace the workspace's demo data with a fresh company and print its scorecard."""
    from saleskpi.sources.demo import generate_company

    save_workspace_settings(settings, timezone=DEMO_TIMEZONE, currency=DEMO_CURRENCY)
    settings = Settings(workspace=settings.workspace)
    end = end or dt.date.today()
    started = time.perf_counter()
    with status_console.status(_("Generating the demo company…")) as status:
        frames = generate_company(
            size, seed=seed, end=end, timezone=settings.timezone, currency=settings.currency,
            progress=lambda message: status.update(message),
        )
        status.update(_("Importing…"))
        with AnalyticsStore(settings.analytics_path) as store:
            with store.transaction():
                # The demo is regenerated as of today: replace, never mix, old demo rows.
                for name in ENTITIES:
                    store.con.execute(f'DELETE FROM "{name}" WHERE datasource = ?',
                                      [DEMO_SOURCE])
                forget_first_contacts(store.con, DEMO_SOURCE)
            report = import_frames(settings, frames, source=DEMO_SOURCE, store=store,
                                   progress=lambda message: status.update(message))
    elapsed = time.perf_counter() - started
    if not report.ok:
        print_import_report(console, report)
        raise SystemExit(1)
    counts = {name: c.inserted + c.updated + c.unchanged for name, c in report.entities.items()}
    console.print(_(
        "Demo company ready in {seconds:.1f} s: {reps} reps, {leads} leads, {deals} deals, "
        "{activities} activities. Workspace: {workspace}",
        seconds=elapsed, reps=counts.get("reps", 0), leads=counts.get("leads", 0),
        deals=counts.get("deals", 0), activities=counts.get("activities", 0),
        workspace=settings.workspace,
    ))
    from saleskpi.service.demo_users import ensure_demo_users

    logins = ensure_demo_users(settings, frames["reps"])
    console.print(_("Dashboard: run 'saleskpi serve' (or 'saleskpi demo --serve') and open "
                    "http://127.0.0.1:8000. Demo sign-ins:"), highlight=False)
    for login in logins:
        console.print(f"  {login.username} / {login.password}  ({login.role}"
                      f"{': ' + login.who if login.who else ''})", highlight=False)
    if quiet:
        return
    last_month_end = period_start(end, "month") - dt.timedelta(days=1)
    first = period_start(last_month_end, "month")
    assert next_period(first, "month") > last_month_end
    query = KpiQuery(SCORECARD_KPIS, by=("rep",), start=first, end=last_month_end)
    service = SalesKpiService(settings)
    scorecard = service.scorecard(query)
    console.print(_("Scorecard for {start} – {end}:", start=first, end=last_month_end))
    console.print(scorecard_table(scorecard, service.catalog))
    console.print(_(
        "Next: saleskpi kpi revenue win_rate --by team --period month   "
        "(saleskpi kpis lists every KPI)"
    ))
