"""Deals stuck in a stage: longer than N days, or longer than their team's 90th percentile.

Time in a stage runs from entering it until the next stage, or the deal's close. The
team's 90th percentile for a stage (of a pipeline) comes from the times in that stage
that ended in the ``history_days`` before the checked range (a stage with fewer than
``min_samples`` of them falls back to ``days``). Days are calendar days.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from urllib.parse import quote

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import DealStuck
from saleskpi.service.alert_checks.base import CheckContext, iso
from saleskpi.store.alert_facts import StageSpan, stage_spans

DAY = 86400.0
Key = tuple[str | None, str | None, str]  # team, pipeline, stage


def deal_episodes(ctx: CheckContext, rule: DealStuck, start: dt.datetime,
                  end: dt.datetime) -> list[Episode] | None:
    """Every time a deal stayed too long in a stage that overlaps [start, end]; None
    when there are no deals at all."""
    # The history is read only for the percentile: a plain limit needs the range alone.
    history_from = start - dt.timedelta(days=rule.history_days) if rule.over_team_p90 \
        else start
    with ctx.service.reading() as store:
        if store.count("deals") == 0:
            return None
        spans = [s for s in stage_spans(store, history_from, end) if _wanted(rule, s)]
    limits = team_p90(spans, history_from, start) if rule.over_team_p90 else {}
    found = []
    for span in spans:
        if span.left_at is not None and span.left_at <= start:
            continue  # history only
        key = (span.team, span.pipeline, span.stage)
        samples = limits.get(key, [])
        if rule.over_team_p90 and len(samples) >= rule.min_samples:
            limit, basis = p90(samples), "p90"
        elif rule.days is not None:
            limit, basis = rule.days * DAY, "days"
        else:
            continue
        begin = span.entered_at + dt.timedelta(seconds=limit)
        if begin > end or (span.left_at is not None and begin >= span.left_at):
            continue
        finding = Finding(
            subject=f"deal:{span.datasource}:{span.deal}:{span.stage}:{iso(span.entered_at)}",
            rep=span.rep, team=span.team,
            facts={"deal": span.deal, "stage": span.stage, "pipeline": span.pipeline,
                   "entered": iso(span.entered_at), "limit_days": round(limit / DAY, 2),
                   "basis": basis, "samples": len(samples), "rep_name": span.rep_name},
            link=f"/reps/{quote(span.rep, safe='')}" if span.rep else "/funnel",
            company=span.rep is None)
        until = span.left_at if span.left_at is not None and span.left_at <= end else None
        found.append(Episode(finding, begin, until))
    return found


def _wanted(rule: DealStuck, span: StageSpan) -> bool:
    return (not rule.stages or span.stage in rule.stages) and \
        (not rule.pipelines or span.pipeline in rule.pipelines)


def team_p90(spans: list[StageSpan], first: dt.datetime,
             last: dt.datetime) -> dict[Key, list[float]]:
    """Seconds in each stage, per team and pipeline, of the spans that ended in
    [first, last)."""
    found: dict[Key, list[float]] = defaultdict(list)
    for span in spans:
        if span.left_at is not None and first <= span.left_at < last:
            found[(span.team, span.pipeline, span.stage)].append(
                (span.left_at - span.entered_at).total_seconds())
    return found


def p90(samples: list[float]) -> float:
    """The 90th percentile, interpolated between the closest ranks (as numpy and
    DuckDB's ``quantile_cont``)."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=10, method="inclusive")[8]
