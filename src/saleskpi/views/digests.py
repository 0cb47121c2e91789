"""A digest: what one person should know this morning, in their own scope.

Daily and weekly digests (``saleskpi report``, the scheduler in ``saleskpi serve``)
hold the month to date and the last day (or week) of the headline KPIs, the plan's
pace, and the alerts firing. Everything is asked through the views the pages use
(``views.scorecard``, ``views.plans``) with the recipient as the caller, so the
service applies the recipient's scope: a head of sales gets the company and every
rep, a team lead their team and its reps, a rep their own figures only, never
another rep's name or number.

Alerts: those firing now in the person's scope (``views.alerts``, the /alerts page's
list), silenced ones left out; without any alert rule the digest says that alerts are
not set up (``alerts_available``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from saleskpi.domain.query import EVERYTHING
from saleskpi.service.core import SalesKpiService
from saleskpi.service.plan_inputs import today
from saleskpi.service.preferences import preferences
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel
from saleskpi.views.plans import PlanParams, plan_vs_actual
from saleskpi.views.scorecard import ScorecardParams, scorecard

Digest = Literal["daily", "weekly"]
DIGESTS: tuple[Digest, ...] = ("daily", "weekly")
# The overview's headline KPIs, unless the person chose their own for the overview.
HEADLINE = ("revenue", "deals_won", "win_rate", "lead_response_time", "pipeline_value")
PLAN_LINES = 50  # furthest behind first; the rest are on the plans page


class DigestAlert(BaseModel):
    title: str
    detail: str = ""
    link: str | None = None


class DigestParams(BaseModel):
    digest: Digest = Field(default="daily", description="daily or weekly.")
    at: dt.date | None = Field(
        default=None, description="The last whole day covered (default: yesterday in the "
        "company's time zone).")


class DayRange(BaseModel):
    start: str = Field(alias="from")
    end: str = Field(alias="to")


class DigestScope(BaseModel):
    level: Literal["company", "team", "rep"]
    team: str | None = None
    rep_id: str | None = None
    rep_name: str | None = None


class DigestView(ViewModel):
    digest: Digest
    recipient: str
    role: str
    scope: DigestScope
    at: str = Field(description="The last day covered (YYYY-MM-DD).")
    month: DayRange = Field(description="Month to date: the month's first day to 'at'.")
    recent: DayRange = Field(description="The last day (daily) or the 7 days (weekly) to "
                             "'at'.")
    timezone: str
    currency: str
    kpis: list[str]
    totals: list[dict[str, Any]] = Field(
        description="Per KPI of the scope: kpi, name, unit, month and recent {value, unit, "
        "numerator, denominator}.")
    reps: list[dict[str, Any]] = Field(
        description="Per rep of the scope, month to date (head and team lead only): rep, "
        "rep_name and per KPI {value, unit}.")
    plan: list[dict[str, Any]] = Field(
        description="Plan vs actual on 'at', furthest behind first (as 'saleskpi plan').")
    alerts: list[DigestAlert]
    alerts_available: bool = Field(description="Whether alerts are evaluated at all.")


def last_whole_day(service: SalesKpiService) -> dt.date:
    return today(service) - dt.timedelta(days=1)


def _scope(service: SalesKpiService, person: Principal) -> DigestScope:
    scope = person.scope
    if scope == EVERYTHING:
        return DigestScope(level="company")
    if scope.teams is not None:
        return DigestScope(level="team", team=person.team)
    reps = service.visible_reps(scope)
    return DigestScope(level="rep", rep_id=person.rep_id, team=reps[0].team if reps else None,
                       rep_name=reps[0].name if reps else person.rep_id)


def digest(service: SalesKpiService, person: Principal, params: DigestParams) -> DigestView:
    """``person``'s digest, computed as ``person`` (their scope), never as whoever sends it."""
    at = params.at or last_whole_day(service)
    month_start = at.replace(day=1)
    recent_start = at if params.digest == "daily" else at - dt.timedelta(days=6)
    kpis = [k for k in (preferences(service, person.user_id).kpis_of("overview") or HEADLINE)
            if k in service.catalog.kpis]

    def figures(start: dt.date, by: list[str]) -> list[dict[str, Any]]:
        view = scorecard(service, person, ScorecardParams(kpis=kpis, by=by, start=start,
                                                          end=at))
        return view.rows

    month = figures(month_start, [])
    recent = figures(recent_start, [])
    lang = person.lang
    totals = []
    for key in kpis:
        spec = service.catalog.get(key)
        now = month[0][key] if month else None
        last = recent[0][key] if recent else None
        totals.append({"kpi": key, "name": spec.display_name(lang),
                       "unit": (now or last or {}).get("unit"), "month": now, "recent": last})
    shape = _scope(service, person)
    reps: list[dict[str, Any]] = []
    if shape.level != "rep":
        rows = figures(month_start, ["rep"])
        reps = sorted(rows, key=lambda r: str(r.get("rep_name") or r.get("rep") or ""))
    plan = plan_vs_actual(service, person, PlanParams(at=at, limit=PLAN_LINES)).lines
    alerts, available = _firing(service, person)
    return DigestView(
        digest=params.digest, recipient=person.username, role=person.role, scope=shape,
        at=at.isoformat(),
        month=DayRange.model_validate({"from": month_start.isoformat(), "to": at.isoformat()}),
        recent=DayRange.model_validate({"from": recent_start.isoformat(),
                                        "to": at.isoformat()}),
        timezone=service.settings.timezone, currency=service.settings.currency, kpis=kpis,
        totals=totals, reps=reps, plan=plan, alerts=alerts,
        alerts_available=available)


def _firing(service: SalesKpiService, person: Principal) -> tuple[list[DigestAlert], bool]:
    """The alerts firing for ``person`` (their scope, their language), and whether any
    alert rule exists at all."""
    from saleskpi.views.alerts import AlertsParams
    from saleskpi.views.alerts import alerts as alert_list

    view = alert_list(service, person, AlertsParams())
    firing = [DigestAlert(title=a.subject, detail=a.why, link=a.link)
              for a in view.alerts if a.status == "firing" and not a.silenced]
    return firing, bool(view.rules)
