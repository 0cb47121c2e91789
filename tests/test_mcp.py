"""MCP for AI assistants, through the SDK's own client: the CLI's numbers, in the token's scope.

The workspace is a small demo company (``generate_company(0.15, seed=3)``: a head, a team
lead and six reps in one team). ``saleskpi mcp`` is spawned over stdio as a client would
start it; ``/mcp`` is served by the real app under uvicorn.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.sources.demo import generate_company
from saleskpi.sources.ingest.run import import_frames
from saleskpi.surfaces.server import create_app
from tests.conftest import SRC_DIR, CliResult
from tests.servers import serve

END = dt.date(2026, 10, 1)  # the demo data ends the day before
PASSWORD = "correct horse battery"
ALWAYS = {"list_kpis", "explain_kpi", "query_kpis"}
# Tools whose views other modules provide; each is listed when its module is there.
OPTIONAL = {"funnel": "funnel", "comparison": "rankings", "leaderboard": "rankings",
            "plan_vs_actual": "plans", "reverse_plan": "plans", "rows_behind": "drill",
            "forecast": "forecast", "deal_win_chances": "forecast",
            "forecast_backtest": "forecast", "forecast_track_record": "forecast",
            "bonus": "bonus", "bonus_explain": "bonus", "bonus_whatif": "bonus",
            "list_contests": "contests", "contest_standings": "contests",
            "my_digest": "digests", "alerts": "alerts", "alert_backtest": "alert_backtest"}
# The filters both the CLI and MCP are asked with.
QUERY = {"kpis": ["deals_won", "revenue", "win_rate"], "by": ["rep"], "period": "month",
         "from": "2026-01-01", "to": "2026-06-30", "where": ["team=Москва"]}
CLI_QUERY = ["kpi", "deals_won", "revenue", "win_rate", "--by", "rep", "--period", "month",
             "--from", "2026-01-01", "--to", "2026-06-30", "--where", "team=Москва",
             "--format", "json"]


@dataclass
class Company:
    settings: Settings
    rep: str  # the rep user's rep id
    won_by_rep: dict[str, int]  # deals won per rep, all time, counted from the frames
    tokens: dict[str, str]  # admin, rep, other_rep -> API token


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    settings = Settings(workspace=tmp_path_factory.mktemp("mcp") / "ws")
    frames = generate_company(0.15, seed=3, end=END, timezone=settings.timezone,
                              currency=settings.currency)
    assert import_frames(settings, frames, source="demo").ok
    reps = frames["reps"]
    rep_ids = sorted(reps.loc[reps["role"] == "rep", "id"])
    deals = frames["deals"]
    won = deals[deals["status"] == "won"].groupby("rep_id").size()
    tokens = {}
    for name, role, rep in (("admin", "admin", None), ("rep", "rep", rep_ids[0]),
                            ("other_rep", "rep", rep_ids[1])):
        user = add_user(settings, name, PASSWORD, role, rep_id=rep)
        tokens[name] = issue_token(settings, user.user_id, "mcp test")
    return Company(settings, rep_ids[0], {str(k): int(v) for k, v in won.items()}, tokens)


@pytest.fixture(scope="module")
def url(company: Company) -> Iterator[str]:
    with serve(create_app(company.settings)) as base:
        yield base + "/mcp"


def expected_tools() -> set[str]:
    present = {tool for tool, module in OPTIONAL.items()
               if importlib.util.find_spec(f"saleskpi.views.{module}") is not None}
    return ALWAYS | present


def run(session: Callable[[Client], Awaitable[Any]], server: Any,
        mode: str = "auto") -> Any:
    """``session(client)`` with an SDK client connected to ``server``; its result."""
    async def main() -> Any:
        async with Client(server, mode=mode) as client:
            return await session(client)

    return anyio.run(main)


def over_http(url: str, token: str | None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers))


def answer(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    # The text content is the same JSON, for clients that read only text.
    assert json.loads(result.content[0].text) == data  # type: ignore[union-attr]
    return data


def error_text(result: CallToolResult) -> str:
    assert result.is_error
    assert result.structured_content is None
    return "".join(c.text for c in result.content)  # type: ignore[union-attr]


# -- stdio ------------------------------------------------------------------------------

def test_stdio_query_equals_the_cli(company: Company, run_cli) -> None:
    ws = company.settings.workspace
    env = {"SALESKPI_TOKEN": company.tokens["admin"], "SALESKPI_LANG": "en",
           "PYTHONPATH": os.pathsep.join(p for p in (str(SRC_DIR), os.environ.get(
               "PYTHONPATH", "")) if p)}
    server = StdioServerParameters(command=sys.executable,
                                   args=["-m", "saleskpi", "--workspace", str(ws), "mcp"],
                                   env=env)

    async def session(client: Client) -> tuple[set[str], dict[str, Any], dict[str, Any]]:
        tools = {t.name for t in (await client.list_tools()).tools}
        query = answer(await client.call_tool("query_kpis", QUERY))
        kpis = answer(await client.call_tool("list_kpis", {}))
        return tools, query, kpis

    tools, mcp, catalogue = run(session, server)
    assert tools == expected_tools()

    cli: CliResult = run_cli(ws, *CLI_QUERY)
    assert cli.returncode == 0, cli.stderr
    expected = cli.json()
    definitions = mcp.pop("definitions")
    page = mcp.pop("page")
    cli_page = expected.pop("page")
    assert mcp == expected
    # MCP pages by default (the CLI prints all): the same rows, at most 1000 at a time.
    assert page == {"total_rows": cli_page["total_rows"], "limit": 1000, "offset": 0}
    assert cli_page["total_rows"] == len(expected["rows"]) > 0

    # Each answer carries the definitions it used, as the catalogue states them.
    listed = run_cli(ws, "kpis", "--format", "json").json()
    if isinstance(listed, dict):  # the catalogue view: {lang, kpis, page}
        listed = listed["kpis"]
    by_key = {k["key"]: k for k in listed}
    assert list(definitions) == QUERY["kpis"]
    for key, definition in definitions.items():
        for field in ("key", "name", "description", "kind", "unit"):
            assert definition[field] == by_key[key][field]
        assert definition["measures"], key
    assert definitions["win_rate"]["formula"] == "numerator / denominator"
    assert definitions["deals_won"]["measures"] == [
        {"entity": "deals", "agg": "count", "time": "closed_at",
         "where": ["status == 'won'"]}]
    assert definitions["deals_won"]["higher_is_better"] is True
    # The catalogue tool lists every KPI, each with its definition.
    assert {k["key"] for k in catalogue["kpis"]} == set(by_key)
    assert set(catalogue["definitions"]) == set(by_key)


def test_stdio_refuses_to_start_without_a_valid_token(company: Company, run_cli) -> None:
    ws = company.settings.workspace
    missing = run_cli(ws, "mcp")
    assert missing.returncode == 4
    assert "SALESKPI_TOKEN" in missing.stderr
    wrong = run_cli(ws, "mcp", "--token", "skpi_not-a-token")
    assert wrong.returncode == 4
    assert "not valid" in wrong.stderr
    assert "Traceback" not in missing.stderr + wrong.stderr


def test_mcp_help_has_an_example(run_cli, workspace: Path) -> None:
    result = run_cli(workspace, "mcp", "--help")
    assert result.returncode == 0, result.stderr
    assert "Example:" in result.stdout and "SALESKPI_TOKEN" in result.stdout


# -- streamable HTTP at /mcp -------------------------------------------------------------

@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_http_rep_token_sees_only_the_reps_rows(company: Company, url: str,
                                                mode: str) -> None:
    async def session(client: Client) -> dict[str, Any]:
        return answer(await client.call_tool("query_kpis", {"kpis": ["deals_won"],
                                                           "by": ["rep"], "range": "all"}))

    rep = run(session, over_http(url, company.tokens["rep"]), mode)
    admin = run(session, over_http(url, company.tokens["admin"]), mode)
    assert [r["rep"] for r in rep["rows"]] == [company.rep]
    assert rep["rows"][0]["deals_won"]["value"] == company.won_by_rep[company.rep]
    assert rep["totals"][0]["deals_won"]["value"] == company.won_by_rep[company.rep]
    # The admin sees every rep, each with the deals they won.
    seen = {r["rep"]: r["deals_won"]["value"] for r in admin["rows"]}
    assert {r: v for r, v in seen.items() if v} == company.won_by_rep
    assert list(rep["definitions"]) == ["deals_won"]


def test_http_rep_cannot_reach_other_reps_through_filters(company: Company, url: str) -> None:
    other = sorted(set(company.won_by_rep) - {company.rep})[0]

    async def session(client: Client) -> CallToolResult:
        return await client.call_tool("query_kpis", {"kpis": ["deals_won"], "by": ["rep"],
                                                     "where": [f"rep={other}"]})

    result = run(session, over_http(url, company.tokens["rep"]))
    if result.is_error:
        assert error_text(result).startswith("forbidden: ")
    else:
        data = answer(result)
        assert data["rows"] == []
        assert all(t["deals_won"]["value"] in (0, None) for t in data["totals"])


def test_http_without_a_valid_token_is_401(url: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(url, json=body, headers=accept)
    assert missing.status_code == 401
    assert missing.json()["error"] == "not_signed_in"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(url, json=body, headers={**accept,
                                                "Authorization": "Bearer skpi_nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "bad_token"

    async def session(client: Client) -> None:
        await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017  (the SDK's client gives up, whatever it raises)
        run(session, over_http(url, None))


def test_http_session_belongs_to_the_user_who_opened_it(company: Company, url: str) -> None:
    headers = {"Accept": "application/json, text/event-stream",
               "Authorization": f"Bearer {company.tokens['admin']}"}
    opened = httpx.post(url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}})
    assert opened.status_code == 200, opened.text
    session_id = opened.headers["mcp-session-id"]
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    stolen = httpx.post(url, json=call, headers={
        **headers, "Authorization": f"Bearer {company.tokens['rep']}",
        "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"})
    assert stolen.status_code == 404


def test_unknown_kpi_is_a_tool_error_with_code_and_message(company: Company,
                                                           url: str) -> None:
    async def session(client: Client) -> tuple[CallToolResult, CallToolResult]:
        unknown = await client.call_tool("query_kpis", {"kpis": ["revenu"], "by": ["rep"]})
        bad_args = await client.call_tool("query_kpis", {"kpis": ["revenue"], "slice": "x"})
        with pytest.raises(MCPError, match="unknown tool 'no_such_tool'"):
            await client.call_tool("no_such_tool", {})
        return unknown, bad_args

    unknown, bad_args = run(session, over_http(url, company.tokens["admin"]))
    text = error_text(unknown)
    code, _sep, message = text.partition(": ")
    assert code in ("bad_query", "bad_catalog")
    assert "unknown KPI 'revenu'" in message and "revenue" in message
    assert "Traceback" not in text
    text = error_text(bad_args)
    assert text.startswith("bad_arguments: ") and "slice" in text


def test_every_listed_tool_answers_with_its_definitions(company: Company, url: str) -> None:
    calls: dict[str, dict[str, Any]] = {
        "list_kpis": {"limit": 5}, "explain_kpi": {"key": "win_rate"},
        "query_kpis": {"kpis": ["revenue"]},
        "funnel": {}, "comparison": {"kpis": ["deals_won", "win_rate"]},
        "leaderboard": {"kpi": "deals_won"}, "plan_vs_actual": {"at": "2026-09-15"},
        "reverse_plan": {"goal": "deals_won=10", "at": "2026-09-15"},
        "forecast": {"at": "2026-09-15", "simulations": 200, "deals": 3},
        "forecast_track_record": {}, "bonus": {"period": "2026-09"}, "list_contests": {},
        "alerts": {}, "alert_backtest": {"definition": {
            "name": "stuck", "kind": "deal_stuck", "owner": "head",
            "recipients": {"roles": ["head"]}, "days": 14}, "from": "2026-09-01",
            "to": "2026-09-30"},
    }

    async def session(client: Client) -> dict[str, CallToolResult]:
        names = {t.name for t in (await client.list_tools()).tools}
        return {name: await client.call_tool(name, args) for name, args in calls.items()
                if name in names}

    results = run(session, over_http(url, company.tokens["admin"]))
    assert set(results) == expected_tools() & set(calls)
    for name, result in results.items():
        data = answer(result)
        assert isinstance(data["definitions"], dict), name
        for key, definition in data["definitions"].items():
            assert definition["key"] == key
    assert len(answer(results["list_kpis"])["definitions"]) == 5
    explained = answer(results["explain_kpi"])
    assert {"win_rate", *explained["depends_on"]} == set(explained["definitions"])
    if "comparison" in results:
        assert set(answer(results["comparison"])["definitions"]) == {"deals_won", "win_rate"}
    if "leaderboard" in results:
        assert list(answer(results["leaderboard"])["definitions"]) == ["deals_won"]


def test_a_tool_whose_view_is_missing_is_skipped() -> None:
    from saleskpi.surfaces.mcp.tools import ToolSpec, available_tools

    specs = (ToolSpec("gone", "not there", ("no_such_view:view",)),
             ToolSpec("fallback", "the second candidate", ("no_such_view:view",
                                                           "scorecard:scorecard")))
    tools = available_tools(specs)
    assert list(tools) == ["fallback"]
    assert tools["fallback"].params.__name__ == "ScorecardParams"
