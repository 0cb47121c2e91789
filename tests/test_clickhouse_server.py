"""The ClickHouse store as it reaches a real server: ``clickhouse://`` through clickhouse-connect.

The server is ClickHouse's HTTP interface served over chdb (the current ClickHouse
engine) on 127.0.0.1 by ``tests/fakes/clickhouse_http.py``: every statement, parameter,
insert and error goes over a real socket as ClickHouse's HTTP protocol, and the store
talks to it through ``ServerSession`` unchanged. The hand-counted Kyiv company of
``tests/test_kpi_engine.py`` (whose every test also runs this way: its
``clickhouse_http`` case) is imported into a database of its own.

What is checked here is what only the server path does: logins, unreachable
servers, databases named in the URL, values bound as the driver sends them,
ClickHouse's errors over HTTP, sessions, and that importing twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import decimal
import socket
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.errors import QueryTimeout
from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from saleskpi.store.ch_connection import ServerSession
from saleskpi.store.clickhouse import StoreUnreachable
from tests import test_kpi_engine as kyiv
from tests.backends import facts_snapshot
from tests.clickhouse_company import imported_company, store_of, workspace_on
from tests.fakes.clickhouse_http import ClickHouseHttpServer

NOW = kyiv.NOW


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory, clickhouse_http: ClickHouseHttpServer
            ) -> tuple[Settings, Path]:
    return imported_company(tmp_path_factory.mktemp("ch_server"),
                            clickhouse_http.create_database("kyiv"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_store_talks_to_the_server_through_clickhouse_connect(
        company: tuple[Settings, Path]) -> None:
    settings, _data = company
    with store_of(settings) as store:
        assert isinstance(store.con.session, ServerSession)
        # The URL's database is where the tables are (not the server's default).
        assert store.fetch("SELECT currentDatabase()") == [("kyiv",)]
        assert store.count("deals") == 4
    card = SalesKpiService(settings).scorecard(
        KpiQuery(("lead_response_time", "lead_response_time_p90", "calls"), by=("rep",)),
        now=NOW)
    rows = {r.keys["rep"]: {k: v.value for k, v in r.values.items()} for r in card.rows}
    # Counted by hand in tests/test_backend_clickhouse.py: r1's response minutes 3 4 30 40
    # (median 17, p90 30 + 0.7 * 10), r2's 540; r1's calls A1, A4, r2's A6 (A8 inbound).
    assert rows["r1"]["lead_response_time"] == pytest.approx(17)
    assert rows["r1"]["lead_response_time_p90"] == pytest.approx(37)
    assert rows["r2"]["lead_response_time"] == pytest.approx(540)
    assert rows["r1"]["calls"] == 2


def test_importing_the_same_files_again_changes_nothing(company: tuple[Settings, Path]
                                                        ) -> None:
    settings, data = company
    before = facts_snapshot(settings.workspace)
    with store_of(settings) as store:
        version = store.data_version()
        stored = store.fetch("SELECT id, _version FROM deals_versions ORDER BY id, _version")
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    assert {name: (c.inserted, c.updated, c.unchanged) for name, c in report.entities.items()
            } == {"reps": (0, 0, 3), "leads": (0, 0, 8), "activities": (0, 0, 13),
                  "deals": (0, 0, 4)}
    assert facts_snapshot(settings.workspace) == before
    with store_of(settings) as store:
        assert store.data_version() == version
        assert store.fetch("SELECT id, _version FROM deals_versions ORDER BY id, _version"
                           ) == stored


def test_values_arrive_as_they_were_bound(company: tuple[Settings, Path]) -> None:
    """The driver binds the store's values as ``param_`` text: nothing is lost on the way."""
    settings, _data = company
    odd = "it's a \\ back\tslash, Олена's \"quote\" {x:String} ?"
    moment = dt.datetime(2024, 3, 31, 0, 59, 59, 123456)
    with store_of(settings) as store:
        assert store.fetch("SELECT ?, ?, ?, ?, ?, ?",
                           [odd, 42, 2.5, decimal.Decimal("1234.56"), dt.date(2024, 2, 29),
                            moment]) == [(odd, 42, 2.5, decimal.Decimal("1234.56"),
                                          dt.date(2024, 2, 29), moment)]
        assert store.fetch("SELECT count() FROM deals WHERE id IN (SELECT arrayJoin(?))",
                           [["D1", "D4", "it's none"]]) == [(2,)]
        # A list too long for the URL goes as a multipart form; the same rows come back.
        many = [f"A{i}" for i in range(1, 3000)]
        assert store.fetch("SELECT count() FROM activities WHERE id IN (SELECT arrayJoin(?))",
                           [many]) == [(13,)]


def test_a_failed_query_is_clickhouses_own_error(company: tuple[Settings, Path]) -> None:
    settings, _data = company
    with store_of(settings) as store, pytest.raises(Exception, match=r"Code: 47\b") as failed:
        store.fetch("SELECT no_such_column FROM deals")
    assert "s3cret-pass" not in str(failed.value)


def test_a_slow_question_is_stopped_by_the_servers_time_limit(
        company: tuple[Settings, Path]) -> None:
    settings, _data = company
    with store_of(settings) as store:
        with pytest.raises(QueryTimeout), store.time_limit(0.3):
            store.fetch("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 7")
        # The limit was the session's, and is gone after the block.
        assert store.fetch("SELECT value FROM system.settings WHERE name = "
                           "'max_execution_time'") == [("0",)]


def test_a_wrong_password_is_said_without_the_password(
        tmp_path: Path, clickhouse_http: ClickHouseHttpServer, run_cli: Any) -> None:
    settings = workspace_on(tmp_path, clickhouse_http.url(password="Wr0ng-Secret"))
    result = run_cli(settings.workspace, "kpi", "calls")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "refused the login of user sales: the password is wrong or there is no such " \
           "user" in " ".join(said.split())
    assert "Wr0ng-Secret" not in said and "s3cret-pass" not in said
    assert "Traceback" not in said


def test_a_server_that_is_down_cannot_be_reached(tmp_path: Path, run_cli: Any) -> None:
    port = free_port()
    settings = workspace_on(tmp_path, f"clickhouse://sales:Hidden-9@127.0.0.1:{port}/kpi")
    with pytest.raises(StoreUnreachable) as down:
        open_store(settings)
    assert str(down.value) == (
        f"cannot reach the ClickHouse server clickhouse://sales:***@127.0.0.1:{port}/kpi: "
        f"nothing answers at 127.0.0.1:{port}. Check the backend_url setting "
        "(SALESKPI_BACKEND_URL) and that the server runs.")
    result = run_cli(settings.workspace, "kpi", "calls")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert "cannot reach the ClickHouse server" in " ".join(said.split())
    assert "Hidden-9" not in said and "Traceback" not in said
    assert "Unexpected Http Driver Exception" not in said


def test_a_database_that_does_not_exist_is_named(tmp_path: Path,
                                                 clickhouse_http: ClickHouseHttpServer) -> None:
    settings = workspace_on(tmp_path, clickhouse_http.url("no_such_db"))
    with pytest.raises(StoreUnreachable, match=r"has no database no_such_db: create it "
                       r"\(CREATE DATABASE no_such_db\)") as missing:
        open_store(settings)
    assert "s3cret-pass" not in str(missing.value)


def test_each_store_keeps_its_session_settings(company: tuple[Settings, Path]) -> None:
    """``SET`` holds for the store's own session only (the server keeps sessions apart)."""
    settings, _data = company
    setting = "SELECT value FROM system.settings WHERE name = 'join_use_nulls'"
    with store_of(settings) as first, store_of(settings) as second:
        first.con.execute("SET join_use_nulls = 0")
        assert first.fetch(setting) == [("0",)]
        assert second.fetch(setting) == [("1",)]  # as ChConnection's session settings say


@pytest.mark.parametrize("compression", ["lz4", "zstd", "gzip"])
def test_compressed_inserts_arrive_whole(clickhouse_http: ClickHouseHttpServer,
                                         compression: str) -> None:
    """The driver's own inserts (Native rows, the body compressed per Content-Encoding)."""
    import clickhouse_connect

    database = f"packed_{compression}"
    clickhouse_http.create_database(database)
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=clickhouse_http.port, username=clickhouse_http.user,
        password=clickhouse_http.password, database=database, compress=compression)
    assert client.write_compression == compression  # the body goes compressed
    try:
        client.command("CREATE TABLE t (id String, amount Decimal(18, 2), at DateTime64(6)) "
                       "ENGINE = MergeTree ORDER BY id")
        rows = [[f"D{i}", decimal.Decimal(i) / 4, dt.datetime(2024, 1, 1) + dt.timedelta(
            seconds=i)] for i in range(2000)]
        summary = client.insert("t", rows, column_names=["id", "amount", "at"])
        assert summary.written_rows == 2000  # X-ClickHouse-Summary, read by the driver
        # 0 + 1 + … + 1999 = 1 999 000 quarters.
        assert client.query("SELECT count(), sum(amount), max(at) FROM t").result_rows == [
            (2000, decimal.Decimal("499750.00"), dt.datetime(2024, 1, 1, 0, 33, 19))]
    finally:
        client.close()


def test_the_protocol_as_clickhouse_speaks_it(clickhouse_http: ClickHouseHttpServer) -> None:
    """What a plain HTTP client sees: the answers and errors ClickHouse sends."""
    import base64
    import urllib.error
    import urllib.request

    def post(sql: str, password: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
        login = base64.b64encode(f"{clickhouse_http.user}:{password}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{clickhouse_http.port}/?{query}", data=sql.encode(),
            headers={"Authorization": f"Basic {login}"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as failed:
            return failed.code, dict(failed.headers), failed.read()

    with urllib.request.urlopen(f"http://127.0.0.1:{clickhouse_http.port}/ping") as ping:
        assert ping.read() == b"Ok.\n"
    status, headers, body = post("SELECT {n:UInt8} + 1 AS two, 'ї' AS letter",
                                 clickhouse_http.password, "param_n=1&query_id=q-1")
    assert (status, body) == (200, "2\tї\n".encode())
    assert headers["X-ClickHouse-Query-Id"] == "q-1"
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert "elapsed_ns" in headers["X-ClickHouse-Summary"]
    status, headers, body = post("SELECT 1", "not-it")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    assert body.startswith(b"Code: 516. DB::Exception: sales: Authentication failed")
    status, headers, body = post("SELECT * FROM nowhere", clickhouse_http.password)
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (404, "60")
    assert b"(UNKNOWN_TABLE)" in body
    status, headers, _body = post("SELECT 1", clickhouse_http.password, "no_such_setting=1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (400, "115")
