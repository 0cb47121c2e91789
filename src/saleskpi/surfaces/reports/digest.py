"""A digest as a notice: plain text in its reader's language, with PDF and XLSX attached.

The whole digest, the figures included, is computed inside a copy of the context
with the reader's language set, so that KPI names, plan lines and every word are in
it, whatever language the sender (the server, a head running the CLI) speaks.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from typing import Any

from saleskpi.domain.i18n import _, set_language
from saleskpi.domain.notices import Attachment, Notice
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.surfaces.documents import Cell, Column, Document, Row, Table
from saleskpi.surfaces.documents.pdf import render_pdf
from saleskpi.surfaces.documents.xlsx import render_xlsx
from saleskpi.surfaces.reports.wording import (
    DASH,
    day_text,
    percent_text,
    range_text,
    role_text,
    sentence,
    value_text,
)
from saleskpi.views.digests import DigestParams, DigestView, digest

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PLAN_LINES_IN_TEXT = 5  # the message names the furthest behind; the attachments hold all


def digest_notice(service: SalesKpiService, person: Principal, params: DigestParams,
                  key: str) -> Notice:
    """``person``'s digest as a notice under ``key``, in ``person``'s language."""
    return contextvars.copy_context().run(_in_language, service, person, params, key)


def _in_language(service: SalesKpiService, person: Principal, params: DigestParams,
                 key: str) -> Notice:
    set_language(person.lang)
    view = digest(service, person, params)
    document = digest_document(view)
    name = f"saleskpi-{view.digest}-{view.at}"
    return Notice(
        recipient=person.username, kind="report", key=key, subject=_subject(view),
        body=digest_text(view), link=_link(view),
        attachments=(Attachment(f"{name}.pdf", "application/pdf", render_pdf(document)),
                     Attachment(f"{name}.xlsx", XLSX_TYPE, render_xlsx(document))))


def _link(view: DigestView) -> str:
    if view.scope.level == "rep" and view.scope.rep_id:
        from urllib.parse import quote

        return f"/reps/{quote(view.scope.rep_id, safe='')}"
    return "/"


def _who(view: DigestView) -> str:
    scope = view.scope
    if scope.level == "company":
        return _("the company")
    if scope.level == "team":
        return _("team {team}", team=scope.team or DASH)
    return scope.rep_name or scope.rep_id or DASH


def _recent_label(view: DigestView) -> str:
    return _("Yesterday") if view.digest == "daily" else _("Last 7 days")


def _subject(view: DigestView) -> str:
    if view.digest == "daily":
        return _("Daily digest for {who}, {day}", who=_who(view), day=day_text(view.at))
    return _("Weekly digest for {who}, {days}", who=_who(view),
             days=range_text(view.recent.start, view.recent.end))


def digest_text(view: DigestView) -> str:
    month = range_text(view.month.start, view.month.end)
    recent = range_text(view.recent.start, view.recent.end)
    lines = [_("Month to date ({month}); {recent_label} ({recent}).", month=month,
               recent_label=_recent_label(view).lower(), recent=recent), ""]
    for total in view.totals:
        lines.append(_("{kpi}: {month} ({recent_label}: {recent})", kpi=total["name"],
                       month=value_text(total["month"], total["unit"]),
                       recent_label=_recent_label(view).lower(),
                       recent=value_text(total["recent"], total["unit"])))
    lines += ["", _("Plan pace, furthest behind first:")]
    if not view.plan:
        lines.append(_("No plan is set for {day}.", day=day_text(view.at)))
    for line in view.plan[:PLAN_LINES_IN_TEXT]:
        lines.append(_plan_text(line))
    if len(view.plan) > PLAN_LINES_IN_TEXT:
        lines.append(_("… and {count} more in the attachments.",
                       count=len(view.plan) - PLAN_LINES_IN_TEXT))
    lines += ["", _("Alerts:")]
    if not view.alerts_available:
        lines.append(_("No alert rules are evaluated yet."))
    elif not view.alerts:
        lines.append(_("None firing."))
    lines += [f"- {a.title}" + (f": {a.detail}" if a.detail else "") for a in view.alerts]
    lines += ["", _("The PDF and the XLSX attached hold the same figures, by rep where you "
                    "see several.")]
    return sentence("\n".join(lines))


def _plan_who(line: dict[str, Any]) -> str:
    if line["level"] == "rep":
        return str(line.get("rep_name") or line.get("rep_id") or DASH)
    if line["level"] == "team":
        return _("team {team}", team=line.get("team") or DASH)
    return _("the company")


def _plan_text(line: dict[str, Any]) -> str:
    return _("{kpi}, {who}: {actual} of {plan} ({attainment}); expected by now {expected}",
             kpi=line["name"], who=_plan_who(line), actual=value_text(line["actual"],
                                                                      line["unit"]),
             plan=value_text(line["plan"], line["unit"]),
             attainment=percent_text(line.get("attainment")),
             expected=value_text(line.get("expected"), line["unit"]))


def _mark(line: dict[str, Any]) -> str | None:
    pace = line.get("on_pace")
    return None if pace is None else ("better" if pace >= 1 else "worse")


def plan_table(lines: list[dict[str, Any]], at: dt.date | str | None) -> Table:
    """Plan vs actual lines (``views.plans``) as a table, furthest behind first."""
    title = _("Plan vs actual on {day}", day=day_text(at)) if at else _("Plan vs actual")
    return Table(title, [
        Column(_("KPI")), Column(_("Who")), Column(_("Plan period")),
        Column(_("Plan"), numeric=True), Column(_("Actual"), numeric=True),
        Column(_("Attainment"), numeric=True, unit="ratio"),
        Column(_("Expected by now"), numeric=True), Column(_("Projection"), numeric=True)],
        [Row([Cell(p["name"], p["name"]), Cell(_plan_who(p), _plan_who(p)),
              Cell(f"{p['period_start']} – {p['period_end']}",
                   range_text(p["period_start"], p["period_end"])),
              Cell(p["plan"], value_text(p["plan"], p["unit"]), unit=p["unit"]),
              Cell(p["actual"], value_text(p["actual"], p["unit"]), unit=p["unit"]),
              Cell(p.get("attainment"), percent_text(p.get("attainment"))),
              Cell(p.get("expected"), value_text(p.get("expected"), p["unit"]),
                   mark=_mark(p), unit=p["unit"]),
              Cell(p.get("projection"), value_text(p.get("projection"), p["unit"]),
                   unit=p["unit"])])
         for p in lines], sheet=_("Plan"))


def digest_document(view: DigestView) -> Document:
    recent_label = _recent_label(view)
    totals = Table(_("Month to date and {recent}", recent=recent_label.lower()), [
        Column(_("KPI")), Column(_("Month to date"), numeric=True),
        Column(recent_label, numeric=True)],
        [Row([Cell(t["name"], t["name"]),
              Cell((t["month"] or {}).get("value"), value_text(t["month"], t["unit"]),
                   unit=t["unit"]),
              Cell((t["recent"] or {}).get("value"), value_text(t["recent"], t["unit"]),
                   unit=t["unit"])]) for t in view.totals], sheet=_("Totals"))
    tables = [totals]
    if view.reps:
        names = {t["kpi"]: t["name"] for t in view.totals}
        units = {t["kpi"]: t["unit"] for t in view.totals}
        tables.append(Table(_("Reps, month to date"), [
            Column(_("Rep")), *(Column(names[k], numeric=True, unit=units[k])
                                for k in view.kpis)],
            [Row([Cell(r.get("rep_name") or r.get("rep"), str(r.get("rep_name")
                                                              or r.get("rep") or DASH)),
                  *(Cell(r[k].get("value"), value_text(r[k], units[k])) for k in view.kpis)])
             for r in view.reps], sheet=_("Reps")))
    tables.append(plan_table(view.plan, view.at))
    if view.alerts:
        tables.append(Table(_("Alerts"), [Column(_("Alert")), Column(_("Details"))],
                            [Row([Cell(a.title, a.title), Cell(a.detail, a.detail)])
                             for a in view.alerts]))
    lines = [_("For {who} ({role}).", who=_who(view), role=role_text(view.role)),
             _("Month to date: {days}.", days=range_text(view.month.start, view.month.end)),
             _("{label}: {days}.", label=recent_label,
               days=range_text(view.recent.start, view.recent.end)),
             _("Time zone: {zone}; currency: {currency}.", zone=view.timezone,
               currency=view.currency)]
    return Document(_subject(view), [sentence(line) for line in lines], tables,
                    empty_text=_("No data for this view."))
