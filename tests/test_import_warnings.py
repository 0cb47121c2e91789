"""What an import warns of and still stores: quirks of real exports, hand-counted."""

from __future__ import annotations

from pathlib import Path

from saleskpi.sources.ingest.run import import_path
from tests.test_import_adopt import DEALS, REPS, folder, workspace


def test_deals_closed_before_they_were_created_are_kept_and_named(tmp_path: Path) -> None:
    """A date typed the wrong way round: stored as given, named in a warning."""
    deals = DEALS + ("d3,r3,won,2025-01-31 10:00:00,2025-01-03 10:00:00,70,USD\n"
                     "d4,r3,lost,2025-02-10 10:00:00,2025-02-01 10:00:00,0,USD\n")
    report = import_path(workspace(tmp_path / "ws"), folder(tmp_path / "in", {
        "reps.csv": REPS, "deals.csv": deals}), source="crm")
    assert report.ok, report.errors
    found = [w for w in report.warnings if w.code == "deal_closed_before_created"]
    assert [(w.count, w.examples, w.column) for w in found] == [(2, ["d3", "d4"], "closed_at")]
    assert "d3, d4" in found[0].message
    assert report.entities["deals"].inserted == 4


def test_amounts_without_a_rate_are_named_at_import_until_rates_come(tmp_path: Path) -> None:
    """A company keeping its deals in UAH, reporting in USD (the default it never set):
    told at import, not at its first money KPI (which refuses to answer)."""
    settings = workspace(tmp_path / "ws")  # reporting currency USD
    uah = DEALS.replace("USD", "UAH")  # d1 (closed 2025-01-20) and d2 (open, 2025-01-03)
    report = import_path(settings, folder(tmp_path / "in", {"reps.csv": REPS,
                                                            "deals.csv": uah}), source="crm")
    assert report.ok, report.errors
    found = [w for w in report.warnings if w.code == "currency_without_rates"]
    assert [(w.count, w.examples) for w in found] == [(2, ["UAH"])]
    assert "UAH (2 records from 2025-01-03)" in found[0].message
    assert "--currency UAH" in found[0].message
    # A rate from before both deals' days: nothing left to warn of.
    rates = "date,currency,rate\n2025-01-01,UAH,0.024\n"
    again = import_path(settings, folder(tmp_path / "rates", {"fx_rates.csv": rates}),
                        source="crm")
    assert again.ok, again.errors
    assert [w for w in again.warnings if w.code == "currency_without_rates"] == []
