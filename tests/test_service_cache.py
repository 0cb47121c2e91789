"""The service's scorecard cache: reused while the data is unchanged, dropped after a change."""

from __future__ import annotations

from pathlib import Path

from saleskpi.engine.query import KpiQuery, Scope
from saleskpi.service import SalesKpiService
from saleskpi.settings import Settings


def _write(folder: Path, deals: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "reps.csv").write_text("id,name\nr1,Ann\nr2,Bob\n", encoding="utf-8")
    (folder / "deals.csv").write_text("id,rep_id,status,amount,closed_at\n" + deals,
                                      encoding="utf-8")
    return folder


def test_cached_scorecard_is_reused_until_the_data_changes(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", cache_seconds=60)
    service = SalesKpiService(settings)
    assert service.import_path(_write(tmp_path / "a", "d1,r1,won,100,2024-01-10\n"),
                               mapping=None, source=None, dry_run=False).ok
    query = KpiQuery(("revenue",), by=("rep",))
    first = service.scorecard(query)
    again = service.scorecard(query)
    assert service.cache_hits == 1
    assert again.rows[0].values["revenue"].value == first.rows[0].values["revenue"].value == 100
    # Another scope is another entry: a rep never gets a cached answer meant for the head.
    mine = service.scorecard(query, Scope(rep_ids=frozenset({"r2"})))
    assert [r.keys["rep"] for r in mine.rows] == ["r2"]
    assert service.cache_hits == 1
    assert service.import_path(_write(tmp_path / "b", "d2,r1,won,50,2024-01-11\n"),
                               mapping=None, source=None, dry_run=False).ok
    after = service.scorecard(query)
    assert after.rows[0].values["revenue"].value == 150
