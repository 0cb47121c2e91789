"""Contests on the hand-counted company of tests/contest_company.py (Europe/Kyiv, USD).

Every expected place and score below is counted by hand from that module's table
(its docstring shows the counting); a few counts are checked once more with SQL
written by hand on the DuckDB file. The rules: ranking by value, by points, by the
share of each one's own target (prorated by working days, 8 March a holiday), teams
by the per-person average of their active reps, ties shared or broken by a KPI,
weekly head to head, and a closed contest that keeps its results while the data
changes. Then the surfaces: who sees what (REST with each role's token), the CLI's
JSON equal to REST's, MCP, the web pages, and the notices of a closed contest.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.contest_rules import places, round_robin, span_target, weeks
from saleskpi.domain.contests import Standings, parse_definition
from saleskpi.domain.i18n import set_language
from saleskpi.domain.settings import Settings
from saleskpi.domain.targets import TargetRecord
from saleskpi.service import contests as contest_service
from saleskpi.service.auth import add_user, issue_token, user_by_id
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.mcp.tools import available_tools, call
from saleskpi.surfaces.server import create_app
from saleskpi.views.base import LOCAL
from tests.conftest import CliResult
from tests.contest_company import write_company

PASSWORD = "correct horse battery"
P = {"start": "2024-03-04", "end": "2024-03-17"}  # the two weeks
MARCH = {"start": "2024-03-01", "end": "2024-03-31"}
EVERYONE_BUT_GLEB = ["a1", "b1", "c1", "d1", "e1", "f1"]
POINTS = [{"kpi": "calls", "points": 1}, {"kpi": "meetings", "points": 5},
          {"kpi": "deals_won", "points": 20}]
# Users: the head, three reps and the two team leads.
USERS = {"head": {"role": "head"}, "eve": {"role": "rep", "rep_id": "e1", "lang": "uk"},
         "anna": {"role": "rep", "rep_id": "a1"}, "gleb": {"role": "rep", "rep_id": "g1"},
         "lena": {"role": "team_lead", "team": "North"},
         "sam": {"role": "team_lead", "team": "South"}}


class Company:
    """The imported company, its service, and an API token per user."""

    def __init__(self, root: Path) -> None:
        data, workspace = write_company(root)
        self.root, self.data = root, data
        self.settings = Settings(workspace=workspace)
        self.service = SalesKpiService(self.settings)
        report = self.service.import_path(data, mapping=None, source=None, dry_run=False)
        assert report.ok, report.errors
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        for name, spec in USERS.items():
            user = add_user(self.settings, name, PASSWORD, spec["role"],
                            rep_id=spec.get("rep_id"), team=spec.get("team"),
                            lang=spec.get("lang", "en"))
            self.ids[name] = user.user_id
            self.tokens[name] = issue_token(self.settings, user.user_id, "tests")
        self.client = TestClient(create_app(self.settings))
        # March revenue plans; Anna's W1 plan and Chen's W2 plan lie inside their month.
        for rep, value, first, last in (
                ("a1", 3000, "2024-03-01", "2024-03-31"), ("b1", 1000, "2024-03-01", "2024-03-31"),
                ("c1", 4000, "2024-03-01", "2024-03-31"), ("d1", 7000, "2024-03-01", "2024-03-31"),
                ("a1", 500, "2024-03-04", "2024-03-10"), ("c1", 100, "2024-03-11", "2024-03-17")):
            self.service.set_target(kpi="revenue", period_start=dt.date.fromisoformat(first),
                                    period_end=dt.date.fromisoformat(last), value=value,
                                    rep_id=rep)

    def contest(self, **fields: Any) -> int:
        definition = parse_definition({"name": "Test", "members": EVERYONE_BUT_GLEB, **P,
                                       **fields})
        return contest_service.create(self.service, definition, actor="head").id

    def board(self, contest_id: int, user: str = "head") -> Standings:
        caller = LOCAL if user == "head" else user_by_id(self.settings, self.ids[user])
        assert caller is not None
        contest = contest_service.find(self.service, contest_id, caller)
        return contest_service.board(self.service, contest, caller)

    def get(self, path: str, user: str = "head", **params: Any) -> Any:
        return self.client.get(path, params=params,
                               headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def post(self, path: str, user: str = "head", body: Any = None, **params: Any) -> Any:
        return self.client.post(path, params=params, json=body,
                                headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.settings.analytics_path), read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    return Company(tmp_path_factory.mktemp("contests"))


def places_of(board: Standings) -> dict[str, tuple[int | None, float | None]]:
    return {e.key: (e.rank, None if e.score is None else round(e.score, 6))
            for e in board.entries}


# -- the fixture, checked with SQL written by hand ------------------------------------------
def test_the_two_weeks_hold_the_calls_counted_by_hand(company: Company) -> None:
    # 4 March 00:00 in Kyiv (UTC+2) is 3 March 22:00 UTC; 18 March 00:00 is 17 March 22:00.
    rows = company.sql("""SELECT rep_id, count(*) FROM activities
                          WHERE type = 'call' AND coalesce(direction, '') <> 'in'
                            AND occurred_at >= TIMESTAMP '2024-03-03 22:00:00'
                            AND occurred_at < TIMESTAMP '2024-03-17 22:00:00'
                          GROUP BY rep_id""")
    assert dict(rows) == {"a1": 8, "b1": 8, "c1": 10, "g1": 8, "d1": 20, "e1": 4}


# -- ranking rules ------------------------------------------------------------------------------
def test_ranking_by_value_shares_tied_places(company: Company) -> None:
    board = company.board(company.contest(kpi="calls"))
    # Dana 20, Chen 10, Anna 8 and Boris 8 (one place, the next is 5th), Eve 4, Fedir 0.
    assert places_of(board) == {"d1": (1, 20), "c1": (2, 10), "a1": (3, 8), "b1": (3, 8),
                                "e1": (5, 4), "f1": (6, 0)}
    assert [e.key for e in board.entries] == ["d1", "c1", "a1", "b1", "e1", "f1"]
    assert board.winners == ["d1"] and board.unit == "count"


def test_points_formula_and_a_tie_at_the_last_winning_place(company: Company) -> None:
    board = company.board(company.contest(points=POINTS, winners=2))
    assert places_of(board) == {"d1": (1, 75), "a1": (2, 38), "b1": (2, 38), "c1": (4, 35),
                                "e1": (5, 4), "f1": (6, 0)}
    # Two places win; Anna and Boris share the second: three winners.
    assert sorted(board.winners) == ["a1", "b1", "d1"]
    dana = board.entries[0]
    assert dana.breakdown == {"calls": 20, "meetings": 3, "deals_won": 2}
    assert board.unit == "points" and board.higher_is_better


def test_a_tie_broken_by_revenue(company: Company) -> None:
    board = company.board(company.contest(points=POINTS, winners=2, tie_rule="kpi:revenue"))
    # 38 points each; Boris's revenue 2000 beats Anna's 1000.
    assert places_of(board)["b1"] == (2, 38) and places_of(board)["a1"] == (3, 38)
    assert board.winners == ["d1", "b1"]
    assert {e.key: e.tiebreak for e in board.entries}["a1"] == 1000


def test_teams_by_the_per_person_average_of_their_active_reps(company: Company) -> None:
    board = company.board(company.contest(points=POINTS, participants="teams",
                                          members=["North", "South"]))
    # North: (38 + 38 + 35 + 13) / 4 = 31. South: Fedir did nothing in the two weeks, so
    # (75 + 4) / 2 = 39.5 (over all three it would be 26.3; by total North had 124 > 79).
    assert places_of(board) == {"South": (1, 39.5), "North": (2, 31)}
    south, north = board.entries
    assert (south.members, south.active, north.members, north.active) == (3, 2, 4, 4)
    assert south.breakdown == {"calls": 12, "meetings": 1.5, "deals_won": 1}
    assert board.winners == ["South"]


def test_ranking_by_the_share_of_each_ones_own_target(company: Company) -> None:
    board = company.board(company.contest(kpi="revenue", rank_by="target", **MARCH,
                                          members=["a1", "b1", "c1", "d1", "e1"]))
    # March revenue / March plan: Boris 2000/1000, Anna 3000/3000, Chen 2000/4000 and Dana
    # 3500/7000 (a shared third). Anna's W1 plan and Chen's W2 plan lie inside their
    # month's: the month's plan counts, once. Eve has no plan: no place.
    assert places_of(board) == {"b1": (1, 2.0), "a1": (2, 1.0), "c1": (3, 0.5),
                                "d1": (3, 0.5), "e1": (None, None)}
    by_key = {e.key: e for e in board.entries}
    assert (by_key["a1"].value, by_key["a1"].target) == (3000, 3000)
    # Eve's 900 closed at 00:30 on 1 April in Kyiv: not March's.
    assert (by_key["e1"].value, by_key["e1"].note) == (0, "no_target")
    assert board.entries[-1].key == "e1" and board.unit == "ratio"


def test_a_months_target_shared_by_working_days(company: Company) -> None:
    board = company.board(company.contest(kpi="revenue", rank_by="target",
                                          start="2024-03-04", end="2024-03-10",
                                          members=["a1", "b1", "c1", "d1"]))
    # March has 20 working days (8 March is a holiday), 4-10 March has 4: a fifth of the
    # month's plan. Boris 0/200, Chen 1500/800, Dana 3000/1400; Anna has a plan for
    # exactly these days (500): 1000/500.
    assert places_of(board) == {"d1": (1, round(3000 / 1400, 6)), "a1": (2, 2.0),
                                "c1": (3, 1.875), "b1": (4, 0.0)}
    assert {e.key: e.target for e in board.entries} == {"d1": 1400, "a1": 500, "c1": 800,
                                                        "b1": 200}


def test_teams_by_target_average_the_reps_with_a_target(company: Company) -> None:
    board = company.board(company.contest(kpi="revenue", rank_by="target", **MARCH,
                                          participants="teams", members=["North", "South"]))
    # North, all four active in March: Anna 1.0, Boris 2.0, Chen 0.5 (Gleb has no plan):
    # 3.5 / 3. South: Dana 0.5 (Eve and Fedir, active, have no plan).
    assert places_of(board) == {"North": (1, round(3.5 / 3, 6)), "South": (2, 0.5)}
    assert [e.active for e in board.entries] == [4, 3]


def test_weekly_head_to_head_with_a_bye_and_a_draw(company: Company) -> None:
    board = company.board(company.contest(points=POINTS, head_to_head=True,
                                          members=["a1", "b1", "c1", "d1", "e1"]))
    # Five players and a bye. W1: Anna sits out, Boris 2 - Eve 2, Chen 31 - Dana 42.
    # W2: Anna 8 - Eve 2, Dana sits out, Boris 36 - Chen 4.
    assert [(m.week, m.home, m.away, m.home_score, m.away_score, m.result)
            for m in board.matches] == [
        (1, "a1", None, 30, None, "bye"), (1, "b1", "e1", 2, 2, "draw"),
        (1, "c1", "d1", 31, 42, "away"),
        (2, "a1", "e1", 8, 2, "home"), (2, "d1", None, 33, None, "bye"),
        (2, "b1", "c1", 36, 4, "home")]
    assert [(r.key, r.rank, r.played, r.wins, r.draws, r.losses, r.score)
            for r in board.records] == [
        ("b1", 1, 2, 1, 1, 0, 1.5), ("a1", 2, 1, 1, 0, 0, 1.0), ("d1", 2, 1, 1, 0, 0, 1.0),
        ("e1", 4, 2, 0, 1, 1, 0.5), ("c1", 5, 2, 0, 0, 2, 0.0)]


def test_round_robin_meets_everyone_once() -> None:
    assert [round_robin(["a", "b", "c", "d"], w) for w in range(3)] == [
        [("a", "d"), ("b", "c")], [("a", "c"), ("d", "b")], [("a", "b"), ("c", "d")]]
    met = [frozenset(p) for w in range(5) for p in round_robin("abcde", w) if p[1]]
    assert len(met) == len(set(met)) == 10  # every pair of five, once, in five weeks
    assert weeks(dt.date(2024, 3, 6), dt.date(2024, 3, 18)) == [
        (dt.date(2024, 3, 6), dt.date(2024, 3, 10)), (dt.date(2024, 3, 11), dt.date(2024, 3, 17)),
        (dt.date(2024, 3, 18), dt.date(2024, 3, 18))]


def test_places_and_targets_on_their_own() -> None:
    assert places({"a": 3, "b": 1, "c": 3, "d": None}) == {"a": 1, "b": 3, "c": 1, "d": None}
    assert places({"a": 5, "b": 2}, higher_is_better=False) == {"a": 2, "b": 1}
    # Lower is better for the tie-break too (e.g. response time).
    assert places({"a": 1, "b": 1}, tiebreak={"a": 30, "b": 10}, tiebreak_higher=False) == {
        "a": 2, "b": 1}
    month = TargetRecord(1, "manual", "win_rate", dt.date(2024, 3, 1), dt.date(2024, 3, 31),
                         "a1", None, 0.2, dt.datetime(2024, 1, 1))
    april = TargetRecord(2, "manual", "win_rate", dt.date(2024, 4, 1), dt.date(2024, 4, 30),
                         "a1", None, 0.5, dt.datetime(2024, 1, 1))
    # A rate over Monday 25 March - Friday 5 April: 5 working days at 20%, 5 at 50%.
    assert span_target([month, april], dt.date(2024, 3, 25), dt.date(2024, 4, 5),
                       cumulative=False) == pytest.approx(0.35)
    # Not covered (no plan for May): no target.
    assert span_target([april], dt.date(2024, 4, 29), dt.date(2024, 5, 2),
                       cumulative=True) is None


# -- closing -------------------------------------------------------------------------------------
def test_closing_keeps_the_results_while_the_data_changes(tmp_path: Path) -> None:
    company = Company(tmp_path)
    calls = company.contest(kpi="calls", members=["a1", "e1"])
    plan = company.contest(kpi="revenue", rank_by="target", **MARCH, members=["a1", "b1"])
    closed = company.post(f"/api/v1/contests/{calls}/close")
    assert closed.status_code == 200, closed.text
    assert company.post(f"/api/v1/contests/{plan}/close").status_code == 200
    kept = closed.json()["standings"]
    assert kept["final"] and kept["winners"] == ["a1"]
    assert [(e["key"], e["score"]) for e in kept["entries"]] == [("a1", 8), ("e1", 4)]

    # Later: Eve's call of 12 March is imported, Anna's plan doubled.
    write_company(tmp_path, extra=("X7,call,e1,2024-03-12 10:30:00,,out",))
    report = company.service.import_path(company.data, mapping=None, source=None,
                                         dry_run=False)
    assert report.ok and report.entities["activities"].inserted == 1
    company.service.set_target(kpi="revenue", period_start=dt.date(2024, 3, 1),
                               period_end=dt.date(2024, 3, 31), value=6000, rep_id="a1")
    assert company.get(f"/api/v1/contests/{calls}").json()["standings"] == kept
    plan_board = company.get(f"/api/v1/contests/{plan}").json()["standings"]
    assert [(e["key"], e["score"], e["target"]) for e in plan_board["entries"]] == [
        ("b1", 2, 1000), ("a1", 1, 3000)]
    again = company.contest(kpi="calls", members=["a1", "e1"])  # the same contest, open
    assert places_of(company.board(again)) == {"a1": (1, 8), "e1": (2, 5)}

    answer = company.post(f"/api/v1/contests/{calls}/close")
    assert (answer.status_code, answer.json()["error"]) == (409, "contest_closed")
    history = company.get("/api/v1/contests", status="closed").json()["contests"]
    assert [(c["id"], [w["name"] for w in c["winners"]], c["closed_by"]) for c in history] == [
        (plan, ["Boris Bell"], "head"), (calls, ["Anna Avery"], "head")]


def test_a_running_contest_closes_only_early(company: Company) -> None:
    today = contest_service.today(company.service)
    running = company.contest(kpi="calls", start=(today - dt.timedelta(days=3)).isoformat(),
                              end=(today + dt.timedelta(days=10)).isoformat())
    answer = company.post(f"/api/v1/contests/{running}/close")
    assert (answer.status_code, answer.json()["error"]) == (409, "contest_running")
    listed = company.get("/api/v1/contests").json()["contests"]
    assert next(c for c in listed if c["id"] == running)["status"] == "running"
    early = company.post(f"/api/v1/contests/{running}/close", early="true")
    assert early.status_code == 200 and early.json()["contest"]["status"] == "closed"
    # Nothing was done in these days: everyone shares the first place with 0, and nobody
    # wins with nothing.
    board = early.json()["standings"]
    assert {(e["rank"], e["score"]) for e in board["entries"]} == {(1, 0)}
    assert board["winners"] == [] and board["final"]


# -- who sees what ------------------------------------------------------------------------
def test_a_rep_sees_every_place_and_score_but_only_their_own_figures(company: Company
                                                                    ) -> None:
    contest_id = company.contest(points=POINTS)
    eve = company.get(f"/api/v1/contests/{contest_id}", "eve")
    assert eve.status_code == 200, eve.text
    entries = {e["key"]: e for e in eve.json()["standings"]["entries"]}
    assert {k: (e["rank"], e["score"]) for k, e in entries.items()} == {
        "d1": (1, 75), "a1": (2, 38), "b1": (2, 38), "c1": (4, 35), "e1": (5, 4), "f1": (6, 0)}
    assert entries["e1"]["details"] and entries["e1"]["breakdown"] == {
        "calls": 4, "meetings": 0, "deals_won": 0}
    assert not entries["d1"]["details"] and entries["d1"]["breakdown"] == {}
    # Gleb is not in it: for him it does not exist, and his list leaves it out.
    gleb = company.get(f"/api/v1/contests/{contest_id}", "gleb")
    assert (gleb.status_code, gleb.json()["error"]) == (404, "no_such_contest")
    assert contest_id not in [c["id"] for c in
                              company.get("/api/v1/contests", "gleb").json()["contests"]]


def test_a_team_lead_sees_their_reps_figures(company: Company) -> None:
    contest_id = company.contest(kpi="revenue", rank_by="target", **MARCH,
                                 members=["a1", "b1", "d1"])
    entries = {e["key"]: e for e in company.get(
        f"/api/v1/contests/{contest_id}", "lena").json()["standings"]["entries"]}
    assert (entries["a1"]["value"], entries["a1"]["target"]) == (3000, 3000)
    assert (entries["d1"]["score"], entries["d1"]["value"], entries["d1"]["target"]) == (
        0.5, None, None)
    teams = company.contest(points=POINTS, participants="teams", members=["North", "South"])
    eve = {e["key"]: e for e in company.get(
        f"/api/v1/contests/{teams}", "eve").json()["standings"]["entries"]}
    assert eve["South"]["details"] and not eve["North"]["details"]
    # Only managers make and close contests.
    refused = company.post("/api/v1/contests", "lena",
                           body={"name": "x", "kpi": "calls", **P, "members": ["a1", "b1"]})
    assert refused.status_code == 403


# -- the surfaces -------------------------------------------------------------------------
def _without_clock(data: dict[str, Any]) -> dict[str, Any]:
    """The answer without the instant it was computed at (two askings differ there)."""
    copied = json.loads(json.dumps(data))
    copied["standings"].pop("computed_at")
    return copied


def test_cli_json_equals_rest(company: Company, run_cli: Any) -> None:
    result: CliResult = run_cli(company.settings.workspace, "contest", "create", "Sprint",
                                "--points", "calls=1,meetings=5", "--points", "deals_won=20",
                                "--from", P["start"], "--to", P["end"], "--rep", "Dana Dale",
                                "--rep", "a1", "--rep", "b1", "--tie", "kpi:revenue",
                                "--head-to-head", "--format", "json")
    assert result.returncode == 0, result.stderr
    made = result.json()["contest"]
    assert [m["key"] for m in made["members"]] == ["d1", "a1", "b1"]  # names become ids
    cli = run_cli(company.settings.workspace, "contest", "standings", str(made["id"]),
                  "--format", "json")
    rest = company.get(f"/api/v1/contests/{made['id']}")
    assert cli.returncode == 0 and rest.status_code == 200
    assert _without_clock(cli.json()) == _without_clock(rest.json())
    assert places_of(Standings.model_validate(rest.json()["standings"])) == {
        "d1": (1, 75), "b1": (2, 38), "a1": (3, 38)}
    csv_out = run_cli(company.settings.workspace, "contest", "standings", str(made["id"]),
                      "--format", "csv").stdout.splitlines()
    assert csv_out[0] == ("rank,key,name,score,unit,value,target,calls,meetings,deals_won,"
                          "members,active,winner,note")
    assert csv_out[1] == "1,d1,Dana Dale,75,points,,,20,3,2,,,True,"
    table = run_cli(company.settings.workspace, "contest", "list")
    assert table.returncode == 0 and "Sprint" in table.stdout


def test_cli_refuses_bad_contests_with_a_sentence(company: Company, run_cli: Any,
                                                  tmp_path: Path) -> None:
    ws = company.settings.workspace
    cases = [
        (("--kpi", "callz"), "unknown KPI 'callz'"),
        (("--points", "win_rate=10"), "win_rate does not add up over time"),
        (("--kpi", "calls", "--points", "calls=1"), "give either one KPI or a points formula"),
        (("--points", "calls=lots"), "write KPI=POINTS"),
        (("--kpi", "calls", "--rank-by", "target", "--points", "calls=1"), "not both"),
    ]
    for extra, message in cases:
        result = run_cli(ws, "contest", "create", "Bad", *extra, "--from", P["start"],
                         "--to", P["end"], "--rep", "a1", "--rep", "b1")
        assert result.returncode == 2, (extra, result.stdout)
        assert message in " ".join(result.stderr.split()), (extra, result.stderr)
    result = run_cli(ws, "contest", "create", "Bad", "--kpi", "calls", "--from", "2024-03-17",
                     "--to", "2024-03-04", "--rep", "a1", "--rep", "b1")
    assert "ends (2024-03-04) before it starts (2024-03-17)" in " ".join(result.stderr.split())
    result = run_cli(ws, "contest", "create", "Bad", "--kpi", "calls", "--from", P["start"],
                     "--to", P["end"], "--rep", "a1", "--rep", "nobody")
    assert "unknown rep 'nobody'" in result.stderr
    result = run_cli(ws, "contest", "create", "Bad", "--kpi", "calls", "--from", P["start"],
                     "--to", P["end"], "--team", "North", "--team", "West")
    assert "unknown team 'West'" in result.stderr and "North, South" in result.stderr
    assert run_cli(ws, "contest", "standings", "99999").returncode == 2
    # A YAML file, with an option replacing one of its fields.
    file = tmp_path / "contest.yaml"
    file.write_text("name: From a file\nkpi: meetings\nstart: 2024-03-04\nend: 2024-03-17\n"
                    "participants: teams\nmembers: [North, South]\n", encoding="utf-8")
    made = run_cli(ws, "contest", "create", "--file", file, "--winners", "2", "--format", "json")
    assert made.returncode == 0, made.stderr
    board = company.board(made.json()["contest"]["id"])
    # Meetings a person: North (2 + 2 + 1 + 1) / 4 = 1.5, South (3 + 0) / 2 = 1.5: a tie.
    assert places_of(board) == {"North": (1, 1.5), "South": (1, 1.5)}
    file.write_text("- not a mapping\n", encoding="utf-8")
    assert "write the contest as YAML fields" in " ".join(
        run_cli(ws, "contest", "create", "--file", file).stderr.split())


def test_mcp_answers_the_standings_as_the_view(company: Company) -> None:
    contest_id = company.contest(kpi="calls")
    tools = available_tools()
    anna = user_by_id(company.settings, company.ids["anna"])
    assert anna is not None
    data = call(tools["contest_standings"], company.service, anna, {"contest": contest_id})
    assert places_of(Standings.model_validate(data["standings"]))["a1"] == (3, 8)
    assert list(data.pop("definitions")) == ["calls"]
    rest = company.get(f"/api/v1/contests/{contest_id}", "anna").json()
    assert _without_clock(data) == _without_clock(rest)  # Anna's view, on both
    listed = call(tools["list_contests"], company.service, anna, {"status": "open"})
    assert contest_id in [c["id"] for c in listed["contests"]]
    set_language("en")


def _signed_in(company: Company, user: str) -> TestClient:
    client = TestClient(create_app(company.settings))
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf is not None
    answer = client.post("/login", data={"username": user, "password": PASSWORD,
                                         "csrf": csrf.group(1)}, follow_redirects=False)
    assert answer.status_code == 303
    return client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_web_form_makes_a_contest_and_its_pages_show_it(company: Company) -> None:
    head = _signed_in(company, "head")
    listing = head.get("/contests")
    assert listing.status_code == 200 and 'action="/contests"' in listing.text
    form = {"csrf": _csrf(listing.text), "name": "Web points", "measure": "points",
            "points": "calls=1, meetings=5, deals_won=20", "start": P["start"],
            "end": P["end"], "participants": "teams", "teams": ["North", "South"],
            "rank_by": "value", "tie_rule": "shared", "winners": "1"}
    made = head.post("/contests", data=form, follow_redirects=False)
    assert made.status_code == 303, made.text
    path = made.headers["location"]
    page = head.get(path).text
    cells = re.findall(r'<td class="num[^"]*" data-value="([^"]*)"', page)
    assert "39.5" in cells and "31.0" in cells
    assert "Contest created." in page and "South ★" in page
    tv = head.get(path + "/tv", params={"refresh": "30"})
    assert tv.status_code == 200
    assert '<meta http-equiv="refresh" content="30">' in tv.text and 'class="nav' not in tv.text
    assert re.findall(r'data-key="([^"]+)"', tv.text) == ["South", "North"]
    assert head.get(path + "/tv", params={"refresh": "1"}).status_code == 400
    bad = head.post("/contests", data={**form, "points": "calls=many"})
    assert bad.status_code == 400 and "write KPI=POINTS" in bad.text
    assert 'value="Web points"' in bad.text  # what was typed is kept

    eve = _signed_in(company, "eve")
    assert eve.get(path).status_code == 200  # Eve's team takes part
    assert 'action="/contests"' not in eve.get("/contests").text  # no form for a rep
    assert eve.post("/contests", data={**form, "csrf": _csrf(eve.get("/contests").text)}
                    ).status_code == 403
    gleb = _signed_in(company, "gleb")
    other = company.contest(kpi="calls")
    assert gleb.get(f"/contests/{other}").status_code == 404
    assert gleb.get("/contests/99999999999999999999").status_code == 404


def test_closing_notifies_each_person_in_their_language(company: Company) -> None:
    contest_id = company.contest(kpi="calls", name="Дзвінки")
    closed = contest_service.close(company.service, contest_id, LOCAL)
    notices = {n.recipient: n for n in contest_service.closing_notices(company.service, closed)}
    # Reps in it (Eve, Anna), the leads of their teams, and the head who made it; not Gleb.
    assert set(notices) == {"eve", "anna", "lena", "sam", "head"}
    eve = notices["eve"]
    assert eve.kind == "contest" and eve.link == f"/contests/{contest_id}"
    assert eve.subject == "Конкурс Дзвінки: результати"
    assert "Ваше місце: 5 з 6." in eve.body and "1. Dana Dale: 20" in eve.body
    assert "Your place: 3 of 6." in notices["anna"].body
    assert "Your place" not in notices["lena"].body  # three of her reps: no one place
    assert notices["eve"].key == notices["anna"].key  # one event


def test_closing_a_contest_mails_its_results(tmp_path: Path) -> None:
    """Closing through the API sends each person's notice through their channel: the
    e-mail arrives at a real SMTP server, in the reader's language, once."""
    import time

    from saleskpi.domain.settings import save_workspace_settings
    from saleskpi.service.contacts import set_contact
    from saleskpi.store.state.contacts import ContactRecord
    from tests.servers import smtp_server

    with smtp_server() as box:
        _, workspace = write_company(tmp_path)
        save_workspace_settings(Settings(workspace=workspace), smtp_host=box.host,
                                smtp_port=box.port, smtp_starttls=False,
                                smtp_from="kpi@example.com")
        company = Company(tmp_path)
        set_contact(company.settings, ContactRecord(company.ids["eve"], "eve@example.com"))
        contest_id = company.contest(kpi="calls", name="Дзвінки")
        closed = company.post(f"/api/v1/contests/{contest_id}/close")
        assert closed.status_code == 200, closed.text
        deadline = time.monotonic() + 20
        while not box.messages and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [m["To"] for m in box.messages] == ["eve@example.com"]  # the others: no contact
        mail = box.messages[0]
        assert mail["Subject"] == "Конкурс Дзвінки: результати"
        assert "Ваше місце: 5 з 6." in mail.get_body(preferencelist=("plain",)).get_content()


# -- changing and deleting an open contest ---------------------------------------------------
def test_an_open_contest_is_changed_and_deleted_by_managers_only(company: Company,
                                                                  run_cli: Any) -> None:
    made = company.contest(kpi="calls", name="Cal sprint")  # misspelt
    bearer = {"Authorization": f"Bearer {company.tokens['head']}"}
    renamed = company.client.patch(f"/api/v1/contests/{made}", headers=bearer,
                                   json={"name": "Call sprint", "end": "2024-03-24"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["contest"]["name"], renamed.json()["contest"]["end"]) == (
        "Call sprint", "2024-03-24")
    # The standings follow the new days: three weeks of calls now (counted by hand with
    # SQL over the same fixture).
    board = company.board(made)
    by_hand = dict(company.sql(
        "SELECT rep_id, count(*) FROM activities WHERE type = 'call' "
        "AND coalesce(direction, '') <> 'in' "
        "AND occurred_at >= TIMESTAMP '2024-03-03 22:00:00' "  # 03-04 00:00 in Kyiv
        "AND occurred_at < TIMESTAMP '2024-03-24 22:00:00' GROUP BY rep_id"))
    assert {e.key: e.score or 0 for e in board.entries} == {
        rep: by_hand.get(rep, 0) for rep in EVERYONE_BUT_GLEB}
    # What it ranks and who takes part cannot change: the standings so far keep meaning.
    refused = company.client.patch(f"/api/v1/contests/{made}", headers=bearer,
                                   json={"kpi": "revenue"})
    assert refused.status_code == 422
    eve = {"Authorization": f"Bearer {company.tokens['eve']}"}
    assert company.client.patch(f"/api/v1/contests/{made}", headers=eve,
                                json={"name": "Mine"}).status_code == 403
    backwards = run_cli(company.settings.workspace, "contest", "edit", str(made),
                        "--from", "2024-03-20", "--to", "2024-03-10")
    assert backwards.returncode != 0 and "contest" in backwards.stderr
    cli = run_cli(company.settings.workspace, "contest", "edit", str(made), "--winners", "2",
                  "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert cli.json()["contest"]["places_that_win"] == 2
    assert run_cli(company.settings.workspace, "contest", "edit", str(made)).returncode != 0
    # Deleted: gone from the list and the API.
    deleted = run_cli(company.settings.workspace, "contest", "delete", str(made), "--yes")
    assert deleted.returncode == 0, deleted.stderr
    assert "Call sprint" in deleted.stdout
    assert company.get(f"/api/v1/contests/{made}").status_code == 404


def test_a_closed_contest_is_neither_changed_nor_deleted(company: Company) -> None:
    made = company.contest(kpi="calls")
    closed = company.post(f"/api/v1/contests/{made}/close", early=True)
    assert closed.status_code == 200, closed.text
    bearer = {"Authorization": f"Bearer {company.tokens['head']}"}
    changed = company.client.patch(f"/api/v1/contests/{made}", headers=bearer,
                                   json={"end": "2024-04-30"})
    assert changed.status_code == 409 and changed.json()["error"] == "contest_closed"
    gone = company.client.delete(f"/api/v1/contests/{made}", headers=bearer)
    assert gone.status_code == 409
    assert company.get(f"/api/v1/contests/{made}").status_code == 200  # still there


def test_the_contest_page_changes_and_deletes_it(company: Company) -> None:
    made = company.contest(kpi="calls", name="Page sprint")
    head = _signed_in(company, "head")
    page = head.get(f"/contests/{made}").text
    assert f'action="/contests/{made}/edit"' in page and 'value="Page sprint"' in page
    form = {"csrf": _csrf(page), "name": "Page sprint, longer", "description": "",
            "start": P["start"], "end": "2024-03-31", "winners": "1"}
    saved = head.post(f"/contests/{made}/edit", data=form, follow_redirects=False)
    assert saved.status_code == 303
    page = head.get(f"/contests/{made}").text
    assert "Contest changed." in page and "Page sprint, longer" in page
    bad = head.post(f"/contests/{made}/edit", data={**form, "end": "2024-02-01"})
    assert bad.status_code == 400
    eve = _signed_in(company, "eve")
    assert f'action="/contests/{made}/edit"' not in eve.get(f"/contests/{made}").text
    assert eve.post(f"/contests/{made}/delete", data={"csrf": _csrf(eve.get("/contests").text)}
                    ).status_code == 403
    deleted = head.post(f"/contests/{made}/delete", data={"csrf": _csrf(page)},
                        follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/contests"
    assert head.get(f"/contests/{made}").status_code == 404
