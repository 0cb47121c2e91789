"""Acceptance: import the public Maven CRM export and check KPIs against hand-written SQL.

Every expected value here is computed independently of the package, with plain DuckDB SQL
over the raw CSV files in ``tests/data/maven-crm`` (the files as published, quirks and all).
The package is only ever driven through its CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

MAVEN_DIR = Path(__file__).parent / "data" / "maven-crm"

# The raw files, with their column types spelled out (no guessing).
RAW_VIEWS = {
    "pipeline": (
        "sales_pipeline.csv",
        {
            "opportunity_id": "VARCHAR",
            "sales_agent": "VARCHAR",
            "product": "VARCHAR",
            "account": "VARCHAR",
            "deal_stage": "VARCHAR",
            "engage_date": "DATE",
            "close_date": "DATE",
            "close_value": "BIGINT",
        },
    ),
    "teams": (
        "sales_teams.csv",
        {"sales_agent": "VARCHAR", "manager": "VARCHAR", "regional_office": "VARCHAR"},
    ),
    "accounts": (
        "accounts.csv",
        {
            "account": "VARCHAR",
            "sector": "VARCHAR",
            "year_established": "INTEGER",
            "revenue": "DOUBLE",
            "employees": "INTEGER",
            "office_location": "VARCHAR",
            "subsidiary_of": "VARCHAR",
        },
    ),
    "products": (
        "products.csv",
        {"product": "VARCHAR", "series": "VARCHAR", "sales_price": "BIGINT"},
    ),
}

# Ratios may be shown rounded to 6 decimals; anything coarser is a bug.
RATIO_ABS = 1e-6

KPIS_BY_REP = [
    "deals_won",
    "revenue",
    "win_rate",
    "average_deal_size",
    "time_to_close",
    "pipeline_volume",
]


# ---------------------------------------------------------------- helpers


def raw_sql(sql: str) -> list[dict[str, Any]]:
    """Run SQL over the raw Maven CSVs (views: pipeline, teams, accounts, products)."""
    con = duckdb.connect()
    try:
        for view, (file, columns) in RAW_VIEWS.items():
            cols = ", ".join(f"'{name}': '{typ}'" for name, typ in columns.items())
            path = (MAVEN_DIR / file).as_posix()
            con.execute(
                f"CREATE VIEW {view} AS SELECT * FROM read_csv('{path}', header = true, "
                f"delim = ',', quote = '\"', columns = {{{cols}}})"
            )
        cur = con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()


def raw_scalar(sql: str) -> Any:
    (row,) = raw_sql(sql)
    (value,) = row.values()
    return value


def store_sql(workspace: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run SQL on the workspace's analytics.duckdb, read-only, after the CLI has exited."""
    con = duckdb.connect(str(workspace / "analytics.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def store_counts(workspace: Path) -> dict[str, int]:
    return {
        table: store_sql(workspace, f'SELECT count(*) FROM "{table}"')[0][0]
        for table in ("reps", "deals", "accounts", "products")
    }


def import_maven(run_cli, workspace: Path):
    return run_cli(workspace, "import", MAVEN_DIR, "--mapping", "maven-crm", "--format", "json")


def kpi_json(run_cli, workspace: Path, *args: str) -> dict[str, Any]:
    # The SQL these are checked against counts all of the data (the default is month
    # to date): all time unless dates are given.
    every = () if "--from" in args or "--to" in args else ("--range", "all")
    result = run_cli(workspace, "kpi", *args, *every, "--format", "json")
    assert result.returncode == 0, f"kpi {args} exited {result.returncode}: {result.stderr}"
    return result.json()


def column(rows: list[dict[str, Any]], key: str, kpi: str, part: str = "value") -> dict:
    """{row[key]: row[kpi][part]} over the KPI output rows, e.g. win rate per rep."""
    return {row[key]: row[kpi][part] for row in rows}


def single_warning(report: dict[str, Any], code: str, **match: Any) -> dict[str, Any]:
    found = [
        w
        for w in report["warnings"]
        if w["code"] == code and all(w.get(k) == v for k, v in match.items())
    ]
    assert len(found) == 1, (
        f"expected exactly one warning {code} {match or ''}; got {report['warnings']}"
    )
    return found[0]


# ---------------------------------------------------------------- expected values (raw SQL)

EXPECTED_BY_AGENT_SQL = """
SELECT
    t.sales_agent                                                      AS rep,
    count(p.opportunity_id) FILTER (WHERE p.deal_stage = 'Won')        AS won,
    count(p.opportunity_id) FILTER (WHERE p.deal_stage = 'Lost')       AS lost,
    coalesce(sum(p.close_value) FILTER (WHERE p.deal_stage = 'Won'), 0) AS revenue,
    quantile_cont(p.close_date - p.engage_date, 0.5)
        FILTER (WHERE p.deal_stage = 'Won' AND p.engage_date IS NOT NULL) AS median_days,
    count(p.opportunity_id)
        FILTER (WHERE p.deal_stage IN ('Engaging', 'Prospecting'))     AS open_deals
FROM teams t
LEFT JOIN pipeline p ON p.sales_agent = t.sales_agent
GROUP BY t.sales_agent
"""


@pytest.fixture(scope="module")
def expected_by_agent() -> dict[str, dict[str, Any]]:
    rows = raw_sql(EXPECTED_BY_AGENT_SQL)
    assert len(rows) == 35
    return {r["rep"]: r for r in rows}


# ---------------------------------------------------------------- the imported workspace


@pytest.fixture(scope="module")
def maven_import(tmp_path_factory, run_cli):
    """One workspace with the Maven export imported; (workspace, CLI result)."""
    ws = tmp_path_factory.mktemp("maven") / "workspace"
    ws.mkdir()
    return ws, import_maven(run_cli, ws)


@pytest.fixture(scope="module")
def import_report(maven_import) -> dict[str, Any]:
    _, result = maven_import
    report = result.json()
    assert result.returncode == 0, f"import exited {result.returncode}: {report} {result.stderr}"
    return report


@pytest.fixture(scope="module")
def maven_ws(maven_import, import_report) -> Path:
    """The workspace, once the import is known to have been accepted."""
    ws, _ = maven_import
    return ws


@pytest.fixture(scope="module")
def kpis_by_rep(run_cli, maven_ws) -> dict[str, Any]:
    return kpi_json(run_cli, maven_ws, *KPIS_BY_REP, "--by", "rep")


@pytest.fixture(scope="module")
def rep_rows(kpis_by_rep) -> list[dict[str, Any]]:
    return kpis_by_rep["rows"]


# ---------------------------------------------------------------- import report


def test_maven_import_is_accepted(import_report):
    assert import_report["ok"] is True
    assert import_report["dry_run"] is False
    assert import_report["errors"] == []
    assert isinstance(import_report["source"], str) and import_report["source"]


def test_maven_import_inserts_every_record_once(import_report):
    expected = {
        "deals": raw_scalar("SELECT count(*) FROM pipeline"),  # 8,800
        "reps": raw_scalar("SELECT count(*) FROM teams"),  # 35
        "accounts": raw_scalar("SELECT count(*) FROM accounts"),  # 85
        "products": raw_scalar("SELECT count(*) FROM products"),  # 7
    }
    assert expected == {"deals": 8800, "reps": 35, "accounts": 85, "products": 7}
    got = {
        name: import_report["entities"][name]
        for name in expected
        if name in import_report["entities"]
    }
    assert got == {
        name: {"inserted": n, "updated": 0, "unchanged": 0, "rejected": 0}
        for name, n in expected.items()
    }


def test_warning_deals_without_account_matches_sql(import_report):
    expected = raw_scalar("SELECT count(*) FROM pipeline WHERE account IS NULL")
    assert expected == 1425
    assert single_warning(import_report, "deal_without_account")["count"] == expected


def test_warning_deals_without_engage_date_matches_sql(import_report):
    expected = raw_scalar("SELECT count(*) FROM pipeline WHERE engage_date IS NULL")
    assert expected == 500
    assert single_warning(import_report, "deal_without_created_at")["count"] == expected


def test_warning_gtxpro_rows_remapped_matches_sql(import_report):
    expected = raw_scalar("SELECT count(*) FROM pipeline WHERE product = 'GTXPro'")
    assert expected == 1480
    warning = single_warning(import_report, "value_remapped", column="product_id")
    assert warning["count"] == expected


def test_warning_agents_without_deals_matches_sql(import_report):
    expected = raw_scalar(
        "SELECT count(*) FROM teams t "
        "WHERE NOT EXISTS (SELECT 1 FROM pipeline p WHERE p.sales_agent = t.sales_agent)"
    )
    assert expected == 5
    assert single_warning(import_report, "rep_without_deals")["count"] == expected


# ---------------------------------------------------------------- the stored tables


def test_store_row_counts_match_csvs(maven_ws):
    assert store_counts(maven_ws) == {"reps": 35, "deals": 8800, "accounts": 85, "products": 7}


def test_deals_table_matches_pipeline_csv_row_by_row(maven_ws):
    expected = {
        tuple(r.values())
        for r in raw_sql(
            """
            SELECT opportunity_id, sales_agent,
                   CASE deal_stage WHEN 'Won' THEN 'won' WHEN 'Lost' THEN 'lost'
                                   ELSE 'open' END,
                   account,
                   CASE product WHEN 'GTXPro' THEN 'GTX Pro' ELSE product END,
                   close_value, engage_date, close_date
            FROM pipeline
            """
        )
    }
    got = set(
        store_sql(
            maven_ws,
            "SELECT id, rep_id, status, account_id, product_id, amount, "
            "CAST(created_at AS DATE), CAST(closed_at AS DATE) FROM deals",
        )
    )
    assert len(expected) == 8800
    missing, unexpected = expected - got, got - expected
    assert not missing and not unexpected, (
        f"{len(missing)} CSV rows not stored as expected, e.g. {sorted(missing)[:3]}; "
        f"{len(unexpected)} stored rows not in the CSV, e.g. {sorted(unexpected, key=str)[:3]}"
    )


def test_open_deals_keep_their_original_stage(maven_ws):
    expected = {
        (r["deal_stage"], r["n"])
        for r in raw_sql(
            "SELECT deal_stage, count(*) AS n FROM pipeline "
            "WHERE deal_stage IN ('Engaging', 'Prospecting') GROUP BY ALL"
        )
    }
    got = set(
        store_sql(maven_ws, "SELECT stage, count(*) FROM deals WHERE status = 'open' GROUP BY ALL")
    )
    assert got == expected == {("Engaging", 1589), ("Prospecting", 500)}


def test_reps_table_has_manager_as_team_and_region(maven_ws):
    expected = {
        (r["sales_agent"], r["sales_agent"], r["manager"], r["regional_office"])
        for r in raw_sql("SELECT * FROM teams")
    }
    got = set(
        store_sql(
            maven_ws,
            "SELECT id, name, team, json_extract_string(custom, '$.region') FROM reps",
        )
    )
    assert got == expected


def test_accounts_and_products_use_names_as_ids(maven_ws):
    accounts = {r["account"] for r in raw_sql("SELECT account FROM accounts")}
    products = {r["product"] for r in raw_sql("SELECT product FROM products")}
    assert {r[0] for r in store_sql(maven_ws, "SELECT id FROM accounts")} == accounts
    assert {r[0] for r in store_sql(maven_ws, "SELECT id FROM products")} == products
    assert "GTX Pro" in products and "GTXPro" not in products


# ---------------------------------------------------------------- KPIs per rep


def test_kpi_by_rep_lists_every_agent_once(kpis_by_rep, expected_by_agent):
    assert kpis_by_rep["kpis"] == KPIS_BY_REP
    assert kpis_by_rep["by"] == ["rep"]
    reps = [row["rep"] for row in kpis_by_rep["rows"]]
    assert sorted(reps) == sorted(expected_by_agent)
    # Maven rep ids are the agents' names.
    assert {row["rep"]: row["rep_name"] for row in kpis_by_rep["rows"]} == {
        rep: rep for rep in expected_by_agent
    }
    assert all("period" not in row for row in kpis_by_rep["rows"])


def test_kpi_units(rep_rows):
    expected_units = {
        "deals_won": "count",
        "revenue": "USD",
        "win_rate": "ratio",
        "average_deal_size": "USD",
        "time_to_close": "days",
        "pipeline_volume": "count",
    }
    for kpi, unit in expected_units.items():
        assert {row[kpi]["unit"] for row in rep_rows} == {unit}, kpi


def test_deals_won_per_agent_matches_sql(rep_rows, expected_by_agent):
    expected = {rep: e["won"] for rep, e in expected_by_agent.items()}
    assert sum(expected.values()) == 4238
    assert column(rep_rows, "rep", "deals_won") == expected


def test_revenue_per_agent_matches_sql(rep_rows, expected_by_agent):
    expected = {rep: e["revenue"] for rep, e in expected_by_agent.items()}
    assert column(rep_rows, "rep", "revenue") == pytest.approx(expected)


def test_win_rate_per_agent_matches_sql(rep_rows, expected_by_agent):
    expected_value = {
        rep: (e["won"] / (e["won"] + e["lost"]) if e["won"] + e["lost"] else None)
        for rep, e in expected_by_agent.items()
    }
    expected_numerator = {rep: e["won"] for rep, e in expected_by_agent.items()}
    expected_denominator = {rep: e["won"] + e["lost"] for rep, e in expected_by_agent.items()}
    assert column(rep_rows, "rep", "win_rate", "numerator") == expected_numerator
    assert column(rep_rows, "rep", "win_rate", "denominator") == expected_denominator
    assert column(rep_rows, "rep", "win_rate") == pytest.approx(expected_value, abs=RATIO_ABS)


def test_average_deal_size_per_agent_matches_sql(rep_rows, expected_by_agent):
    expected = {
        rep: (e["revenue"] / e["won"] if e["won"] else None) for rep, e in expected_by_agent.items()
    }
    assert column(rep_rows, "rep", "average_deal_size") == pytest.approx(expected)
    assert column(rep_rows, "rep", "average_deal_size", "numerator") == pytest.approx(
        {rep: e["revenue"] for rep, e in expected_by_agent.items()}
    )
    assert column(rep_rows, "rep", "average_deal_size", "denominator") == {
        rep: e["won"] for rep, e in expected_by_agent.items()
    }


def test_time_to_close_per_agent_matches_sql(rep_rows, expected_by_agent):
    # Median (the mean of the two middle values for an even count) of whole days
    # from engage_date to close_date over won deals.
    expected = {rep: e["median_days"] for rep, e in expected_by_agent.items()}
    assert column(rep_rows, "rep", "time_to_close") == pytest.approx(expected)


def test_pipeline_volume_per_agent_matches_sql(rep_rows, expected_by_agent):
    expected = {rep: e["open_deals"] for rep, e in expected_by_agent.items()}
    assert sum(expected.values()) == 2089
    assert column(rep_rows, "rep", "pipeline_volume") == expected


def test_agents_without_deals_have_zero_counts_and_null_rates(rep_rows, expected_by_agent):
    idle = sorted(
        rep
        for rep, e in expected_by_agent.items()
        if not (e["won"] or e["lost"] or e["open_deals"])
    )
    assert idle == [
        "Carl Lin",
        "Carol Thompson",
        "Elizabeth Anderson",
        "Mei-Mei Johns",
        "Natalya Ivanova",
    ]
    by_rep = {row["rep"]: row for row in rep_rows}
    for rep in idle:
        row = by_rep[rep]
        got = {kpi: row[kpi]["value"] for kpi in KPIS_BY_REP}
        assert got == {
            "deals_won": 0,
            "revenue": 0,
            "win_rate": None,
            "average_deal_size": None,
            "time_to_close": None,
            "pipeline_volume": 0,
        }, rep
        assert (row["win_rate"]["numerator"], row["win_rate"]["denominator"]) == (0, 0), rep


# ---------------------------------------------------------------- KPIs per team and per month


def test_revenue_and_win_rate_per_team_match_sql(run_cli, maven_ws):
    out = kpi_json(run_cli, maven_ws, "revenue", "win_rate", "--by", "team")
    assert out["by"] == ["team"]
    expected = {
        r["manager"]: r
        for r in raw_sql(
            """
            SELECT t.manager,
                   coalesce(sum(p.close_value) FILTER (WHERE p.deal_stage = 'Won'), 0) AS revenue,
                   count(p.opportunity_id) FILTER (WHERE p.deal_stage = 'Won') AS won,
                   count(p.opportunity_id) FILTER (WHERE p.deal_stage IN ('Won', 'Lost'))
                       AS closed
            FROM teams t LEFT JOIN pipeline p ON p.sales_agent = t.sales_agent
            GROUP BY t.manager
            """
        )
    }
    assert len(expected) == 6
    rows = out["rows"]
    assert sorted(row["team"] for row in rows) == sorted(expected)
    assert column(rows, "team", "revenue") == pytest.approx(
        {m: e["revenue"] for m, e in expected.items()}
    )
    assert column(rows, "team", "win_rate", "numerator") == {
        m: e["won"] for m, e in expected.items()
    }
    assert column(rows, "team", "win_rate", "denominator") == {
        m: e["closed"] for m, e in expected.items()
    }
    assert column(rows, "team", "win_rate") == pytest.approx(
        {m: e["won"] / e["closed"] for m, e in expected.items()}, abs=RATIO_ABS
    )


@pytest.fixture(scope="module")
def won_per_month_2017(run_cli, maven_ws) -> dict[str, Any]:
    return kpi_json(
        run_cli,
        maven_ws,
        "deals_won",
        "--by",
        "rep",
        "--period",
        "month",
        "--from",
        "2017-01-01",
        "--to",
        "2017-12-31",
    )


def test_monthly_rows_are_one_per_rep_and_month(won_per_month_2017, expected_by_agent):
    keys = [(row["rep"], row["period"]) for row in won_per_month_2017["rows"]]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    assert not duplicates, (
        f"{len(keys)} rows, {len(duplicates)} (rep, month) pairs repeated, e.g. {duplicates[:3]}"
    )
    assert {rep for rep, _ in keys} == set(expected_by_agent)


@pytest.mark.parametrize("agent", ["Darcel Schlecht", "Moses Frase", "Carol Thompson"])
def test_deals_won_per_month_matches_sql(won_per_month_2017, agent):
    months = [f"2017-{m:02d}-01" for m in range(1, 13)]
    rows = won_per_month_2017["rows"]
    assert {row["period"] for row in rows} <= set(months)
    got = {row["period"]: row["deals_won"]["value"] for row in rows if row["rep"] == agent}
    expected = {
        str(r["month"]): r["n"]
        for r in raw_sql(
            f"""
            SELECT CAST(date_trunc('month', close_date) AS DATE) AS month, count(*) AS n
            FROM pipeline
            WHERE deal_stage = 'Won' AND sales_agent = '{agent}'
              AND close_date BETWEEN DATE '2017-01-01' AND DATE '2017-12-31'
            GROUP BY ALL
            """
        )
    }
    # A month with no row for the agent counts as 0 (rows for empty months are optional).
    assert {m: got.get(m, 0) for m in months} == {m: expected.get(m, 0) for m in months}


# ---------------------------------------------------------------- re-import is idempotent


@pytest.fixture(scope="module")
def reimport(tmp_path_factory, run_cli) -> dict[str, Any]:
    """A separate workspace: import, KPIs, import again, KPIs again."""
    ws = tmp_path_factory.mktemp("maven-reimport") / "workspace"
    ws.mkdir()
    first = import_maven(run_cli, ws)
    assert first.returncode == 0, first.stdout + first.stderr
    kpi_args = (*KPIS_BY_REP, "--by", "rep")
    state = {"kpis_before": kpi_json(run_cli, ws, *kpi_args), "counts_before": store_counts(ws)}
    second = import_maven(run_cli, ws)
    state.update(
        second_code=second.returncode,
        second=second.json(),
        kpis_after=kpi_json(run_cli, ws, *kpi_args),
        counts_after=store_counts(ws),
    )
    return state


def test_reimport_inserts_and_updates_nothing(reimport):
    assert reimport["second_code"] == 0
    report = reimport["second"]
    assert report["ok"] is True
    expected_n = {"deals": 8800, "reps": 35, "accounts": 85, "products": 7}
    got = {name: report["entities"].get(name) for name in expected_n}
    assert got == {
        name: {"inserted": 0, "updated": 0, "unchanged": n, "rejected": 0}
        for name, n in expected_n.items()
    }
    for counts in report["entities"].values():
        assert counts["inserted"] == 0 and counts["updated"] == 0


def test_reimport_keeps_store_row_counts(reimport):
    assert reimport["counts_after"] == reimport["counts_before"]
    assert reimport["counts_after"] == {"reps": 35, "deals": 8800, "accounts": 85, "products": 7}


def test_reimport_keeps_kpis_identical(reimport):
    before, after = reimport["kpis_before"], reimport["kpis_after"]
    assert after["rows"] == before["rows"]
    # Everything else in the output too, except any generation timestamp (keys ending "_at").
    same_keys = {k for k in before if not k.endswith("_at")}
    assert {k: after.get(k) for k in same_keys} == {k: before[k] for k in same_keys}


# ---------------------------------------------------------------- stage history from the pipeline


def test_stage_changes_from_pipeline_match_sql(maven_ws):
    # One file feeds two entities: every engaged opportunity entered Engaging on its
    # engage date, and every closed one entered Won or Lost on its close date.
    expected = {
        tuple(r.values())
        for r in raw_sql(
            """
            SELECT opportunity_id, 'Engaging', engage_date, sales_agent FROM pipeline
            WHERE engage_date IS NOT NULL
            UNION ALL
            SELECT opportunity_id, deal_stage, close_date, sales_agent FROM pipeline
            WHERE deal_stage IN ('Won', 'Lost')
            """
        )
    }
    assert len(expected) == 8300 + 6711
    got = store_sql(
        maven_ws,
        "SELECT deal_id, stage, CAST(entered_at AS DATE), rep_id FROM stage_changes",
    )
    assert len(got) == len(expected)
    assert set(got) == expected
    assert store_sql(maven_ws, "SELECT DISTINCT pipeline, custom FROM stage_changes") == [
        ("sales", None)
    ]


def test_import_reports_rows_skipped_for_stage_changes(import_report):
    assert import_report["entities"]["stage_changes"] == {
        "inserted": 15011, "updated": 0, "unchanged": 0, "rejected": 0,
    }
    no_engage = raw_scalar("SELECT count(*) FROM pipeline WHERE engage_date IS NULL")
    still_open = raw_scalar(
        "SELECT count(*) FROM pipeline WHERE deal_stage NOT IN ('Won', 'Lost')")
    assert (no_engage, still_open) == (500, 2089)
    skipped = single_warning(import_report, "rows_skipped", column="entered_at")
    assert (skipped["count"], skipped["file"]) == (no_engage, "sales_pipeline.csv")
    closes = single_warning(import_report, "rows_skipped", column="stage, entered_at")
    assert closes["count"] == still_open


def test_reimport_leaves_stage_changes_unchanged(reimport):
    assert reimport["second"]["entities"]["stage_changes"] == {
        "inserted": 0, "updated": 0, "unchanged": 15011, "rejected": 0,
    }
