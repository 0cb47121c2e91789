"""A small company for the alert tests, whose every alert is counted by hand below.

Time zone Europe/Kyiv (UTC+3 in the weeks used, before the clocks go back on 25
October 2026), working hours 09:00-18:00 Monday to Friday, Wednesday 14 October 2026 a
holiday. The CSV times are company time (the import reads them so).

Teams: North (r1 Anna Lee, r2 Boris Kim), South (r3 Chen Wu, r4 Dana Roy). Users:
``head`` (en), ``lead_n`` team lead of North (uk), ``lead_s`` team lead of South (ru),
``anna`` the rep r1 (en).

Leads and their first outbound contact, with the 5-minute SLA counted in working time:

====  ===================  ====  ===========================  ====================
lead  created              rep   first contact (or else)      due / breach
====  ===================  ====  ===========================  ====================
L1    Mon 10-05 10:00      r1    call out 10:03               10:05 / none
L2    Mon 10-05 10:00      r3    call out 10:20               10:05 / 10:05-10:20
L3    Mon 10-05 23:00      r1    e-mail out Tue 10-06 14:00   Tue 09:05 / 09:05-14:00
L4    Fri 10-09 17:58      r2    never                        Mon 10-12 09:03 (2+3 min)
L5    Tue 10-13 17:59      r3    never                        Thu 10-15 09:04 (holiday)
L6    Wed 10-07 12:00      r4    call out 12:04               12:05 / none
L7    Thu 10-08 12:00      r2    lost 12:03, no contact       12:05 / none (lost first)
L8    Thu 10-08 16:00      r3    call out 16:07               16:05 / 16:05-16:07
L9    Mon 10-05 11:00      r4    call in 11:01, note 11:02,   11:05 / none
                                 call out 11:04
====  ===================  ====  ===========================  ====================

Deals and their stages (a deal is stuck after 10 days in one stage):

- D1 r1 open: new 09-01 10:00, qualified 09-20 10:00 (stuck in new 09-11 10:00 to
  09-20 10:00; in qualified from 09-30 10:00 on);
- D2 r3 open: new 10-01 12:00 (stuck from 10-11 12:00);
- D3 r2 won 09-25 11:00: new 09-01 11:00 (stuck 09-11 11:00 to 09-25 11:00), won;
- D4 r3 won 10-02 15:00: new 09-20 10:00, proposal 09-25 10:00, won (never stuck).

Plans for October 2026 (21 working days: 22 weekdays less the holiday): deals won
r1 10, r3 4. By the end of Monday 10-05, 3 working days have gone (1, 2, 5 October):
r1 is expected at 10 × 3/21 = 1.43 and has 0 (behind); r3 at 4 × 3/21 = 0.57 and has
1 (D4, 10-02: ahead).
"""

from __future__ import annotations

import datetime as dt
import shutil
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from saleskpi.domain.notices import Notice
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user
from saleskpi.service.core import SalesKpiService

ZONE = zoneinfo.ZoneInfo("Europe/Kyiv")
SOURCE = "crm"
PASSWORD = "alerts-test-password"

REPS = """id,name,team
r1,Anna Lee,North
r2,Boris Kim,North
r3,Chen Wu,South
r4,Dana Roy,South
"""
LEADS = """id,created_at,rep_id,source,status,lost_at
L1,2026-10-05 10:00:00,r1,web,,
L2,2026-10-05 10:00:00,r3,web,,
L3,2026-10-05 23:00:00,r1,ads,,
L4,2026-10-09 17:58:00,r2,web,,
L5,2026-10-13 17:59:00,r3,web,,
L6,2026-10-07 12:00:00,r4,web,,
L7,2026-10-08 12:00:00,r2,web,lost,2026-10-08 12:03:00
L8,2026-10-08 16:00:00,r3,ads,,
L9,2026-10-05 11:00:00,r4,web,,
"""
ACTIVITIES = """id,type,rep_id,occurred_at,lead_id,direction
A1,call,r1,2026-10-05 10:03:00,L1,out
A2,call,r3,2026-10-05 10:20:00,L2,out
A3,email,r1,2026-10-06 14:00:00,L3,out
A6,call,r4,2026-10-07 12:04:00,L6,out
A8,call,r3,2026-10-08 16:07:00,L8,out
A9,call,r4,2026-10-05 11:01:00,L9,in
A10,note,r4,2026-10-05 11:02:00,L9,
A11,call,r4,2026-10-05 11:04:00,L9,out
"""
DEALS = """id,rep_id,status,created_at,stage,pipeline,amount,currency,closed_at
D1,r1,open,2026-09-01 10:00:00,qualified,main,1000,USD,
D2,r3,open,2026-10-01 12:00:00,new,main,500,USD,
D3,r2,won,2026-09-01 11:00:00,won,main,700,USD,2026-09-25 11:00:00
D4,r3,won,2026-09-20 10:00:00,won,main,300,USD,2026-10-02 15:00:00
"""
STAGES = """deal_id,stage,entered_at
D1,new,2026-09-01 10:00:00
D1,qualified,2026-09-20 10:00:00
D2,new,2026-10-01 12:00:00
D3,new,2026-09-01 11:00:00
D3,won,2026-09-25 11:00:00
D4,new,2026-09-20 10:00:00
D4,proposal,2026-09-25 10:00:00
D4,won,2026-10-02 15:00:00
"""
TARGETS = """kpi,period_start,period_end,value,rep_id,team
deals_won,2026-10-01,2026-10-31,10,r1,
deals_won,2026-10-01,2026-10-31,4,r3,
"""
USERS = (("head", "head", None, None, "en"), ("lead_n", "team_lead", None, "North", "uk"),
         ("lead_s", "team_lead", None, "South", "ru"), ("anna", "rep", "r1", None, "en"))

BOSSES = {"roles": ["head", "team_lead"]}
SLA = {"name": "sla5", "kind": "lead_not_contacted", "owner": "head", "recipients": BOSSES,
       "sla_minutes": 5}
STUCK = {"name": "stuck10", "kind": "deal_stuck", "owner": "head", "recipients": BOSSES,
         "days": 10}
PACE = {"name": "pace20", "kind": "behind_pace", "owner": "head",
        "recipients": {"roles": ["head", "team_lead", "rep"]}, "behind_pct": 20,
        "kpis": ["deals_won"]}


def kyiv(text: str) -> dt.datetime:
    """Company wall time ``YYYY-MM-DD HH:MM`` as the aware instant."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=ZONE)


def utc(text: str) -> dt.datetime:
    """Company wall time as naive UTC, as the stores keep times."""
    return kyiv(text).astimezone(dt.UTC).replace(tzinfo=None)


def build_company(workspace: Path) -> Path:
    """Import the company above into ``workspace`` and add its users."""
    folder = workspace.parent / "company-files"
    folder.mkdir(parents=True, exist_ok=True)
    files = {"reps.csv": REPS, "leads.csv": LEADS, "activities.csv": ACTIVITIES,
             "deals.csv": DEALS, "stage_changes.csv": STAGES, "targets.csv": TARGETS}
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    save_workspace_settings(Settings(workspace=workspace, _env_file=None),
                            timezone="Europe/Kyiv", currency="USD",
                            holidays=["2026-10-14"], working_hours="09:00-18:00")
    settings = Settings(workspace=workspace, _env_file=None)
    report = SalesKpiService(settings).import_path(folder, mapping=None, source=SOURCE,
                                                   dry_run=False)
    assert report.ok, report.errors
    for username, role, rep, team, lang in USERS:
        add_user(settings, username, PASSWORD, role, rep_id=rep, team=team, lang=lang)
    return workspace


def copy_company(company: Path, to: Path) -> Settings:
    """A copy a test may change (states, rules, silences)."""
    shutil.copytree(company, to)
    return Settings(workspace=to, _env_file=None)


def write_rules(settings: Settings, *rules: dict[str, Any]) -> None:
    (settings.workspace / "alerts.yaml").write_text(
        yaml.safe_dump({"rules": list(rules)}, allow_unicode=True), encoding="utf-8")


class Outbox:
    """A ``send`` that keeps what it was given, one list per call."""

    def __init__(self) -> None:
        self.calls: list[list[Notice]] = []

    def __call__(self, notices: Sequence[Notice]) -> None:
        self.calls.append(list(notices))

    def last(self) -> dict[str, Notice]:
        return {n.recipient: n for n in self.calls[-1]} if self.calls else {}
