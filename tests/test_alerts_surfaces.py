"""Alerts on every surface: the CLI, the REST API and the web page, each in its scope.

The company is ``tests/alerts_world.py``'s. These tests run at the real clock (the
surfaces evaluate "now"), long after the fixture's October: by then D1 (r1, North)
has been in qualified since 09-20 and D2 (r3, South) in new since 10-01, both far
longer than 10 days, so the rule ``stuck10`` has exactly these two alerts; no lead
is younger than 7 days (nothing for the SLA rule) and no plan covers the last day
(the pace rule has no data). The September backtest of ``stuck10`` fires 3 times
(see tests/test_alerts_backtest.py).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import list_users, new_token
from saleskpi.surfaces.server import create_app
from tests.alerts_world import (
    PACE,
    PASSWORD,
    SLA,
    STUCK,
    build_company,
    copy_company,
    write_rules,
)

D1 = "deal:crm:D1:qualified:2026-09-20T07:00:00"
D2 = "deal:crm:D2:new:2026-10-01T09:00:00"


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_company(tmp_path_factory.mktemp("alerts-surfaces") / "ws")


@pytest.fixture
def settings(company: Path, tmp_path: Path) -> Settings:
    copied = copy_company(company, tmp_path / "ws")
    write_rules(copied, SLA, STUCK, PACE)
    return copied


# -- the CLI -------------------------------------------------------------------------------
def test_cli_test_backtest_evaluate_and_log(run_cli: Any, settings: Settings) -> None:
    ws = settings.workspace
    tested = run_cli(ws, "alerts", "test", "stuck10", "--format", "json")
    assert tested.returncode == 0, tested.stderr
    report = tested.json()
    assert report["dry_run"] is True
    assert sorted((c["subject"], c["after"]) for c in report["changes"]) == [
        (D1, "firing"), (D2, "firing")]
    assert sorted(n["recipient"] for n in report["notices"]) == ["head", "lead_n", "lead_s"]
    listed = run_cli(ws, "alerts", "list", "--format", "json").json()
    assert listed["alerts"] == []  # a test stores nothing
    backtest = run_cli(ws, "alerts", "backtest", "stuck10", "--from", "2026-09-01", "--to",
                       "2026-09-30", "--format", "json").json()
    assert (backtest["firings"], backtest["subjects"]) == (3, 3)
    csv_lines = run_cli(ws, "alerts", "backtest", "stuck10", "--from", "2026-09-01", "--to",
                        "2026-09-30", "--format", "csv").stdout.splitlines()
    assert len(csv_lines) == 1 + 3 and csv_lines[0].startswith("at,until,subject")
    evaluated = run_cli(ws, "alerts", "evaluate", "--format", "json").json()
    assert evaluated["dry_run"] is False and len(evaluated["changes"]) == 2
    listed = run_cli(ws, "alerts", "list", "--format", "json").json()
    assert sorted(a["subject"] for a in listed["alerts"]) == [D1, D2]
    assert {a["status"] for a in listed["alerts"]} == {"firing"}
    log = run_cli(ws, "alerts", "log", "--format", "json").json()["entries"]
    assert sorted((e["subject"], e["after"]) for e in log if e["before"] is None) == [
        (D1, "firing"), (D2, "firing")]
    table = run_cli(ws, "alerts", "list")
    assert table.returncode == 0 and "stuck10" in table.stdout


def test_cli_silences(run_cli: Any, settings: Settings) -> None:
    ws = settings.workspace
    until = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    added = run_cli(ws, "alerts", "silence", "add", "--rep", "r1", "--to", until,
                    "--reason", "Anna is on holiday")
    assert added.returncode == 0, added.stderr
    listed = run_cli(ws, "alerts", "silence", "list", "--format", "json").json()["silences"]
    assert [(s["rep"], s["reason"], s["created_by"], s["active"]) for s in listed] == [
        ("r1", "Anna is on holiday", "local", True)]
    alerts = run_cli(ws, "alerts", "evaluate", "--format", "json")
    assert alerts.returncode == 0
    shown = {a["subject"]: a["silenced"] for a in run_cli(
        ws, "alerts", "list", "--format", "json").json()["alerts"]}
    assert shown == {D1: True, D2: False}
    assert run_cli(ws, "alerts", "silence", "remove", str(listed[0]["id"])).returncode == 0
    assert run_cli(ws, "alerts", "silence", "list", "--format", "json").json()[
        "silences"] == []


@pytest.mark.parametrize(("args", "message"), [
    (("alerts", "test", "nosuch"), "no alert rule 'nosuch'; known: sla5, stuck10, pace20"),
    (("alerts", "silence", "add", "--reason", "x", "--for", "1d"),
     "a silence names a rule, a rep or a team"),
    (("alerts", "silence", "add", "--rep", "r1", "--for", "1d", "--reason", " "),
     "say why alerts are silenced"),
    (("alerts", "silence", "add", "--rep", "r1", "--reason", "x", "--to", "2026-13-01"),
     "--to: Value error, month must be in 1..12"),
    (("alerts", "backtest", "stuck10", "--range", "all"), "a backtest covers at most 366"),
])
def test_cli_says_what_is_wrong(run_cli: Any, settings: Settings, args: tuple[str, ...],
                                message: str) -> None:
    result = run_cli(settings.workspace, *args)
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split()), result.stderr


def test_cli_lists_a_broken_file_with_its_problem(run_cli: Any, settings: Settings) -> None:
    (settings.workspace / "alerts.yaml").write_text(
        "rules:\n  - name: x\n    kind: deal_stuck\n    owner: head\n    days: 3\n",
        encoding="utf-8")
    listed = run_cli(settings.workspace, "alerts", "list", "--format", "json").json()
    assert listed["problem"] == "alerts.yaml: rule 'x', field 'recipients': this field is " \
        "required"


# -- REST ---------------------------------------------------------------------------------
def token_of(settings: Settings, username: str) -> dict[str, str]:
    user = next(u for u in list_users(settings) if u.username == username)
    return {"Authorization": f"Bearer {new_token(settings, user.user_id, 'test')[1]}"}


def test_rest_lists_alerts_in_each_callers_scope(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    evaluated = client.post("/api/v1/alerts/evaluate", json={},
                            headers=token_of(settings, "head"))
    assert evaluated.status_code == 200, evaluated.text
    seen = {}
    for user in ("head", "lead_n", "lead_s", "anna"):
        answer = client.get("/api/v1/alerts", headers=token_of(settings, user))
        assert answer.status_code == 200
        seen[user] = sorted(a["subject"] for a in answer.json()["alerts"])
    assert seen == {"head": [D1, D2], "lead_n": [D1], "lead_s": [D2], "anna": [D1]}
    # The backtest counts what the caller may see: of D1's two firings and D3's (r2,
    # North), the rep r1 sees D1's, South's lead none.
    september = "/api/v1/alerts/rules/stuck10/backtest?from=2026-09-01&to=2026-09-30"
    rep = client.get(september, headers=token_of(settings, "anna")).json()
    assert rep["firings"] == 2 and {f["rep"] for f in rep["shown"]} == {"r1"}
    assert client.get(september, headers=token_of(settings, "lead_n")).json()["firings"] == 3
    assert client.get(september, headers=token_of(settings, "lead_s")).json()["firings"] == 0
    assert client.post("/api/v1/alerts/evaluate", json={},
                       headers=token_of(settings, "lead_n")).status_code == 403
    assert client.get("/api/v1/alerts/log", headers=token_of(settings, "anna")
                      ).status_code == 403


def test_rest_changes_rules_only_when_valid(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    head = token_of(settings, "head")
    bad = client.put("/api/v1/alerts/rules/late", headers=head, json={"definition": {
        "kind": "lead_not_contacted", "owner": "head", "recipients": {"roles": ["head"]},
        "sla_minutes": -5}})
    assert bad.status_code == 400
    assert bad.json()["message"] == ("the rule: rule 'late', field 'sla_minutes': Input "
                                     "should be greater than or equal to 1")
    good = client.put("/api/v1/alerts/rules/late", headers=head, json={"definition": {
        "kind": "lead_not_contacted", "owner": "head", "recipients": {"roles": ["head"]},
        "sla_minutes": 15, "every": "10m"}})
    assert good.status_code == 200, good.text
    saved = yaml.safe_load((settings.workspace / "alerts.yaml").read_text(encoding="utf-8"))
    assert saved["rules"][-1] == {"name": "late", "kind": "lead_not_contacted", "owner": "head",
                                  "recipients": {"roles": ["head"]}, "every": "10m",
                                  "sla_minutes": 15}
    draft = client.post("/api/v1/alerts/backtest", headers=head, json={
        "definition": {**STUCK, "name": "stuck20", "days": 20}, "from": "2026-09-01",
        "to": "2026-09-30"})
    # 20 days: D1 in new 19 days (no), D3 in new 24 days (from 09-21 11:00): 1.
    assert draft.status_code == 200 and draft.json()["firings"] == 1
    assert client.put("/api/v1/alerts/rules/late", headers=token_of(settings, "lead_n"),
                      json={"definition": {}}).status_code == 403
    gone = client.delete("/api/v1/alerts/rules/late", headers=head)
    assert gone.status_code == 200 and "late" not in [r["name"] for r in gone.json()["rules"]]


def test_rest_silences_keep_to_the_callers_team(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    until = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    lead_n = token_of(settings, "lead_n")
    made = client.post("/api/v1/alerts/silences", headers=lead_n,
                       json={"rep": "r2", "ends": until, "reason": "training"})
    assert made.status_code == 201, made.text
    assert made.json()["team"] == "North"  # a team lead's silence stays in their team
    other = client.post("/api/v1/alerts/silences", headers=lead_n,
                        json={"rep": "r3", "ends": until, "reason": "x"})
    assert other.status_code == 403
    assert client.post("/api/v1/alerts/silences", headers=token_of(settings, "anna"),
                       json={"rep": "r1", "ends": until, "reason": "x"}).status_code == 403
    assert client.get("/api/v1/alerts/silences", headers=token_of(settings, "lead_s")
                      ).json()["silences"] == []
    assert len(client.get("/api/v1/alerts/silences", headers=token_of(settings, "head")
                          ).json()["silences"]) == 1
    ended = client.delete(f"/api/v1/alerts/silences/{made.json()['id']}", headers=lead_n)
    assert ended.status_code == 200 and ended.json()["removed_by"] == "lead_n"


# -- the web page ----------------------------------------------------------------------------
def sign_in(app: Any, username: str) -> TestClient:
    client = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", data={"username": username, "password": PASSWORD,
                                         "csrf": token.group(1)}, follow_redirects=False)
    assert answer.status_code == 303
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def alert_rows(html: str) -> list[str]:
    table = html.split('data-table="alerts"')[1].split("</table>")[0] \
        if 'data-table="alerts"' in html else ""
    return re.findall(r"\b(D\d) ", table)  # the deal, in any language


def test_the_page_shows_each_role_its_alerts_and_tools(settings: Settings) -> None:
    app = create_app(settings)
    head = sign_in(app, "head")
    evaluated = head.post("/alerts/evaluate", data={"csrf": csrf_of(head.get("/alerts").text)},
                          follow_redirects=False)
    assert evaluated.status_code == 303
    page = head.get("/alerts").text
    assert "Evaluated: 2 changes, 3 notices." in page
    assert sorted(alert_rows(page)) == ["D1", "D2"]
    assert 'id="editor"' in page and 'id="yaml"' in page and 'action="/alerts/evaluate"' in page
    lead = sign_in(app, "lead_s").get("/alerts").text
    assert alert_rows(lead) == ["D2"]
    assert 'id="editor"' not in lead and 'action="/alerts/silences"' in lead
    rep = sign_in(app, "anna").get("/alerts").text
    assert alert_rows(rep) == ["D1"] and 'action="/alerts/silences"' not in rep
    assert 'href="/alerts" aria-current="page"' in rep  # in the menu, marked


def test_the_rules_table_names_recipients_in_the_readers_language(settings: Settings) -> None:
    head = sign_in(create_app(settings), "head")
    page = head.get("/alerts").text
    rules = page.split('data-table="rules"')[1].split("</table>")[0]
    assert "roles: head of sales, team lead" in rules  # the rules' BOSSES
    chosen = head.post("/preferences/language", data={"csrf": csrf_of(page), "lang": "uk",
                                                      "next": "/alerts"})
    assert chosen.status_code == 200
    ukrainian = chosen.text
    rules = ukrainian.split('data-table="rules"')[1].split("</table>")[0]
    assert "ролі: керівник продажів, керівник команди" in rules, rules[:2000]
    head.post("/preferences/language", data={"csrf": csrf_of(ukrainian), "lang": "en",
                                              "next": "/alerts"})  # as the other tests expect


def test_the_editor_saves_a_rule_and_backtests_a_draft(settings: Settings) -> None:
    app = create_app(settings)
    head = sign_in(app, "head")
    token = csrf_of(head.get("/alerts").text)
    form = {"csrf": token, "kind": "deal_stuck", "name": "stuck20", "owner": "head",
            "severity": "critical", "every": "", "for": "", "repeat": "1d",
            "no_data": "keep", "roles": ["head", "team_lead"], "teams": "", "reps": "",
            "users": "", "notify_resolved": "1", "enabled": "1", "days": "20",
            "sla_minutes": "99", "bt_from": "2026-09-01", "bt_to": "2026-09-30"}
    tried = head.post("/alerts/backtest", data=form)
    assert tried.status_code == 200
    assert 'data-firings="1"' in tried.text and "Deal D3" in tried.text
    assert "stuck20" not in (settings.workspace / "alerts.yaml").read_text(encoding="utf-8")
    saved = head.post("/alerts/rules", data=form, follow_redirects=False)
    assert saved.status_code == 303
    rules = yaml.safe_load((settings.workspace / "alerts.yaml").read_text(encoding="utf-8"))
    assert rules["rules"][-1] == {"name": "stuck20", "kind": "deal_stuck", "owner": "head",
                                  "recipients": {"roles": ["head", "team_lead"]},
                                  "repeat": "1d", "severity": "critical", "days": 20.0}
    wrong = head.post("/alerts/rules", data={**form, "days": "", "name": "stuck0"})
    assert wrong.status_code == 400
    assert "field &#39;kind&#39;: give days, or over_team_p90: true" in wrong.text
    yaml_saved = head.post("/alerts/yaml", data={"csrf": token, "text": "rules: []\n"},
                           follow_redirects=False)
    assert yaml_saved.status_code == 303
    assert load_text(settings) == "rules: []\n"
    forged = head.post("/alerts/yaml", data={"csrf": "forged", "text": "rules: []\n"})
    assert forged.status_code == 403


def load_text(settings: Settings) -> str:
    return (settings.workspace / "alerts.yaml").read_text(encoding="utf-8")


def test_a_team_lead_silences_only_their_team_on_the_page(settings: Settings) -> None:
    app = create_app(settings)
    lead = sign_in(app, "lead_n")
    token = csrf_of(lead.get("/alerts").text)
    until = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    refused = lead.post("/alerts/silences", data={"csrf": token, "rep": "r3", "ends": until,
                                                  "reason": "x"})
    assert refused.status_code == 403
    made = lead.post("/alerts/silences", data={"csrf": token, "rep": "r1", "ends": until,
                                               "reason": "sick"}, follow_redirects=False)
    assert made.status_code == 303
    page = lead.get("/alerts").text
    assert "sick" in page.split('data-table="silences"')[1]
