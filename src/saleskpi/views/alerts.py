"""Alerts: the rules, the alerts pending or firing (and why), evaluation and the log.

Everyone sees the rules; the alerts are those in the caller's scope (a rep their
own, a team lead their team's, a manager everything), worded in the caller's
language. Changing rules, evaluating now and the audit log are for managers.
Silences are ``saleskpi.views.alert_silences``; the backtest
``saleskpi.views.alert_backtest``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from saleskpi.domain.alerts import AlertRule, parse_rule, rule_data
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.service import alert_rules, alert_states, alerting
from saleskpi.service.alert_recipients import may_see
from saleskpi.service.alert_silences import active_at
from saleskpi.service.alert_text import why
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.views.base import ViewModel, require_manager

ACTIVE = ("pending", "firing")


class RuleEntry(BaseModel):
    name: str
    kind: str = Field(description="lead_not_contacted, deal_stuck, behind_pace, "
                      "kpi_threshold or data_stale.")
    title: str
    owner: str
    severity: str
    enabled: bool
    definition: dict[str, Any] = Field(description="The rule as alerts.yaml holds it.")
    last_run: dt.datetime | None = Field(description="When it was last evaluated (UTC).")


class AlertEntry(BaseModel):
    rule: str
    subject: str
    status: str = Field(description="pending, firing or resolved.")
    severity: str
    why: str = Field(description="Why it holds, in the caller's language.")
    link: str | None = Field(description="The page about it.")
    rep: str | None
    team: str | None
    since: dt.datetime = Field(description="First seen (UTC).")
    fired_at: dt.datetime | None
    resolved_at: dt.datetime | None
    notified_at: dt.datetime | None = Field(description="Last told (UTC); null: not yet.")
    silenced: bool


class AlertsParams(BaseModel):
    resolved: bool = Field(default=False, description="Also the alerts resolved lately.")


class AlertsView(ViewModel):
    rules: list[RuleEntry]
    alerts: list[AlertEntry] = Field(description="Firing first, then pending (and resolved "
                                     "when asked), in the caller's scope.")
    problem: str | None = Field(description="Why alerts.yaml cannot be read, if it cannot.")
    can_edit: bool


def _rules(service: SalesKpiService) -> tuple[list[AlertRule], str | None]:
    try:
        return alert_rules.load_rules(service.settings), None
    except InvalidQuery as exc:
        return [], exc.message


def rule_entries(service: SalesKpiService, rules: list[AlertRule]) -> list[RuleEntry]:
    runs = alert_states.last_runs(service.settings.state_url)
    return [RuleEntry(name=r.name, kind=r.kind, title=r.title or r.name, owner=r.owner,
                      severity=r.severity, enabled=r.enabled, definition=rule_data(r),
                      last_run=runs.get(r.name)) for r in rules]


def alerts(service: SalesKpiService, caller: Principal, params: AlertsParams) -> AlertsView:
    rules, problem = _rules(service)
    by_name = {r.name: r for r in rules}
    now = alerting.utc_naive(dt.datetime.now(dt.UTC))
    silences = active_at(service, now)
    shown = []
    for state in alert_states.load_states(service.settings.state_url):
        rule = by_name.get(state.rule)
        if rule is None or not rule.enabled or not may_see(caller, state.finding) or \
                (state.status not in ACTIVE and not params.resolved):
            continue
        finding = state.finding
        shown.append(AlertEntry(
            rule=state.rule, subject=state.subject, status=state.status,
            severity=rule.severity,
            why=why(rule.kind, state.subject, finding.facts, service.catalog,
                    service.settings.timezone),
            link=finding.link, rep=finding.rep, team=finding.team, since=state.since,
            fired_at=state.fired_at, resolved_at=state.resolved_at,
            notified_at=state.notified_at,
            silenced=any(s.matches(state.rule, finding.rep, finding.team) for s in silences)))
    order = {"firing": 0, "pending": 1, "resolved": 2}
    shown.sort(key=lambda a: (order.get(a.status, 3), a.rule, a.subject))
    view: AlertsView = AlertsView(rules=rule_entries(service, rules), alerts=shown,
                                  problem=problem, can_edit=caller.can_manage)
    return view


# -- evaluating --------------------------------------------------------------------------
class EvaluateParams(BaseModel):
    rule: str | None = Field(default=None, description="Only this rule (default: all).")


class EvaluationView(ViewModel):
    at: str = Field(description="When (UTC).")
    trigger: str
    dry_run: bool = Field(description="Nothing was stored or sent (a test).")
    rules: list[dict[str, Any]] = Field(description="Per rule: holding, no_data, error.")
    changes: list[dict[str, Any]] = Field(description="rule, subject, before, after.")
    notices: list[dict[str, Any]] = Field(description="One per recipient: recipient, key, "
                                          "subject, body, link.")
    sent: bool
    skipped: str | None
    errors: list[str]
    warnings: list[str]


def _run(service: SalesKpiService, caller: Principal, rule: str | None,
         dry_run: bool) -> EvaluationView:
    require_manager(caller)
    if rule is not None:
        alert_rules.find_rule(alert_rules.load_rules(service.settings), rule)
    report = alerting.evaluate_alerts(
        service.settings, dt.datetime.now(dt.UTC),
        None if dry_run else alerting.notice_sender(service.settings),
        rules=None if rule is None else [rule], trigger=f"{caller.username}",
        dry_run=dry_run, service=service)
    view: EvaluationView = EvaluationView.model_validate(report.to_dict()).with_source(report)
    return view


def evaluate(service: SalesKpiService, caller: Principal,
             params: EvaluateParams) -> EvaluationView:
    """Evaluate now and send (the rules' schedules aside)."""
    return _run(service, caller, params.rule, dry_run=False)


def test_rule(service: SalesKpiService, caller: Principal,
              params: EvaluateParams) -> EvaluationView:
    """What would change and be told now: nothing is stored or sent."""
    return _run(service, caller, params.rule, dry_run=True)


# -- changing rules ----------------------------------------------------------------------
class RuleParams(BaseModel):
    definition: dict[str, Any] = Field(description="One rule, as in alerts.yaml.")


class RulesText(ViewModel):
    text: str = Field(description="alerts.yaml as it is.")


class RulesSaved(ViewModel):
    rules: list[RuleEntry]


def rules_text(service: SalesKpiService, caller: Principal) -> RulesText:
    require_manager(caller)
    view: RulesText = RulesText(text=alert_rules.rules_text(service.settings))
    return view


def save_rules_text(service: SalesKpiService, caller: Principal, text: str) -> RulesSaved:
    require_manager(caller)
    rules = alert_rules.save_text(service.settings, text, service.catalog)
    view: RulesSaved = RulesSaved(rules=rule_entries(service, rules))
    return view


def put_rule(service: SalesKpiService, caller: Principal, params: RuleParams) -> RulesSaved:
    require_manager(caller)
    rule = parse_rule(params.definition, _("the rule"))
    rules = alert_rules.put_rule(service.settings, rule, service.catalog)
    view: RulesSaved = RulesSaved(rules=rule_entries(service, rules))
    return view


def delete_rule(service: SalesKpiService, caller: Principal, name: str) -> RulesSaved:
    require_manager(caller)
    rules = alert_rules.delete_rule(service.settings, name)
    alert_states.forget_rule(service.settings.state_url, name)
    view: RulesSaved = RulesSaved(rules=rule_entries(service, rules))
    return view


# -- the audit log ------------------------------------------------------------------------
class LogParams(BaseModel):
    rule: str | None = None
    limit: int = Field(default=100, ge=1, le=10_000)


class LogEntryModel(BaseModel):
    at: dt.datetime
    trigger: str
    rule: str
    subject: str
    before: str | None
    after: str | None
    detail: dict[str, Any]


class LogView(ViewModel):
    entries: list[LogEntryModel] = Field(description="Newest first: each state change and "
                                         "each notice, by which evaluation.")


def alert_log(service: SalesKpiService, caller: Principal, params: LogParams) -> LogView:
    require_manager(caller)
    found = alert_states.read_log(service.settings.state_url, limit=params.limit,
                                  rule=params.rule)
    view: LogView = LogView(entries=[LogEntryModel(**vars(e)) for e in found])
    return view
