"""Alerts on the demo company (``saleskpi demo``'s generator, small), checked with SQL.

Every expectation is computed here from the stored tables with hand-written SQL
(DuckDB for the facts, SQLite for the plans) and plain Python arithmetic, never with
the alert code: which deals sit longer than 7 days in a stage, how often that would
have fired in September, and which reps are more than 20 % behind their deals-won
plan's pace on 15 September (working days Monday to Friday; the demo has no holidays).
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import zoneinfo
from pathlib import Path
from typing import Any

import duckdb
import pytest

from saleskpi.domain.alerts import parse_rule
from saleskpi.domain.settings import Settings
from saleskpi.service.alert_backtest import backtest
from saleskpi.service.alerting import evaluate_alerts
from saleskpi.service.core import SalesKpiService
from saleskpi.service.demo import build_demo
from tests.alerts_world import write_rules

ZONE = zoneinfo.ZoneInfo("Europe/Kyiv")
END = dt.date(2026, 10, 1)  # the demo's data ends the day before
NOW = dt.datetime(2026, 9, 16, 10, 0, tzinfo=ZONE)  # judges 15 September
STUCK = {"name": "stuck7", "kind": "deal_stuck", "owner": "head",
         "recipients": {"roles": ["head", "team_lead"]}, "days": 7}
PACE = {"name": "pace20", "kind": "behind_pace", "owner": "head",
        "recipients": {"roles": ["head", "team_lead"]}, "behind_pct": 20,
        "kpis": ["deals_won"]}
# Time in a stage: until the next stage entered, or the deal's close.
SPANS = """
    WITH s AS (
        SELECT deal_id, stage, entered_at,
               lead(entered_at) OVER (PARTITION BY deal_id ORDER BY entered_at) AS next_at
        FROM stage_changes)
    SELECT s.deal_id, s.stage, s.entered_at,
           CASE WHEN d.status = 'open' THEN s.next_at
                ELSE least(s.next_at, d.closed_at) END AS left_at, d.rep_id, r.team
    FROM s JOIN deals d ON d.id = s.deal_id JOIN reps r ON r.id = d.rep_id
"""


def utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(workspace=tmp_path_factory.mktemp("demo") / "ws", _env_file=None)
    company = build_demo(settings, size=0.3, seed=7, end=END)
    assert company.report.ok
    return company.settings


def facts(settings: Settings, sql: str, params: list[Any] | None = None) -> list[Any]:
    con = duckdb.connect(str(settings.analytics_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_the_demo_has_stage_history_for_every_deal(demo: Settings) -> None:
    # The SQL below reads stage_changes only: true of the demo.
    assert facts(demo, "SELECT count(*) FROM deals WHERE id NOT IN "
                       "(SELECT deal_id FROM stage_changes)") == [(0,)]


def test_stuck_deals_now(demo: Settings, tmp_path: Path) -> None:
    now = utc(NOW)
    expected = {(deal, stage) for deal, stage, *_ in facts(demo, f"""
        SELECT * FROM ({SPANS})
        WHERE entered_at + INTERVAL 7 DAY <= ? AND (left_at IS NULL OR left_at > ?)""",
        [now, now])}
    assert len(expected) >= 5  # enough to mean something
    write_rules(demo, STUCK)
    report = evaluate_alerts(demo, NOW, None, dry_run=True)
    found = {tuple(c.subject.split(":")[2:4]) for c in report.changes}
    assert found == expected
    # The team lead's notice holds their team's deals only.
    lead_team = sqlite3.connect(demo.workspace / "state.sqlite").execute(
        "SELECT team FROM users WHERE username = 'lead'").fetchone()[0]
    theirs = {deal for deal, stage, _e, _l, _r, team in facts(demo, f"""
        SELECT * FROM ({SPANS})
        WHERE entered_at + INTERVAL 7 DAY <= ? AND (left_at IS NULL OR left_at > ?)""",
        [now, now]) if team == lead_team}
    notice = next(n for n in report.notices if n.recipient == "lead")
    told = {line.split("Deal ")[1].split(" ")[0] for line in notice.body.splitlines()
            if line.startswith("[")}
    assert told == theirs


def test_stuck_deals_backtest_of_september(demo: Settings) -> None:
    start, end = utc(dt.datetime(2026, 9, 1, tzinfo=ZONE)), utc(dt.datetime(2026, 10, 1,
                                                                             tzinfo=ZONE))
    # Fires at the first 5-minute evaluation (counted from 1970 UTC) at or after 7 days
    # in the stage, if the deal is still in it then.
    rows = facts(demo, f"""
        SELECT deal_id, stage, ceil(epoch(entered_at + INTERVAL 7 DAY) / 300) * 300 AS fire,
               epoch(left_at) AS left_s
        FROM ({SPANS})""")
    expected = sorted((deal, stage) for deal, stage, fire, left_s in rows
                      if epoch(start) <= fire <= epoch(end)
                      and (left_s is None or fire < left_s))
    result = backtest(SalesKpiService(demo), parse_rule(STUCK), start, end)
    got = sorted((f.episode.finding.facts["deal"], f.episode.finding.facts["stage"])
                 for f in result.firings)
    assert got == expected and len(got) > 10


def epoch(moment: dt.datetime) -> float:
    return (moment - dt.datetime(1970, 1, 1)).total_seconds()


def working_days(first: dt.date, last: dt.date) -> int:
    return sum(1 for n in range((last - first).days + 1)
               if (first + dt.timedelta(days=n)).weekday() < 5)


def test_reps_behind_their_plans_pace(demo: Settings) -> None:
    day = dt.date(2026, 9, 15)
    with sqlite3.connect(demo.workspace / "state.sqlite") as con:
        plans = con.execute(
            "SELECT rep_id, value, period_start, period_end FROM targets "
            "WHERE kpi = 'deals_won' AND rep_id IS NOT NULL AND period_start <= ? "
            "AND period_end >= ?", [day.isoformat(), day.isoformat()]).fetchall()
    assert plans
    behind = set()
    for rep, plan, first_text, last_text in plans:
        first, last = dt.date.fromisoformat(first_text), dt.date.fromisoformat(last_text)
        since = utc(dt.datetime.combine(first, dt.time(), ZONE))
        until = utc(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), ZONE))
        (won,), = facts(demo, "SELECT count(*) FROM deals WHERE status = 'won' AND rep_id = ? "
                              "AND closed_at >= ? AND closed_at < ?", [rep, since, until])
        expected = plan * working_days(first, day) / working_days(first, last)
        if working_days(first, day) >= 3 and won / expected < 0.8 and not math.isclose(
                won / expected, 0.8):
            behind.add(rep)
    write_rules(demo, PACE)
    report = evaluate_alerts(demo, NOW, None, dry_run=True)
    assert {c.subject.split(":")[1] for c in report.changes} == behind
    assert behind  # the demo has laggards


def test_the_demo_comes_with_alert_rules_already_evaluated(tmp_path: Path) -> None:
    """``saleskpi demo`` writes the example rules and evaluates them: the deals firing
    'deal-stuck' are the open deals whose current stage was entered more than 14 days
    before the evaluation (SQL), and the workspace's own rules are never replaced."""
    settings = Settings(workspace=tmp_path / "ws", _env_file=None)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    company = build_demo(settings, size=0.2, seed=3, end=END)
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert company.report.ok
    rules = (settings.workspace / "alerts.yaml").read_text(encoding="utf-8")
    assert {"lead-sla", "deal-stuck", "behind-pace"} <= {
        line.split(":", 1)[1].strip() for line in rules.splitlines()
        if line.strip().startswith("- name:")}
    con = duckdb.connect(str(settings.analytics_path), read_only=True)
    try:
        def stuck(moment: dt.datetime) -> set[str]:
            rows = con.execute(f"SELECT deal_id FROM ({SPANS}) WHERE left_at IS NULL AND "
                               "entered_at < ?", [moment - dt.timedelta(days=14)]).fetchall()
            return {f"deal:demo:{deal}" for (deal,) in rows}
        surely, maybe = stuck(before), stuck(after)  # the evaluation ran in between
    finally:
        con.close()
    with sqlite3.connect(settings.workspace / "state.sqlite") as db:
        # A subject is deal:<source>:<deal>:<stage>:<entered at>.
        rows = db.execute("SELECT subject FROM alert_states WHERE rule = 'deal-stuck' "
                          "AND status = 'firing'").fetchall()
        firing = {":".join(subject.split(":")[:3]) for (subject,) in rows}
    assert surely and surely <= firing <= maybe
    # A second demo keeps the rules as the user left them.
    (settings.workspace / "alerts.yaml").write_text("rules: []\n", encoding="utf-8")
    build_demo(settings, size=0.2, seed=3, end=END)
    assert (settings.workspace / "alerts.yaml").read_text(encoding="utf-8") == "rules: []\n"
