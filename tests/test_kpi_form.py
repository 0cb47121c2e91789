"""The KPI form builds counts and sums (a catalogue measure, a filter, a unit) as well as
rates, and previews the value before saving it, the filter included (issue 13, item 7).

A small company in Kyiv time; deals won and lost in two pipelines, this month and last
month. Expected values come from SQL written here over the stored DuckDB tables, for
month to date (the page's default) and for all time; dates are relative to today.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
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
TODAY = dt.datetime.now(zoneinfo.ZoneInfo(ZONE)).date()
MONTH = TODAY.replace(day=1)
BEFORE = shift_months(MONTH, -1)
PASSWORD = "a long enough password"
DEALS = [  # id, rep, status, pipeline, amount, closed (Kyiv time)
    ("d1", "r1", "won", "partners", 100, f"{MONTH} 00:30"),  # last month in UTC
    ("d2", "r2", "won", "partners", 250, f"{MONTH} 12:00"),
    ("d3", "r1", "won", "main", 400, f"{MONTH} 12:00"),
    ("d4", "r2", "lost", "partners", 900, f"{MONTH} 12:00"),
    ("d5", "r1", "won", "partners", 70, f"{BEFORE} 12:00"),
    ("d6", "r2", "won", "main", 30, f"{BEFORE} 12:00"),
]
PARTNER_WON = ("FROM deals WHERE status = 'won' AND pipeline = 'partners' "
               "AND closed_at >= $start AND closed_at < $end")
ALL_WON = "FROM deals WHERE status = 'won' AND closed_at >= $start AND closed_at < $end"
EVER = (dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))


def utc_midnight(day: dt.date) -> dt.datetime:
    local = dt.datetime.combine(day, dt.time(), tzinfo=zoneinfo.ZoneInfo(ZONE))
    return local.astimezone(dt.UTC).replace(tzinfo=None)


MONTH_TO_DATE = (utc_midnight(MONTH), utc_midnight(TODAY + dt.timedelta(days=1)))


def sql(settings: Settings, query: str, bounds: tuple[dt.datetime, dt.datetime]) -> float:
    with duckdb.connect(str(settings.analytics_path), read_only=True) as con:
        (value,) = con.execute(query, {"start": bounds[0], "end": bounds[1]}).fetchone() \
            or (None,)
    return float(value or 0)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from saleskpi.service.core import SalesKpiService

    root = tmp_path_factory.mktemp("kpi-form")
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,Ann,North\nr2,Bob,South\n",
                                   encoding="utf-8")
    rows = ["id,rep_id,status,pipeline,amount,currency,created_at,closed_at"]
    rows += [f"{d},{rep},{status},{pipe},{amount},USD,{BEFORE} 09:00,{closed}"
             for d, rep, status, pipe, amount, closed in DEALS]
    (data / "deals.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency="USD")
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    add_user(settings, "head", PASSWORD, "head")
    add_user(settings, "ann", PASSWORD, "rep", rep_id="r1")
    return settings


def signed_in(settings: Settings) -> tuple[TestClient, str]:
    client = TestClient(create_app(settings))
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    answer = client.post("/login", follow_redirects=False, data={
        "username": "head", "password": PASSWORD, "csrf": token.group(1)})
    assert answer.status_code == 303, answer.text
    form = re.search(r'action="/catalog/build"[^>]*>\s*<input type="hidden" name="csrf" '
                     r'value="([^"]+)"', client.get("/catalog").text)
    assert form is not None
    return client, form.group(1)


def previewed(client: TestClient, fields: dict[str, str], **params: str) -> float | None:
    answer = client.post("/catalog/build", params=params, data={**fields, "action": "preview"})
    assert answer.status_code == 200, re.findall(r'role="alert">([^<]*)', answer.text)
    found = re.search(r'data-preview data-value="([^"]*)"', answer.text)
    assert found is not None, "no preview on the page"
    return float(found.group(1)) if found.group(1) else None


def form(client_csrf: str, **fields: str) -> dict[str, str]:
    return {"csrf": client_csrf, "name_en": "Partner figure", "group": "money",
            "higher": "1", "condition": "pipeline == 'partners'", **fields}


def test_a_count_with_a_filter_is_previewed_then_saved(settings: Settings) -> None:
    client, csrf = signed_in(settings)
    fields = form(csrf, key="partner_wins", kind="count", measure="deals_won", unit="count")
    mtd = sql(settings, f"SELECT count(*) {PARTNER_WON}", MONTH_TO_DATE)
    ever = sql(settings, f"SELECT count(*) {PARTNER_WON}", EVER)
    assert (mtd, ever) == (2, 3)  # d1 and d2 this month (d1 before midnight UTC), d5 before
    assert previewed(client, fields) == mtd  # the page's default: month to date
    assert previewed(client, fields, range="all") == ever
    # A preview saves nothing.
    assert client.get("/api/v1/catalog/partner_wins").status_code == 404
    saved = client.post("/catalog/build", data={**fields, "action": "save"},
                        follow_redirects=False)
    assert saved.status_code == 303
    card = client.get("/api/v1/scorecard", params={"kpi": "partner_wins"}).json()
    assert card["rows"][0]["partner_wins"]["value"] == mtd


def test_a_sum_with_a_filter_is_previewed_as_sql_sums_it(settings: Settings) -> None:
    client, csrf = signed_in(settings)
    fields = form(csrf, key="partner_revenue", kind="sum", measure="revenue", unit="money")
    mtd = sql(settings, f"SELECT sum(amount) {PARTNER_WON}", MONTH_TO_DATE)
    ever = sql(settings, f"SELECT sum(amount) {PARTNER_WON}", EVER)
    assert (mtd, ever) == (350, 420)
    assert previewed(client, fields) == mtd
    assert previewed(client, fields, range="all") == ever
    page = client.post("/catalog/build", data={**fields, "action": "preview"}).text
    assert "Preview: $350" in page
    # Only a sum can be summed: a count's measure is refused, and nothing is saved.
    wrong = client.post("/catalog/build", data={**fields, "measure": "deals_won",
                                                "action": "save"})
    assert wrong.status_code == 400 and "sum" in wrong.text
    assert client.get("/api/v1/catalog/partner_revenue").status_code == 404


def test_a_rate_previews_its_filtered_numerator(settings: Settings) -> None:
    client, csrf = signed_in(settings)
    fields = form(csrf, key="partner_share", kind="rate", numerator="deals_won",
                  denominator="deals_won", unit="ratio")
    top = sql(settings, f"SELECT count(*) {PARTNER_WON}", MONTH_TO_DATE)
    bottom = sql(settings, f"SELECT count(*) {ALL_WON}", MONTH_TO_DATE)
    assert (top, bottom) == (2, 3)
    assert previewed(client, fields) == pytest.approx(top / bottom)


def test_the_api_previews_a_definition_without_saving_it(settings: Settings) -> None:
    user_id = add_user(settings, "boss", PASSWORD, "admin").user_id
    headers = {"Authorization": f"Bearer {issue_token(settings, user_id, 'preview')}"}
    client = TestClient(create_app(settings))
    definition: dict[str, Any] = {
        "kind": "simple", "name": {"en": "Partner wins"}, "entity": "deals", "agg": "count",
        "time": "closed_at", "where": ["status == 'won'", "pipeline == 'partners'"]}
    answer = client.post("/api/v1/catalog/api_partner_wins/preview", json=definition,
                         headers=headers, params={"range": "all"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["value"] == sql(settings, f"SELECT count(*) {PARTNER_WON}", EVER)
    assert answer.json()["range"]["name"] == "all"
    assert client.get("/api/v1/catalog/api_partner_wins", headers=headers).status_code == 404
    broken = client.post("/api/v1/catalog/x/preview", headers=headers,
                         json={**definition, "where": ["pipline == 'partners'"]})
    assert broken.status_code == 400
    with sqlite3.connect(settings.workspace / "state.sqlite") as con:
        (ann,) = con.execute("SELECT id FROM users WHERE username = 'ann'").fetchone()
    refused = client.post("/api/v1/catalog/x/preview", json=definition, headers={
        "Authorization": f"Bearer {issue_token(settings, ann, 'rep')}"})
    assert refused.status_code == 403
