"""Evaluating alert rules on the hand-counted company of ``tests/alerts_world.py``.

Every expected alert, state and notice comes from the tables in that module's
docstring (times are company time, Europe/Kyiv); the notices go to a collecting
``send``, the states and the log are read back from the real SQLite file.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings
from saleskpi.service.alerting import evaluate_alerts
from saleskpi.service.core import SalesKpiService
from saleskpi.store.state.silences import add_silence
from saleskpi.store.state.sync_runs import record_sync_run
from tests.alerts_world import (
    BOSSES,
    PACE,
    SLA,
    STUCK,
    Outbox,
    build_company,
    copy_company,
    kyiv,
    utc,
    write_rules,
)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_company(tmp_path_factory.mktemp("alerts") / "ws")


@pytest.fixture
def settings(company: Path, tmp_path: Path) -> Settings:
    return copy_company(company, tmp_path / "ws")


def states(settings: Settings) -> dict[tuple[str, str], str]:
    """(rule, subject) -> status, read with plain SQL."""
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        return {(r, s): st for r, s, st in con.execute(
            "SELECT rule, subject, status FROM alert_states")}


def log_rows(settings: Settings) -> list[tuple[str, str, str | None, str | None]]:
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        return list(con.execute("SELECT at, subject, before, after FROM alert_log "
                                "WHERE before IS NOT after OR before IS NULL ORDER BY id"))


def lines(notice_body: str) -> list[str]:
    """The alert lines of a notice (links left out)."""
    return [line for line in notice_body.splitlines() if line.startswith("[")]


# -- the SLA in working hours ---------------------------------------------------------------
def test_a_lead_at_night_is_due_five_working_minutes_after_nine(settings: Settings) -> None:
    # L3 came in on Monday at 23:00: its 5 minutes start at 09:00 on Tuesday.
    write_rules(settings, SLA)
    outbox = Outbox()
    at_0903 = evaluate_alerts(settings, kyiv("2026-10-06 09:03"), outbox)
    assert at_0903.errors == [] and at_0903.changes == [] and outbox.calls == []
    at_0906 = evaluate_alerts(settings, kyiv("2026-10-06 09:06"), outbox)
    assert [(c.subject, c.before, c.after) for c in at_0906.changes] == [
        ("lead:crm:L3", None, "firing")]
    assert states(settings) == {("sla5", "lead:crm:L3"): "firing"}


def test_a_lead_in_working_hours_breaches_at_once(settings: Settings) -> None:
    # L2 came in on Monday at 10:00, was called at 10:20: in breach 10:05-10:20. L1
    # (called 10:03) and L9 (an inbound call and a note do not count, the call out at
    # 11:04 does) never are.
    write_rules(settings, SLA)
    assert evaluate_alerts(settings, kyiv("2026-10-05 10:04"), Outbox()).changes == []
    report = evaluate_alerts(settings, kyiv("2026-10-05 10:05"), Outbox())
    assert [(c.subject, c.after) for c in report.changes] == [("lead:crm:L2", "firing")]
    report = evaluate_alerts(settings, kyiv("2026-10-05 11:10"), Outbox())
    assert [(c.subject, c.before, c.after) for c in report.changes] == [
        ("lead:crm:L2", "firing", "resolved")]


def test_the_weekend_and_a_holiday_do_not_count(settings: Settings) -> None:
    # L4: Friday 17:58, 2 minutes on Friday and 3 on Monday: due Monday 09:03.
    # L5: Tuesday 17:59, Wednesday 14 is a holiday: due Thursday 09:04.
    write_rules(settings, SLA)
    assert evaluate_alerts(settings, kyiv("2026-10-12 09:02"), Outbox()).changes == []
    assert [c.subject for c in evaluate_alerts(
        settings, kyiv("2026-10-12 09:03"), Outbox()).changes] == ["lead:crm:L4"]
    assert "lead:crm:L5" not in {c.subject for c in evaluate_alerts(
        settings, kyiv("2026-10-15 09:03"), Outbox()).changes}
    assert "lead:crm:L5" in {c.subject for c in evaluate_alerts(
        settings, kyiv("2026-10-15 09:04"), Outbox()).changes}


# -- one notice per event, repeated, resolved ---------------------------------------------------
def test_an_alert_is_told_once_repeated_after_four_hours_and_resolved(
        settings: Settings) -> None:
    write_rules(settings, SLA)  # repeat: 4h (the default)
    outbox = Outbox()
    evaluate_alerts(settings, kyiv("2026-10-06 09:06"), outbox)
    first = outbox.last()
    # L3 is r1's (North): the head and North's lead; not South's lead, not the rep (not
    # a recipient of this rule).
    assert sorted(first) == ["head", "lead_n"]
    assert len(lines(first["head"].body)) == 1 and "L3" in first["head"].body
    for moment in ("2026-10-06 09:08", "2026-10-06 13:05"):
        report = evaluate_alerts(settings, kyiv(moment), outbox)
        assert report.notices == [], moment  # told already; not 4 hours yet at 13:05
    assert len(outbox.calls) == 1
    evaluate_alerts(settings, kyiv("2026-10-06 13:06"), outbox)  # 4 hours after 09:06
    repeat = outbox.last()
    assert sorted(repeat) == ["head", "lead_n"]
    assert lines(repeat["head"].body)[0].startswith("[STILL FIRING")
    assert repeat["head"].key != first["head"].key  # a new event for the channels
    evaluate_alerts(settings, kyiv("2026-10-06 14:01"), outbox)  # e-mailed at 14:00
    resolved = outbox.last()
    assert lines(resolved["head"].body)[0].startswith("[RESOLVED")
    assert evaluate_alerts(settings, kyiv("2026-10-06 14:06"), outbox).notices == []
    assert len(outbox.calls) == 3
    # The audit log: every change of state, once.
    assert [(s, b, a) for _at, s, b, a in log_rows(settings)] == [
        ("lead:crm:L3", None, "firing"), ("lead:crm:L3", "firing", "resolved")]


def test_a_failed_send_is_tried_again(settings: Settings) -> None:
    write_rules(settings, SLA)

    def broken(_notices: object) -> None:
        raise OSError("the mail server is down")

    report = evaluate_alerts(settings, kyiv("2026-10-06 09:06"), broken)
    assert report.sent is False and any("mail server" in e for e in report.errors)
    outbox = Outbox()
    evaluate_alerts(settings, kyiv("2026-10-06 09:08"), outbox)
    assert sorted(outbox.last()) == ["head", "lead_n"]


def test_pending_until_for_has_passed(settings: Settings) -> None:
    write_rules(settings, {**SLA, "name": "sla5_held", "for": "10m"})
    outbox = Outbox()
    for moment in ("2026-10-06 09:06", "2026-10-06 09:10", "2026-10-06 09:15"):
        evaluate_alerts(settings, kyiv(moment), outbox)
        assert states(settings) == {("sla5_held", "lead:crm:L3"): "pending"}, moment
    assert outbox.calls == []
    evaluate_alerts(settings, kyiv("2026-10-06 09:16"), outbox)  # 10 minutes after 09:06
    assert states(settings) == {("sla5_held", "lead:crm:L3"): "firing"}
    assert sorted(outbox.last()) == ["head", "lead_n"]
    assert [(at, b, a) for at, _s, b, a in log_rows(settings)] == [
        (str(utc("2026-10-06 09:06")).replace("T", " ") + ".000000", None, "pending"),
        (str(utc("2026-10-06 09:16")).replace("T", " ") + ".000000", "pending", "firing")]


def test_a_pending_alert_whose_condition_stops_is_dropped(settings: Settings) -> None:
    # L2 is in breach 10:05-10:20; with for: 30m it never fires.
    write_rules(settings, {**SLA, "name": "sla5_slow", "for": "30m"})
    evaluate_alerts(settings, kyiv("2026-10-05 10:06"), Outbox())
    assert states(settings) == {("sla5_slow", "lead:crm:L2"): "pending"}
    report = evaluate_alerts(settings, kyiv("2026-10-05 10:21"), Outbox())
    assert [(c.before, c.after) for c in report.changes] == [("pending", None)]
    assert states(settings) == {}


# -- deals, pace, scope -------------------------------------------------------------------------
def test_a_stuck_deal_and_a_rep_behind_pace(settings: Settings) -> None:
    write_rules(settings, STUCK, PACE)
    outbox = Outbox()
    evaluate_alerts(settings, kyiv("2026-10-06 09:06"), outbox)
    # D1 in qualified since 09-20 10:00 (10 days: 09-30 10:00); D2 new since 10-01 12:00 is
    # not (10-11 12:00). Judged day 10-05: r1 behind (0 of 1.43 expected), r3 ahead.
    assert states(settings) == {
        ("stuck10", "deal:crm:D1:qualified:2026-09-20T07:00:00"): "firing",
        ("pace20", "rep:r1:deals_won:2026-10-01"): "firing"}
    notices = outbox.last()
    assert sorted(notices) == ["anna", "head", "lead_n"]  # nothing for South's lead
    assert len(lines(notices["head"].body)) == 2
    assert lines(notices["anna"].body) == [
        "[FIRING, warning] pace20: Anna Lee: Deals won is 0 by 2026-10-05, 1.4 expected at "
        "the plan's pace (plan 10); 0.0% of the pace, more than 20% behind."]
    # In the recipient's language: North's lead reads Ukrainian.
    assert "Угода D1" in notices["lead_n"].body


def test_each_team_lead_is_told_only_about_their_team(settings: Settings) -> None:
    # Monday 10:06: L2 (r3, South) is in breach, D1 (r1, North) is stuck.
    write_rules(settings, SLA, STUCK)
    outbox = Outbox()
    evaluate_alerts(settings, kyiv("2026-10-05 10:06"), outbox)
    notices = outbox.last()
    assert sorted(notices) == ["head", "lead_n", "lead_s"]
    assert len(lines(notices["head"].body)) == 2
    assert lines(notices["lead_n"].body)[0].count("D1") == 1
    assert "L2" not in notices["lead_n"].body
    assert "L2" in notices["lead_s"].body and "D1" not in notices["lead_s"].body
    assert len(lines(notices["lead_s"].body)) == 1


def test_a_silence_holds_notices_back_until_it_ends(settings: Settings) -> None:
    write_rules(settings, SLA, STUCK, PACE)
    add_silence(settings.state_url, rule=None, rep="r1", team=None,
                starts_at=utc("2026-10-05 00:00"), ends_at=utc("2026-10-09 00:00"),
                created_by="head", reason="Anna is on holiday",
                created_at=utc("2026-10-01 12:00"))
    outbox = Outbox()
    report = evaluate_alerts(settings, kyiv("2026-10-06 09:06"), outbox)
    # Everything firing is r1's (L3, D1, pace): nothing is told, all of it fires.
    assert outbox.calls == [] and report.notices == []
    assert set(states(settings).values()) == {"firing"} and len(states(settings)) == 3
    evaluate_alerts(settings, kyiv("2026-10-09 09:00"), outbox)
    # After the silence: D1 is still stuck, r1 still behind (6 working days: 2.86
    # expected, 0 won); L3 was e-mailed on 10-06 and resolved untold: not mentioned.
    notices = outbox.last()
    assert sorted(notices) == ["anna", "head", "lead_n"]
    body = notices["head"].body
    assert len(lines(body)) == 2 and "D1" in body and "L3" not in body
    assert "2.9 expected" in body


def test_a_rule_with_no_data_alerts_when_asked_to(settings: Settings) -> None:
    # Nothing was ever imported or synced by October (the import ran in December).
    stale = {"name": "stale", "kind": "data_stale", "owner": "head",
             "recipients": {"users": ["head"]}, "hours": 24}
    write_rules(settings, stale, {**stale, "name": "stale_loud", "no_data": "alert"})
    outbox = Outbox()
    report = evaluate_alerts(settings, kyiv("2026-10-06 09:00"), outbox)
    assert [(r.rule, r.no_data) for r in report.rules] == [("stale", True),
                                                           ("stale_loud", True)]
    assert states(settings) == {("stale_loud", "no-data"): "firing"}
    assert "no data" in outbox.last()["head"].body


def test_stale_data_and_a_failing_sync(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", _env_file=None)
    url = settings.state_url
    t0 = dt.datetime(2026, 11, 2, 6, 0)  # UTC
    record_sync_run(url, "amocrm", ok=True, batches=3, message="", at=t0)
    record_sync_run(url, "amocrm", ok=False, batches=0, message="401 Unauthorized",
                    at=t0 + dt.timedelta(hours=1))
    record_sync_run(url, "amocrm", ok=False, batches=0, message="401 Unauthorized",
                    at=t0 + dt.timedelta(hours=2))
    write_rules(settings, {"name": "fresh", "kind": "data_stale", "owner": "head",
                           "recipients": {"roles": ["head"]}, "hours": 6})
    report = evaluate_alerts(settings, t0 + dt.timedelta(hours=5, minutes=59), Outbox())
    assert [c.subject for c in report.changes] == ["sync:amocrm"]  # failing since 07:00
    report = evaluate_alerts(settings, t0 + dt.timedelta(hours=6), Outbox())
    assert [c.subject for c in report.changes] == ["stale"]  # 6 hours since 06:00
    record_sync_run(url, "amocrm", ok=True, batches=1, message="",
                    at=t0 + dt.timedelta(hours=7))
    report = evaluate_alerts(settings, t0 + dt.timedelta(hours=7, minutes=5), Outbox())
    assert sorted((c.subject, c.after) for c in report.changes) == [
        ("stale", "resolved"), ("sync:amocrm", "resolved")]


def test_rules_run_on_their_schedule(settings: Settings) -> None:
    write_rules(settings, {**SLA, "every": "15m"})
    first = evaluate_alerts(settings, kyiv("2026-10-06 09:00"), Outbox(), due_only=True)
    assert [r.rule for r in first.rules] == ["sla5"]
    assert evaluate_alerts(settings, kyiv("2026-10-06 09:14"), Outbox(),
                           due_only=True).rules == []
    assert [r.rule for r in evaluate_alerts(settings, kyiv("2026-10-06 09:15"), Outbox(),
                                            due_only=True).rules] == ["sla5"]


def test_a_dry_run_stores_and_sends_nothing(settings: Settings) -> None:
    write_rules(settings, SLA)
    outbox = Outbox()
    report = evaluate_alerts(settings, kyiv("2026-10-06 09:06"), outbox, dry_run=True)
    assert [c.subject for c in report.changes] == ["lead:crm:L3"]
    assert sorted(n.recipient for n in report.notices) == ["head", "lead_n"]
    assert outbox.calls == [] and states(settings) == {}


def test_a_kpi_below_a_value_and_below_the_reps_own_usual(settings: Settings) -> None:
    # Calls out by day (an inbound call does not count): Monday 10-05 r1 1 (A1), r3 1
    # (A2), r4 1 (A11), r2 0; none on Saturday 10-03, Sunday 10-04 or Tuesday 10-06.
    few = {"name": "few-calls", "kind": "kpi_threshold", "owner": "head",
           "recipients": BOSSES, "kpi": "calls", "window": "yesterday", "below": 1}
    usual = {**few, "name": "calls-dip", "below": None, "worse_than_baseline_pct": 50,
             "baseline_periods": 3}
    write_rules(settings, few, usual)
    evaluate_alerts(settings, kyiv("2026-10-06 09:00"), Outbox())  # judges Monday
    assert states(settings) == {("few-calls", "rep:r2:calls:yesterday"): "firing"}
    evaluate_alerts(settings, kyiv("2026-10-07 09:00"), Outbox())  # judges Tuesday
    # Tuesday: nobody called, so everyone is below 1. Against the 3 days before (Monday,
    # Sunday, Saturday): r1, r3 and r4 averaged 1/3, and 0 is below half of it; r2
    # averaged 0, and 0 is not below 0.
    assert states(settings) == {
        **{("few-calls", f"rep:{r}:calls:yesterday"): "firing" for r in ("r1", "r2", "r3",
                                                                         "r4")},
        **{("calls-dip", f"rep:{r}:calls:yesterday"): "firing" for r in ("r1", "r3", "r4")}}


def test_a_deal_slower_than_its_teams_90th_percentile(settings: Settings,
                                                      tmp_path: Path) -> None:
    # North's stays in "new" that ended in the 180 days before 10-20: P1..P10 lost after
    # 1..10 days, D1 19 days, D3 24 days. Sorted, 12 of them: the 90th percentile lies at
    # rank 11 × 0.9 = 9.9 (from 0): 10 + 0.9 × (19 − 10) = 18.1 days. P11 has been in
    # "new" 18.2 days at 10-20 12:00 (stuck), P12 18.0 days (not yet). South has no
    # history (D2 is not judged), nor has North's "qualified" (D1 is not either).
    deals = "id,rep_id,status,created_at,stage,pipeline,closed_at\n" + "".join(
        f"P{i},r2,lost,2026-08-{i:02d} 10:00:00,new,main,2026-08-{2 * i:02d} 10:00:00\n"
        for i in range(1, 11)) + ("P11,r2,open,2026-10-02 07:12:00,new,main,\n"
                                  "P12,r2,open,2026-10-02 12:00:00,new,main,\n")
    stages = "deal_id,stage,entered_at\n" + "".join(
        f"P{i},new,2026-08-{i:02d} 10:00:00\n" for i in range(1, 11)) + (
        "P11,new,2026-10-02 07:12:00\nP12,new,2026-10-02 12:00:00\n")
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "deals.csv").write_text(deals, encoding="utf-8")
    (folder / "stage_changes.csv").write_text(stages, encoding="utf-8")
    assert SalesKpiService(settings).import_path(folder, mapping=None, source="crm",
                                                 dry_run=False).ok
    write_rules(settings, {"name": "slow", "kind": "deal_stuck", "owner": "head",
                           "recipients": BOSSES, "over_team_p90": True})
    report = evaluate_alerts(settings, kyiv("2026-10-20 12:00"), Outbox())
    assert [(c.subject, c.after) for c in report.changes] == [
        ("deal:crm:P11:new:2026-10-02T04:12:00", "firing")]
    facts = report.changes[0].state.finding.facts
    assert (facts["limit_days"], facts["samples"], facts["basis"]) == (18.1, 12, "p90")


def test_without_data_alerts_are_kept_or_resolved_as_the_rule_says(
        settings: Settings) -> None:
    # r1 is behind on Monday 10-05 (judged on Tuesday); on 2 November the judged day is
    # 1 November, which no plan covers: no data.
    write_rules(settings, {**PACE, "name": "keep"}, {**PACE, "name": "drop",
                                                     "no_data": "resolve"})
    evaluate_alerts(settings, kyiv("2026-10-06 09:00"), Outbox())
    subject = "rep:r1:deals_won:2026-10-01"
    assert states(settings) == {("keep", subject): "firing", ("drop", subject): "firing"}
    report = evaluate_alerts(settings, kyiv("2026-11-02 09:00"), Outbox())
    assert [(r.rule, r.no_data) for r in report.rules] == [("keep", True), ("drop", True)]
    assert states(settings) == {("keep", subject): "firing", ("drop", subject): "resolved"}
