"""A first import's rows become the stored tables without a copy (``adopt_staged``).

On DuckDB the fast path types a file whose stored table holds no row yet into a table
of the store itself, which the import then renames into place instead of copying every
row (sources/ingest/fast.py, store/analytics.py). What must hold whichever way rows are
written: the stored tables keep the schema a new store has, every row arrives as the
file has it, an import refused or killed leaves nothing of its staging behind, and a
table that already holds rows is written as before. Counts are the fixtures', by hand.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from saleskpi.domain.schema import ENTITIES
from saleskpi.domain.settings import Settings
from saleskpi.sources.ingest.run import import_path
from saleskpi.store.analytics import AnalyticsStore

REPS = "id,name,team\nr1,Ann,North\nr2,Bob,North\nr3,Cid,South\n"
DEALS = ("id,rep_id,status,created_at,closed_at,amount,currency\n"
         "d1,r1,won,2025-01-02 10:00:00,2025-01-20 10:00:00,100,USD\n"
         "d2,r2,open,2025-01-03 10:00:00,,50,USD\n")
STAGES = ("deal_id,stage,entered_at\nd1,Proposal,2025-01-05 10:00:00\n"
          "d1,Won,2025-01-20 10:00:00\nd2,Proposal,2025-01-06 10:00:00\n")
# Four activities, one with a comment column (kept as custom JSON).
ACTIVITIES = ("id,type,rep_id,occurred_at,deal_id,comment\n"
              "a1,call,r1,2025-01-04 09:00:00,d1,first\n"
              "a2,call,r2,2025-01-04 10:00:00,d2,\n"
              "a3,meeting,r1,2025-01-05 11:00:00,d1,\n"
              "a4,email,r3,2025-01-06 12:00:00,,\n")


def folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def workspace(root: Path) -> Settings:
    return Settings(workspace=root, timezone="UTC", currency="USD")


def tables(path: Path) -> dict[str, str]:
    """Every table of the store file with its DDL (temporary ones are gone with their
    connection)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(con.execute("SELECT table_name, sql FROM duckdb_tables()").fetchall())
    finally:
        con.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_first_import_leaves_the_tables_a_new_store_has_and_every_row(tmp_path: Path) -> None:
    AnalyticsStore(tmp_path / "empty" / "analytics.duckdb").close()
    made = tables(tmp_path / "empty" / "analytics.duckdb")
    settings = workspace(tmp_path / "ws")
    data = folder(tmp_path / "in", {"reps.csv": REPS, "deals.csv": DEALS,
                                    "stage_changes.csv": STAGES, "activities.csv": ACTIVITIES})

    report = import_path(settings, data, source="crm")

    assert report.ok, report.errors
    store = settings.workspace / "analytics.duckdb"
    found = tables(store)
    # The new store's tables as it made them (columns, types, NOT NULLs); besides them
    # only the rollups the import built and the write's commit markers, no staging.
    assert {name: found.get(name) for name in made} == made
    assert {name for name in found if name not in made and not name.startswith(
        ("rollup_", "saleskpi_rollup"))} == {"saleskpi_writes"}
    assert rows(store, "SELECT id, type, rep_id, deal_id, datasource, custom FROM activities "
                       "ORDER BY id") == [
        ("a1", "call", "r1", "d1", "crm", '{"comment": "first"}'),
        ("a2", "call", "r2", "d2", "crm", "{}"),  # an empty comment: as the Python path
        ("a3", "meeting", "r1", "d1", "crm", "{}"),
        ("a4", "email", "r3", None, "crm", "{}")]
    assert rows(store, "SELECT count(*) FROM stage_changes") == [(3,)]
    # The first contacts kept beside them (d1: the call a1 at 09:00; d2: the call a2).
    assert sorted(rows(store, "SELECT deal_id, CAST(first_contact_at AS VARCHAR) "
                              "FROM deal_first_contacts")) == [
        ("d1", "2025-01-04 09:00:00"), ("d2", "2025-01-04 10:00:00")]


def test_only_tables_without_rows_are_adopted_and_both_sources_rows_stay(
        tmp_path: Path) -> None:
    settings = workspace(tmp_path / "ws")
    assert import_path(settings, folder(tmp_path / "a", {"reps.csv": REPS,
                                                         "deals.csv": DEALS}),
                       source="old").ok
    with AnalyticsStore(settings.workspace / "analytics.duckdb") as store:
        assert store.empty_tables() == set(ENTITIES) - {"reps", "deals"}
    # The new CRM: its deals join the stored ones (copied), its activities are the
    # first (adopted).
    new_deals = DEALS.replace("d1,", "n1,").replace("d2,", "n2,")
    report = import_path(settings, folder(tmp_path / "b", {
        "reps.csv": REPS, "deals.csv": new_deals,
        "activities.csv": ACTIVITIES.replace(",d1,", ",n1,").replace(",d2,", ",n2,")}),
        source="new")
    assert report.ok, report.errors
    store = settings.workspace / "analytics.duckdb"
    assert rows(store, "SELECT datasource, count(*) FROM deals GROUP BY 1 ORDER BY 1") == [
        ("new", 2), ("old", 2)]
    assert rows(store, "SELECT datasource, count(*) FROM activities GROUP BY 1") == [("new", 4)]
    assert not [name for name in tables(store) if name.startswith(("typed_", "stage_d"))]


def test_a_refused_first_import_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    settings = workspace(tmp_path / "ws")
    assert import_path(settings, folder(tmp_path / "a", {"reps.csv": REPS}), source="crm").ok
    store = settings.workspace / "analytics.duckdb"
    before = tables(store), rows(store, "SELECT * FROM reps ORDER BY id")
    # r9 is no rep: the whole import is refused, naming the file, row and column.
    bad = ACTIVITIES.replace("a4,email,r3,", "a4,email,r9,")
    report = import_path(settings, folder(tmp_path / "b", {"activities.csv": bad}),
                         source="crm")
    assert [(e.file, e.row, e.column) for e in report.errors] == [("activities.csv", 5,
                                                                   "rep_id")]
    assert (tables(store), rows(store, "SELECT * FROM reps ORDER BY id")) == before
    assert rows(store, "SELECT count(*) FROM activities") == [(0,)]


def test_staging_a_killed_import_left_is_dropped_by_the_next(tmp_path: Path) -> None:
    settings = workspace(tmp_path / "ws")
    data = folder(tmp_path / "in", {"reps.csv": REPS, "deals.csv": DEALS,
                                    "stage_changes.csv": STAGES})
    assert import_path(settings, data, source="crm").ok
    store = settings.workspace / "analytics.duckdb"
    # As an import killed between typing its files and its write leaves them.
    con = duckdb.connect(str(store))
    con.execute("CREATE TABLE typed_raw_3 AS SELECT range AS id FROM range(5)")
    con.execute("CREATE TABLE stage_activities AS SELECT range AS id FROM range(5)")
    con.close()

    assert import_path(settings, folder(tmp_path / "again", {"reps.csv": REPS}),
                       source="crm").ok

    names = set(tables(store))
    assert {"typed_raw_3", "stage_activities"}.isdisjoint(names)
    # The stored stage changes (an entity whose name starts like a staging table's) stay.
    assert rows(store, "SELECT count(*) FROM stage_changes") == [(3,)]

