"""The backtest: how often a rule would have fired over past days, and on what.

The rule's check (the same code as live) gives every episode of its condition in
the range; an alert on an episode fires at the first evaluation on the rule's
schedule (``every``, counted from 1970-01-01 UTC) that is ``for`` after the first
one that saw it, if the condition still held then. Nothing is stored and nothing
is sent; silences are not applied (they are about notices, not about firing).

The checks are asked from ``for`` + ``every`` + a day before the range, so that an
alert already firing when the range begins (a rep behind pace since last week) is
not counted as a new firing on its first day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from saleskpi.domain.alert_states import Episode, fires_at
from saleskpi.domain.alerts import AlertRule
from saleskpi.service.alert_checks import CheckContext, episodes
from saleskpi.service.core import SalesKpiService


@dataclass(frozen=True)
class Firing:
    episode: Episode
    at: dt.datetime  # UTC, naive: when the alert would have fired


@dataclass(frozen=True)
class Backtest:
    rule: AlertRule
    start: dt.datetime  # UTC, naive
    end: dt.datetime
    no_data: bool
    firings: list[Firing]

    @property
    def subjects(self) -> int:
        return len({f.episode.finding.subject for f in self.firings})


def backtest(service: SalesKpiService, rule: AlertRule, start: dt.datetime,
             end: dt.datetime) -> Backtest:
    """Firings in [start, end], in time order."""
    ahead = rule.hold + rule.every + dt.timedelta(days=1)
    found = episodes(CheckContext(service), rule, start - ahead, end)
    firings = []
    for episode in found or []:
        at = fires_at(episode, rule.every, rule.hold)
        if at is not None and start <= at <= end:
            firings.append(Firing(episode, at))
    firings.sort(key=lambda f: (f.at, f.episode.finding.subject))
    return Backtest(rule, start, end, found is None, firings)
