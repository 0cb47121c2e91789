"""One answer per question: every view's JSON is the same on the CLI, the REST API and MCP.

The same questions, under three filter sets, are asked of ``saleskpi … --format json``,
of ``/api/v1/…`` and of the MCP tools over HTTP (the SDK's own client), on one demo
company served by the real app under uvicorn. The head of sales asks (the CLI runs as
the workspace's owner, who also sees everything). Views MCP has no tool for (targets,
reps, users, sync status) are compared between the CLI and REST.

Two independent checks keep the comparison honest: an identical but wrong answer on
every surface would still fail them (deals won per rep, counted from the generated
frames; the number of targets, counted in SQLite).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.sources.demo import generate_company
from saleskpi.sources.ingest.run import import_frames
from saleskpi.surfaces.server import create_app
from tests.servers import serve

END = dt.date(2026, 10, 1)  # the demo data ends the day before
KPIS = ["deals_won", "revenue", "win_rate", "calls"]
LIMIT = 500  # asked explicitly everywhere: the CLI's default is all rows, REST's 1000


@dataclass(frozen=True)
class Filters:
    """One filter set: a grain, a date range and slices, as a user types them."""

    name: str
    period: str
    start: str | None
    end: str | None
    where: tuple[str, ...]
    at: str  # the day plans are measured on
    reverse: tuple[str, str] | None  # (rep|team, value) of the reverse plan
    range: str | None = None  # without dates: mtd (the default), all, ...


FILTER_SETS = [
    Filters("all time", "all", None, None, (), "2026-09-15", None, "all"),
    Filters("H1 by month, one team", "month", "2026-01-01", "2026-06-30", ("team=Москва",),
            "2026-06-20", ("team", "Москва")),
    Filters("Q3 by week, two sources", "week", "2026-07-01", "2026-09-30",
            ("source=ads,website",), "2026-09-30", ("rep", "R005")),
]


@dataclass
class Question:
    """One view asked three ways: CLI arguments, a REST request, an MCP tool call."""

    view: str
    cli: list[str]
    path: str
    params: list[tuple[str, str]]
    tool: str | None
    arguments: dict[str, Any]


def _dates(f: Filters) -> tuple[list[str], list[tuple[str, str]], dict[str, Any]]:
    cli: list[str] = []
    rest: list[tuple[str, str]] = []
    mcp: dict[str, Any] = {}
    for name, value in (("from", f.start), ("to", f.end)):
        if value:
            cli += [f"--{name}", value]
            rest.append((name, value))
            mcp[name] = value
    for item in f.where:
        cli += ["--where", item]
        rest.append(("where", item))
    if f.where:
        mcp["where"] = list(f.where)
    return cli, rest, mcp


def questions(f: Filters) -> list[Question]:
    cli_dates, rest_dates, mcp_dates = _dates(f)
    # The scorecard, comparison and leaderboard take a named range too.
    ranged_cli = [*cli_dates, *(["--range", f.range] if f.range else [])]
    ranged_rest = [*rest_dates, *([("range", f.range)] if f.range else [])]
    ranged_mcp = {**mcp_dates, **({"range": f.range} if f.range else {})}
    page_cli = ["--limit", str(LIMIT)]
    page_rest = [("limit", str(LIMIT))]
    kpis_rest = [("kpi", k) for k in KPIS]
    asked = [
        Question("scorecard",
                 ["kpi", *KPIS, "--by", "rep", "--period", f.period, *ranged_cli, *page_cli],
                 "/api/v1/scorecard",
                 [*kpis_rest, ("by", "rep"), ("period", f.period), *ranged_rest, *page_rest],
                 "query_kpis",
                 {"kpis": KPIS, "by": ["rep"], "period": f.period, **ranged_mcp,
                  "limit": LIMIT}),
        Question("comparison",
                 ["compare", *KPIS, "--period", f.period, *ranged_cli, *page_cli],
                 "/api/v1/comparison",
                 [*kpis_rest, ("period", f.period), *ranged_rest, *page_rest],
                 "comparison",
                 {"kpis": KPIS, "period": f.period, **ranged_mcp, "limit": LIMIT}),
        Question("leaderboard",
                 ["leaderboard", "revenue", "--period", f.period, *ranged_cli, *page_cli],
                 "/api/v1/leaderboard",
                 [("kpi", "revenue"), ("period", f.period), *ranged_rest, *page_rest],
                 "leaderboard",
                 {"kpi": "revenue", "period": f.period, **ranged_mcp, "limit": LIMIT}),
        Question("funnel",
                 ["funnel", "--by", "rep", "--as-of", f.at, *cli_dates, *page_cli],
                 "/api/v1/funnel",
                 [("by", "rep"), ("as_of", f.at), *rest_dates, *page_rest],
                 "funnel",
                 {"by": "rep", "as_of": f.at, **mcp_dates, "limit": LIMIT}),
        Question("plan vs actual",
                 ["plan", "--at", f.at, *page_cli],
                 "/api/v1/plan", [("at", f.at), *page_rest],
                 "plan_vs_actual", {"at": f.at, "limit": LIMIT}),
        Question("targets",
                 ["target", "list", "--at", f.at, *page_cli],
                 "/api/v1/targets", [("at", f.at), *page_rest], None, {}),
    ]
    who_cli = [f"--{f.reverse[0]}", f.reverse[1]] if f.reverse else []
    who_rest = [f.reverse] if f.reverse else []
    who_mcp = dict([f.reverse]) if f.reverse else {}
    asked.append(Question(
        "reverse plan",
        ["plan", "reverse", "--goal", "deals_won=20", "--at", f.at, *who_cli],
        "/api/v1/reverse-plan", [("goal", "deals_won=20"), ("at", f.at), *who_rest],
        "reverse_plan", {"goal": "deals_won=20", "at": f.at, **who_mcp}))
    return asked


# Views without filters: asked once.
_PAGE = ("limit", str(LIMIT))
SINGLE = [
    Question("catalogue", ["kpis", "--limit", str(LIMIT)], "/api/v1/catalog", [_PAGE],
             "list_kpis", {"limit": LIMIT}),
    Question("one KPI explained", ["kpis", "win_rate"], "/api/v1/catalog/win_rate", [],
             "explain_kpi", {"key": "win_rate"}),
    Question("rows behind a number",
             ["rows", "deals_won", "--rep", "R005", "--from", "2026-04-01", "--to",
              "2026-06-30", "--limit", "50"],
             "/api/v1/rows", [("kpi", "deals_won"), ("rep", "R005"), ("from", "2026-04-01"),
                              ("to", "2026-06-30"), ("limit", "50")],
             "rows_behind", {"kpi": "deals_won", "rep": "R005", "from": "2026-04-01",
                             "to": "2026-06-30", "limit": 50}),
    Question("forecast", ["forecast", "--at", "2026-09-15", "--deals", "5"], "/api/v1/forecast",
             [("at", "2026-09-15"), ("deals", "5")], "forecast",
             {"at": "2026-09-15", "deals": 5}),
    Question("reps", ["reps", "--limit", str(LIMIT)], "/api/v1/reps", [_PAGE], None, {}),
    Question("users", ["user", "list", "--limit", str(LIMIT)], "/api/v1/users", [_PAGE],
             None, {}),
    Question("sync status", ["sync", "--status"], "/api/v1/sync/status", [], None, {}),
]


@dataclass
class Company:
    settings: Settings
    token: str
    won_by_rep: dict[str, int]
    url: str


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Company]:
    settings = Settings(workspace=tmp_path_factory.mktemp("parity") / "ws")
    frames = generate_company(0.15, seed=3, end=END, timezone=settings.timezone,
                              currency=settings.currency)
    assert import_frames(settings, frames, source="demo").ok
    deals = frames["deals"]
    won = deals[deals["status"] == "won"].groupby("rep_id").size()
    head = add_user(settings, "olena", "correct horse battery", "head")
    token = issue_token(settings, head.user_id, "parity")
    with serve(create_app(settings)) as url:
        yield Company(settings, token, {str(k): int(v) for k, v in won.items()}, url)


def ask_cli(run_cli: Any, company: Company, q: Question) -> Any:
    result = run_cli(company.settings.workspace, *q.cli, "--format", "json")
    assert result.returncode == 0, (q.cli, result.stderr)
    return result.json()


def ask_rest(company: Company, q: Question) -> Any:
    response = httpx.get(company.url + q.path, params=q.params, timeout=120,
                         headers={"Authorization": f"Bearer {company.token}"})
    assert response.status_code == 200, (q.path, response.text)
    return response.json()


def ask_mcp(company: Company, calls: list[Question]) -> list[dict[str, Any]]:
    """Every tool call in one MCP session over HTTP, as an assistant would make them."""
    async def main() -> list[dict[str, Any]]:
        transport = streamable_http_client(
            company.url + "/mcp",
            http_client=httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {company.token}"}, timeout=120))
        answers = []
        async with Client(transport) as client:
            for q in calls:
                assert q.tool is not None
                result = await client.call_tool(q.tool, q.arguments)
                assert not result.is_error, (q.tool, result.content)
                data = result.structured_content
                assert isinstance(data, dict)
                data.pop("definitions")  # MCP's addition: the definitions it used
                answers.append(data)
        return answers

    return anyio.run(main)


@pytest.mark.parametrize("filters", FILTER_SETS, ids=[f.name for f in FILTER_SETS])
def test_every_view_is_the_same_on_every_surface(company: Company, run_cli: Any,
                                                 filters: Filters) -> None:
    asked = questions(filters)
    cli = {q.view: ask_cli(run_cli, company, q) for q in asked}
    rest = {q.view: ask_rest(company, q) for q in asked}
    with_tools = [q for q in asked if q.tool]
    mcp = dict(zip([q.view for q in with_tools], ask_mcp(company, with_tools), strict=True))
    for q in asked:
        assert rest[q.view] == cli[q.view], f"{q.view}: REST differs from the CLI"
        if q.tool:
            assert mcp[q.view] == cli[q.view], f"{q.view}: MCP differs from the CLI"
    # Not the same wrong answer everywhere: deals won per rep, counted from the frames.
    if filters.start is None:
        by_rep = {r["rep"]: r["deals_won"]["value"] for r in cli["scorecard"]["rows"]}
        assert {r: v for r, v in by_rep.items() if v} == company.won_by_rep
    assert cli["scorecard"]["rows"], "the filter set selects nothing: it proves nothing"


def test_views_without_filters_are_the_same_on_every_surface(company: Company,
                                                             run_cli: Any) -> None:
    cli = {q.view: ask_cli(run_cli, company, q) for q in SINGLE}
    rest = {q.view: ask_rest(company, q) for q in SINGLE}
    with_tools = [q for q in SINGLE if q.tool]
    mcp = dict(zip([q.view for q in with_tools], ask_mcp(company, with_tools), strict=True))
    for q in SINGLE:
        assert rest[q.view] == cli[q.view], f"{q.view}: REST differs from the CLI"
        if q.tool:
            assert mcp[q.view] == cli[q.view], f"{q.view}: MCP differs from the CLI"
    # The reps view lists every rep of the generated company.
    listed = {m["id"] for p in cli["reps"]["people"] for m in p["members"]}
    assert listed == {f"R00{i}" for i in range(1, 9)}
    # And the users view the head who asked.
    assert [u["username"] for u in cli["users"]["users"]] == ["olena"]


def test_targets_are_the_stored_ones(company: Company, run_cli: Any) -> None:
    """The targets view, on every surface, lists what SQLite holds for that day."""
    at = FILTER_SETS[0].at
    with sqlite3.connect(company.settings.workspace / "state.sqlite") as db:
        stored = db.execute("SELECT count(*) FROM targets WHERE period_start <= ? "
                            "AND period_end >= ?", (at, at)).fetchone()[0]
    listed = ask_rest(company, Question("targets", [], "/api/v1/targets",
                                        [("at", at), ("limit", str(LIMIT))], None, {}))
    assert stored > 0
    assert listed["page"]["total_rows"] == stored == len(listed["targets"])
