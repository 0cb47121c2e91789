"""The funnel and the rows behind a number default to month to date, like every command
(issue 13, item 1), on the CLI, the REST API and the /rows page, and say so.

A small company in Kyiv time (UTC+2/+3) whose events sit on both sides of this month's
first midnight: 00:30 on the 1st in Kyiv is still last month in UTC. Dates are relative
to today in Kyiv (the code has no fixed "today"). Expected values come from SQL written
here over the stored DuckDB tables, with the month's bounds computed in Python.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.periods import shift_months
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user, issue_token
from saleskpi.surfaces.server import create_app

ZONE = "Europe/Kyiv"
MONTH = dt.datetime.now(zoneinfo.ZoneInfo(ZONE)).date().replace(day=1)
BEFORE = shift_months(MONTH, -1)
PREVIOUS_LAST = MONTH - dt.timedelta(days=1)
# Local (Kyiv) wall-clock times, as the files give them.
THIS_MONTH = f"{MONTH} 00:30"  # last month's last day in UTC
THIS_MONTH_LATER = f"{MONTH} 00:40"
LAST_MONTH = f"{BEFORE} 12:00"
LAST_MONTH_END = f"{PREVIOUS_LAST} 23:30"
DEALS = [  # id, rep, status, created, closed
    ("D1", "r1", "won", LAST_MONTH, THIS_MONTH),
    ("D2", "r2", "won", THIS_MONTH, THIS_MONTH_LATER),
    ("D3", "r3", "lost", LAST_MONTH, LAST_MONTH_END),
    ("D4", "r1", "open", THIS_MONTH, ""),
    ("D5", "r2", "lost", LAST_MONTH_END, THIS_MONTH_LATER),
    ("D6", "r3", "won", LAST_MONTH, LAST_MONTH_END),
]
STAGES = [  # deal, stage, entered
    ("D1", "new", LAST_MONTH), ("D1", "qualified", LAST_MONTH_END), ("D1", "won", THIS_MONTH),
    ("D2", "new", THIS_MONTH), ("D2", "won", THIS_MONTH_LATER),
    ("D3", "new", LAST_MONTH), ("D3", "lost", LAST_MONTH_END),
    ("D4", "new", THIS_MONTH), ("D4", "qualified", THIS_MONTH_LATER),
    ("D5", "new", LAST_MONTH_END), ("D5", "lost", THIS_MONTH_LATER),
    ("D6", "new", LAST_MONTH), ("D6", "qualified", LAST_MONTH),
    ("D6", "won", LAST_MONTH_END),
]
# Stages entered for the first time in [start, end) (UTC), written from the funnel's rule.
ENTERED_SQL = """
SELECT stage, count(*) FROM (
    SELECT deal_id, stage, min(entered_at) AS first_entry FROM stage_changes
    WHERE stage NOT IN ('won', 'lost') GROUP BY deal_id, stage)
WHERE first_entry >= $start AND first_entry < $end GROUP BY stage
"""
WON_SQL = ("SELECT id FROM deals WHERE status = 'won' AND closed_at >= $start "
           "AND closed_at < $end")
CLOSED_SQL = ("SELECT id FROM deals WHERE status IN ('won', 'lost') AND closed_at >= $start "
              "AND closed_at < $end")
EVER = (dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))


def utc_midnight(day: dt.date) -> dt.datetime:
    """When ``day`` begins in Kyiv, as the store keeps times: UTC, naive."""
    local = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(ZONE))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


def today() -> dt.date:
    """Today in Kyiv, read when a test asks: a run may cross midnight after collection."""
    return dt.datetime.now(zoneinfo.ZoneInfo(ZONE)).date()


@pytest.fixture(autouse=True)
def _same_month() -> None:
    if today().replace(day=1) != MONTH:  # the fixture's dates were written for last month
        pytest.skip("the month turned while the tests ran")


def month_to_date() -> tuple[dt.datetime, dt.datetime]:
    return utc_midnight(MONTH), utc_midnight(today() + dt.timedelta(days=1))


def sql(settings: Settings, query: str, bounds: tuple[dt.datetime, dt.datetime]) -> list[Any]:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        return con.execute(query, {"start": bounds[0], "end": bounds[1]}).fetchall()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from saleskpi.service.core import SalesKpiService

    root = tmp_path_factory.mktemp("mtd-drill")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Ann,North\nr2,Bob,North\nr3,Cat,South\n",
                                   encoding="utf-8")
    deals = ["id,rep_id,status,pipeline,amount,currency,created_at,closed_at"]
    deals += [f"{d},{rep},{status},main,100,USD,{created},{closed}"
              for d, rep, status, created, closed in DEALS]
    (data / "deals.csv").write_text("\n".join(deals) + "\n", encoding="utf-8")
    stages = ["deal_id,stage,entered_at"] + [",".join(s) for s in STAGES]
    (data / "stage_changes.csv").write_text("\n".join(stages) + "\n", encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency="USD")
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings


@pytest.fixture(scope="module")
def api(settings: Settings) -> tuple[TestClient, dict[str, str]]:
    user = add_user(settings, "head", "a long enough password", "head")
    token = issue_token(settings, user.user_id, "mtd test")
    return TestClient(create_app(settings)), {"Authorization": f"Bearer {token}"}


def entered(data: dict[str, Any]) -> dict[str, int]:
    (pipeline,) = data["pipelines"]
    return {s["stage"]: s["entered"] for s in pipeline["team"]["stages"] if s["entered"]}


def mtd_range() -> dict[str, Any]:
    return {"name": "mtd", "from": MONTH.isoformat(), "to": today().isoformat(),
            "partial": True}


def test_the_funnel_is_month_to_date_by_default(run_cli: Any, settings: Settings,
                                                api: tuple[TestClient, dict[str, str]]) -> None:
    expected = dict(sql(settings, ENTERED_SQL, month_to_date()))
    ever = dict(sql(settings, ENTERED_SQL, EVER))
    assert expected and expected != ever  # the default must tell the two apart
    cli = run_cli(settings.workspace, "funnel", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    data = cli.json()
    assert data["range"] == mtd_range()
    assert (data["from"], data["to"]) == (MONTH.isoformat(), today().isoformat())
    assert entered(data) == expected
    client, headers = api
    rest = client.get("/api/v1/funnel", headers=headers)
    assert rest.status_code == 200, rest.text
    assert rest.json()["range"] == mtd_range() and entered(rest.json()) == expected
    # All time when asked, and the period stated above the table.
    every = client.get("/api/v1/funnel", params={"range": "all"}, headers=headers).json()
    assert entered(every) == ever and every["range"]["name"] == "all"
    table = run_cli(settings.workspace, "funnel")
    assert f"Period: {MONTH} – {today()} (month to date, not over yet)" in table.stdout
    assert "Period: all time" in run_cli(settings.workspace, "funnel", "--range",
                                         "all").stdout


def test_a_funnel_as_of_a_past_day_is_that_months_to_date(run_cli: Any,
                                                          settings: Settings) -> None:
    day = PREVIOUS_LAST
    data = run_cli(settings.workspace, "funnel", "--as-of", day.isoformat(),
                   "--format", "json").json()
    assert (data["from"], data["to"]) == (BEFORE.isoformat(), day.isoformat())
    bounds = (utc_midnight(BEFORE), utc_midnight(MONTH))
    assert entered(data) == dict(sql(settings, ENTERED_SQL, bounds))


@pytest.mark.parametrize(("kpi", "part", "query"), [("deals_won", None, WON_SQL),
                                                    ("win_rate", "denominator", CLOSED_SQL)])
def test_the_rows_are_month_to_date_by_default(run_cli: Any, settings: Settings,
                                               api: tuple[TestClient, dict[str, str]],
                                               kpi: str, part: str | None,
                                               query: str) -> None:
    expected = {row[0] for row in sql(settings, query, month_to_date())}
    ever = {row[0] for row in sql(settings, query, EVER)}
    assert expected and expected != ever
    parts = ["--part", part] if part else []
    cli = run_cli(settings.workspace, "rows", kpi, *parts, "--format", "json")
    assert cli.returncode == 0, cli.stderr
    data = cli.json()
    assert data["range"] == mtd_range()
    assert {row["id"] for row in data["rows"]} == expected
    assert data["page"]["total_rows"] == len(expected)
    client, headers = api
    params = {"kpi": kpi, **({"part": part} if part else {})}
    rest = client.get("/api/v1/rows", params=params, headers=headers).json()
    assert rest["range"] == mtd_range() and {row["id"] for row in rest["rows"]} == expected
    every = client.get("/api/v1/rows", params={**params, "range": "all"},
                       headers=headers).json()
    assert {row["id"] for row in every["rows"]} == ever
    table = run_cli(settings.workspace, "rows", kpi, *parts)
    assert f"Period: {MONTH} – {today()} (month to date, not over yet)" in table.stdout


def test_the_rows_page_is_month_to_date_too(settings: Settings,
                                            api: tuple[TestClient, dict[str, str]]) -> None:
    client = TestClient(api[0].app)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    login = client.post("/login", follow_redirects=False, data={
        "username": "head", "password": "a long enough password", "csrf": token.group(1)})
    assert login.status_code == 303, login.text
    expected = {row[0] for row in sql(settings, WON_SQL, month_to_date())}
    page = client.get("/rows", params={"kpi": "deals_won"})
    assert page.status_code == 200
    assert f'data-total="{len(expected)}"' in page.text
    assert f"{MONTH} – {today()}" in page.text
    every = client.get("/rows", params={"kpi": "deals_won", "range": "all"})
    total = len({row[0] for row in sql(settings, WON_SQL, EVER)})
    assert f'data-total="{total}"' in every.text


def test_period_key_alone_is_that_period(run_cli: Any, settings: Settings) -> None:
    """A scorecard row's period (last month) drills into that month, not this one."""
    data = run_cli(settings.workspace, "rows", "deals_won", "--period", "month",
                   "--period-key", BEFORE.isoformat(), "--format", "json").json()
    bounds = (utc_midnight(BEFORE), utc_midnight(MONTH))
    assert {row["id"] for row in data["rows"]} == {
        row[0] for row in sql(settings, WON_SQL, bounds)}
    assert (data["from"], data["to"]) == (BEFORE.isoformat(), PREVIOUS_LAST.isoformat())
