"""Alerts in words: why each one fired, and the notice a recipient gets, in their language.

Findings keep facts (ids, UTC times, numbers); the words are made when shown, in the
reader's language and the company's time zone, so a notice and the web page say
the same thing.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saleskpi.catalog.load import Catalog
from saleskpi.domain.alert_states import NO_DATA, AlertState, Notify
from saleskpi.domain.i18n import _, current_language, set_language
from saleskpi.domain.notices import Notice


@dataclass(frozen=True)
class Told:
    """One notice's line: an alert's event, of a rule."""

    kind: str  # the rule's kind
    title: str  # the rule's title, or its name
    severity: str
    state: AlertState
    what: Notify
    key: str


def local_time(text: str | None, zone: str) -> str:
    """A fact's UTC time (ISO) as the company's wall time."""
    if not text:
        return "—"
    moment = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return moment.astimezone(zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def number(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    amount = float(value)
    if unit == "ratio":
        return f"{amount * 100:.1f}%"
    if amount.is_integer():
        return f"{amount:,.0f}".replace(",", " ")
    if unit == "count":
        return f"{amount:,.1f}".replace(",", " ")
    text = f"{amount:,.2f}".replace(",", " ")
    return f"{text} {unit}" if unit and unit not in ("number", "ratio") else text


def _kpi_name(catalog: Catalog, key: str) -> str:
    spec = catalog.kpis.get(key)
    return spec.display_name(current_language()) if spec else key


def why(kind: str, subject: str, facts: dict[str, Any], catalog: Catalog, zone: str) -> str:
    """Why an alert holds, in the current language."""
    f = facts
    if subject == NO_DATA:
        return _("There is no data to judge this rule.")
    if kind == "lead_not_contacted":
        return _("Lead {lead} ({source}) came in at {created} and was not contacted "
                 "within {sla} working minutes: due at {due}; rep: {rep}.",
                 lead=f.get("lead"), source=f.get("source") or "—",
                 created=local_time(f.get("created"), zone), sla=f.get("sla_minutes"),
                 due=local_time(f.get("due"), zone), rep=f.get("rep_name") or _("nobody"))
    if kind == "deal_stuck":
        limit = _("the team's 90th percentile, {days} days", days=number(f.get("limit_days"))) \
            if f.get("basis") == "p90" else _("{days} days", days=number(f.get("limit_days")))
        return _("Deal {deal} has been in stage {stage} since {entered}, longer than {limit}; "
                 "rep: {rep}.", deal=f.get("deal"), stage=f.get("stage"),
                 entered=local_time(f.get("entered"), zone), limit=limit,
                 rep=f.get("rep_name") or _("nobody"))
    if kind == "behind_pace":
        unit = str(f.get("unit") or "")
        return _("{who}: {kpi} is {actual} by {day}, {expected} expected at the plan's pace "
                 "(plan {plan}); {pace} of the pace, more than {pct}% behind.",
                 who=f.get("who_name") or f.get("who"), kpi=_kpi_name(catalog, str(f.get("kpi"))),
                 actual=number(f.get("actual"), unit), day=f.get("day"),
                 expected=number(f.get("expected"), unit), plan=number(f.get("plan"), unit),
                 pace=number(f.get("on_pace"), "ratio"), pct=number(f.get("behind_pct")))
    if kind == "kpi_threshold":
        unit = str(f.get("unit") or "")
        conditions = {"above": _("above {limit}"), "below": _("below {limit}"),
                      "under_baseline": _("below {limit}, the own baseline less the margin"),
                      "over_baseline": _("above {limit}, the own baseline plus the margin")}
        condition = conditions.get(str(f.get("condition")), "{limit}").format(
            limit=number(f.get("limit"), unit))
        who = _("the company") if f.get("by") == "company" else f.get("who")
        return _("{who}: {kpi} is {value} from {first} to {last}: {condition}.", who=who,
                 kpi=_kpi_name(catalog, str(f.get("kpi"))), value=number(f.get("value"), unit),
                 first=f.get("from"), last=f.get("to"), condition=condition)
    if kind == "data_stale" and subject.startswith("sync:"):
        return _("The sync of {crm} fails since {since} ({failures} failed runs): {message}",
                 crm=f.get("crm"), since=local_time(f.get("since"), zone),
                 failures=f.get("failures"), message=f.get("message") or "—")
    if kind == "data_stale":
        return _("Nothing was imported or synced since {last}: more than {hours} hours.",
                 last=local_time(f.get("last"), zone), hours=number(f.get("hours")))
    return subject


def notice(username: str, lang: str, told: Sequence[Told], catalog: Catalog,
           zone: str) -> Notice:
    """One recipient's notice of one evaluation, in ``lang``."""
    return contextvars.copy_context().run(_notice, username, lang, told, catalog, zone)


def _notice(username: str, lang: str, told: Sequence[Told], catalog: Catalog,
            zone: str) -> Notice:
    set_language(lang)
    firing = sum(1 for t in told if t.what != "resolved")
    resolved = len(told) - firing
    parts = []
    if firing:
        parts.append(_("{count} alert(s) firing", count=firing))
    if resolved:
        parts.append(_("{count} resolved", count=resolved))
    labels = {"firing": _("FIRING"), "repeat": _("STILL FIRING"), "resolved": _("RESOLVED")}
    severities = {"info": _("info"), "warning": _("warning"), "critical": _("critical")}
    lines = []
    for t in sorted(told, key=lambda t: (t.what == "resolved", t.title, t.state.subject)):
        text = why(t.kind, t.state.subject, t.state.finding.facts, catalog, zone)
        lines.append(f"[{labels[t.what]}, {severities.get(t.severity, t.severity)}] "
                     f"{t.title}: {text}")
        if t.state.finding.link:
            lines.append(f"  {t.state.finding.link}")
    key = hashlib.sha256("\n".join(sorted(t.key for t in told)).encode()).hexdigest()[:32]
    return Notice(recipient=username, kind="alert", key=f"alerts:{username}:{key}",
                  subject="saleskpi: " + ", ".join(parts), body="\n".join(lines),
                  link="/alerts")
