"""The rows behind a number: as many rows as the KPI counts, in the caller's scope, alike
on the CLI, the REST API and MCP.

The workspace is a small demo company (``generate_company(0.15, seed=3)``) in Kyiv time,
so that a row's UTC time and the company's day differ. Expected rows come from SQL
written here on the DuckDB file, with the month's bounds computed in Python.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

import anyio
import duckdb
import pytest
from fastapi.testclient import TestClient
from mcp import Client
from mcp.types import CallToolResult

from saleskpi.domain.query import make_query
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user, issue_token, principal_for_token
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.demo import generate_company
from saleskpi.sources.ingest.run import import_frames
from saleskpi.surfaces.mcp.server import build_server
from saleskpi.surfaces.server import create_app
from saleskpi.views.base import LOCAL
from saleskpi.views.drill import RowsParams, rows_behind

ZONE = "Europe/Kyiv"
END = dt.date(2026, 10, 1)  # the demo data ends the day before
PASSWORD = "correct horse battery"
# Each KPI's (and part's) rows, written by hand from the catalogue's definitions:
# deals_won counts won deals by close time, calls outbound (or undirected) calls,
# win_rate's denominator the deals closed won or lost.
HAND_SQL = {
    ("deals_won", None): "SELECT id FROM deals WHERE status = 'won' AND rep_id = $rep "
                         "AND closed_at >= $start AND closed_at < $end",
    ("calls", None): "SELECT id FROM activities WHERE type = 'call' "
                     "AND (direction IS NULL OR direction <> 'in') AND rep_id = $rep "
                     "AND occurred_at >= $start AND occurred_at < $end",
    ("win_rate", "numerator"): "SELECT id FROM deals WHERE status = 'won' AND rep_id = $rep "
                               "AND closed_at >= $start AND closed_at < $end",
    ("win_rate", "denominator"): "SELECT id FROM deals WHERE status IN ('won', 'lost') "
                                 "AND rep_id = $rep AND closed_at >= $start "
                                 "AND closed_at < $end",
}


@dataclass
class Company:
    settings: Settings
    rep: str  # the rep user's rep id: the rep with the most deals won in the month
    other: str  # another rep with deals won that month
    rep_name: str
    first: dt.date  # the month asked: its first and last day
    last: dt.date
    tokens: dict[str, str]  # admin, rep -> API token


def utc_midnight(day: dt.date) -> dt.datetime:
    """When ``day`` begins in Kyiv, as the store keeps times: UTC, naive."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(ZONE))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def hand_ids(settings: Settings, kpi: str, part: str | None, rep: str, first: dt.date,
             last: dt.date) -> set[str]:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        found = con.execute(HAND_SQL[kpi, part], {
            "rep": rep, "start": utc_midnight(first),
            "end": utc_midnight(last + dt.timedelta(days=1))}).fetchall()
    return {row[0] for row in found}


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> Company:
    workspace = tmp_path_factory.mktemp("drill") / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE)
    settings = Settings(workspace=workspace)
    assert settings.timezone == ZONE  # the CLI reads it from the workspace too
    frames = generate_company(0.15, seed=3, end=END, timezone=ZONE, currency=settings.currency)
    assert import_frames(settings, frames, source="demo").ok
    reps = frames["reps"]
    rep_ids = sorted(reps.loc[reps["role"] == "rep", "id"])
    names = dict(zip(reps["id"], reps["name"], strict=True))
    # The month and rep with the most deals won, and the runner-up rep in that month.
    best: list[tuple[int, dt.date, str]] = []
    for month in range(1, 10):
        first = dt.date(2026, month, 1)
        last = dt.date(2026, month + 1, 1) - dt.timedelta(days=1)
        for rep in rep_ids:
            won = hand_ids(settings, "deals_won", None, rep, first, last)
            best.append((len(won), first, rep))
    count, first, rep = max(best)
    others = sorted((n, r) for n, f, r in best if f == first and r != rep)
    assert count >= 3 and others[-1][0] > 0
    last = dt.date(first.year, first.month + 1, 1) - dt.timedelta(days=1)
    tokens = {}
    for name, role, rep_id in (("admin", "admin", None), ("rep", "rep", rep)):
        user = add_user(settings, name, PASSWORD, role, rep_id=rep_id)
        tokens[name] = issue_token(settings, user.user_id, "drill test")
    return Company(settings, rep, others[-1][1], str(names[rep]), first, last, tokens)


@pytest.fixture(scope="module")
def api(company: Company) -> TestClient:
    return TestClient(create_app(company.settings))


def bearer(company: Company, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {company.tokens[who]}"}


@pytest.mark.parametrize(("kpi", "part"), [("deals_won", None), ("calls", None),
                                           ("win_rate", "numerator"),
                                           ("win_rate", "denominator")])
def test_rows_are_what_the_kpi_counts(company: Company, kpi: str, part: str | None) -> None:
    expected = hand_ids(company.settings, kpi, part, company.rep, company.first, company.last)
    assert expected, "the month must have rows to compare"
    service = SalesKpiService(company.settings)
    view = rows_behind(service, LOCAL, RowsParams(
        kpi=kpi, part=part, start=company.first, end=company.last, rep=company.rep,
        limit=10_000))
    assert view.page.total_rows == len(view.rows) == len(expected)
    assert {r["id"] for r in view.rows} == expected
    assert view.part == (part or "value")
    assert all(r["dim_rep"] == company.rep == r["rep_id"] for r in view.rows)
    # Newest first, and every row in the month as the company's clock has it.
    local = [r[view.definition.measure["time"] + "_local"] for r in view.rows]
    assert local == sorted(local, reverse=True)
    assert all(company.first.isoformat() <= t[:10] <= company.last.isoformat() for t in local)

    # The scorecard counts the same rows.
    card = service.scorecard(make_query([kpi], start=company.first, end=company.last,
                                        where=[f"rep={company.rep}"]))
    value = card.rows[0].values[kpi]
    counted = value.value if part is None else getattr(value, part)
    assert counted == len(expected)

    # A rep may be named instead of given by id; a page is a slice of the same rows.
    by_name = rows_behind(service, LOCAL, RowsParams(
        kpi=kpi, part=part, start=company.first, end=company.last, rep=company.rep_name,
        limit=2, offset=1))
    assert by_name.page.total_rows == len(expected)
    assert [r["id"] for r in by_name.rows] == [r["id"] for r in view.rows[1:3]]


def test_a_period_key_is_its_dates(company: Company) -> None:
    service = SalesKpiService(company.settings)
    by_dates = rows_behind(service, LOCAL, RowsParams(
        kpi="deals_won", start=company.first, end=company.last, rep=company.rep))
    by_key = rows_behind(service, LOCAL, RowsParams(
        kpi="deals_won", period="month", period_key=company.first, rep=company.rep))
    assert by_key.rows == by_dates.rows and by_key.page == by_dates.page


def test_a_reps_token_sees_only_their_rows(company: Company, api: TestClient) -> None:
    dates = {"from": company.first.isoformat(), "to": company.last.isoformat()}
    mine = api.get("/api/v1/rows", params={"kpi": "deals_won", **dates},
                   headers=bearer(company, "rep"))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    expected = hand_ids(company.settings, "deals_won", None, company.rep, company.first,
                        company.last)
    assert body["page"]["total_rows"] == len(expected)
    assert {r["id"] for r in body["rows"]} == expected
    assert {r["rep_id"] for r in body["rows"]} == {company.rep}

    # Another rep's rows: there are some (the admin sees them), the rep gets none.
    theirs = {"kpi": "deals_won", "rep": company.other, **dates}
    admin = api.get("/api/v1/rows", params=theirs, headers=bearer(company, "admin")).json()
    assert admin["page"]["total_rows"] == len(hand_ids(
        company.settings, "deals_won", None, company.other, company.first, company.last)) > 0
    refused = api.get("/api/v1/rows", params=theirs, headers=bearer(company, "rep"))
    assert refused.status_code == 200, refused.text
    assert refused.json()["rows"] == [] and refused.json()["page"]["total_rows"] == 0
    filtered = api.get("/api/v1/rows", params={"kpi": "calls", "where": f"rep={company.other}",
                                               **dates}, headers=bearer(company, "rep"))
    assert filtered.json()["page"]["total_rows"] == 0
    assert api.get("/api/v1/rows", params={"kpi": "calls"}).status_code == 401


def mcp_call(company: Company, arguments: dict[str, Any]) -> CallToolResult:
    service = SalesKpiService(company.settings)
    caller = principal_for_token(company.settings, company.tokens["admin"])
    assert caller is not None
    server = build_server(service, lambda _ctx: caller)

    async def main() -> CallToolResult:
        async with Client(server) as client:
            assert "rows_behind" in {t.name for t in (await client.list_tools()).tools}
            return await client.call_tool("rows_behind", arguments)

    result: CallToolResult = anyio.run(main)
    return result


def test_cli_rest_and_mcp_give_the_same_json(company: Company, api: TestClient,
                                             run_cli) -> None:
    first, last = company.first.isoformat(), company.last.isoformat()
    cli = run_cli(company.settings.workspace, "rows", "win_rate", "--part", "numerator",
                  "--from", first, "--to", last, "--rep", company.rep, "--limit", "3",
                  "--offset", "1", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    rest = api.get("/api/v1/rows", headers=bearer(company, "admin"), params={
        "kpi": "win_rate", "part": "numerator", "from": first, "to": last,
        "rep": company.rep, "limit": 3, "offset": 1})
    assert rest.status_code == 200, rest.text
    result = mcp_call(company, {"kpi": "win_rate", "part": "numerator", "from": first,
                                "to": last, "rep": company.rep, "limit": 3, "offset": 1})
    assert not result.is_error, result.content
    mcp = result.structured_content
    assert isinstance(mcp, dict)
    definitions = mcp.pop("definitions")
    assert cli.json() == rest.json() == mcp
    assert mcp["definition"]["uses"] == "deals_won"
    assert set(definitions) == {"win_rate", "deals_won"}
    assert len(mcp["rows"]) == 3 and mcp["page"]["offset"] == 1
    assert mcp["page"]["total_rows"] == len(hand_ids(
        company.settings, "win_rate", "numerator", company.rep, company.first, company.last))


def test_a_derived_kpi_has_no_rows_of_its_own(company: Company, api: TestClient,
                                              run_cli) -> None:
    cli = run_cli(company.settings.workspace, "rows", "sales_profitability")
    assert cli.returncode == 2
    assert "derived" in cli.stderr and "billed_revenue" in cli.stderr
    assert "Traceback" not in cli.stderr
    rest = api.get("/api/v1/rows", params={"kpi": "sales_profitability"},
                   headers=bearer(company, "admin"))
    assert rest.status_code == 400
    assert rest.json()["error"] == "not_drillable"
    assert "cost_of_goods" in rest.json()["detail"]
    result = mcp_call(company, {"kpi": "sales_profitability"})
    assert result.is_error
    assert "".join(c.text for c in result.content).startswith(  # type: ignore[union-attr]
        "not_drillable: ")
    # A simple KPI has no denominator.
    bad = api.get("/api/v1/rows", params={"kpi": "calls", "part": "denominator"},
                  headers=bearer(company, "admin"))
    assert bad.status_code == 400 and bad.json()["error"] == "bad_part"


def test_rows_help_has_an_example(company: Company, run_cli) -> None:
    result = run_cli(company.settings.workspace, "rows", "--help")
    assert result.returncode == 0, result.stderr
    assert "Example:" in result.stdout


def test_a_misspelled_rep_slice_or_team_is_named_not_no_rows(company: Company,
                                                            run_cli) -> None:
    workspace = company.settings.workspace
    typo = company.rep_name[:-1]  # the rep's name less its last letter
    rep = run_cli(workspace, "rows", "deals_won", "--rep", typo)
    assert rep.returncode == 2
    assert f"unknown rep '{typo}'" in rep.stderr and company.rep_name in rep.stderr
    where = run_cli(workspace, "rows", "deals_won", "--where", "tem=North")
    assert where.returncode == 2 and "did you mean team?" in where.stderr
    team = run_cli(workspace, "rows", "deals_won", "--where", "team=No such team")
    assert team.returncode == 2 and "unknown team 'No such team'" in team.stderr
    # The name in full: the rows of the month, as counted by hand.
    found = run_cli(workspace, "rows", "deals_won", "--rep", company.rep_name, "--from",
                    company.first.isoformat(), "--to", company.last.isoformat(),
                    "--format", "json")
    assert found.returncode == 0, found.stderr
    assert found.json()["page"]["total_rows"] == len(hand_ids(
        company.settings, "deals_won", None, company.rep, company.first, company.last))
