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
