"""A page's questions share one read connection (``SalesKpiService.sharing_reads``)."""

from __future__ import annotations

from pathlib import Path

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService


def _service(tmp_path: Path) -> SalesKpiService:
    data = tmp_path / "data"
    data.mkdir()
    (data / "reps.csv").write_text("id,name\nr1,Ann\nr2,Bob\n", encoding="utf-8")
    (data / "deals.csv").write_text(
        "id,rep_id,status,amount,closed_at\nd1,r1,won,100,2024-01-10\n"
        "d2,r2,won,30,2024-02-10\nd3,r2,lost,5,2024-02-11\n", encoding="utf-8")
    # No answer cache: every question below reaches the store.
    service = SalesKpiService(Settings(workspace=tmp_path / "ws", cache_seconds=0))
    assert service.import_path(data, mapping=None, source=None, dry_run=False).ok
    return service


def test_questions_in_the_block_read_through_one_store_then_it_is_closed(
        tmp_path: Path) -> None:
    service = _service(tmp_path)
    stores = []
    with service.sharing_reads():
        for _ in range(3):
            with service.engine() as engine:
                stores.append(engine.store)
        with service.reading() as store:
            stores.append(store)
        # Nested blocks (a page calling a helper that holds too) keep the same one.
        with service.sharing_reads(), service.engine() as engine:
            stores.append(engine.store)
    assert all(s is stores[0] for s in stores)
    # Closed at the end of the block: a writer of this process can open the file
    # (DuckDB refuses read-write beside a read-only connection of the same process).
    with service.engine(read_only=False) as writer:
        assert writer.store.count("deals") == 3
    # Outside a block each question opens its own.
    with service.engine() as one, service.engine() as two:
        assert one.store is not two.store


def test_answers_in_the_block_equal_those_outside(tmp_path: Path) -> None:
    service = _service(tmp_path)
    query = KpiQuery(("revenue", "deals_won", "win_rate"), by=("rep",))

    def values() -> dict[str | None, dict[str, float | None]]:
        card = service.scorecard(query)
        return {r.keys["rep"]: {k: v.value for k, v in r.values.items()} for r in card.rows}

    outside = values()
    with service.sharing_reads():
        inside, again = values(), values()
    # Hand-counted: r1 won 100 of 1 closed; r2 won 30 of 2 closed.
    assert outside == inside == again == {
        "r1": {"revenue": 100.0, "deals_won": 1.0, "win_rate": 1.0},
        "r2": {"revenue": 30.0, "deals_won": 1.0, "win_rate": 0.5},
    }
