"""One check per kind of alert rule: when, between two instants, its condition held.

Each check returns the **episodes** of its subjects that overlap [start, end] (a
lead in breach from its due time until its first contact...), or None when it has
no data to judge. Live evaluation asks for [now, now] and keeps the episodes that
hold at ``now``; the backtest asks for a whole range. One code path for both, so a
backtest shows what the live rule would have done.
"""

from __future__ import annotations

import datetime as dt

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import (
    AlertRule,
    BehindPace,
    DataStale,
    DealStuck,
    KpiThreshold,
    LeadNotContacted,
)
from saleskpi.service.alert_checks.base import CheckContext
from saleskpi.service.alert_checks.deals import deal_episodes
from saleskpi.service.alert_checks.kpis import kpi_episodes
from saleskpi.service.alert_checks.leads import lead_episodes
from saleskpi.service.alert_checks.pace import pace_episodes
from saleskpi.service.alert_checks.stale import stale_episodes

__all__ = ["CheckContext", "episodes", "findings_at"]


def episodes(ctx: CheckContext, rule: AlertRule, start: dt.datetime,
             end: dt.datetime) -> list[Episode] | None:
    if isinstance(rule, LeadNotContacted):
        return lead_episodes(ctx, rule, start, end)
    if isinstance(rule, DealStuck):
        return deal_episodes(ctx, rule, start, end)
    if isinstance(rule, BehindPace):
        return pace_episodes(ctx, rule, start, end)
    if isinstance(rule, KpiThreshold):
        return kpi_episodes(ctx, rule, start, end)
    if isinstance(rule, DataStale):
        return stale_episodes(ctx, rule, start, end)
    raise AssertionError(f"no check for {rule!r}")


def findings_at(ctx: CheckContext, rule: AlertRule, now: dt.datetime) -> list[Finding] | None:
    """The subjects whose condition holds at ``now`` (None: no data to judge)."""
    found = episodes(ctx, rule, now, now)
    if found is None:
        return None
    holding = {e.finding.subject: e.finding for e in found if e.holds_at(now)}
    return list(holding.values())
