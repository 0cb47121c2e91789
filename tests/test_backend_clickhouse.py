"""The ClickHouse store on chdb (ClickHouse in this process): versions, deletes, exact medians.

The hand-counted Kyiv company of ``tests/test_kpi_engine.py`` (whose every test also
runs on ClickHouse), imported into a chdb folder. What is checked here is what only
ClickHouse does differently: records are kept as versions in a
``ReplacingMergeTree`` and read through ``FINAL`` views, deletes are versions too,
first contacts are views, and medians must stay exact.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from saleskpi.store.ch_connection import clickhouse_sql
from saleskpi.store.clickhouse import ClickHouseStore
from tests import test_kpi_engine as kyiv
from tests.backends import facts_snapshot
from tests.clickhouse_company import imported_company, store_of, write_company

pytest.importorskip("chdb")
NOW = kyiv.NOW


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    root = tmp_path_factory.mktemp("clickhouse")
    return imported_company(root, f"chdb://{(root / 'store').as_posix()}")


def versions(store: ClickHouseStore, table: str) -> list[tuple[Any, ...]]:
    """Every stored version of the table's records (not only the latest)."""
    return store.fetch(f'SELECT id, _deleted FROM "{table}_versions" ORDER BY id, _version')


def test_medians_and_p90_are_exact(company: tuple[Settings, Path]) -> None:
    settings, _data = company
    card = SalesKpiService(settings).scorecard(
        KpiQuery(("lead_response_time", "lead_response_time_p90"), by=("rep",)), now=NOW)
    rows = {r.keys["rep"]: {k: v.value for k, v in r.values.items()} for r in card.rows}
    # Minutes from lead to first outbound contact, counted by hand (Kyiv wall-clock):
    # r1: L1 3 (A1), L2 40 (A3), L3 30 (A4), L6 4 (A9; A8 is inbound);
    # r2: L8 540 (21:00 UTC on 03-30 to 06:00 UTC on 03-31, across the clock change),
    # L4's call came before the lead (bad data: left out).
    # Interpolated as quantile_cont: r1's median of 3 4 30 40 is 17, its p90
    # 30 + 0.7 * 10 = 37; everyone's median of 3 4 30 40 540 is 30, p90 40 + 0.6 * 500.
    assert rows["r1"] == {"lead_response_time": pytest.approx(17),
                          "lead_response_time_p90": pytest.approx(37)}
    assert rows["r2"] == {"lead_response_time": pytest.approx(540),
                          "lead_response_time_p90": pytest.approx(540)}
    total = card.totals[0].values
    assert total["lead_response_time"].value == pytest.approx(30)
    assert total["lead_response_time_p90"].value == pytest.approx(340)


def test_importing_the_same_files_again_changes_nothing(company: tuple[Settings, Path]
                                                        ) -> None:
    settings, data = company
    before = facts_snapshot(settings.workspace)
    with store_of(settings) as store:
        version = store.data_version()
        stored = {t: versions(store, t) for t in ("reps", "leads", "deals", "activities")}
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    assert {name: (c.inserted, c.updated, c.unchanged) for name, c in report.entities.items()
            } == {"reps": (0, 0, 3), "leads": (0, 0, 8), "activities": (0, 0, 13),
                  "deals": (0, 0, 4)}
    assert facts_snapshot(settings.workspace) == before
    with store_of(settings) as store:
        assert store.data_version() == version  # cached answers stay valid
        assert {t: versions(store, t) for t in stored} == stored  # not one version added


def test_a_changed_record_is_a_new_version_read_once(tmp_path: Path,
                                                     company: tuple[Settings, Path]) -> None:
    settings, data = company
    workspace = tmp_path / "ws"
    shutil.copytree(settings.workspace, workspace)
    save_workspace_settings(Settings(workspace=workspace),
                            backend_url=f"chdb://{(tmp_path / 'store').as_posix()}")
    changed = Settings(workspace=workspace)
    service = SalesKpiService(changed)
    assert service.import_path(data, mapping=None, source=None, dry_run=False).ok
    # D4 (r1's open deal) grows from 300 to 450 UAH.
    grown = kyiv.DEALS.replace("D4,r1,open,2024-03-01 09:00:00,,300,", "D4,r1,open,"
                               "2024-03-01 09:00:00,,450,")
    report = service.import_path(write_company(tmp_path / "grown", grown), mapping=None,
                                 source=None, dry_run=False)
    assert (report.entities["deals"].updated, report.entities["deals"].unchanged) == (1, 3)
    with store_of(changed) as store:
        assert [d for d in versions(store, "deals") if d[0] == "D4"] == [("D4", 0), ("D4", 0)]
        assert store.fetch("SELECT amount FROM deals WHERE id = 'D4'") == [(450,)]
        assert store.count("deals") == 4
    card = service.scorecard(KpiQuery(("pipeline_value",), by=("rep",)), now=NOW)
    assert {r.keys["rep"]: r.values["pipeline_value"].value for r in card.rows}["r1"] == \
        pytest.approx(450)
    # Once ClickHouse merges the parts only the latest version is left: nothing changes.
    with store_of(changed) as store:
        store.con.execute("OPTIMIZE TABLE deals_versions FINAL")
        assert [d for d in versions(store, "deals") if d[0] == "D4"] == [("D4", 0)]
        assert store.fetch("SELECT amount FROM deals WHERE id = 'D4'") == [(450,)]


def test_a_removed_activity_is_a_deleted_version_and_moves_the_first_contact(
        tmp_path: Path, company: tuple[Settings, Path]) -> None:
    settings, data = company
    workspace = tmp_path / "ws"
    shutil.copytree(settings.workspace, workspace)
    save_workspace_settings(Settings(workspace=workspace),
                            backend_url=f"chdb://{(tmp_path / 'store').as_posix()}")
    removed = Settings(workspace=workspace)
    assert SalesKpiService(removed).import_path(data, mapping=None, source=None,
                                                dry_run=False).ok
    with store_of(removed) as store:
        (source,) = {s for (s,) in store.fetch("SELECT DISTINCT datasource FROM activities")}
        first = "SELECT first_contact_at FROM lead_first_contacts WHERE lead_id = 'L1'"
        # L1 (created 10:00 Kyiv on 01-10): first called at 10:03 (A1) = 08:03 UTC.
        assert store.fetch(first) == [(dt.datetime(2024, 1, 10, 8, 3),)]
        version = store.data_version()
        assert store.delete_ids(source, {"activities": ["A1", "nobody"]}) == {"activities": 1}
        assert store.fetch("SELECT id FROM activities WHERE id = 'A1'") == []
        assert [a for a in versions(store, "activities") if a[0] == "A1"] == [
            ("A1", 0), ("A1", 1)]
        # Then L1's meeting A2 at 12:00 Kyiv on 01-12 (A10 is a note: no contact).
        assert store.fetch(first) == [(dt.datetime(2024, 1, 12, 10, 0),)]
        assert store.data_version() > version
        assert store.count("activities") == 12


def test_store_sql_is_bound_as_typed_parameters() -> None:
    sql, values = clickhouse_sql(
        "SELECT '?', \"$x\" FROM t WHERE a = ? AND b IN (SELECT arrayJoin(?)) AND c = $name "
        "AND d = ? AND row(e) IS DISTINCT FROM row(f)",
        ["it's", ["a", "b"], None])
    assert sql == ("SELECT '?', \"$x\" FROM t WHERE a = {p0:String} AND b IN (SELECT "
                   "arrayJoin({p1:Array(String)})) AND c = $name AND d = NULL "
                   "AND tuple(e) IS DISTINCT FROM tuple(f)")
    assert values == {"p0": "it's", "p1": ["a", "b"]}
    named, bound = clickhouse_sql("SELECT x FROM t WHERE d >= $start AND k = {f0_0: String}",
                                  {"start": dt.date(2024, 1, 5), "f0_0": "South"})
    assert named == "SELECT x FROM t WHERE d >= {start:Date} AND k = {f0_0: String}"
    assert bound == {"start": dt.date(2024, 1, 5), "f0_0": "South"}


def test_a_failed_write_takes_its_versions_out_again(company: tuple[Settings, Path]) -> None:
    settings, _data = company
    with store_of(settings) as store:
        (source,) = {s for (s,) in store.fetch("SELECT DISTINCT datasource FROM deals")}
        before = versions(store, "deals")
        version = store.data_version()
        with pytest.raises(ZeroDivisionError), store.transaction():
            assert store.delete_ids(source, {"deals": ["D1"]}, in_transaction=True) == {
                "deals": 1}
            assert store.fetch("SELECT id FROM deals WHERE id = 'D1'") == []
            1 / 0  # noqa: B018 - the write fails after it has written
        assert store.fetch("SELECT id FROM deals WHERE id = 'D1'") == [("D1",)]
        assert versions(store, "deals") == before
        assert store.data_version() == version


def test_the_rows_behind_a_number(company: tuple[Settings, Path]) -> None:
    from saleskpi.domain.query import Scope
    from saleskpi.service.drill import rows_behind

    settings, _data = company
    found = rows_behind(SalesKpiService(settings), KpiQuery(("calls",), by=("rep",),
                                                            where=(("rep", ("r1",)),)),
                        Scope(), "calls", None, None, 0)
    ids = [dict(zip(found.columns, row, strict=True))["id"] for row in found.rows]
    # r1's outbound or undirected calls: A1 and A4 (A8 is inbound).
    assert (sorted(ids), found.total) == (["A1", "A4"], 2)


def test_text_is_cased_and_measured_as_unicode(company: tuple[Settings, Path]) -> None:
    """Stage names such as "Успешно реализовано" are matched lower-cased, as on DuckDB."""
    settings, _data = company
    with store_of(settings) as store:
        # The store's own SQL (ClickHouse's lower() would leave Cyrillic as it is).
        assert store.fetch("SELECT lower('ЇЖ Won'), UPPER('їж')") == [("їж won", "ЇЖ")]
        # The SQL compiled from Ibis expressions.
        reps = store.ibis.table("reps")
        named = reps.filter(reps.id == "r1").select(
            low=reps.name.lower(), up=reps.name.upper(), letters=reps.name.length())
        compiler = store.ibis.compiler
        sql = compiler.to_sqlglot(named.unbind()).sql(dialect=compiler.dialect)
        assert store.fetch(sql) == [("олена коваленко", "ОЛЕНА КОВАЛЕНКО", 15)]


def test_without_the_driver_the_error_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from saleskpi.store.backend import BackendNotReady

    # As if clickhouse-connect were not installed (the clickhouse-tests extra has it):
    # a None in sys.modules makes ``import clickhouse_connect`` raise ImportError.
    monkeypatch.setitem(sys.modules, "clickhouse_connect", None)
    settings = Settings(workspace=tmp_path, backend="clickhouse", _env_file=None,
                        backend_url="clickhouse://sales:hunter2@127.0.0.1:1/kpi")
    with pytest.raises(BackendNotReady, match=r"pip install 'saleskpi\[clickhouse\]'") as no:
        open_store(settings)
    assert "hunter2" not in str(no.value)


def test_a_stopped_question_leaves_the_store_usable(company: tuple[Settings, Path]) -> None:
    """chdb hands a failed query's partial output to the next query unless taken away."""
    from saleskpi.domain.errors import QueryTimeout

    settings, _data = company
    with store_of(settings) as store:
        with pytest.raises(QueryTimeout), store.time_limit(0.3):
            store.fetch("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 7")
        assert store.fetch("SELECT count() FROM deals") == [(4,)]


def test_an_import_reads_only_the_stored_rows_it_names(tmp_path: Path) -> None:
    """At scale an import must not read the whole stored table (through ``FINAL``) to
    find what changed: ClickHouse builds a join's right side, and a ``NOT IN`` set, in
    memory, and the table grows with every import (docs/capacity.md). With 300,000
    stored activities and a session that may read at most 100,000 rows per query, an
    import of three activities (one new, one changed, one unchanged) still works and
    counts what it did."""
    import pandas as pd

    from saleskpi.sources.ingest.run import import_frames

    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH", backend="clickhouse",
                            backend_url=f"chdb://{(tmp_path / 'store').as_posix()}")
    settings = Settings(workspace=workspace)
    reps = pd.DataFrame({"id": ["r1"], "name": ["Olena"]})
    assert import_frames(settings, {"reps": reps}, source="crm").ok
    store = store_of(settings)
    try:
        # 300,000 activities of r1 stored as an import would have stored them.
        store.con.execute(
            "INSERT INTO activities_versions (id, type, rep_id, occurred_at, datasource, "
            "_version, _deleted) SELECT concat('A', leftPad(toString(number), 6, '0')), "
            "'call', 'r1', toDateTime64('2026-03-02 10:00:00', 6) + number, 'crm', 1, 0 "
            "FROM numbers(300000)")
        store.con.execute("SET max_rows_to_read = 100000")
        at = pd.Timestamp("2026-03-02 10:00:00")
        batch = pd.DataFrame({
            "id": ["A000007", "A000008", "B1"], "type": ["call", "meeting", "email"],
            "rep_id": ["r1"] * 3,
            "occurred_at": [at + pd.Timedelta(seconds=7), at + pd.Timedelta(seconds=8),
                            at + pd.Timedelta(days=1)]})
        report = import_frames(settings, {"activities": batch}, source="crm", store=store)
        assert report.ok, report.errors
        counts = report.entities["activities"]
        # A000007 is as stored, A000008 became a meeting, B1 is new.
        assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 1)
        store.con.execute("SET max_rows_to_read = 0")
        assert store.fetch("SELECT count(), countIf(type = 'meeting') FROM activities") == [
            (300001, 1)]
    finally:
        store.close()
