"""A from/to range counts the rows of its local days, whatever the zone's offset.

The engine cuts the stored UTC column to the range widened by a day before it
converts anything, and decides the rows more than a day inside the range without
converting them (saleskpi.engine.build._range_filters). These tests put a lead every
30 minutes (UTC) over twelve days, in zones far from UTC and in one that turns its
clocks back at midnight, and compare the raw answers with hand-written SQL that
converts every row.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.engine.scorecard import Engine
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store

FIRST = dt.datetime(2024, 4, 1)
HALF_HOURS = 12 * 48
ZONES = ("Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Santiago", "Europe/Kyiv")
# America/Santiago turned its clocks back from 00:00 to 23:00 on 7 April 2024 (03:00 UTC).
RANGES = [(dt.date(2024, 4, 6), dt.date(2024, 4, 6)), (dt.date(2024, 4, 3), dt.date(2024, 4, 9)),
          (dt.date(2024, 4, 2), dt.date(2024, 4, 3)), (dt.date(2024, 4, 7), dt.date(2024, 4, 30)),
          (dt.date(2024, 3, 1), dt.date(2024, 4, 7))]


def _company(root: Path) -> Path:
    data = root / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name,team\nr1,One,A\nr2,Two,B\n", encoding="utf-8")
    leads, calls = ["id,created_at,rep_id,source"], ["id,type,rep_id,occurred_at,lead_id,direction"]
    for i in range(HALF_HOURS):
        created = FIRST + dt.timedelta(minutes=30 * i)
        leads.append(f"L{i},{created.isoformat()}Z,r{1 + i % 2},web")
        if i % 4:  # every fourth lead is never contacted
            called = created + dt.timedelta(minutes=7 * (i % 11))
            calls.append(f"A{i},call,r{1 + i % 2},{called.isoformat()}Z,L{i},out")
    (data / "leads.csv").write_text("\n".join(leads) + "\n", encoding="utf-8")
    (data / "activities.csv").write_text("\n".join(calls) + "\n", encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _company(tmp_path_factory.mktemp("edges"))


def _expected(con: object, zone: str, start: dt.date, end: dt.date) -> tuple[int, float | None]:
    """Hand-written: every lead's local day, then the range; the median of the responses."""
    found = con.execute(  # type: ignore[attr-defined]
        """SELECT count(*), median(epoch(f.first_contact_at) - epoch(l.created_at))
           FROM leads l LEFT JOIN lead_first_contacts f
               ON f.lead_id = l.id AND f.datasource = l.datasource
           WHERE CAST(timezone(?, CAST(l.created_at AS TIMESTAMPTZ)) AS DATE) BETWEEN ? AND ?""",
        [zone, start, end]).fetchone()
    return int(found[0]), None if found[1] is None else float(found[1])


@pytest.mark.parametrize("zone", ZONES)
def test_a_range_counts_the_leads_of_its_local_days(tmp_path: Path, data: Path,
                                                    zone: str) -> None:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=zone, currency="USD")
    service = SalesKpiService(Settings(workspace=workspace))
    report = service.import_path(data, mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    settings = service.settings
    with open_store(settings, read_only=True) as store:
        engine = Engine(store, service.catalog, timezone=zone, currency="USD",
                        use_rollups=False)  # the raw path is what is tested
        for start, end in RANGES:
            card = engine.scorecard(KpiQuery(("leads", "lead_response_time"), (), "all",
                                             start, end, ()))
            count, median = _expected(store.con, zone, start, end)
            values = card.rows[0].values
            assert values["leads"].value == count, (zone, start, end)
            got = values["lead_response_time"].value
            if median is None:
                assert got is None, (zone, start, end)
            else:  # the KPI is in minutes
                assert got is not None and math.isclose(got * 60, median), (zone, start, end)
        # Some range caught leads on both sides of an edge: the test is not empty.
        assert _expected(store.con, zone, *RANGES[1])[0] > 0
