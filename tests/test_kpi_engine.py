"""KPI engine against a hand-counted company in Europe/Kyiv.

Every expected number below was counted by hand from the fixture in
``kyiv_company``; the comments show the counting. Timestamps without an offset
are Kyiv wall-clock time (UTC+2 in winter, UTC+3 from 2024-03-31 03:00).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from saleskpi.domain.query import KpiQuery, Scope
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from tests.backends import BackendChoice

REPS = """id,name,team
r1,Олена Коваленко,Київ
r2,John Smith,London
r3,Idle Rep,London
"""
LEADS = """id,created_at,rep_id,source,segment,campaign
L1,2024-01-10 10:00:00,r1,website,b2b,spring
L2,2024-01-31 23:30:00,r1,ads,b2c,
L3,2024-02-01T00:30:00+02:00,r1,referral,b2b,
L4,2024-02-05 09:00:00,r2,referral,b2b,
L5,2024-02-06 09:00:00,r2,website,b2b,
L6,2024-03-31T23:30:00+03:00,r1,website,b2c,
L7,2024-07-01 00:30:00,r2,ads,b2c,
L8,2024-03-30 23:00:00,r2,referral,b2b,
"""
ACTIVITIES = """id,type,rep_id,occurred_at,lead_id,deal_id,direction
A1,call,r1,2024-01-10 10:03:00,L1,,out
A2,meeting,r1,2024-01-12 12:00:00,L1,D1,
A3,email,r1,2024-02-01 00:10:00,L2,,out
A4,call,r1,2024-02-01T01:00:00+02:00,L3,,out
A5,call,r2,2024-02-05 08:00:00,L4,,out
A6,call,r2,2024-02-07 10:00:00,,,in
A7,mail,r2,2024-02-07 11:00:00,,,
A8,call,r1,2024-03-31T23:31:00+03:00,L6,,in
A9,email,r1,2024-03-31T23:34:00+03:00,L6,,out
A10,note,r1,2024-01-11 09:00:00,L1,,
A11,call,r2,2024-02-06 10:00:00,,,out
A12,meeting,r2,2024-02-08 10:00:00,L4,,
A13,call,r2,2024-03-31 09:00:00,L8,,out
"""
DEALS = """id,rep_id,status,created_at,lead_id,amount,currency,closed_at
D1,r1,won,2024-01-11 09:00:00,L1,"1000,50",UAH,2024-01-20 09:00:00
D2,r2,lost,2024-02-05 12:00:00,L4,500,UAH,2024-02-10 12:00:00
D3,r2,won,2024-02-06 09:00:00,,2000,UAH,2024-03-01 09:00:00
D4,r1,open,2024-03-01 09:00:00,,300,UAH,
"""
NOW = dt.datetime(2024, 12, 1)
ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend
ON_CLICKHOUSE_HTTP = True  # and as a server is reached: tests/fakes/clickhouse_http.py


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, backend: BackendChoice) -> SalesKpiService:
    root = tmp_path_factory.mktemp("kyiv")
    data = root / "data"
    data.mkdir()
    for name, text in (("reps", REPS), ("leads", LEADS), ("activities", ACTIVITIES),
                       ("deals", DEALS)):
        (data / f"{name}.csv").write_text(text, encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH", **backend.settings())
    settings = Settings(workspace=workspace)
    assert settings.timezone == "Europe/Kyiv"
    assert settings.backend == backend.name
    svc = SalesKpiService(settings)
    report = svc.import_path(data, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    return svc


def by_rep(service: SalesKpiService, *kpis: str, **query: object) -> dict[str, dict[str, object]]:
    card = service.scorecard(KpiQuery(tuple(kpis), by=("rep",), **query), now=NOW)  # type: ignore[arg-type]
    return {row.keys["rep"] or "": {k: v.value for k, v in row.values.items()}
            for row in card.rows}


def totals(service: SalesKpiService, *kpis: str, **query: object) -> dict[str, object]:
    card = service.scorecard(KpiQuery(tuple(kpis), **query), now=NOW)  # type: ignore[arg-type]
    assert len(card.rows) == 1
    return {k: v for k, v in card.rows[0].values.items()}


def test_activity_counts_follow_the_catalogue(service: SalesKpiService) -> None:
    rows = by_rep(service, "calls", "meetings", "emails")
    # calls: outbound or undirected calls; A6 and A8 are inbound.
    assert rows["r1"] == {"calls": 2, "meetings": 1, "emails": 2}  # A1 A4 | A2 | A3 A9
    assert rows["r2"] == {"calls": 3, "meetings": 1, "emails": 1}  # A5 A11 A13 | A12 | A7
    assert rows["r3"] == {"calls": 0, "meetings": 0, "emails": 0}


def test_call_to_meeting_conversion_is_meetings_over_calls(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("call_to_meeting_conversion",), by=("rep",)), now=NOW)
    values = {r.keys["rep"]: r.values["call_to_meeting_conversion"] for r in card.rows}
    assert (values["r1"].numerator, values["r1"].denominator) == (1, 2)
    assert (values["r2"].numerator, values["r2"].denominator) == (1, 3)
    assert values["r2"].value == pytest.approx(1 / 3)
    # 0/0 is undefined, not zero
    assert values["r3"].value is None
    assert (values["r3"].numerator, values["r3"].denominator) == (0, 0)
    total = card.totals[0].values["call_to_meeting_conversion"]
    assert (total.numerator, total.denominator) == (2, 5)


def test_deal_kpis(service: SalesKpiService) -> None:
    rows = by_rep(service, "deals_won", "revenue", "win_rate", "average_deal_size",
                  "pipeline_volume", "pipeline_value")
    assert rows["r1"] == {"deals_won": 1, "revenue": pytest.approx(1000.50), "win_rate": 1.0,
                          "average_deal_size": pytest.approx(1000.50), "pipeline_volume": 1,
                          "pipeline_value": pytest.approx(300)}
    assert rows["r2"]["win_rate"] == pytest.approx(0.5)  # D3 won, D2 lost
    assert rows["r2"]["revenue"] == pytest.approx(2000)
    assert rows["r2"]["pipeline_volume"] == 0
    assert rows["r3"]["win_rate"] is None
    total = totals(service, "win_rate", "revenue")
    assert total["win_rate"].numerator == 2 and total["win_rate"].denominator == 3  # type: ignore[attr-defined]


def test_time_to_close_and_sales_cycle_in_days(service: SalesKpiService) -> None:
    rows = by_rep(service, "time_to_close", "sales_cycle_length")
    assert rows["r1"]["time_to_close"] == pytest.approx(9)  # Jan 11 09:00 -> Jan 20 09:00
    assert rows["r2"]["time_to_close"] == pytest.approx(24)  # Feb 6 -> Mar 1 (leap year)
    # D1's cycle starts at lead L1's arrival, Jan 10 10:00: 9 days 23 hours.
    assert rows["r1"]["sales_cycle_length"] == pytest.approx(9 + 23 / 24)
    assert rows["r2"]["sales_cycle_length"] == pytest.approx(24)
    total = totals(service, "time_to_close", "sales_cycle_length")
    assert total["time_to_close"].value == pytest.approx(16.5)  # type: ignore[attr-defined]
    assert total["sales_cycle_length"].value == pytest.approx((9 + 23 / 24 + 24) / 2)  # type: ignore[attr-defined]


def test_lead_response_time_skips_inbound_and_bad_data(service: SalesKpiService) -> None:
    rows = by_rep(service, "leads", "lead_response_time", "speed_to_lead_5min",
                  "lead_to_opportunity")
    # r1: L1 3 min, L2 40 min (across midnight), L3 30 min, L6 4 min (A8 is inbound)
    assert rows["r1"]["lead_response_time"] == pytest.approx((4 + 30) / 2)
    assert rows["r1"]["speed_to_lead_5min"] == pytest.approx(2 / 4)
    assert rows["r1"]["lead_to_opportunity"] == pytest.approx(1 / 4)
    # r2: L4 was "contacted" an hour before it existed (left out), L5 and L7 never;
    # L8 waited over the DST night: 23:00 (+02) to 09:00 (+03) is 9 hours, not 10.
    assert rows["r2"]["lead_response_time"] == pytest.approx(540)
    assert rows["r2"]["speed_to_lead_5min"] == 0
    assert rows["r2"]["leads"] == 4
    assert rows["r3"]["lead_response_time"] is None
    total = totals(service, "lead_response_time", "speed_to_lead_5min")
    assert total["lead_response_time"].value == pytest.approx(30)  # type: ignore[attr-defined]


def test_periods_are_buckets_in_company_time_zone(service: SalesKpiService) -> None:
    card = service.scorecard(
        KpiQuery(("leads",), by=("rep",), period="month", start=dt.date(2024, 1, 1),
                 end=dt.date(2024, 7, 31)), now=NOW)
    leads = {(r.keys["rep"], r.keys["period"]): r.values["leads"].value for r in card.rows}
    assert len(leads) == 3 * 7  # every rep, every month, zeros included
    # L2 (Jan 31 23:30 Kyiv) is January; L3 (Feb 1 00:30 Kyiv, Jan 31 in UTC) is February.
    assert leads[("r1", "2024-01-01")] == 2
    assert leads[("r1", "2024-02-01")] == 1
    assert leads[("r1", "2024-03-01")] == 1  # L6, 23:30 on the DST day
    assert leads[("r2", "2024-07-01")] == 1  # L7, Jul 1 00:30 Kyiv = Jun 30 UTC
    assert leads[("r2", "2024-06-01")] == 0
    assert sum(v for (rep, _), v in leads.items() if rep == "r3") == 0


def test_from_to_filters_by_local_days_and_reuses_compiled_sql(
        service: SalesKpiService) -> None:
    february = totals(service, "leads", "calls", start=dt.date(2024, 2, 1),
                      end=dt.date(2024, 2, 29))
    assert february["leads"].value == 3  # type: ignore[attr-defined]  # L3 L4 L5
    assert february["calls"].value == 3  # type: ignore[attr-defined]  # A4 A5 A11
    from saleskpi.engine.scorecard import _CACHE

    hits = _CACHE.hits
    january = totals(service, "leads", "calls", start=dt.date(2024, 1, 1),
                     end=dt.date(2024, 1, 31))
    assert _CACHE.hits > hits  # same shape, other dates: no new compilation
    assert january["leads"].value == 2  # type: ignore[attr-defined]
    assert january["calls"].value == 1  # type: ignore[attr-defined]


def test_pipeline_as_of_each_month_end(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("pipeline_volume",), period="month",
                                      start=dt.date(2024, 1, 1), end=dt.date(2024, 3, 31)),
                             now=NOW)
    volume = {r.keys["period"]: r.values["pipeline_volume"].value for r in card.rows}
    # end of Jan: none open (D1 closed Jan 20); end of Feb: D3 (closes Mar 1) ;
    # end of Mar: D4 (open since Mar 1). D2 lived Feb 5-10.
    assert volume == {"2024-01-01": 0, "2024-02-01": 1, "2024-03-01": 1}


def test_slices_by_source_team_and_custom_field(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("leads",), by=("source",)), now=NOW)
    assert {r.keys["source"]: r.values["leads"].value for r in card.rows} == {
        "website": 3, "ads": 2, "referral": 3}
    card = service.scorecard(KpiQuery(("revenue",), by=("source",)), now=NOW)
    # D1 came from website lead L1; D3 has no lead, so no source; D2 (referral) was lost.
    assert {r.keys["source"]: r.values["revenue"].value for r in card.rows} == {
        "website": pytest.approx(1000.5), None: pytest.approx(2000), "referral": 0}
    card = service.scorecard(KpiQuery(("calls",), by=("team",)), now=NOW)
    assert {r.keys["team"]: r.values["calls"].value for r in card.rows} == {
        "Київ": 2, "London": 3}
    card = service.scorecard(KpiQuery(("leads",), by=("campaign",)), now=NOW)
    assert {r.keys["campaign"]: r.values["leads"].value for r in card.rows} == {
        "spring": 1, None: 7}


def test_where_filters_and_scope_limit_rows(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("leads",), by=("rep",), where=(("team", ("London",)),)),
                             now=NOW)
    assert {r.keys["rep"]: r.values["leads"].value for r in card.rows} == {"r2": 4, "r3": 0}
    mine = service.scorecard(KpiQuery(("leads", "calls")), Scope(rep_ids=frozenset({"r1"})),
                             now=NOW)
    assert mine.rows[0].values["leads"].value == 4
    assert mine.rows[0].values["calls"].value == 2
    # A rep asking for another rep's data through a filter gets nothing of it.
    other = service.scorecard(
        KpiQuery(("leads",), by=("rep",), where=(("rep", ("r2",)),)),
        Scope(rep_ids=frozenset({"r1"})), now=NOW)
    assert all(r.values["leads"].value == 0 for r in other.rows)
    assert {r.keys["rep"] for r in other.rows} <= {"r1"}


def test_unknown_kpi_and_slice_are_clear_errors(service: SalesKpiService) -> None:
    from saleskpi.engine.scorecard import QueryError

    with pytest.raises(QueryError, match="unknown KPI 'win_rat'"):
        service.scorecard(KpiQuery(("win_rat",)))
    with pytest.raises(QueryError, match="unknown slice"):
        service.scorecard(KpiQuery(("leads",), by=("rep; drop table leads",)))


def test_store_path_is_in_workspace(service: SalesKpiService, backend: BackendChoice) -> None:
    # On PostgreSQL the facts are in the database: the workspace holds no DuckDB file.
    assert Path(service.settings.analytics_path).is_file() == (backend.name == "duckdb")


def test_compiled_sql_is_not_shared_between_currencies(tmp_path: Path, service: SalesKpiService,
                                                       backend: BackendChoice) -> None:
    """The same query on a USD workspace after a UAH one must not reuse UAH's SQL."""
    data = tmp_path / "usd"
    data.mkdir()
    (data / "reps.csv").write_text("id,name\nr1,Ann\n", encoding="utf-8")
    (data / "deals.csv").write_text("id,rep_id,status,amount,currency,closed_at\n"
                                    "D1,r1,won,70,USD,2024-01-20\n", encoding="utf-8")
    save_workspace_settings(Settings(workspace=tmp_path / "ws-usd"), **backend.settings())
    usd = SalesKpiService(Settings(workspace=tmp_path / "ws-usd"))
    assert usd.import_path(data, mapping=None, source=None, dry_run=False).ok
    query = KpiQuery(("revenue",), by=("rep",))
    assert by_rep(service, "revenue")["r1"]["revenue"] == pytest.approx(1000.5)  # UAH
    assert usd.scorecard(query).rows[0].values["revenue"].value == 70
    assert by_rep(service, "revenue")["r1"]["revenue"] == pytest.approx(1000.5)
