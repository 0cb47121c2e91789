"""Reps (or teams) behind their plan's pace by more than ``behind_pct`` %.

The pace is the plans' own (``saleskpi.service.attainment``): what the plan expects
by the end of a day is the plan × working days gone / working days of the period;
a line is behind by X % when actual / expected < 1 − X/100 (for KPIs where lower is
better, expected / actual). Judged on the last complete day; the first
``min_elapsed_days`` working days of a period are not judged (a day says little).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from saleskpi.domain.alert_states import Episode, Finding
from saleskpi.domain.alerts import BehindPace
from saleskpi.service import planner
from saleskpi.service.alert_checks.base import CheckContext
from saleskpi.service.alert_checks.daily import day_episodes


def pace_episodes(ctx: CheckContext, rule: BehindPace, start: dt.datetime,
                  end: dt.datetime) -> list[Episode] | None:
    teams = ctx.service.rep_teams() if rule.level == "rep" else {}
    names = ctx.service.rep_names() if rule.level == "rep" else {}

    def behind(day: dt.date) -> dict[str, Finding] | None:
        lines = planner.plan_vs_actual(ctx.service, day, level=rule.level, activity=False)
        lines = [line for line in lines if not rule.kpis or line.target.kpi in rule.kpis]
        if not lines:
            return None
        found = {}
        for line in lines:
            paced, ratio = line.pace, line.on_pace
            if paced is None or paced.elapsed < rule.min_elapsed_days or ratio is None \
                    or ratio >= 1 - rule.behind_pct / 100:
                continue
            t = line.target
            who = (t.rep_id if rule.level == "rep" else t.team) or ""
            team = teams.get(who) if rule.level == "rep" else t.team
            subject = f"{rule.level}:{who}:{t.kpi}:{t.period_start.isoformat()}"
            found[subject] = Finding(
                subject=subject, rep=who if rule.level == "rep" else None, team=team,
                facts={"level": rule.level, "who": who, "who_name": names.get(who, who),
                       "kpi": t.kpi, "unit": line.unit, "plan": t.value,
                       "actual": line.result.actual, "expected": paced.expected,
                       "on_pace": ratio, "day": day.isoformat(),
                       "period_start": t.period_start.isoformat(),
                       "period_end": t.period_end.isoformat(),
                       "behind_pct": rule.behind_pct},
                link=f"/reps/{quote(who, safe='')}" if rule.level == "rep"
                else "/?" + urlencode({"team": who}))
        return found

    return day_episodes(ctx, start, end, behind)
