"""Hardening (issue 16, items 4, 8, 9 and 10), each failure as it was reproduced first.

A demo company is imported with the umask most machines have (022), then served by
uvicorn on a local port; requests go over one keep-alive connection, so a 500 that
closes it would show.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.query import MAX_PERIODS, count_periods, make_query
from saleskpi.domain.settings import Settings
from saleskpi.service.auth import add_user
from saleskpi.service.demo import build_demo
from saleskpi.sources.connectors.credentials import CredentialStore
from saleskpi.surfaces.server import create_app
from tests.servers import serve

PASSWORD = "correct horse battery"
APP_TOKEN = "b24apptoken-hardening-000000"
END = dt.date(2024, 6, 30)
DOS = ("/api/v1/scorecard?kpi=revenue&by=rep&period=day&from=1900-01-01&to=2100-01-01")


@dataclass
class Server:
    url: str
    settings: Settings
    cookie: str
    csrf: str

    def connection(self) -> http.client.HTTPConnection:
        parts = urlsplit(self.url)
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    old = os.umask(0o022)
    try:
        settings = Settings(workspace=tmp_path_factory.mktemp("hardening") / "ws")
        company = build_demo(settings, size=0.2, seed=3, end=END)
        assert company.report.ok, company.report.errors
        settings = Settings(workspace=settings.workspace)
        add_user(settings, "boss", PASSWORD, "admin")
        CredentialStore(settings).put("bitrix24", {
            "webhook_url": "https://acme.bitrix24.ru/rest/1/s3cr3tk3y99/",
            "outgoing_token": APP_TOKEN})
        with serve(create_app(settings)) as url:
            signed = httpx.post(url + "/api/v1/session",
                                json={"username": "boss", "password": PASSWORD})
            assert signed.status_code == 200, signed.text
            cookie = "; ".join(f"{k}={v}" for k, v in signed.cookies.items())
            yield Server(url, settings, cookie, signed.json()["csrf"])
    finally:
        os.umask(old)


def ask(conn: http.client.HTTPConnection, server: Server, method: str, path: str, *,
        body: bytes | None = None, headers: dict[str, str] | None = None,
        ) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers={
        "Cookie": server.cookie, "X-CSRF-Token": server.csrf, **(headers or {})})
    response = conn.getresponse()
    data = response.read()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def assert_problem(status: int, headers: dict[str, str], data: bytes, *,
                   code: str | None = None) -> dict[str, Any]:
    assert 400 <= status < 500, (status, data[:300])
    assert headers.get("connection", "").lower() != "close"
    assert headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = json.loads(data)
    assert {"type", "title", "status", "detail", "error"} <= problem.keys()
    assert problem["status"] == status
    if code is not None:
        assert problem["error"] == code, problem
    return problem


# -- item 4: resource limits -----------------------------------------------------------------
def test_the_dos_request_is_refused_at_once_naming_the_limit(server: Server) -> None:
    conn = server.connection()
    started = time.perf_counter()
    status, headers, data = ask(conn, server, "GET", DOS)
    elapsed = time.perf_counter() - started
    problem = assert_problem(status, headers, data, code="too_many_periods")
    assert elapsed < 1.0
    # 1900-01-01 .. 2100-01-01: 200 years of 365 days, 49 of them leap years.
    assert "73050" in problem["detail"] and "3660" in problem["detail"]
    assert "--period" in problem["detail"]  # how to narrow the question
    # The same connection answers the next question.
    status, _headers, data = ask(conn, server, "GET", "/api/v1/scorecard?kpi=revenue")
    assert status == 200, data[:300]


@pytest.mark.parametrize("path", [
    "/api/v1/leaderboard?kpi=revenue&period=day&from=1900-01-01&to=2100-01-01",
    "/api/v1/comparison?kpi=revenue&kpi=win_rate&period=week&from=1990-01-01&to=2024-01-01",
    "/api/v1/scorecard?kpi=revenue&period=month&from=2000-01-01&to=2024-01-31",
])
def test_every_view_with_a_grain_has_the_same_cap(server: Server, path: str) -> None:
    conn = server.connection()
    status, headers, data = ask(conn, server, "GET", path)
    assert_problem(status, headers, data, code="too_many_periods")


def test_the_caps_count_periods_as_a_calendar_does() -> None:
    # Hand-counted: 2024 is a leap year; 2023-12-31 is a Sunday (the week of 12-25).
    assert count_periods(dt.date(2024, 1, 1), dt.date(2024, 12, 31), "day") == 366
    assert count_periods(dt.date(2023, 12, 31), dt.date(2024, 1, 1), "week") == 2
    assert count_periods(dt.date(2023, 11, 30), dt.date(2024, 2, 1), "month") == 4
    assert count_periods(dt.date(2023, 12, 31), dt.date(2024, 1, 1), "quarter") == 2
    assert count_periods(dt.date(1900, 1, 1), dt.date(2199, 12, 31), "year") == 300
    # Ten years by day fit; one more day past the limit does not.
    start = dt.date(2015, 1, 1)
    make_query(["revenue"], period="day", start=start,
               end=start + dt.timedelta(days=MAX_PERIODS["day"] - 1))
    with pytest.raises(InvalidQuery) as refused:
        make_query(["revenue"], period="day", start=start,
                   end=start + dt.timedelta(days=MAX_PERIODS["day"]))
    assert refused.value.code == "too_many_periods"
    with pytest.raises(InvalidQuery) as many:
        make_query([f"k{i}" for i in range(51)])
    assert many.value.code == "too_many_kpis"


def test_rows_times_kpis_are_capped_before_the_grid_is_built(server: Server) -> None:
    # Every rep × ten years of days (3,653) × 7 KPIs: the demo's 9 reps make 230,139.
    conn = server.connection()
    kpis = ("deals_won", "revenue", "win_rate", "calls", "meetings", "leads", "pipeline_volume")
    query = urlencode([("kpi", k) for k in kpis]
                      + [("by", "rep"), ("period", "day"), ("from", "2014-07-01"),
                         ("to", "2024-06-30")])
    started = time.perf_counter()
    status, headers, data = ask(conn, server, "GET", "/api/v1/scorecard?" + query)
    problem = assert_problem(status, headers, data, code="too_many_rows")
    assert time.perf_counter() - started < 5
    assert "200000" in problem["detail"] and "--where" in problem["detail"]


# Within every cap, yet long: four KPIs of every rep by day over ten years (125,000
# values, several queries; 5-15 s of DuckDB work on the CI machine).
LONG = ("/api/v1/scorecard?kpi=revenue&kpi=win_rate&kpi=calls&kpi=leads&by=rep&period=day"
        "&from=2015-01-01&to=2024-06-30")


def test_a_question_over_the_time_limit_is_stopped_naming_it(server: Server) -> None:
    # A limit far below the question's work however warm the machine is (at 0.3 s a warm
    # DuckDB sometimes answered in time, and the test failed for a fast machine).
    limited = server.settings.model_copy(update={"query_timeout_seconds": 0.01})
    client = TestClient(create_app(limited))
    assert client.post("/api/v1/session", json={"username": "boss", "password": PASSWORD}
                       ).status_code == 200
    started = time.perf_counter()
    response = client.get(LONG)
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, response.text[:300]
    problem = response.json()
    assert problem["error"] == "query_timeout"
    assert "0.01 s" in problem["detail"] and "query_timeout_seconds" in problem["detail"]
    assert "--period" in problem["detail"] and "--where" in problem["detail"]
    # Opening the store and resolving names are not timed; the store-level test below
    # checks that the stop itself is prompt.
    assert elapsed < 10, elapsed
    # The app goes on serving, and asks the long question afresh (nothing kept).
    assert client.get("/api/v1/me").status_code == 200
    again = client.get(LONG)
    assert again.json().get("error") == "query_timeout", (again.status_code, again.text[:300])


def test_the_time_limit_interrupts_duckdb_and_leaves_the_store_usable(
        tmp_path: Path) -> None:
    from saleskpi.domain.errors import QueryTimeout
    from saleskpi.store.analytics import AnalyticsStore

    with AnalyticsStore(tmp_path / "analytics.duckdb") as store:
        started = time.perf_counter()
        with pytest.raises(QueryTimeout) as stopped, store.time_limit(0.2):
            store.fetch("SELECT count(*) FROM range(100000000000)")  # minutes of work
        assert time.perf_counter() - started < 1.5
        assert stopped.value.code == "query_timeout" and "0.2 s" in stopped.value.message
        # Queries started after the limit inside the block are stopped as well ...
        with pytest.raises(QueryTimeout), store.time_limit(0.1):
            time.sleep(0.3)  # Python work (building the answer) while the limit passes
            store.fetch("SELECT count(*) FROM range(100000000000)")
        # ... a quick one is untouched, and the connection goes on after the limit.
        with store.time_limit(5):
            assert store.fetch("SELECT 42") == [(42,)]
        assert store.fetch("SELECT 1") == [(1,)]
    assert Settings(workspace=tmp_path, _env_file=None).query_timeout_seconds == 30
    os.environ["SALESKPI_QUERY_TIMEOUT_SECONDS"] = "7.5"
    try:
        assert Settings(workspace=tmp_path, _env_file=None).query_timeout_seconds == 7.5
    finally:
        del os.environ["SALESKPI_QUERY_TIMEOUT_SECONDS"]


# -- item 8: a clear 4xx, never a 500 --------------------------------------------------------
BAD_API = [
    ("/api/v1/scorecard?kpi=revenue&from=0001-01-01", "bad_date"),
    ("/api/v1/scorecard?kpi=revenue&to=9999-12-31", "bad_date"),
    ("/api/v1/scorecard?kpi=revenue&period=month&from=0001-01-01&to=9999-12-31", "bad_date"),
    ("/api/v1/leaderboard?kpi=revenue&to=9999-12-31", "bad_date"),
    ("/api/v1/funnel?to=9999-12-31", "bad_date"),
    ("/api/v1/funnel?as_of=9999-12-31", "bad_date"),
    ("/api/v1/rows?kpi=revenue&period=year&period_key=9999-12-31", "bad_date"),
    ("/api/v1/forecast?at=0001-01-01", "bad_date"),
    ("/api/v1/scorecard?kpi=revenue&from=2024-02-01&to=2024-01-01", "bad_range"),
]


def test_impossible_dates_are_a_clear_400_on_one_connection(server: Server) -> None:
    conn = server.connection()
    for path, code in BAD_API:
        status, headers, data = ask(conn, server, "GET", path)
        problem = assert_problem(status, headers, data, code=code)
        if code == "bad_date":
            assert "1900-01-01" in problem["detail"] and "2199-12-31" in problem["detail"]
    status, _headers, _data = ask(conn, server, "GET", "/api/v1/scorecard?kpi=revenue")
    assert status == 200


def test_a_slice_asked_twice_is_asked_once(server: Server) -> None:
    conn = server.connection()
    status, _h, once = ask(conn, server, "GET", "/api/v1/scorecard?kpi=revenue&by=rep")
    assert status == 200
    status, _h, twice = ask(conn, server, "GET",
                            "/api/v1/scorecard?kpi=revenue&by=rep&by=rep&kpi=revenue")
    assert status == 200, twice[:300]
    assert json.loads(twice) == json.loads(once)
    assert json.loads(twice)["by"] == ["rep"]


@pytest.mark.parametrize("query", [
    "from=0001-01-01", "to=9999-12-31", "from=0001-01-01&to=9999-12-31&period=day",
    "from=2024-03-01&to=2024-01-01", "from=1900-01-01&to=2100-01-01&period=day",
])
def test_dashboard_pages_show_a_notice_instead_of_failing(server: Server, query: str) -> None:
    conn = server.connection()
    for page in ("/", "/leaderboard", "/compare", "/funnel"):
        started = time.perf_counter()
        status, headers, data = ask(conn, server, "GET", f"{page}?{query}")
        assert status == 200, (page, query, status, data[:300])
        assert headers.get("connection", "").lower() != "close"
        assert time.perf_counter() - started < 10
        text = data.decode()
        if "0001" in query or "9999" in query:
            assert "1900-01-01" in text and "2199-12-31" in text  # the notice
        if "2024-03-01" in query:
            assert "swapped" in text  # from after to: swapped, as before


def test_a_300_character_upload_name_is_a_400(server: Server) -> None:
    conn = server.connection()
    request = httpx.Request("POST", server.url + "/api/v1/imports", files=[
        ("files", ("a" * 296 + ".csv", b"id,name,team\nr9,Zed,North\n", "text/csv"))])
    status, headers, data = ask(conn, server, "POST", "/api/v1/imports",
                                body=request.read(),
                                headers={"Content-Type": request.headers["content-type"]})
    problem = assert_problem(status, headers, data, code="bad_file")
    assert "too long" in problem["detail"]
    assert str(server.settings.workspace) not in problem["detail"]


def test_a_5000_digit_bitrix24_id_with_a_valid_token_is_refused(server: Server) -> None:
    conn = server.connection()
    form = urlencode([("event", "ONCRMDEALUPDATE"), ("data[FIELDS][ID]", "9" * 5000),
                      ("ts", str(int(time.time()))),
                      ("auth[application_token]", APP_TOKEN)]).encode()
    status, headers, data = ask(conn, server, "POST", "/webhooks/bitrix24", body=form,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_problem(status, headers, data, code="not_verified")
    status, headers, data = ask(conn, server, "POST", "/webhooks/bitrix24", body=form.replace(
        b"ts=", b"ts=" + b"1" * 5000), headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= status < 500


# -- item 9: workspace files 0600, folders 0700 ----------------------------------------------
def test_workspace_files_and_folders_are_the_owners_only(server: Server) -> None:
    # Use the server: questions (recent-questions.json, the SQL cache) and an upload.
    client = TestClient(create_app(server.settings))
    signed = client.post("/api/v1/session", json={"username": "boss", "password": PASSWORD})
    csrf = signed.json()["csrf"]
    assert client.get("/api/v1/scorecard?kpi=revenue&by=team").status_code == 200
    dry = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf}, files=[
        ("files", ("reps.csv", b"id,name,team\nr900,Zed,North\n", "text/csv"))])
    assert dry.status_code == 200, dry.text
    page = client.get("/import")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    web = client.post("/import", data={"csrf": token.group(1)}, files=[
        ("files", ("reps.csv", b"id,name,team\nr901,Ann,North\n", "text/csv"))])
    assert web.status_code == 200, web.text
    # The background refresher saves what was asked when the server stops.
    from saleskpi.service.refresh import save_questions
    save_questions(server.settings.workspace / "recent-questions.json", [])

    workspace = server.settings.workspace
    names = {p.relative_to(workspace).parts[0] for p in workspace.rglob("*")}
    assert {"state.sqlite", "analytics.duckdb", "recent-questions.json", "uploads"} <= names
    assert any(p.is_dir() for p in (workspace / "uploads").rglob("*"))
    assert any(p.is_file() for p in (workspace / "uploads").rglob("*"))
    wrong = []
    for path in [workspace, *workspace.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = 0o700 if path.is_dir() else 0o600
        if mode != expected:
            wrong.append(f"{path.relative_to(workspace.parent)}: {oct(mode)}")
    assert wrong == []


def test_a_failed_upload_does_not_show_the_servers_paths(server: Server) -> None:
    client = TestClient(create_app(server.settings))
    signed = client.post("/api/v1/session", json={"username": "boss", "password": PASSWORD})
    csrf = signed.json()["csrf"]
    bad = client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf}, files=[
        ("files", ("deals.csv", b"id,rep_id,status,amount\nd1,r1,won,abc\n", "text/csv")),
        ("files", ("broken.xlsx", b"not a workbook", "application/octet-stream"))])
    assert bad.status_code < 500
    assert str(server.settings.workspace) not in bad.text
    assert "/tmp" not in bad.text and "uploads" not in bad.text
    # A lock file of Excel is skipped: the upload has no file to read, and said where.
    for answer in (
        client.post("/api/v1/imports", headers={"X-CSRF-Token": csrf}, files=[
            ("files", ("~$deals.xlsx", b"lock", "application/octet-stream"))]),
        client.post("/import", data={"csrf": _page_csrf(client)}, files=[
            ("files", ("~$deals.xlsx", b"lock", "application/octet-stream"))]),
    ):
        assert answer.status_code < 500, answer.text
        assert "no CSV or XLSX files found" in answer.text
        assert str(server.settings.workspace) not in answer.text, answer.text
        assert "uploads" not in answer.text


def _page_csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/import").text)
    assert found is not None
    return found.group(1)


# -- item 10: docs without a CDN; security headers on API answers ---------------------------
HOST = re.compile(r"""(?:https?:)?//([A-Za-z0-9.-]+)""")


@pytest.mark.parametrize("docs,bundle", [("/docs", "swagger-ui-bundle.js"),
                                         ("/redoc", "redoc.standalone.js")])
def test_docs_reference_no_other_host_and_load_from_the_app(server: Server, docs: str,
                                                            bundle: str) -> None:
    conn = server.connection()
    status, headers, data = ask(conn, server, "GET", docs)
    assert status == 200
    page = data.decode()
    assert HOST.findall(page) == []  # no CDN, no other origin
    policy = headers["content-security-policy"]
    assert "script-src 'self';" in policy  # scripts of this origin only, none inline
    assert "<script>" not in page
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', page)
    assert any(a.endswith(bundle) for a in assets)
    for asset in assets:
        status, headers, body = ask(conn, server, "GET", asset)
        assert status == 200, asset
        assert len(body) > 50, asset
        assert headers["x-content-type-options"] == "nosniff"
        if asset.endswith(".js"):
            assert "javascript" in headers["content-type"]
            assert HOST.findall(body.decode()) == [] or asset.endswith(bundle)
    start = assets[-1]
    assert start.startswith("/docs/") and '"/openapi.json"' in \
        ask(conn, server, "GET", start)[2].decode()
    status, _headers, spec = ask(conn, server, "GET", "/openapi.json")
    assert status == 200 and "/api/v1/scorecard" in json.loads(spec)["paths"]


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/scorecard?kpi=revenue"),
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/scorecard?kpi=nope"),  # errors too
    ("GET", "/api/v1/nowhere"),
    ("GET", "/health"),
    ("GET", "/openapi.json"),
    ("POST", "/webhooks/bitrix24"),
])
def test_api_answers_carry_security_headers(server: Server, method: str, path: str) -> None:
    conn = server.connection()
    status, headers, _data = ask(conn, server, method, path, body=b"" if method == "POST"
                                 else None)
    assert status < 500
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def test_web_pages_keep_their_own_policy(server: Server) -> None:
    conn = server.connection()
    status, headers, _data = ask(conn, server, "GET", "/")
    assert status == 200
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["content-security-policy"].count("default-src") == 1


def test_dry_run_uploads_are_removed_after_an_hour(tmp_path: Path) -> None:
    """Issue 16 item 9: uploads waiting for a confirmation used to stay a day."""
    import os
    import time

    from saleskpi.service.import_staging import clean_stale

    old, fresh = tmp_path / "old-token", tmp_path / "fresh-token"
    for stage in (old, fresh):
        (stage / "files").mkdir(parents=True)
        (stage / "files" / "deals.csv").write_text("id\n1\n", encoding="utf-8")
    now = time.time()
    os.utime(old, (now - 61 * 60, now - 61 * 60))
    os.utime(fresh, (now - 50 * 60, now - 50 * 60))
    clean_stale(tmp_path)
    assert not old.exists() and (fresh / "files" / "deals.csv").exists()


def test_cache_files_are_replaced_whole_and_the_newest_kept(tmp_path: Path) -> None:
    # The compiled SQL, YAML copies, stage orders and saved questions are written this
    # way: 0600, nothing left beside them, an old file replaced; a folder trimmed to
    # its newest files.
    import os

    from saleskpi.domain.files import keep_newest, replace_private

    for index in range(5):
        path = tmp_path / f"{index}.json"
        replace_private(path, "old")
        replace_private(path, f"new {index}")
        os.utime(path, ns=(index * 10**9, index * 10**9))
    assert (tmp_path / "3.json").read_text(encoding="utf-8") == "new 3"
    assert {stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == {0o600}
    (tmp_path / "other.txt").write_text("not a cache file", encoding="utf-8")
    keep_newest(tmp_path, "*.json", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.json", "4.json", "other.txt"]
    with pytest.raises(OSError):
        replace_private(tmp_path / "missing" / "x.json", "text")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3.json", "4.json", "other.txt"]


def test_a_store_opened_in_a_shared_folder_leaves_the_folder_shared(tmp_path: Path) -> None:
    # A store (or any workspace file) in a sticky shared folder, as /tmp is: its own
    # files are the owner's only, the folder stays usable by everyone else.
    from saleskpi.domain.files import private_dir
    from saleskpi.store.analytics import AnalyticsStore

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    store = AnalyticsStore(shared / "analytics.duckdb")
    store.close()
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "analytics.duckdb").stat().st_mode) == 0o600
    # A folder of one's own still becomes private, and so do the folders made in it.
    own = tmp_path / "own"
    own.mkdir(mode=0o755)
    private_dir(own / "a" / "b")
    assert stat.S_IMODE(own.stat().st_mode) == 0o755  # a parent that existed: left alone
    for folder in (own / "a", own / "a" / "b"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    private_dir(own)
    assert stat.S_IMODE(own.stat().st_mode) == 0o700
