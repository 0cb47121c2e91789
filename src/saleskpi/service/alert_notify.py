"""Which alert events are told now, and the one notice per recipient that tells them.

A firing alert is told once, again every ``repeat`` while it fires, and once when it
is resolved (if its firing was told); a silenced one waits. Each recipient gets one
notice per evaluation with every event in their scope, in their language.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from saleskpi.catalog.load import Catalog
from saleskpi.domain.alert_states import AlertState, Notify, event_key, notice_due
from saleskpi.domain.alerts import AlertRule
from saleskpi.domain.notices import Notice
from saleskpi.service.alert_recipients import may_see, resolve, unknown_names
from saleskpi.service.alert_text import Told, notice
from saleskpi.service.principal import Principal
from saleskpi.store.state.silences import Silence


@dataclass(frozen=True)
class Due:
    """One event to tell: a rule's alert, which notice, under which dedupe key."""

    rule: AlertRule
    state: AlertState
    what: Notify
    key: str


def events_due(rules: list[AlertRule], states: dict[tuple[str, str], AlertState],
               silences: list[Silence], at: dt.datetime) -> list[Due]:
    by_name = {r.name: r for r in rules}
    due = []
    for (name, _subject), state in sorted(states.items()):
        rule = by_name.get(name)
        if rule is None:
            continue
        finding = state.finding
        silenced = any(s.matches(name, finding.rep, finding.team) for s in silences)
        what = notice_due(state, at, rule.repeat, silenced=silenced,
                          notify_resolved=rule.notify_resolved)
        if what is not None:
            due.append(Due(rule, state, what, event_key(state, what)))
    return due


def compose(due: list[Due], rules: list[AlertRule], users: list[Principal], catalog: Catalog,
            zone: str, warnings: list[str]) -> tuple[list[Notice], dict[str, list[str]]]:
    """One notice per recipient with every event they may see, and who gets each event
    (by its key). Names that stand for no user, and events nobody may see, are warned of."""
    per_user: dict[str, list[Told]] = {}
    delivered: dict[str, list[str]] = {}
    by_name = {u.username: u for u in users}
    for rule in rules:
        missing = unknown_names(rule.recipients, users)
        if missing and any(item.rule.name == rule.name for item in due):
            warnings.append(f"{rule.name}: no enabled user for {', '.join(missing)}")
    for item in due:
        names = [u.username for u in resolve(item.rule.recipients, users)
                 if may_see(u, item.state.finding)]
        delivered[item.key] = names
        if not names:
            warnings.append(f"{item.rule.name}: nobody among the recipients may see "
                            f"{item.state.subject}")
        for name in names:
            per_user.setdefault(name, []).append(Told(
                item.rule.kind, item.rule.title or item.rule.name, item.rule.severity,
                item.state, item.what, item.key))
    notices = [notice(name, by_name[name].lang, items, catalog, zone)
               for name, items in sorted(per_user.items())]
    return notices, delivered
