"""Amounts with no exchange rate are found in every money table at once, on every backend.

Deals, revenue and spend are checked in one query (``FactStore.currencies_without_rates``):
a currency's records add up across the tables and its first day is the earliest of
them. The figures below are counted by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService
from tests.backends import BackendChoice
from tests.test_funnel import kyiv_workspace

ON_CLICKHOUSE = True

REPS = "id,name,team,email\nr1,Olena,Kyiv,\n"
ACCOUNTS = "id,name\nA1,Acme\n"
# Reporting in UAH. EUR has a rate from 1 March only; GBP none; USD one from 2023.
DEALS = """id,rep_id,status,pipeline,amount,currency,created_at,closed_at
D1,r1,won,main,100,EUR,2024-02-01 10:00,2024-03-05 10:00
D2,r1,open,main,200,EUR,2024-02-10 10:00,
D3,r1,won,main,300,UAH,2024-01-02 10:00,2024-01-03 10:00
D4,r1,lost,main,50,eur,2024-01-15 10:00,2024-02-20 10:00
D5,r1,won,main,70,USD,2024-01-15 10:00,2024-02-20 10:00
"""
REVENUE = """id,account_id,amount,occurred_at,currency
P1,A1,100,2024-01-20 09:00,EUR
P2,A1,100,2024-03-20 09:00,EUR
P3,A1,10,2024-03-21 09:00,
"""
SPEND = """id,date,amount,category,currency
S1,2024-04-01,500,marketing,GBP
S2,2024-04-02,500,marketing,UAH
"""
FX_RATES = "date,currency,rate\n2024-03-01,EUR,45\n2023-01-01,USD,40\n"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory, backend: BackendChoice) -> Settings:
    files = {"reps": REPS, "accounts": ACCOUNTS, "deals": DEALS, "revenue": REVENUE,
             "spend": SPEND, "fx_rates": FX_RATES}
    settings, _report = kyiv_workspace(tmp_path_factory.mktemp("fx"), files,
                                       **backend.settings())
    return settings


def test_amounts_without_a_rate_are_counted_across_the_money_tables(settings: Settings
                                                                    ) -> None:
    # EUR before 1 March: D2 (open, by its creation day 10 Feb), D4 (closed 20 Feb, in
    # lower case) and P1 (20 Jan). D1 and P2 fall after the rate; D3, S2 are in UAH; P3
    # has no currency; USD has its rate. GBP: S1.
    assert SalesKpiService(settings).currencies_without_rates() == {
        "EUR": (3, "2024-01-20"), "GBP": (1, "2024-04-01")}


def test_a_rate_for_every_record_leaves_none(settings: Settings, tmp_path: Path) -> None:
    rates = tmp_path / "rates"
    rates.mkdir()
    (rates / "fx_rates.csv").write_text(
        "date,currency,rate\n2024-01-01,EUR,44\n2024-01-01,GBP,52\n", encoding="utf-8")
    service = SalesKpiService(settings)
    report = service.import_path(rates, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    assert service.currencies_without_rates() == {}
