"""The funnel's SQL for other databases: compiled for PostgreSQL and ClickHouse, run on chdb.

The funnel is Ibis expressions compiled per shape and dialect. Compiling them to
PostgreSQL and ClickHouse shows that no DuckDB-only construct is left; running the
ClickHouse SQL on chdb (ClickHouse in-process) over the hand-counted company of
tests/test_funnel.py shows that it also means the same there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saleskpi.catalog.funnel import FunnelConfig
from saleskpi.domain.settings import Settings
from saleskpi.engine import funnel
from saleskpi.engine.shape import FunnelShape
from saleskpi.store.analytics import AnalyticsStore
from tests import test_funnel
from tests.backends import BackendChoice
from tests.test_funnel import NOW


@pytest.fixture(scope="module")
def backend() -> BackendChoice:
    """The company in DuckDB's file: its tables are copied to chdb from there."""
    return BackendChoice("duckdb")


@pytest.fixture(scope="module")
def hand_counted_company(tmp_path_factory: pytest.TempPathFactory,
                         backend: BackendChoice) -> Settings:
    """The settings of tests/test_funnel.py's hand-counted company."""
    return test_funnel.make_workspace(tmp_path_factory.mktemp("funnel"), backend)
CONFIG = FunnelConfig()
WON, LOST = tuple(CONFIG.won_names()), tuple(CONFIG.lost_names())
# Every part of the funnel query: rep rows, a date range, a pipeline, filters (one of
# which lets no one through).
EVERYTHING_ASKED = FunnelShape("funnel", WON, LOST, dims=("team", "rep"),
                               filter_arity=(("team", 1), ("rep", 2), ("rep", 0)),
                               has_start=True, has_end=True, has_pipeline=True, by_rep=True)
# Function names that only DuckDB knows (or that mean something else elsewhere).
DUCKDB_ONLY = ("list_contains", "qualify", "arg_max", "quantile_cont", "epoch(", "$")
# Kyiv's day 2024-01-05 .. 2024-01-10 in UTC, and the end of 2024-01-31 in Kyiv.
START, END, END_OF_JANUARY = "2024-01-04 22:00:00", "2024-01-10 22:00:00", "2024-01-31 22:00:00"


@pytest.fixture(scope="module")
def store(hand_counted_company: Settings) -> Iterator[AnalyticsStore]:
    """The hand-counted company's store, with the stage order filled in."""
    with AnalyticsStore(hand_counted_company.analytics_path, read_only=True) as opened:
        # The stage order the funnel query reads, as compute_funnel fills it.
        funnel._fill_order(opened, funnel.stage_orders(opened, CONFIG))
        yield opened


def sql(store: AnalyticsStore, shape: FunnelShape, dialect: str) -> funnel.Compiled:
    return funnel.compiled(store, shape, currency="UAH", dialect=dialect)


@pytest.mark.parametrize("dialect", ["postgres", "clickhouse"])
@pytest.mark.parametrize("shape", [FunnelShape("order", WON, LOST), EVERYTHING_ASKED],
                         ids=["order", "funnel"])
def test_funnel_compiles_for_other_databases(store: AnalyticsStore, shape: FunnelShape,
                                             dialect: str) -> None:
    other = sql(store, shape, dialect)
    duckdb_sql = sql(store, shape, "duckdb")
    # The cache keeps one SQL per dialect.
    assert other.sql != duckdb_sql.sql
    assert other.params == duckdb_sql.params
    text = other.sql.lower()
    assert not [word for word in DUCKDB_ONLY if word in text]
    assert "timezone(" not in text  # the funnel's amounts are by the UTC day
    if shape.query == "funnel":
        assert set(other.params) == {"f0_0", "f1_0", "f1_1", "start", "end", "as_of",
                                     "pipeline"}
        assert other.columns == duckdb_sql.columns


# ---------------------------------------------------------------- on ClickHouse (chdb)


@pytest.fixture(scope="module")
def clickhouse(store: AnalyticsStore, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A chdb session holding a copy of every table the funnel reads."""
    chdb_session = pytest.importorskip("chdb.session")
    folder = tmp_path_factory.mktemp("chdb")
    session = chdb_session.Session()
    session.query("SET session_timezone = 'UTC'")
    tables = ("deals", "stage_changes", "fx_rates", "reps", funnel.FUNNEL_ORDER_TABLE)
    for table in tables:
        path = (folder / f"{table}.parquet").as_posix()
        store.con.execute(f"COPY (SELECT * FROM {table}) TO '{path}' (FORMAT parquet)")
        session.query(f"CREATE TABLE {table} ENGINE = Memory AS "
                      f"SELECT * FROM file('{path}', Parquet)")
    yield session
    session.close()


def on_clickhouse(session: Any, query: funnel.Compiled, values: dict[str, Any]
                  ) -> list[tuple[Any, ...]]:
    # A ClickHouse store must join with NULLs for missing rows, as SQL does (Ibis's
    # ClickHouse backend sets the same).
    out = session.query(f"{query.sql}\nSETTINGS join_use_nulls = 1", "JSONCompact",
                        params={name: values[name] for name in query.params})
    found = json.loads(out.bytes())
    assert [column["name"] for column in found["meta"]] == list(query.columns)
    return sorted((_plain(row) for row in found["data"]), key=repr)


def on_duckdb(store: AnalyticsStore, query: funnel.Compiled, values: dict[str, Any]
              ) -> list[tuple[Any, ...]]:
    rows = store.fetch(query.sql, {name: values[name] for name in query.params})
    return sorted((_plain(row) for row in rows), key=repr)


def _plain(row: Any) -> tuple[Any, ...]:
    """Values compared across databases: numbers as rounded floats, booleans as 0/1."""
    def plain(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
            return round(float(value), 9)
        return value
    return tuple(plain(v) for v in row)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def by_stage(rows: list[tuple[Any, ...]], part: str, rep: str | None = None
             ) -> dict[str, dict[str, Any]]:
    columns = ("part", "team_row", "pipeline", "stage", "rep", "entered", "converted",
               "dropped", "finished", "median_days", "p90_days", "open_deals", "open_amount")
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    return {r["stage"]: r for r in found
            if r["part"] == part and r["rep"] == rep and (rep is not None) != r["team_row"]}


@pytest.mark.slow  # ClickHouse takes seconds to plan the funnel's nested queries
def test_stage_order_on_clickhouse_equals_duckdb(store: AnalyticsStore, clickhouse: Any) -> None:
    query = sql(store, FunnelShape("order", WON, LOST), "clickhouse")
    got = on_clickhouse(clickhouse, query, {})
    assert got == on_duckdb(store, sql(store, FunnelShape("order", WON, LOST), "duckdb"), {})
    # Hand-counted (tests/test_funnel.py): first-entry positions new 1 ×8, qualified 2 ×5,
    # proposal 3 2 3 3 -> medians 1, 2, 3.
    medians = {stage: median for _pipeline, stage, median, _mean, _deals in got}
    assert medians == {"new": 1, "qualified": 2, "proposal": 3}


@pytest.mark.slow
@pytest.mark.parametrize("shape, values", [
    (FunnelShape("funnel", WON, LOST, by_rep=True), {"as_of": str(NOW)}),
    (FunnelShape("funnel", WON, LOST, dims=("team",), filter_arity=(("team", 1),),
                 has_start=True, has_end=True, has_pipeline=True, by_rep=True),
     {"f0_0": "South", "start": START, "end": END, "as_of": END_OF_JANUARY,
      "pipeline": "main"}),
    (FunnelShape("funnel", WON, LOST, dims=("rep",), filter_arity=(("rep", 0),)),
     {"as_of": str(NOW)}),
], ids=["by rep, now", "South, a date range, as of January's end", "no one in scope"])
def test_funnel_on_clickhouse_equals_duckdb(store: AnalyticsStore, clickhouse: Any,
                                            shape: FunnelShape, values: dict[str, Any]) -> None:
    got = on_clickhouse(clickhouse, sql(store, shape, "clickhouse"), values)
    assert got == on_duckdb(store, sql(store, shape, "duckdb"), values)
    if not shape.filter_arity:
        # Hand-counted in tests/test_funnel.py: the team's new stage entered 8, converted 6,
        # dropped 1, 7 finished stays with median 4 and p90 8.2 days; r2's new 4, 2, 1.
        new = by_stage(got, "flow")["new"]
        assert (new["entered"], new["converted"], new["dropped"], new["finished"],
                new["median_days"], new["p90_days"]) == (8, 6, 1, 7, 4, 8.2)
        assert [by_stage(got, "flow", "r2")["new"][k] for k in ("entered", "converted",
                                                               "dropped")] == [4, 2, 1]
        # Open now: D6 new (300), D5 qualified (700), D8 proposal (400); D9 has no history.
        assert {s: (r["open_deals"], r["open_amount"])
                for s, r in by_stage(got, "open").items()} == {
            "new": (1, 300), "qualified": (1, 700), "proposal": (1, 400)}
        assert [r[11] for r in got if r[0] == "without"] == [1]
    elif shape.has_start:
        # South (D4 D5 D6 D7) from Kyiv's 01-05 to 01-10: new entered D5, D7 (D4 on 01-03);
        # D5 moved on, D7 was lost. As of January's end: D6 new, D5 qualified, D4 proposal.
        assert [by_stage(got, "flow")["new"][k] for k in ("entered", "converted",
                                                          "dropped")] == [2, 1, 1]
        assert {s: r["open_deals"] for s, r in by_stage(got, "open").items()} == {
            "new": 1, "qualified": 1, "proposal": 1}
    else:
        assert [r for r in got if r[0] != "without"] == []
        assert [r[11] for r in got if r[0] == "without"] == [0]


def test_dates_are_bound_in_every_dialect(store: AnalyticsStore) -> None:
    shape = FunnelShape("funnel", WON, LOST, has_start=True, has_end=True)
    for dialect, placeholder in (("duckdb", "$start"), ("postgres", "%(start)s"),
                                 ("clickhouse", "{start: String}")):
        text = sql(store, shape, dialect).sql
        assert placeholder in text, dialect
        assert str(dt.date(2024, 1, 4)) not in text


def test_the_workspace_keeps_the_funnel_sql(tmp_path: Path, store: AnalyticsStore) -> None:
    before = funnel._CACHE.misses
    shape = FunnelShape("funnel", WON, ("lost", "a lost cause"))
    first = funnel.compiled(store, shape, currency="UAH", stored=tmp_path)
    assert funnel._CACHE.misses == before + 1
    assert list(tmp_path.glob("*/*.json"))
    again = funnel.compiled(store, shape, currency="UAH", stored=tmp_path)
    assert again is first and funnel._CACHE.hits
    assert "a lost cause" in first.sql  # the won and lost names are part of the shape


@pytest.mark.slow  # two processes
def test_a_second_process_answers_the_funnel_without_ibis(hand_counted_company: Settings
                                                          ) -> None:
    from tests.test_cli_startup import RUN_AND_LIST, imported, run_python

    args = ("--workspace", str(hand_counted_company.workspace), "funnel", "--by", "rep",
            "--as-of", "2024-01-31", "--format", "json")
    first = run_python(RUN_AND_LIST, *args)
    second = run_python(RUN_AND_LIST, *args)
    assert imported(first)["exit"] == 0, first.stderr
    assert "ibis" in imported(first)["heavy"]  # the first compiled the SQL and kept it
    assert imported(second) == {"exit": 0, "heavy": []}, second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
    (pipeline,) = json.loads(second.stdout)["pipelines"]
    assert pipeline["team"]["stages"][0]["entered"] == 8  # D1..D8 entered new
