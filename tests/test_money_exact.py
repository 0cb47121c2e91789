"""Money in the reporting currency is added up exactly: the same figure on every run,
path (rollup or raw rows) and backend.

Added up as floats, 0.10 + 0.20 is 0.30000000000000004 in any order, and which of
two such neighbours a sum of many rows lands on depends on the order a parallel
scan adds them in: the same question gave figures a few units in the last place
apart, and a total at exactly a half rounded apart on the page. The amounts below
are chosen so that every float order misses the exact figure, and each expected
figure is counted by hand and compared with ``==``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from saleskpi.domain.funnel import FunnelOptions
from saleskpi.domain.query import KpiQuery, Scope
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from tests.backends import BackendChoice
from tests.test_funnel import kyiv_workspace

ON_CLICKHOUSE = True

REPS = "id,name,team,email\nr1,Olena,Kyiv,\n"
# Reporting currency UAH; D3's 0.10 USD at 3 UAH is the float 0.30000000000000004.
DEALS = """id,rep_id,status,pipeline,amount,currency,created_at,closed_at,region
D1,r1,won,main,0.10,UAH,2024-01-02 10:00,2024-01-05 10:00,north
D2,r1,won,main,0.20,UAH,2024-01-03 10:00,2024-01-06 10:00,north
D3,r1,won,main,0.10,USD,2024-02-01 10:00,2024-02-07 10:00,north
D4,r1,won,main,0.30,UAH,2024-02-02 10:00,2024-02-08 10:00,north
D5,r1,open,main,0.10,UAH,2024-01-08 10:00,,north
D6,r1,open,main,0.20,UAH,2024-01-09 10:00,,north
"""
FX_RATES = "date,currency,rate\n2024-01-01,USD,3\n"
STAGE_CHANGES = """deal_id,stage,entered_at
D5,new,2024-01-08 10:00
D6,new,2024-01-09 10:00
"""
# A mean of money (no built-in KPI is one): the won deals' mean amount.
USER_KPIS = """kpis:
  - key: mean_won_amount
    name: {en: Mean won amount}
    unit: money
    entity: deals
    agg: avg
    column: amount_rc
    time: closed_at
    where: ["status == 'won'"]
"""
NOW = dt.datetime(2024, 12, 1)
# By close month: D1 + D2, and D3 (0.10 USD x 3) + D4.
REVENUE = {"2024-01-01": 0.3, "2024-02-01": 0.6}
# Open at the end of each month: D5 and D6 (D3 and D4 were created and closed in Feb).
PIPELINE = {"2024-01-01": 0.3, "2024-02-01": 0.3}
# Each month's exact sum over its two deals (as floats, 0.15000000000000002 in Jan).
MEAN = {"2024-01-01": 0.15, "2024-02-01": 0.3}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, backend: BackendChoice) -> Settings:
    files = {"reps": REPS, "deals": DEALS, "fx_rates": FX_RATES,
             "stage_changes": STAGE_CHANGES}
    settings, _report = kyiv_workspace(tmp_path_factory.mktemp("money"), files,
                                       **backend.settings())
    settings.user_kpis_path.write_text(USER_KPIS, encoding="utf-8")
    # Imported again: the rollups now keep the new KPI too (nothing else changes).
    report = SalesKpiService(settings).import_path(
        settings.workspace.parent / "data", mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return settings


def by_period(settings: Settings, kpi: str, by: tuple[str, ...]) -> dict[str, float | None]:
    card = SalesKpiService(settings).scorecard(KpiQuery(
        (kpi,), by=by, period="month", start=dt.date(2024, 1, 1), end=dt.date(2024, 2, 29)))
    return {str(row.keys["period"]): row.values[kpi].value for row in card.rows}


def test_the_floats_would_miss_the_hand_counted_figures() -> None:
    # What the test guards against: every order of adding the floats misses.
    assert 0.1 + 0.2 != 0.3 and 0.2 + 0.1 != 0.3
    assert 0.1 * 3 + 0.3 != 0.6 and 0.3 + 0.1 * 3 != 0.6


@pytest.mark.parametrize("by", [("rep",), ("region",)], ids=["rollup", "raw rows"])
def test_revenue_and_pipeline_are_exact(settings: Settings, by: tuple[str, ...]) -> None:
    # By rep: answered from the rollups on DuckDB and PostgreSQL; by the custom
    # field region: from the raw rows (no rollup keeps it). ClickHouse: raw both times.
    assert by_period(settings, "revenue", by) == REVENUE
    assert by_period(settings, "pipeline_value", by) == PIPELINE
    assert by_period(settings, "mean_won_amount", by) == MEAN


def test_the_funnels_open_amount_is_exact(settings: Settings) -> None:
    report = SalesKpiService(settings).funnel(FunnelOptions(), Scope(), now=NOW)
    [pipeline] = report.pipelines
    new = next(stage for stage in pipeline.team.stages if stage.stage == "new")
    assert (new.open_deals, new.open_amount) == (2, 0.3)


def test_an_exact_sum_is_the_same_after_a_new_import(settings: Settings, tmp_path: Path) -> None:
    # Re-importing the same rows rewrites nothing; the figures stay exactly the same.
    folder = tmp_path / "again"
    folder.mkdir()
    (folder / "deals.csv").write_text(DEALS, encoding="utf-8")
    report = SalesKpiService(settings).import_path(folder, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    assert by_period(settings, "revenue", ("rep",)) == REVENUE
