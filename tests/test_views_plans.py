"""Plan vs actual, the reverse plan and targets: REST gives the CLI's JSON, scoped, checked.

The company is the hand-counted one of tests/test_plans.py (Europe/Kyiv; team North:
r1 Alice, r2 Bob, r3 Carol; team South: r4 Dan), with its five imported targets:

    id  kpi        period              rep  team   value
    1   deals_won  2024-04-01 – 04-30  r1   North  6      (a rep target: r1's)
    2   calls      2024-04-01 – 04-30  r2          30
    3   calls      2024-04-01 – 04-30       North  60
    4   revenue    2024-04-01 – 04-30              6000   (the company's)
    5   deals_won  2024-03-01 – 03-31  r1          4
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import zoneinfo
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.server import create_app
from tests.conftest import CliResult
from tests.test_plans import REPS, SOURCE, TARGETS, _activities, _deals, write_folder

PASSWORD = "correct horse battery"
USERS = {
    "head": {"role": "head"},
    "lead_north": {"role": "team_lead", "team": "North"},
    "rep_r1": {"role": "rep", "rep_id": "r1"},
}


def _build(workspace: Path, data: Path) -> Path:
    settings = Settings(workspace=workspace)
    save_workspace_settings(settings, timezone="Europe/Kyiv")
    folder = write_folder(data, {"reps.csv": REPS, "activities.csv": _activities(),
                                 "deals.csv": _deals(), "targets.csv": TARGETS})
    report = SalesKpiService(Settings(workspace=workspace)).import_path(
        folder, mapping=None, source=SOURCE, dry_run=False)
    assert report.ok, report.errors
    for name, spec in USERS.items():
        add_user(Settings(workspace=workspace), name, PASSWORD, spec["role"],
                 rep_id=spec.get("rep_id"), team=spec.get("team"))
    return workspace


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The company with its targets and users; read-only tests only (copy it to write)."""
    root = tmp_path_factory.mktemp("views-plans")
    return _build(root / "ws", root / "data")


@pytest.fixture(scope="module")
def app(company: Path) -> Any:
    return create_app(Settings(workspace=company))


@pytest.fixture
def own_company(company: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(company, tmp_path / "ws"))


def client_for(app: Any, username: str) -> tuple[TestClient, str]:
    client = TestClient(app)
    response = client.post("/api/v1/session", json={"username": username,
                                                    "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client, response.json()["csrf"]


def token_for(workspace: Path, username: str) -> dict[str, str]:
    con = sqlite3.connect(workspace / "state.sqlite")
    try:
        (user_id,) = con.execute("SELECT id FROM users WHERE username = ?",
                                 (username,)).fetchone()
    finally:
        con.close()
    return {"Authorization": f"Bearer {issue_token(Settings(workspace=workspace), user_id, 't')}"}


def cli_json(run_cli: Any, workspace: Path, *args: str) -> dict[str, Any]:
    result: CliResult = run_cli(workspace, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def without_page(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "page"}


def one_line(text: str) -> str:
    """Console output unwrapped: rich breaks long messages at 80 columns."""
    return " ".join(text.split())


def stored_targets(workspace: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(workspace / "state.sqlite")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------- REST == CLI


@pytest.mark.parametrize(("params", "args", "expected_kpis"), [
    # Every target of 2024-04-10: the four April ones (March's is over), and the plans
    # that are sums of the reps' (deals won for North and the company, the company's calls).
    ({"at": "2024-04-10"}, ["--at", "2024-04-10"],
     ["deals_won", "calls", "calls", "revenue", "deals_won", "deals_won", "calls"]),
    ({"at": "2024-04-10", "by": "rep", "period": "month"},
     ["--at", "2024-04-10", "--by", "rep", "--period", "month"], ["deals_won", "calls"]),
    # North's lines: r1's deals, r2's calls (r2 is in North), the team's own calls and
    # its summed deals; not the company's.
    ({"at": "2024-04-10", "team": "North"}, ["--at", "2024-04-10", "--team", "North"],
     ["deals_won", "calls", "calls", "deals_won"]),
])
def test_plan_json_equals_the_cli(app: Any, company: Path, run_cli: Any, params: dict[str, str],
                                  args: list[str], expected_kpis: list[str]) -> None:
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/plan", params=params)
    assert response.status_code == 200, response.text
    api = response.json()
    cli = cli_json(run_cli, company, "plan", *args)
    assert without_page(api) == without_page(cli)
    assert sorted(x["kpi"] for x in api["lines"]) == sorted(expected_kpis)
    count = len(expected_kpis)
    assert api["page"] == {"total_rows": count, "limit": 1000, "offset": 0}
    assert cli["page"] == {"total_rows": count, "limit": None, "offset": 0}
    assert (api["at"], api["timezone"]) == ("2024-04-10", "Europe/Kyiv")


@pytest.mark.parametrize(("params", "args"), [
    ([("goal", "deals_won=10"), ("rep", "r1"), ("at", "2024-04-10")],
     ["--goal", "deals_won=10", "--rep", "r1", "--at", "2024-04-10"]),
    ([("goal", "revenue=5500"), ("team", "North"), ("at", "2024-04-10"),
      ("rate", "call_to_meeting=15%"), ("rate", "meeting_to_won=1/3"), ("deal_size", "1000"),
      ("working_days", "21")],
     ["--goal", "revenue=5500", "--team", "North", "--at", "2024-04-10", "--rate",
      "call_to_meeting=15%", "--rate", "meeting_to_won=1/3", "--deal-size", "1000",
      "--working-days", "21"]),
])
def test_reverse_plan_json_equals_the_cli(app: Any, company: Path, run_cli: Any,
                                          params: list[tuple[str, str]],
                                          args: list[str]) -> None:
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/reverse-plan", params=params)
    assert response.status_code == 200, response.text
    api = response.json()
    assert api == cli_json(run_cli, company, "plan", "reverse", *args)
    if api["rep_id"] == "r1":
        # r1's history (tests/test_plans.py): 10 deals / (1/5) = 50 meetings, / (1/4) = 200.
        assert (api["rep_name"], api["history"]["calls"]) == ("Alice", 20)
        assert [n["per_period"] for n in api["needs"]] == [10, 50, 200]
    else:
        # 5,500 / 1,000 = 5.5 -> 6 deals; 6 * 3 = 18 meetings; 18 / 0.15 = 120 calls.
        assert (api["team"], api["history"]) == ("North", None)
        assert [n["per_period"] for n in api["needs"]] == [6, 18, 120]


@pytest.mark.parametrize(("params", "args", "expected", "total"), [
    ({"at": "2024-04-10"}, ["--at", "2024-04-10"],
     [("deals_won", "r1", "North"), ("calls", "r2", None), ("calls", None, "North"),
      ("revenue", None, None)], 4),
    ({"kpi": "calls", "limit": "1", "offset": "1"},
     ["--kpi", "calls", "--limit", "1", "--offset", "1"], None, 2),
])
def test_targets_json_equals_the_cli(app: Any, company: Path, run_cli: Any,
                                     params: dict[str, str], args: list[str],
                                     expected: list[tuple[Any, ...]] | None,
                                     total: int) -> None:
    client, _csrf = client_for(app, "head")
    response = client.get("/api/v1/targets", params=params)
    assert response.status_code == 200, response.text
    api = response.json()
    cli = cli_json(run_cli, company, "target", "list", *args)
    assert without_page(api) == without_page(cli)
    assert api["page"]["total_rows"] == cli["page"]["total_rows"] == total
    if expected is not None:
        assert {(t["kpi"], t["rep_id"], t["team"]) for t in api["targets"]} == set(expected)
        assert len(api["targets"]) == len(expected)
    else:
        assert len(api["targets"]) == 1 and api["page"] == cli["page"] == {
            "total_rows": 2, "limit": 1, "offset": 1}


# ---------------------------------------------------------------- against SQL


def test_plan_actual_matches_hand_written_sql(app: Any, company: Path) -> None:
    """North's calls up to the end of 2024-04-10 in Kyiv, counted straight from DuckDB."""
    client, _csrf = client_for(app, "head")
    lines = client.get("/api/v1/plan", params={"at": "2024-04-10", "by": "team"}).json()["lines"]
    north = next(x for x in lines if x["kpi"] == "calls" and x["team"] == "North")
    kyiv = zoneinfo.ZoneInfo("Europe/Kyiv")

    def utc(day: dt.date) -> dt.datetime:
        midnight = dt.datetime.combine(day, dt.time(), kyiv)
        return midnight.astimezone(dt.UTC).replace(tzinfo=None)

    con = duckdb.connect(str(company / "analytics.duckdb"), read_only=True)
    try:
        (calls,) = con.execute(
            """SELECT count(*) FROM activities a
               JOIN reps r ON r.id = a.rep_id AND r.datasource = a.datasource
               WHERE r.team = 'North' AND a.type = 'call'
                 AND (a.direction IS NULL OR a.direction <> 'in')
                 AND a.occurred_at >= ? AND a.occurred_at < ?""",
            [utc(dt.date(2024, 4, 1)), utc(dt.date(2024, 4, 11))]).fetchone()
    finally:
        con.close()
    assert calls == 18  # 6 of Alice's + 12 of Bob's (tests/test_plans.py)
    assert north["actual"] == calls
    assert north["gap"] == 60 - calls


# ---------------------------------------------------------------- writes


def test_upsert_twice_inserts_then_updates_one_row(own_company: Path) -> None:
    own_app = create_app(Settings(workspace=own_company))
    client, csrf = client_for(own_app, "head")
    headers = {"X-CSRF-Token": csrf}
    body = {"kpi": "calls", "value": 40, "rep": "Bob", "start": "2024-05-20"}
    first = client.put("/api/v1/targets", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert (first.json()["change"], first.json()["rep_id"], first.json()["period_start"],
            first.json()["period_end"], first.json()["value"]) == (
        "inserted", "r2", "2024-05-01", "2024-05-31", 40)
    second = client.put("/api/v1/targets", json={**body, "value": "45"}, headers=headers)
    assert second.status_code == 200, second.text
    assert (second.json()["change"], second.json()["value"]) == ("updated", 45)
    assert second.json()["id"] == first.json()["id"]
    rows = stored_targets(own_company, "SELECT value FROM targets WHERE kpi = 'calls' AND "
                          "rep_id = 'r2' AND period_start = '2024-05-01'")
    assert rows == [(45.0,)]
    assert stored_targets(own_company, "SELECT count(*) FROM targets") == [(6,)]

    # Without the CSRF token a cookie session cannot change anything.
    assert client.put("/api/v1/targets", json=body).json()["error"] == "csrf"

    # Delete by key, then the same again: nothing left, a 404 with a stable code.
    gone = client.request("DELETE", "/api/v1/targets", headers=headers, params={
        "kpi": "calls", "rep": "r2", "start": "2024-05-01"})
    assert gone.status_code == 200 and gone.json() == {"deleted": 1}
    again = client.request("DELETE", "/api/v1/targets", headers=headers, params={
        "kpi": "calls", "rep": "r2", "start": "2024-05-01"})
    assert again.status_code == 404 and again.json()["error"] == "no_such_target"
    # And by ID: the imported March target (id 5 of the fixture).
    assert client.delete("/api/v1/targets/5", headers=headers).json() == {"deleted": 1}
    assert client.delete("/api/v1/targets/5", headers=headers).status_code == 404
    assert stored_targets(own_company, "SELECT count(*) FROM targets") == [(4,)]

    # A script with a manager's token needs no CSRF token.
    script = TestClient(own_app).put("/api/v1/targets", headers=token_for(own_company, "head"),
                                     json={"kpi": "win_rate", "value": "80%"})
    assert script.status_code == 200, script.text
    assert (script.json()["change"], script.json()["level"], script.json()["value"]) == (
        "inserted", "company", 0.8)


def test_cli_set_and_delete_print_the_views(run_cli: Any, own_company: Path) -> None:
    set_ = cli_json(run_cli, own_company, "target", "set", "meetings", "12", "--team", "South",
                    "--period", "week", "--start", "2024-05-15")
    assert (set_["change"], set_["level"], set_["period_start"], set_["period_end"]) == (
        "inserted", "team", "2024-05-13", "2024-05-19")
    deleted = cli_json(run_cli, own_company, "target", "delete", "--id", str(set_["id"]))
    assert deleted == {"deleted": 1}
    missing = run_cli(own_company, "target", "delete", "--id", str(set_["id"]))
    assert missing.returncode == 1 and "no such target" in missing.stderr


# ---------------------------------------------------------------- scope


def test_a_rep_sees_only_their_targets_and_cannot_write(app: Any, company: Path) -> None:
    headers = token_for(company, "rep_r1")
    client = TestClient(app)
    listed = client.get("/api/v1/targets", headers=headers)
    assert listed.status_code == 200, listed.text
    # r1's two targets (April's deals, March's deals): not Bob's, North's or the company's.
    assert sorted((t["kpi"], t["period_start"], t["rep_id"]) for t in listed.json()["targets"]) \
        == [("deals_won", "2024-03-01", "r1"), ("deals_won", "2024-04-01", "r1")]
    assert listed.json()["page"]["total_rows"] == 2
    plan = client.get("/api/v1/plan", params={"at": "2024-04-10"}, headers=headers).json()
    assert [(x["kpi"], x["rep_id"], x["actual"]) for x in plan["lines"]] == [
        ("deals_won", "r1", 1)]
    # Someone else's targets are as unknown as a rep who does not exist.
    other = client.get("/api/v1/targets", params={"rep": "r2"}, headers=headers)
    assert other.status_code == 404 and other.json()["error"] == "unknown_rep"
    # A rep's reverse plan is their own.
    mine = client.get("/api/v1/reverse-plan", params={"goal": "deals_won=10",
                                                      "at": "2024-04-10"}, headers=headers)
    assert mine.status_code == 200 and mine.json()["rep_id"] == "r1"
    team = client.get("/api/v1/reverse-plan", params={"goal": "deals_won=10", "team": "North"},
                      headers=headers)
    assert team.status_code == 403 and team.json()["error"] == "forbidden"

    for method, path, kwargs in [
        ("PUT", "/api/v1/targets", {"json": {"kpi": "calls", "value": 99, "rep": "r1"}}),
        ("DELETE", "/api/v1/targets/1", {}),
        ("DELETE", "/api/v1/targets", {"params": {"kpi": "deals_won", "rep": "r1"}}),
    ]:
        response = client.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == "forbidden"
        assert response.json()["message"]
    assert stored_targets(company, "SELECT count(*) FROM targets") == [(5,)]


def test_a_team_lead_sees_their_team(app: Any, company: Path) -> None:
    client, _csrf = client_for(app, "lead_north")
    listed = client.get("/api/v1/targets").json()["targets"]
    # North's reps' targets and North's own; not the company's revenue target.
    assert sorted((t["kpi"], t["rep_id"] or t["team"], t["period_start"]) for t in listed) == [
        ("calls", "North", "2024-04-01"), ("calls", "r2", "2024-04-01"),
        ("deals_won", "r1", "2024-03-01"), ("deals_won", "r1", "2024-04-01")]
    plan = client.get("/api/v1/plan", params={"at": "2024-04-10"}).json()
    assert sorted((x["kpi"], x["rep_id"] or x["team"], x["actual"]) for x in plan["lines"]) == [
        ("calls", "North", 18), ("calls", "r2", 12), ("deals_won", "North", 3),
        ("deals_won", "r1", 1)]  # North's deals plan: the sum of its reps'
    summed = next(x for x in plan["lines"] if x["kpi"] == "deals_won" and x["level"] == "team")
    assert (summed["plan"], summed["plan_source"]) == (6, "sum_of_reps")


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "args"), [
    ("GET", "/api/v1/targets", {"params": {"rep": "Zed"}}, 404, "unknown_rep",
     ["target", "list", "--rep", "Zed"]),
    ("PUT", "/api/v1/targets", {"json": {"kpi": "deal_won", "value": 5}}, 400, "unknown_kpi",
     ["target", "set", "deal_won", "5"]),
    ("GET", "/api/v1/reverse-plan", {"params": {"goal": "deals_won=5", "team": "West"}}, 404,
     "unknown_team", ["plan", "reverse", "--goal", "deals_won=5", "--team", "West"]),
    ("GET", "/api/v1/plan", {"params": {"period": "fortnight"}}, 400, "bad_period",
     ["plan", "--period", "fortnight"]),
    ("GET", "/api/v1/plan", {"params": {"by": "pipeline"}}, 400, "bad_by",
     ["plan", "--by", "pipeline"]),
    ("GET", "/api/v1/plan", {"params": {"team": "Nort"}}, 400, "unknown_team",
     ["plan", "--team", "Nort"]),
    ("PUT", "/api/v1/targets", {"json": {"kpi": "calls", "value": "lots"}}, 400, "bad_number",
     ["target", "set", "calls", "lots"]),
    ("GET", "/api/v1/reverse-plan", {"params": {"goal": "revenue=5000", "rate":
                                                "call_to_won=0.1"}}, 400, "no_deal_size",
     ["plan", "reverse", "--goal", "revenue=5000", "--rate", "call_to_won=0.1"]),
], ids=["unknown rep", "unknown kpi", "unknown team", "bad period", "bad by",
        "misspelled team", "bad number", "no deal size"])
def test_bad_input_is_the_same_problem_everywhere(
        app: Any, company: Path, run_cli: Any, method: str, path: str, kwargs: dict[str, Any],
        status: int, code: str, args: list[str]) -> None:
    client, csrf = client_for(app, "head")
    response = client.request(method, path, headers={"X-CSRF-Token": csrf}, **kwargs)
    assert response.status_code == status, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (problem["status"], problem["error"], problem["title"]) == (status, code, code)
    assert problem["type"] == f"urn:saleskpi:error:{code}"
    assert problem["detail"] == problem["message"] and "Traceback" not in response.text
    cli: CliResult = run_cli(company, *args)
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert one_line(f"Error: {problem['message']}") in one_line(cli.stderr)
    assert "Traceback" not in cli.stderr
    assert stored_targets(company, "SELECT count(*) FROM targets") == [(5,)]
