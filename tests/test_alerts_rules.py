"""Alert rules as data (alerts.yaml), the working-time clock and the state machine.

Expected values are written out here by hand: the deadlines from the calendar of
October 2026 (Kyiv, UTC+3 before the 25th; 14 October a holiday), the states from
the rules of pending/firing/resolved.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from saleskpi.catalog.load import load_catalog
from saleskpi.domain.alert_states import (
    Episode,
    Finding,
    advance,
    event_key,
    fires_at,
    notice_due,
    tick_at_or_after,
)
from saleskpi.domain.alerts import AlertRulesError, format_duration, parse_duration, parse_rules
from saleskpi.domain.settings import Settings
from saleskpi.domain.working_hours import WorkingTime
from saleskpi.service.alert_rules import load_rules, put_rule, save_text
from tests.alerts_world import SLA, utc

KYIV = WorkingTime.of("09:00-18:00", "Europe/Kyiv", [dt.date(2026, 10, 14)])


# -- working time ------------------------------------------------------------------------
@pytest.mark.parametrize(("created", "minutes", "due"), [
    ("2026-10-05 10:00", 5, "2026-10-05 10:05"),  # Monday, in hours
    ("2026-10-05 23:00", 5, "2026-10-06 09:05"),  # at night: from 09:00 the next day
    ("2026-10-06 07:30", 5, "2026-10-06 09:05"),  # before the day begins
    ("2026-10-09 17:58", 5, "2026-10-12 09:03"),  # Friday: 2 minutes, then Monday 3
    ("2026-10-10 12:00", 5, "2026-10-12 09:05"),  # Saturday
    ("2026-10-13 17:59", 5, "2026-10-15 09:04"),  # Wednesday 14 is a holiday
    ("2026-10-05 17:00", 120, "2026-10-06 10:00"),  # 1 hour on Monday, 1 on Tuesday
    ("2026-10-05 18:00", 0, "2026-10-06 09:00"),  # a day's end is not working time
])
def test_a_deadline_counts_working_time_only(created: str, minutes: int, due: str) -> None:
    assert KYIV.add(utc(created), minutes * 60) == utc(due)


def test_working_time_between_two_moments() -> None:
    # Friday 17:00 to Monday 10:00: 1 hour on Friday and 1 on Monday.
    assert KYIV.between(utc("2026-10-09 17:00"), utc("2026-10-12 10:00")) == 2 * 3600
    assert KYIV.between(utc("2026-10-14 10:00"), utc("2026-10-14 12:00")) == 0  # holiday


def test_the_working_hours_setting_is_checked(tmp_path: Path) -> None:
    assert Settings(workspace=tmp_path, _env_file=None).working_hours == "09:00-18:00"
    with pytest.raises(ValueError, match="working hours '18:00-09:00'"):
        Settings(workspace=tmp_path, _env_file=None, working_hours="18:00-09:00")
    assert WorkingTime.of("00:00-24:00", "UTC").add(
        dt.datetime(2026, 10, 9, 23, 0), 7200) == dt.datetime(2026, 10, 12, 1, 0)


# -- the rules -------------------------------------------------------------------------------
def test_durations() -> None:
    assert parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("2h") == dt.timedelta(hours=2)
    assert parse_duration(300) == dt.timedelta(minutes=5)
    assert [format_duration(dt.timedelta(seconds=s)) for s in (300, 129600, 86400, 7)] == [
        "5m", "36h", "1d", "7s"]


def rules_of(*items: dict[str, object]) -> dict[str, object]:
    return {"rules": list(items)}


@pytest.mark.parametrize(("rule", "message"), [
    ({**SLA, "sla_minutes": 0},
     "alerts.yaml: rule 'sla5', field 'sla_minutes': Input should be greater than or equal "
     "to 1"),
    ({**SLA, "kind": "lead_not_called"},
     "alerts.yaml: rule 'sla5', field 'kind': use one of lead_not_contacted, deal_stuck, "
     "behind_pace, kpi_threshold, data_stale"),
    ({**SLA, "sla_minute": 5},
     "alerts.yaml: rule 'sla5', field 'sla_minute': unknown field; check its spelling"),
    ({k: v for k, v in SLA.items() if k != "owner"},
     "alerts.yaml: rule 'sla5', field 'owner': this field is required"),
    ({**SLA, "every": "5 minutes"},
     "alerts.yaml: rule 'sla5', field 'every': '5 minutes' is not a duration like 30s, 5m, "
     "2h, 1d or 1w"),
    ({**SLA, "recipients": {}},
     "alerts.yaml: rule 'sla5', field 'recipients': name at least one of roles, teams, "
     "reps or users"),
    ({**SLA, "name": "SLA five"},
     "alerts.yaml: rule 'SLA five', field 'name': String should match pattern"),
    ({"name": "stuck", "kind": "deal_stuck", "owner": "head", "recipients": {"users": ["a"]}},
     "alerts.yaml: rule 'stuck', field 'kind': give days, or over_team_p90: true"),
])
def test_a_wrong_rule_is_refused_naming_file_rule_and_field(rule: dict[str, object],
                                                            message: str) -> None:
    with pytest.raises(AlertRulesError) as caught:
        parse_rules(rules_of({"name": "ok", "kind": "data_stale", "owner": "head",
                              "recipients": {"roles": ["head"]}}, rule))
    assert caught.value.message.startswith(message), caught.value.message


def test_a_rule_without_a_name_is_named_by_its_place() -> None:
    with pytest.raises(AlertRulesError, match=r"rule rules\.0, field 'name'"):
        parse_rules(rules_of({k: v for k, v in SLA.items() if k != "name"}))


def test_names_are_unique_and_the_file_is_a_list() -> None:
    with pytest.raises(AlertRulesError, match="two rules are named 'sla5'"):
        parse_rules(rules_of(SLA, SLA))
    with pytest.raises(AlertRulesError, match="expected 'rules:' followed by a list"):
        parse_rules([SLA])


def test_saving_checks_the_yaml_and_the_kpis(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", _env_file=None)
    catalog = load_catalog(None)
    with pytest.raises(AlertRulesError, match=r"alerts.yaml, line 2: not valid YAML"):
        save_text(settings, "rules:\n  - name: a: b\n", catalog)
    bad = ("rules:\n  - {name: calls, kind: kpi_threshold, owner: head, "
           "recipients: {roles: [head]}, kpi: phone_calls, below: 20}\n")
    with pytest.raises(AlertRulesError, match="unknown KPI 'phone_calls'"):
        save_text(settings, bad, catalog)
    assert not (settings.workspace / "alerts.yaml").exists()  # nothing written
    save_text(settings, bad.replace("phone_calls", "calls"), catalog)
    put_rule(settings, parse_rules(rules_of(SLA))[0], catalog)
    assert [r.name for r in load_rules(settings)] == ["calls", "sla5"]


# -- the state machine ------------------------------------------------------------------------
def test_pending_firing_resolved_and_the_notices() -> None:
    t0 = dt.datetime(2026, 10, 6, 6, 0)
    seen = Finding("lead:L3")
    hold = dt.timedelta(minutes=10)
    state, change = advance(None, seen, t0, hold, "sla", "lead:L3")
    assert state is not None and change is not None
    assert (state.status, change.before, change.after) == ("pending", None, "pending")
    state, change = advance(state, seen, t0 + dt.timedelta(minutes=9), hold, "sla", "lead:L3")
    assert state is not None and state.status == "pending" and change is None
    fired = t0 + dt.timedelta(minutes=10)
    state, change = advance(state, seen, fired, hold, "sla", "lead:L3")
    assert state is not None and (state.status, state.fired_at) == ("firing", fired)
    repeat = dt.timedelta(hours=4)
    assert notice_due(state, fired, repeat, silenced=True, notify_resolved=True) is None
    assert notice_due(state, fired, repeat, silenced=False, notify_resolved=True) == "firing"
    assert event_key(state, "firing") == "sla|lead:L3|20261006T061000|1"
    state = state.__class__(**{**vars(state), "notified_at": fired, "notices": 1})
    assert notice_due(state, fired + repeat - dt.timedelta(seconds=1), repeat,
                      silenced=False, notify_resolved=True) is None
    assert notice_due(state, fired + repeat, repeat, silenced=False,
                      notify_resolved=True) == "repeat"
    assert event_key(state, "repeat") == "sla|lead:L3|20261006T061000|2"
    state, change = advance(state, None, fired + dt.timedelta(hours=1), hold, "sla", "lead:L3")
    assert state is not None and change is not None and change.after == "resolved"
    assert notice_due(state, fired, repeat, silenced=False, notify_resolved=True) == \
        "resolved"
    assert notice_due(state, fired, repeat, silenced=False, notify_resolved=False) is None


def test_when_an_episode_fires_on_a_schedule() -> None:
    five = dt.timedelta(minutes=5)
    assert tick_at_or_after(dt.datetime(2026, 10, 5, 7, 5), five) == \
        dt.datetime(2026, 10, 5, 7, 5)
    assert tick_at_or_after(dt.datetime(2026, 10, 5, 7, 5, 1), five) == \
        dt.datetime(2026, 10, 5, 7, 10)
    short = Episode(Finding("x"), dt.datetime(2026, 10, 5, 7, 6), dt.datetime(2026, 10, 5, 7, 9))
    assert fires_at(short, five, dt.timedelta(0)) is None  # between two evaluations
    long = Episode(Finding("x"), dt.datetime(2026, 10, 5, 7, 6), None)
    # seen at 07:10, 10 minutes later is 07:20
    assert fires_at(long, five, dt.timedelta(minutes=10)) == dt.datetime(2026, 10, 5, 7, 20)


def test_the_rules_in_the_docs_are_valid() -> None:
    """Every ``rules:`` block of docs/alerts.md can be copied as it is."""
    import re
    import textwrap

    import yaml

    from saleskpi.service.alert_rules import check_rules

    text = (Path(__file__).resolve().parents[1] / "docs" / "alerts.md").read_text(
        encoding="utf-8")
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.S) if "rules:" in b]
    assert len(blocks) >= 6
    names = []
    for block in blocks:
        rules = parse_rules(yaml.safe_load(textwrap.dedent(block)))
        check_rules(rules, load_catalog(None))
        names += [r.name for r in rules]
    assert {"lead-sla", "deal-stuck", "behind-plan", "few-calls", "win-rate-dip",
            "data-fresh"} <= set(names)
