"""The alerts page: what fires and why, silences, the rules with their editor and backtest.

Everyone sees the rules and the alerts in their scope (a rep their own, a team lead
their team's); a team lead and the managers silence; the managers edit rules (a
form, or the YAML for power users) and evaluate now. A backtest (a saved rule, or
the editor's rule before it is saved) shows how often it would have fired and on what.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from saleskpi.domain.alerts import KINDS, ROLES, SEVERITIES
from saleskpi.domain.errors import HTTP_STATUS, SalesKpiError
from saleskpi.surfaces.web.alert_form import common_fields, definition_of, kind_fields, values_of
from saleskpi.surfaces.web.deps import ManagerPageDep, Page, PageDep
from saleskpi.surfaces.web.errors import PageError
from saleskpi.surfaces.web.http import WebRoute
from saleskpi.surfaces.web.i18n import _, role_names
from saleskpi.surfaces.web.tables import Cell, Column, DataTable, Row, text_cell
from saleskpi.views.alert_backtest import BacktestParams, BacktestView, backtest
from saleskpi.views.alert_silences import (
    NewSilence,
    SilenceId,
    SilencesParams,
    add_silence,
    remove_silence,
    silences,
)
from saleskpi.views.alerts import (
    AlertsParams,
    AlertsView,
    EvaluateParams,
    RuleParams,
    delete_rule,
    evaluate,
    put_rule,
    rules_text,
    save_rules_text,
)
from saleskpi.views.alerts import alerts as alerts_view

router = APIRouter(route_class=WebRoute)
SESSION_FLASH = "web_flash"
MAX_FORM = 600 * 1024  # the YAML of every rule, with room


async def form_fields(request: Request) -> dict[str, list[str]]:
    """The posted form, every value of every field (checkboxes repeat a name)."""
    if int(request.headers.get("content-length") or 0) > MAX_FORM:
        raise PageError(413, _("The form is too large."))
    form = await request.form(max_files=0, max_fields=200)
    return {key: [str(v) for v in form.getlist(key)] for key in form}


FormDep = Annotated[dict[str, list[str]], Depends(form_fields)]


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[-1]


def when(page: Page, moment: dt.datetime | None) -> Cell:
    if moment is None:
        return Cell(None, "—")
    zone = zoneinfo.ZoneInfo(page.service.settings.timezone)
    local = moment.replace(tzinfo=dt.UTC).astimezone(zone)
    return Cell(moment.isoformat(), local.strftime("%Y-%m-%d %H:%M"))


def kind_names() -> dict[str, str]:
    return {"lead_not_contacted": _("lead not contacted"), "deal_stuck": _("deal stuck"),
            "behind_pace": _("behind plan pace"), "kpi_threshold": _("KPI threshold"),
            "data_stale": _("stale data")}


def status_names() -> dict[str, str]:
    return {"firing": _("firing"), "pending": _("pending"), "resolved": _("resolved")}


def severity_names() -> dict[str, str]:
    return {"info": _("info"), "warning": _("warning"), "critical": _("critical")}


def alerts_table(page: Page, view: AlertsView) -> DataTable:
    statuses, severities = status_names(), severity_names()
    # Why first: on a phone it is what stays in sight while the rest scrolls.
    columns = [Column("why", _("Why")), Column("status", _("Status")),
               Column("severity", _("Severity")), Column("rule", _("Rule")),
               Column("since", _("Since")), Column("told", _("Told"))]
    rows = []
    for a in view.alerts:
        told = _("silenced") if a.silenced else (
            when(page, a.notified_at).text if a.notified_at else _("not yet"))
        rows.append(Row([text_cell(a.why, href=a.link),
                         Cell(a.status, statuses.get(a.status, a.status)),
                         Cell(a.severity, severities.get(a.severity, a.severity)),
                         text_cell(a.rule, verbatim=True), when(page, a.since),
                         Cell(told, told)], kind=a.status))
    return DataTable("alerts", _("Firing and pending"), columns, rows)


def rules_table(page: Page, view: AlertsView) -> DataTable:
    kinds, severities = kind_names(), severity_names()
    groups = {"roles": _("roles"), "teams": _("teams"), "reps": _("reps"), "users": _("users")}
    roles = role_names()
    columns = [Column("name", _("Rule")), Column("kind", _("Watches")),
               Column("owner", _("Owner")), Column("recipients", _("Recipients")),
               Column("schedule", _("Every / for / repeat")),
               Column("severity", _("Severity")), Column("last_run", _("Last run"))]
    rows = []
    for r in view.rules:
        d = r.definition
        told = d.get("recipients", {})
        # Role names are ours to translate; teams, reps and users are the data's words.
        who = "; ".join(f"{groups.get(k, k)}: "
                        + ", ".join(roles.get(w, w) if k == "roles" else w for w in v)
                        for k, v in told.items() if v)
        schedule = " / ".join(str(d.get(k, default)) for k, default in
                              (("every", "5m"), ("for", "0s"), ("repeat", "4h")))
        title = r.name if r.title == r.name else f"{r.name}: {r.title}"
        if not r.enabled:
            title += f" ({_('off')})"
        rows.append(Row([Cell(r.name, title, verbatim=True), Cell(r.kind, kinds[r.kind]),
                         text_cell(r.owner, verbatim=True), text_cell(who, verbatim=True),
                         Cell(schedule, schedule, verbatim=True),
                         Cell(r.severity, severities.get(r.severity, r.severity)),
                         when(page, r.last_run)], kind="rule" if r.enabled else "disabled"))
    return DataTable("rules", _("Rules"), columns, rows)


def silences_table(page: Page) -> DataTable:
    found = silences(page.service, page.user, SilencesParams()).silences
    columns = [Column("id", _("Id"), numeric=True), Column("rule", _("Rule")),
               Column("rep", _("Rep")), Column("team", _("Team")), Column("from", _("From")),
               Column("to", _("To")), Column("by", _("By")), Column("reason", _("Reason"))]
    names = dict(page.reps)
    rows = [Row([Cell(s.id, str(s.id)), text_cell(s.rule or _("any"), verbatim=True),
                 text_cell(names.get(s.rep, s.rep) if s.rep else _("any"), verbatim=True),
                 text_cell(s.team or _("any"), verbatim=True), when(page, s.starts_at),
                 when(page, s.ends_at), text_cell(s.created_by, verbatim=True),
                 text_cell(s.reason, verbatim=True)],
                kind="active" if s.active else "later") for s in found]
    return DataTable("silences", _("Silences"), columns, rows)


def firings_table(page: Page, result: BacktestView) -> DataTable:
    columns = [Column("why", _("Why")), Column("at", _("Would have fired")),
               Column("until", _("Held until"))]
    rows = [Row([text_cell(f.why, href=f.link), when(page, f.at), when(page, f.until)])
            for f in result.shown]
    return DataTable("backtest", _("Backtest of {rule}", rule=result.rule), columns, rows)


def _render(page: Page, *, status: int = 200, error: str = "",
            editing: dict[str, Any] | None = None, result: BacktestView | None = None,
            yaml_text: str | None = None, open_editor: bool = False) -> Response:
    view = alerts_view(page.service, page.user, AlertsParams())
    tables = [alerts_table(page, view), silences_table(page), rules_table(page, view)]
    if result is not None:
        tables.append(firings_table(page, result))
    flash = page.request.session.pop(SESSION_FLASH, "")
    kpis = sorted(page.service.catalog.kpis)
    can_silence = page.user.can_manage or page.user.role == "team_lead"
    if view.can_edit and yaml_text is None:
        yaml_text = rules_text(page.service, page.user).text
    return page.render(
        "alerts.html", status=status, tables=tables, view=view, alerts=tables[0],
        silences=tables[1], rules=tables[2], backtest=tables[3] if result else None,
        result=result, error=error or view.problem or "",
        flash=flash if isinstance(flash, str) else "", can_silence=can_silence,
        values=values_of(editing), editing=bool(editing), open_editor=open_editor,
        common=common_fields(), by_kind=kind_fields(kpis), kinds=KINDS, roles=ROLES,
        kind_names=kind_names(), severities=SEVERITIES, yaml_text=yaml_text or "",
        rule_names=[r.name for r in view.rules], title=_("Alerts"))


def _back(page: Page, flash: str, **params: str) -> Response:
    page.request.session[SESSION_FLASH] = flash
    query = f"?{urlencode(params)}" if params else ""
    return RedirectResponse("/alerts" + query, status_code=303)


@router.get("/alerts")
def alerts_page(page: PageDep, edit: str | None = None, backtest_rule: str | None = None,
                bt_from: str | None = None, bt_to: str | None = None) -> Response:
    editing = None
    if edit and page.user.can_manage:
        view = alerts_view(page.service, page.user, AlertsParams())
        editing = next((r.definition for r in view.rules if r.name == edit), None)
    result = None
    if backtest_rule:
        try:
            result = backtest(page.service, page.user, BacktestParams.model_validate({
                "rule": backtest_rule, "from": bt_from or None, "to": bt_to or None}))
        except SalesKpiError as exc:
            return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message)
        except ValueError:  # a date that is not one
            return _render(page, status=400, error=_("Dates are YYYY-MM-DD."))
    return _render(page, editing=editing, result=result, open_editor=bool(editing))


@router.post("/alerts/rules")
def save_rule(page: ManagerPageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    definition = definition_of(form, sorted(page.service.catalog.kpis))
    try:
        put_rule(page.service, page.user, RuleParams(definition=definition))
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message,
                       editing=definition, open_editor=True)
    return _back(page, _("Rule {name} saved.", name=definition.get("name", "")))


@router.post("/alerts/backtest")
def backtest_draft(page: ManagerPageDep, form: FormDep) -> Response:
    """The editor's rule, not saved: how often it would have fired."""
    page.check_csrf(_one(form, "csrf"))
    definition = definition_of(form, sorted(page.service.catalog.kpis))
    try:
        result = backtest(page.service, page.user, BacktestParams.model_validate({
            "definition": definition, "from": _one(form, "bt_from") or None,
            "to": _one(form, "bt_to") or None}))
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message,
                       editing=definition, open_editor=True)
    except ValueError:
        return _render(page, status=400, error=_("Dates are YYYY-MM-DD."),
                       editing=definition, open_editor=True)
    shown = {**definition, "bt_from": _one(form, "bt_from"), "bt_to": _one(form, "bt_to")}
    return _render(page, editing=shown, result=result, open_editor=True)


@router.post("/alerts/rules/delete")
def remove_rule(page: ManagerPageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    name = _one(form, "name")
    try:
        delete_rule(page.service, page.user, name)
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message)
    return _back(page, _("Rule {name} deleted.", name=name))


@router.post("/alerts/yaml")
def save_yaml(page: ManagerPageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    text = _one(form, "text").replace("\r\n", "\n")
    try:
        saved = save_rules_text(page.service, page.user, text)
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message, yaml_text=text)
    return _back(page, _("alerts.yaml saved: {count} rules.", count=len(saved.rules)))


@router.post("/alerts/evaluate")
def evaluate_now(page: ManagerPageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    report = evaluate(page.service, page.user, EvaluateParams())
    return _back(page, _("Evaluated: {changes} changes, {notices} notices.",
                         changes=len(report.changes), notices=len(report.notices)))


@router.post("/alerts/silences")
def new_silence(page: PageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    try:
        made = add_silence(page.service, page.user, NewSilence.model_validate({
            "rule": _one(form, "rule") or None, "rep": _one(form, "rep") or None,
            "team": _one(form, "team") or None, "starts": _one(form, "starts") or None,
            "ends": _one(form, "ends") or None, "duration": _one(form, "duration") or None,
            "reason": _one(form, "reason")}))
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message)
    except ValueError:
        return _render(page, status=400, error=_("Dates are YYYY-MM-DD (or with a time, "
                                                  "YYYY-MM-DDTHH:MM)."))
    return _back(page, _("Silence {id} added.", id=made.id))


@router.post("/alerts/silences/remove")
def end_silence(page: PageDep, form: FormDep) -> Response:
    page.check_csrf(_one(form, "csrf"))
    try:
        wanted = SilenceId(id=int(_one(form, "id") or 0))
        remove_silence(page.service, page.user, wanted)
    except SalesKpiError as exc:
        return _render(page, status=HTTP_STATUS[exc.kind], error=exc.message)
    except ValueError:
        return _render(page, status=400, error=_("There is no such silence."))
    return _back(page, _("Silence {id} removed.", id=wanted.id))
