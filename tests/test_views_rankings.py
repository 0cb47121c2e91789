"""The comparison, leaderboard and funnel views: REST JSON == CLI JSON, scope, errors.

Two workspaces: the hand-counted team of tests/test_compare.py (UTC, USD; March
2024 compared, February and January before it) and the hand-counted funnel of
tests/test_funnel.py (Europe/Kyiv, UAH). For each view, the REST answer (a head's
API token) must equal ``saleskpi … --format json`` for the same filters; a rep's
token sees only their own rows; bad input is a problem-details 400 with a stable
code, and the CLI exits 2 with the same sentence. One figure per view is checked
against hand-written SQL on the DuckDB file, so a broken number fails here too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.service.core import SalesKpiService
from saleskpi.surfaces.server import create_app
from tests import test_funnel
from tests.conftest import CliResult
from tests.test_compare import write_fixture

PASSWORD = "correct horse battery"
MARCH_CLI = ("--from", "2024-03-01", "--to", "2024-03-31")
MARCH_API = [("from", "2024-03-01"), ("to", "2024-03-31")]


class Api:
    """The app of one workspace and an API token per user."""

    def __init__(self, settings: Settings, users: dict[str, dict[str, str]]) -> None:
        self.settings = settings
        self.client = TestClient(create_app(settings))
        self.tokens: dict[str, str] = {}
        for name, spec in users.items():
            user = add_user(settings, name, PASSWORD, spec["role"], rep_id=spec.get("rep_id"),
                            team=spec.get("team"))
            self.tokens[name] = issue_token(settings, user.user_id, "tests")

    def get(self, path: str, params: list[tuple[str, str]], user: str = "head") -> Any:
        return self.client.get(path, params=params,
                               headers={"Authorization": f"Bearer {self.tokens[user]}"})

    def json(self, path: str, params: list[tuple[str, str]], user: str = "head") -> Any:
        response = self.get(path, params, user)
        assert response.status_code == 200, response.text
        return response.json()

    def sql(self, query: str, *args: object) -> list[tuple[Any, ...]]:
        con = duckdb.connect(str(self.settings.analytics_path), read_only=True)
        try:
            return con.execute(query, list(args)).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Api:
    root = tmp_path_factory.mktemp("rankings")
    settings = Settings(workspace=write_fixture(root))
    report = SalesKpiService(settings).import_path(root / "data", mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return Api(settings, {"head": {"role": "head"}, "rep_a1": {"role": "rep", "rep_id": "a1"},
                          "lead_south": {"role": "team_lead", "team": "South"}})


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> Api:
    settings, _report = test_funnel.kyiv_workspace(
        tmp_path_factory.mktemp("funnel-view"), {
            "reps": test_funnel.REPS, "deals": test_funnel.DEALS,
            "stage_changes": test_funnel.STAGE_CHANGES})
    return Api(settings, {"head": {"role": "head"}, "rep_r1": {"role": "rep", "rep_id": "r1"}})


def cli_json(run_cli: Any, api: Api, *args: str) -> Any:
    result: CliResult = run_cli(api.settings.workspace, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    return result.json()


def assert_same(rest: dict[str, Any], cli: dict[str, Any], *, limit: int | None) -> None:
    """Equal but for the page's limit: the CLI prints every row unless told, REST pages."""
    assert {k: v for k, v in rest.items() if k != "page"} == {
        k: v for k, v in cli.items() if k != "page"}
    assert rest["page"]["total_rows"] == cli["page"]["total_rows"]
    assert rest["page"]["offset"] == cli["page"]["offset"]
    if limit is not None:
        assert rest["page"] == cli["page"] == {**cli["page"], "limit": limit}
    else:
        assert (rest["page"]["limit"], cli["page"]["limit"]) == (1000, None)


def words(text: str) -> str:
    """The CLI wraps long messages on the terminal's width: compare word by word."""
    return " ".join(text.split())


# -- REST == CLI -------------------------------------------------------------------------

COMPARISONS = [
    # --team on the command line is the API's where=team=..: the same answer.
    pytest.param((*MARCH_CLI, "--team", "North", "--sort", "revenue"),
                 [*MARCH_API, ("where", "team=North"), ("sort", "revenue")], None,
                 id="march-north-by-revenue"),
    pytest.param(("calls", "win_rate", "revenue", "--period", "month", "--from", "2024-02-01",
                  "--to", "2024-03-31", "--where", "team=North,South", "--threshold", "0.2",
                  "--sort", "calls", "--asc", "--filter", "revenue>=1000", "--limit", "2",
                  "--offset", "1"),
                 [("kpi", "calls"), ("kpi", "win_rate"), ("kpi", "revenue"),
                  ("period", "month"), ("from", "2024-02-01"), ("to", "2024-03-31"),
                  ("where", "team=North,South"), ("threshold", "0.2"), ("sort", "calls"),
                  ("desc", "false"), ("filter", "revenue>=1000"), ("limit", "2"),
                  ("offset", "1")], 2,
                 id="months-filtered-sorted-paged"),
]


@pytest.mark.parametrize(("cli_args", "params", "limit"), COMPARISONS)
def test_comparison_rest_equals_cli(run_cli: Any, team: Api, cli_args: tuple[str, ...],
                                    params: list[tuple[str, str]], limit: int | None) -> None:
    rest = team.json("/api/v1/comparison", params)
    cli = cli_json(run_cli, team, "compare", *cli_args)
    assert rest["rows"], "the filters must leave rows to compare"
    assert_same(rest, cli, limit=limit)


def test_comparison_the_first_filter_set_in_detail(team: Api) -> None:
    rest = team.json("/api/v1/comparison", COMPARISONS[0].values[1])
    # North in March: Anna 4000 revenue, Boris 2000 (tests/test_compare.py's table).
    assert [r["rep"] for r in rest["rows"]] == ["a1", "b1"]
    assert rest["averages"][0]["values"]["revenue"]["value"] == 3000
    assert rest["where"] == {"team": ["North"]}
    assert rest["page"] == {"total_rows": 2, "limit": 1000, "offset": 0}


LEADERBOARDS = [
    pytest.param(("revenue", *MARCH_CLI, "--where", "team=North,South"),
                 [("kpi", "revenue"), *MARCH_API, ("where", "team=North,South")], None,
                 id="march-revenue"),
    pytest.param(("win_rate", "--period", "month", "--from", "2024-01-01", "--to", "2024-03-31",
                  "--team", "North", "--top", "2", "--limit", "3", "--offset", "0"),
                 [("kpi", "win_rate"), ("period", "month"), ("from", "2024-01-01"),
                  ("to", "2024-03-31"), ("where", "team=North"), ("top", "2"), ("limit", "3"),
                  ("offset", "0")], 3,
                 id="monthly-win-rate-top-paged"),
]


@pytest.mark.parametrize(("cli_args", "params", "limit"), LEADERBOARDS)
def test_leaderboard_rest_equals_cli(run_cli: Any, team: Api, cli_args: tuple[str, ...],
                                     params: list[tuple[str, str]], limit: int | None) -> None:
    rest = team.json("/api/v1/leaderboard", params)
    cli = cli_json(run_cli, team, "leaderboard", *cli_args)
    assert rest["rows"], "the filters must leave reps to rank"
    assert_same(rest, cli, limit=limit)


FUNNELS = [
    pytest.param(("--by", "rep", "--as-of", "2024-01-31", "--team", "South"),
                 [("by", "rep"), ("as_of", "2024-01-31"), ("where", "team=South")], None,
                 id="south-by-rep"),
    pytest.param(("--by", "rep", "--pipeline", "main", "--from", "2024-01-05", "--to",
                  "2024-01-20", "--as-of", "2024-02-15", "--where", "rep=r1,r2", "--limit", "1",
                  "--offset", "1"),
                 [("by", "rep"), ("pipeline", "main"), ("from", "2024-01-05"),
                  ("to", "2024-01-20"), ("as_of", "2024-02-15"), ("where", "rep=r1,r2"),
                  ("limit", "1"), ("offset", "1")], 1,
                 id="range-paged"),
]


@pytest.mark.parametrize(("cli_args", "params", "limit"), FUNNELS)
def test_funnel_rest_equals_cli(run_cli: Any, stages: Api, cli_args: tuple[str, ...],
                                params: list[tuple[str, str]], limit: int | None) -> None:
    rest = stages.json("/api/v1/funnel", params)
    cli = cli_json(run_cli, stages, "funnel", *cli_args)
    assert rest["pipelines"] and rest["pipelines"][0]["reps"], "the filters must leave reps"
    assert_same(rest, cli, limit=limit)


def test_funnel_pages_each_pipelines_reps(stages: Api) -> None:
    everyone = stages.json("/api/v1/funnel", [("by", "rep"), ("as_of", "2024-01-31")])
    second = stages.json("/api/v1/funnel", [("by", "rep"), ("as_of", "2024-01-31"),
                                            ("limit", "1"), ("offset", "1")])
    (pipeline,) = everyone["pipelines"]
    assert [r["rep"] for r in pipeline["reps"]] == ["r1", "r2"]  # r3 has no deals
    assert second["pipelines"][0]["reps"] == pipeline["reps"][1:]
    assert second["pipelines"][0]["team"] == pipeline["team"]  # the team is never paged
    assert second["page"] == {"total_rows": 2, "limit": 1, "offset": 1}


# -- scope --------------------------------------------------------------------------------


def test_a_rep_sees_only_themselves_against_their_team(team: Api) -> None:
    mine = team.json("/api/v1/comparison", [("kpi", "calls"), *MARCH_API], user="rep_a1")
    assert [r["rep"] for r in mine["rows"]] == ["a1"]
    # Anna's team's average (North: Anna 10 calls, Boris 6), not her own 10.
    assert mine["averages"][0]["values"]["calls"]["value"] == 8
    assert mine["rows"][0]["values"]["calls"]["mark"] == "better"  # 10 against 8
    assert mine["totals"][0]["values"]["calls"]["value"] == 10  # her own total only

    board = team.json("/api/v1/leaderboard", [("kpi", "revenue"), *MARCH_API], user="rep_a1")
    assert [(r["rep"], r["value"]) for r in board["rows"]] == [("a1", 4000)]

    south = team.json("/api/v1/leaderboard", [("kpi", "revenue"), *MARCH_API],
                      user="lead_south")
    assert [r["rep"] for r in south["rows"]] == ["c1", "d1"]
    # A filter cannot reach outside the scope.
    outside = team.json("/api/v1/comparison", [("kpi", "calls"), *MARCH_API,
                                               ("where", "rep=b1")], user="rep_a1")
    assert outside["rows"] == [] or [r["rep"] for r in outside["rows"]] == ["a1"]
    assert all(r["rep"] == "a1" for r in outside["rows"])


def test_a_reps_funnel_is_their_own(stages: Api) -> None:
    mine = stages.json("/api/v1/funnel", [("by", "rep"), ("as_of", "2024-01-31")],
                       user="rep_r1")
    (pipeline,) = mine["pipelines"]
    assert [r["rep"] for r in pipeline["reps"]] == ["r1"]
    # Anna's deals D1, D2, D3, D8 entered "new" (tests/test_funnel.py's history).
    assert pipeline["team"]["stages"][0]["entered"] == 4
    assert mine["page"]["total_rows"] == 1


# -- errors ---------------------------------------------------------------------------------

ERRORS = [
    # view, REST params, CLI args, code
    ("comparison", [("kpi", "revenu")], ("compare", "revenu"), "bad_query"),
    ("comparison", [("sort", "revenu")], ("compare", "--sort", "revenu"), "bad_query"),
    ("comparison", [("from", "2024-03-31"), ("to", "2024-03-01")],
     ("compare", "--from", "2024-03-31", "--to", "2024-03-01"), "bad_range"),
    ("comparison", [("where", "team")], ("compare", "--where", "team"), "bad_where"),
    ("comparison", [("filter", "calls=5")], ("compare", "--filter", "calls=5"),
     "bad_condition"),
    ("comparison", [("threshold", "-1")], ("compare", "--threshold", "-1"), "bad_threshold"),
    ("comparison", [("period", "fortnight")], ("compare", "--period", "fortnight"),
     "bad_period"),
    ("leaderboard", [("kpi", "revenu")], ("leaderboard", "revenu"), "bad_query"),
    ("leaderboard", [("kpi", "revenue"), ("from", "2024-03-31"), ("to", "2024-03-01")],
     ("leaderboard", "revenue", "--from", "2024-03-31", "--to", "2024-03-01"), "bad_range"),
    ("leaderboard", [("kpi", "revenue"), ("where", "=North")],
     ("leaderboard", "revenue", "--where", "=North"), "bad_where"),
    ("funnel", [("from", "2024-01-31"), ("to", "2024-01-01")],
     ("funnel", "--from", "2024-01-31", "--to", "2024-01-01"), "bad_range"),
    ("funnel", [("where", "team=")], ("funnel", "--where", "team="), "bad_where"),
    ("funnel", [("by", "team")], ("funnel", "--by", "team"), "bad_by"),
    ("funnel", [("pipeline", "nope")], ("funnel", "--pipeline", "nope"), "bad_funnel"),
]


@pytest.mark.parametrize(("view", "params", "cli_args", "code"), ERRORS,
                         ids=[f"{e[0]}-{e[3]}-{i}" for i, e in enumerate(ERRORS)])
def test_bad_input_is_a_problem_and_exit_2(run_cli: Any, team: Api, stages: Api, view: str,
                                           params: list[tuple[str, str]],
                                           cli_args: tuple[str, ...], code: str) -> None:
    api = stages if view == "funnel" else team
    response = api.get(f"/api/v1/{view}", params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["error"], problem["status"], problem["type"]) == (
        code, 400, f"urn:saleskpi:error:{code}")
    assert problem["detail"] == problem["message"] and problem["detail"]
    if code == "bad_range":  # dates the other way round: both named, and what to do
        start, end = dict(params)["from"], dict(params)["to"]
        assert f"--from {start} is after --to {end}: swap" in problem["detail"]
    result: CliResult = run_cli(api.settings.workspace, *cli_args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert words(f"Error: {problem['detail']}") in words(result.stderr)


def test_unknown_kpi_says_what_was_meant(team: Api) -> None:
    problem = team.get("/api/v1/leaderboard", [("kpi", "revenu")]).json()
    assert problem["detail"].startswith("unknown KPI 'revenu'; did you mean revenue")


# -- the numbers, from the DuckDB file by hand -----------------------------------------------


def test_comparison_deals_won_and_revenue_match_sql(team: Api) -> None:
    rows = team.sql("""
        SELECT r.id, count(d.id), coalesce(sum(d.amount), 0)
        FROM reps r LEFT JOIN deals d
          ON d.rep_id = r.id AND d.status = 'won'
         AND d.closed_at >= TIMESTAMP '2024-03-01' AND d.closed_at < TIMESTAMP '2024-04-01'
        GROUP BY r.id ORDER BY r.id""")
    assert [r[0] for r in rows] == ["a1", "b1", "c1", "d1"]
    rest = team.json("/api/v1/comparison", [("kpi", "deals_won"), ("kpi", "revenue"),
                                            *MARCH_API])
    got = {r["rep"]: (r["values"]["deals_won"]["value"], r["values"]["revenue"]["value"])
           for r in rest["rows"]}
    assert got == {rep: (won, float(amount)) for rep, won, amount in rows}
    # The team average is over the reps active in March (Dana closed nothing and had no
    # activity at all: test_compare's fixture)
    active = [won for rep, won, _amount in rows if rep != "d1"]
    average = sum(active) / len(active)
    assert rest["averages"][0]["values"]["deals_won"]["value"] == pytest.approx(average)


def test_leaderboard_ranks_and_previous_ranks_match_sql(team: Api) -> None:
    def revenue(start: str, end: str) -> dict[str, float]:
        return {rep: float(total) for rep, total in team.sql("""
            SELECT r.id, coalesce(sum(d.amount), 0) FROM reps r LEFT JOIN deals d
              ON d.rep_id = r.id AND d.status = 'won'
             AND d.closed_at >= CAST(? AS TIMESTAMP) AND d.closed_at < CAST(? AS TIMESTAMP)
            GROUP BY r.id""", start, end)}

    def ranks(values: dict[str, float]) -> dict[str, int]:
        return {rep: 1 + sum(1 for other in values.values() if other > value)
                for rep, value in values.items()}

    march, february = revenue("2024-03-01", "2024-04-01"), revenue("2024-02-01", "2024-03-01")
    rest = team.json("/api/v1/leaderboard", [("kpi", "revenue"), *MARCH_API])
    assert rest["previous"] == {"from": "2024-02-01", "to": "2024-02-29", "rule": "months"}
    got = {r["rep"]: (r["rank"], r["value"], r["previous_rank"]) for r in rest["rows"]}
    assert got == {rep: (ranks(march)[rep], march[rep], ranks(february)[rep])
                   for rep in march}
    assert [r["rank"] for r in rest["rows"]] == sorted(r["rank"] for r in rest["rows"])


def test_funnel_first_stage_entries_match_sql(stages: Api) -> None:
    # Deals whose first entry into "new" falls on Kyiv days 2024-01-05 .. 2024-01-20:
    # Kyiv is UTC+2 in January, so from 01-04 22:00 UTC to before 01-20 22:00 UTC.
    rows = stages.sql("""
        WITH first AS (SELECT deal_id, min(entered_at) AS at FROM stage_changes
                       WHERE stage = 'new' GROUP BY deal_id)
        SELECT d.rep_id, count(*) FROM first JOIN deals d ON d.id = first.deal_id
        WHERE first.at >= TIMESTAMP '2024-01-04 22:00:00'
          AND first.at < TIMESTAMP '2024-01-20 22:00:00'
        GROUP BY ALL ORDER BY 1""")
    assert rows == [("r1", 2), ("r2", 3)]  # r1: D3 (01-05 00:30), D8; r2: D5, D6, D7
    rest = stages.json("/api/v1/funnel", [("by", "rep"), ("from", "2024-01-05"),
                                          ("to", "2024-01-20"), ("as_of", "2024-02-15")])
    (pipeline,) = rest["pipelines"]
    assert pipeline["team"]["stages"][0]["stage"] == "new"
    assert pipeline["team"]["stages"][0]["entered"] == sum(n for _rep, n in rows)
    assert {r["rep"]: r["stages"][0]["entered"] for r in pipeline["reps"]} == dict(rows)


def test_dates_in_params_are_days(stages: Api) -> None:
    """``as_of`` is a day: a date that cannot be read is refused before any work."""
    response = stages.get("/api/v1/funnel", [("as_of", "31.01.2024")])
    assert response.status_code == 422
    assert dt.date(2024, 1, 31).isoformat() == stages.json(
        "/api/v1/funnel", [("as_of", "2024-01-31")])["as_of"]


@pytest.mark.parametrize("path", ["/api/v1/comparison", "/api/v1/leaderboard",
                                  "/api/v1/funnel"])
def test_routes_document_their_view_model(team: Api, path: str) -> None:
    schema = team.client.get("/openapi.json").json()
    ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    name = ok["schema"]["$ref"].rsplit("/", 1)[-1]
    assert name in ("ComparisonView", "LeaderboardView", "FunnelView")
    assert "page" in schema["components"]["schemas"][name]["properties"]


def test_signed_out_is_refused(team: Api) -> None:
    response = team.client.get("/api/v1/comparison")
    assert response.status_code == 401
