"""Snapshots at a period's edge with dates that have no time (midnights), on every backend.

Exports often give dates only (the Maven CRM export does): a deal created on the 1st
is at 00:00 of the 1st, exactly the instant the month before ends. A snapshot is the
state just before its instant (``engine.build.snapshot_filters``), so, counted by
hand (UTC, so that midnights are the company's):

deals          created      closed              open at the end of Jan   of Feb
X1  100        2024-02-01   -                   no (created on Feb 1)    yes
X2   10        2024-01-10   won 2024-02-01      yes (closed on Feb 1)    no
-> pipeline value: January 10, February 100 (was 100 and 100: X1 a month early, X2 gone
   a day early).

accounts       acquired     churned             customer at Feb's start   churned in Feb
A1             2024-01-05   2024-02-01          yes                       yes
A2, A3         2023-06-01   -                   yes                       no
-> customers at January's start 2 (A2, A3), at February's 3 (was 2: A1 gone a day early,
   yet churned in February); February's churn rate 1/3 (was 1/2); customers at the end
   of January 3 (was 2).

revenue (active customers: a purchase in the 90 days before the end of March,
Jan 2 00:00 up to Apr 1 00:00)
V1  A2 (rep r1)  2024-04-01   the instant March ends: April's    -> not active in March
V2  A3 (rep r2)  2024-01-02   the first instant of the window    -> active in March
-> active customers at the end of March: r1 0, r2 1 (was r1 1, r2 0).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from tests.backends import BackendChoice

ON_CLICKHOUSE = True  # snapshots are the same SQL on every backend

FILES = {
    "reps": "id,name,team\nr1,Anna Adams,North\nr2,Boris Bell,North\n",
    "deals": "id,rep_id,status,amount,created_at,closed_at\n"
             "X1,r1,open,100,2024-02-01,\nX2,r1,won,10,2024-01-10,2024-02-01\n",
    "accounts": "id,name,rep_id,acquired_at,churned_at\n"
                "A1,Acme,r1,2024-01-05,2024-02-01\nA2,Bolt,r1,2023-06-01,\n"
                "A3,Core,r2,2023-06-01,\n",
    "revenue": "id,account_id,amount,occurred_at\nV1,A2,5,2024-04-01\nV2,A3,5,2024-01-02\n",
}


@pytest.fixture
def service(tmp_path: Path, backend: BackendChoice) -> SalesKpiService:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD",
                            **backend.settings())
    folder = tmp_path / "crm"
    folder.mkdir()
    for name, text in FILES.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    svc = SalesKpiService(Settings(workspace=workspace))
    assert svc.import_path(folder, mapping=None, source=None, dry_run=False).ok
    return svc


NOW = dt.datetime(2024, 6, 1)


def _monthly(svc: SalesKpiService, kpi: str, end: dt.date) -> dict[str, object]:
    card = svc.scorecard(KpiQuery((kpi,), period="month", start=dt.date(2024, 1, 1), end=end),
                         now=NOW)
    return {str(r.keys["period"]): r.values[kpi].value for r in card.rows}


def test_a_deal_created_or_closed_on_the_1st_is_in_its_own_months_pipeline(
        service: SalesKpiService) -> None:
    assert _monthly(service, "pipeline_value", dt.date(2024, 2, 29)) == {
        "2024-01-01": 10, "2024-02-01": 100}
    assert _monthly(service, "pipeline_volume", dt.date(2024, 2, 29)) == {
        "2024-01-01": 1, "2024-02-01": 1}


def test_a_customer_who_left_on_the_1st_was_one_at_that_months_start(
        service: SalesKpiService) -> None:
    assert _monthly(service, "customers_at_start", dt.date(2024, 2, 29)) == {
        "2024-01-01": 2, "2024-02-01": 3}
    assert _monthly(service, "customers", dt.date(2024, 1, 31)) == {"2024-01-01": 3}
    card = service.scorecard(KpiQuery(("churn_rate",), start=dt.date(2024, 2, 1),
                                      end=dt.date(2024, 2, 29)), now=NOW)
    rate = card.rows[0].values["churn_rate"]
    assert (rate.numerator, rate.denominator) == (1, 3)


def test_the_window_holds_its_first_instant_and_not_the_next_periods(
        service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("active_customers",), by=("rep",),
                                      start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 31)),
                             now=NOW)
    assert {r.keys["rep"]: r.values["active_customers"].value for r in card.rows} == {
        "r1": 0, "r2": 1}
