"""The backtest on the hand-counted company (``tests/alerts_world.py``): counts by hand.

Stuck deals (10 days in a stage) in September 2026, evaluated every 5 minutes:
D1 in new from 09-11 10:00, D3 in new from 09-11 11:00, D1 in qualified from 09-30
10:00 (each a 5-minute tick: Kyiv is UTC+3, so 10:00 is 07:00 UTC): 3 firings on 2
deals. D4 never stays 10 days; D2 only from 10-11.

SLA breaches in the week of 5-9 October: L2 10:05-10:20, L3 Tuesday 09:05-14:00, L8
Thursday 16:05-16:07. Every 5 minutes each is seen (and, for 0, fired) at its due
time: 3. Every 15 minutes L8's two minutes fall between evaluations (16:00, 16:15): 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from saleskpi.domain.alerts import parse_rule
from saleskpi.domain.settings import Settings
from saleskpi.service.alert_backtest import backtest
from saleskpi.service.core import SalesKpiService
from saleskpi.store.state.alerts import load_states
from tests.alerts_world import SLA, STUCK, build_company, utc


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> SalesKpiService:
    workspace = build_company(tmp_path_factory.mktemp("backtest") / "ws")
    return SalesKpiService(Settings(workspace=workspace, _env_file=None))


def test_stuck_deals_in_september(service: SalesKpiService) -> None:
    result = backtest(service, parse_rule(STUCK), utc("2026-09-01 00:00"),
                      utc("2026-10-01 00:00"))
    assert [(f.episode.finding.facts["deal"], f.episode.finding.facts["stage"], f.at)
            for f in result.firings] == [
        ("D1", "new", utc("2026-09-11 10:00")), ("D3", "new", utc("2026-09-11 11:00")),
        ("D1", "qualified", utc("2026-09-30 10:00"))]
    assert result.subjects == 3 and not result.no_data
    # The firing on D3 ended when it was won; D1's in qualified still held on 1 October.
    assert [f.episode.until for f in result.firings] == [
        utc("2026-09-20 10:00"), utc("2026-09-25 11:00"), None]


def test_sla_breaches_of_a_week_on_two_schedules(service: SalesKpiService) -> None:
    week = (utc("2026-10-05 00:00"), utc("2026-10-10 00:00"))
    every5 = backtest(service, parse_rule(SLA), *week)
    assert [(f.episode.finding.facts["lead"], f.at) for f in every5.firings] == [
        ("L2", utc("2026-10-05 10:05")), ("L3", utc("2026-10-06 09:05")),
        ("L8", utc("2026-10-08 16:05"))]
    every15 = backtest(service, parse_rule({**SLA, "every": "15m"}), *week)
    assert [(f.episode.finding.facts["lead"], f.at) for f in every15.firings] == [
        ("L2", utc("2026-10-05 10:15")), ("L3", utc("2026-10-06 09:15"))]
    held = backtest(service, parse_rule({**SLA, "for": "1h"}), *week)
    assert [f.episode.finding.facts["lead"] for f in held.firings] == ["L3"]


def test_an_alert_firing_before_the_range_is_not_counted_again(
        service: SalesKpiService) -> None:
    # D1 has been stuck in qualified since 09-30: October has no new firing on it.
    result = backtest(service, parse_rule(STUCK), utc("2026-10-01 00:00"),
                      utc("2026-10-11 00:00"))
    assert result.firings == []
    result = backtest(service, parse_rule(STUCK), utc("2026-10-01 00:00"),
                      utc("2026-10-12 00:00"))
    assert [(f.episode.finding.facts["deal"], f.at) for f in result.firings] == [
        ("D2", utc("2026-10-11 12:00"))]


def test_a_backtest_writes_no_state(service: SalesKpiService) -> None:
    backtest(service, parse_rule(SLA), utc("2026-10-05 00:00"), utc("2026-10-10 00:00"))
    assert load_states(service.settings.state_url) == []
    assert not Path(service.settings.workspace / "alerts.yaml").exists()
