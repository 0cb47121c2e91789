"""Evaluating the alert rules: states, the audit log, and one notice per recipient.

``evaluate_alerts`` runs each rule's check at ``now``, moves every (rule, subject)
through pending → firing → resolved (``saleskpi.domain.alert_states``), logs each
change, and hands one notice per recipient (``saleskpi.domain.notices``) to ``send``.
An event is told once: a notice is marked sent only after ``send`` returned, so a
failed send is tried again at the next evaluation; silenced alerts wait unsent.

It runs on the rules' schedule (``saleskpi serve``), after every import and sync,
and on demand (``saleskpi alerts evaluate``). An error in alerting never fails an
import: ``after_data_change`` logs it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from saleskpi.domain.alert_states import (
    NO_DATA,
    AlertState,
    Change,
    Finding,
    advance,
    after_notice,
)
from saleskpi.domain.alerts import AlertRule
from saleskpi.domain.errors import SalesKpiError
from saleskpi.domain.notices import Notice
from saleskpi.domain.settings import Settings
from saleskpi.service.alert_checks import CheckContext, findings_at
from saleskpi.service.alert_notify import compose, events_due
from saleskpi.service.alert_recipients import workspace_users
from saleskpi.service.alert_rules import load_rules, rules_path
from saleskpi.service.core import SalesKpiService
from saleskpi.store.state.alerts import (
    LogEntry,
    give_back,
    last_runs,
    load_states,
    save_evaluation,
    take_lease,
)
from saleskpi.store.state.silences import list_silences

log = logging.getLogger("saleskpi.alerts")
Send = Callable[[Sequence[Notice]], object]
LEASE = "evaluation"
LEASE_SECONDS = 600.0
KEEP_RESOLVED = dt.timedelta(days=1)  # a resolved alert's state, then only its log stays


@dataclass
class RuleOutcome:
    rule: str
    holding: int = 0  # subjects whose condition holds now
    no_data: bool = False
    error: str | None = None


@dataclass
class EvaluationReport:
    at: dt.datetime  # UTC, naive
    trigger: str
    dry_run: bool = False
    rules: list[RuleOutcome] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    sent: bool = False
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(), "trigger": self.trigger, "dry_run": self.dry_run,
            "rules": [vars(r) for r in self.rules],
            "changes": [{"rule": c.rule, "subject": c.subject, "before": c.before,
                         "after": c.after} for c in self.changes],
            "notices": [{"recipient": n.recipient, "key": n.key, "subject": n.subject,
                         "body": n.body, "link": n.link} for n in self.notices],
            "sent": self.sent, "skipped": self.skipped, "errors": self.errors,
            "warnings": self.warnings,
        }


def utc_naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def notice_sender(settings: Settings) -> Send | None:
    """How notices leave when nobody passes ``send``: the delivery service's channels.

    None while no channel is configured (no SMTP server, bot, Slack/Teams or webhook
    URL): alerts are then evaluated and logged, and their notices wait (unmarked) for
    the first evaluation that can send them.
    """
    if not (settings.smtp_host or settings.telegram_bot_token or settings.slack_webhooks
            or settings.teams_webhooks or settings.webhook_url):
        return None
    from saleskpi.service.delivery import deliver

    def send(notices: Sequence[Notice]) -> None:
        deliver(settings, notices)

    return send


def evaluate_alerts(settings: Settings, now: dt.datetime, send: Send | None, *,
                    rules: Sequence[str] | None = None, due_only: bool = False,
                    trigger: str = "manual", dry_run: bool = False,
                    service: SalesKpiService | None = None) -> EvaluationReport:
    """Evaluate the rules (``rules``: only these; ``due_only``: only those whose
    ``every`` has passed since they last ran) at ``now``, and send the notices.

    ``dry_run``: decide and word everything, store and send nothing (``alerts test``).
    """
    at = utc_naive(now)
    report = EvaluationReport(at, trigger, dry_run)
    try:
        chosen = [r for r in load_rules(settings) if r.enabled
                  and (rules is None or r.name in rules)]
    except SalesKpiError as exc:
        report.errors.append(exc.message)
        return report
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    url = settings.state_url
    if not dry_run and not take_lease(url, LEASE, holder, _wall_clock(), LEASE_SECONDS):
        report.skipped = "another evaluation is running"
        return report
    try:
        _evaluate(settings, service or SalesKpiService(settings, shared_writer=True), chosen,
                  at, send, due_only, report)
    finally:
        if not dry_run:
            give_back(url, LEASE, holder)
    return report


def _wall_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _evaluate(settings: Settings, service: SalesKpiService, chosen: list[AlertRule],
              at: dt.datetime, send: Send | None, due_only: bool,
              report: EvaluationReport) -> None:
    url = settings.state_url
    ran = last_runs(url)
    due = [r for r in chosen if not due_only or r.name not in ran
           or ran[r.name] + r.every <= at]
    states = {(s.rule, s.subject): s for s in load_states(url, [r.name for r in chosen])}
    before = dict(states)
    entries, dropped = _run_checks(CheckContext(service), due, states, at, report)
    silences = [s for s in list_silences(url, current_at=at) if s.active_at(at)]
    told = events_due(chosen, states, silences, at)
    report.notices, delivered = compose(told, chosen, workspace_users(settings),
                                        service.catalog, settings.timezone, report.warnings)
    if report.notices and send is not None and not report.dry_run:
        try:
            send(report.notices)
            report.sent = True
        except Exception as exc:  # a channel down: the notices are tried again next time
            log.exception("sending alert notices failed")
            report.errors.append(f"send: {exc}")
    if send is not None and (report.sent or not report.notices):
        # Told (or nobody to tell): each event is marked, so it is not told again.
        for item in told:
            state = after_notice(states[(item.state.rule, item.state.subject)], item.what, at)
            states[(state.rule, state.subject)] = state
            entries.append(LogEntry(at, report.trigger, state.rule, state.subject,
                                    state.status, state.status,
                                    {"notified": item.what, "key": item.key,
                                     "recipients": delivered.get(item.key, [])}))
    if report.dry_run:
        return
    dropped += _expired(chosen, states, at)
    for key in dropped:
        states.pop(key, None)
    changed = [s for k, s in states.items() if before.get(k) != s]
    save_evaluation(url, put=changed, drop=dropped, log=entries, ran=[r.name for r in due],
                    at=at)


def _run_checks(ctx: CheckContext, due: list[AlertRule],
                states: dict[tuple[str, str], AlertState], at: dt.datetime,
                report: EvaluationReport) -> tuple[list[LogEntry], list[tuple[str, str]]]:
    """Each due rule's check, and its states moved: the log's rows and the states
    dropped (pending alerts whose condition stopped)."""
    entries: list[LogEntry] = []
    dropped: list[tuple[str, str]] = []
    for rule in due:
        outcome = RuleOutcome(rule.name)
        report.rules.append(outcome)
        try:
            found = findings_at(ctx, rule, at)
        except Exception as exc:  # one rule's failure must not stop the others
            log.exception("alert rule %s failed", rule.name)
            outcome.error = str(exc) or type(exc).__name__
            report.errors.append(f"{rule.name}: {outcome.error}")
            continue
        outcome.no_data = found is None
        outcome.holding = len(found or [])
        for change in _apply(rule, found, states, at):
            report.changes.append(change)
            entries.append(LogEntry(at, report.trigger, change.rule, change.subject,
                                    change.before, change.after,
                                    {"facts": change.state.finding.facts}))
            if change.after is None:
                dropped.append((change.rule, change.subject))
                states.pop((change.rule, change.subject), None)
    return entries, dropped


def _expired(rules: list[AlertRule], states: dict[tuple[str, str], AlertState],
             at: dt.datetime) -> list[tuple[str, str]]:
    """Resolved alerts told (or not to be told) a while ago: only their log stays."""
    by_name = {r.name: r for r in rules}
    gone = []
    for key, state in states.items():
        rule = by_name.get(key[0])
        if rule is not None and state.status == "resolved" and state.resolved_at is not None \
                and at - state.resolved_at >= KEEP_RESOLVED \
                and (state.resolved_notified or not state.notices or not rule.notify_resolved):
            gone.append(key)
    return gone


def _apply(rule: AlertRule, found: list[Finding] | None,
           states: dict[tuple[str, str], AlertState], at: dt.datetime) -> list[Change]:
    """Move the rule's states by what its check found (``no_data`` when None)."""
    mine = {subject for (name, subject) in states if name == rule.name}
    if found is None:
        if rule.no_data == "keep":
            return []
        if rule.no_data == "alert":
            found_by = {NO_DATA: Finding(NO_DATA, company=True, link="/alerts")}
            subjects = {NO_DATA}
        else:
            found_by, subjects = {}, mine
    else:
        found_by = {f.subject: f for f in found}
        subjects = mine | set(found_by)
    changes = []
    for subject in sorted(subjects):
        new, change = advance(states.get((rule.name, subject)), found_by.get(subject), at,
                              rule.hold, rule.name, subject)
        if new is not None:
            states[(rule.name, subject)] = new
        if change is not None:
            changes.append(change)
    return changes


def after_data_change(settings: Settings, trigger: str,
                      service: SalesKpiService | None = None) -> EvaluationReport | None:
    """Evaluate every rule after an import, a sync or a webhook; never raises (an import
    must not fail because of alerts): problems are logged."""
    try:
        if not rules_path(settings).is_file():
            return None
        report = evaluate_alerts(settings, _wall_clock(), notice_sender(settings),
                                 trigger=trigger, service=service)
    except Exception:
        log.exception("alerts after %s failed", trigger)
        return None
    for problem in report.errors:
        log.error("alerts after %s: %s", trigger, problem)
    return report
