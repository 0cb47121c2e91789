"""What engines read about the store (names, sources, rollups, row counts, schema) is
kept in the workspace per version of the data, for the next process.

``engine/store_facts.py``: a new process reads the kept file instead of asking the
store; after any write the data's version, and so the file, is another; a damaged
file is read from the store again and replaced.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings
from saleskpi.service.core import SalesKpiService

REPS = "id,name,team\nr1,Ann,North\nr2,Bob,South\n"
LEADS = """id,created_at,rep_id,source
L1,2024-01-10 10:00:00,r1,web
L2,2024-01-11 10:00:00,r1,ads
L3,2024-01-15 10:00:00,r2,web
"""


def _import(settings: Settings, folder: Path, **files: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    report = SalesKpiService(settings).import_path(folder, mapping=None, source="crm",
                                                   dry_run=False)
    assert report.ok, report.errors


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    made = Settings(workspace=tmp_path / "ws")
    _import(made, tmp_path / "crm", reps=REPS, leads=LEADS)
    return made


def _leads_by_rep(settings: Settings) -> dict[str, tuple[str, float | None]]:
    """A new process's answer, as a new service is: rep -> (name, leads)."""
    card = SalesKpiService(settings).scorecard(KpiQuery(("leads",), by=("rep",)))
    return {str(r.keys["rep"]): (r.labels["rep_name"], r.values["leads"].value)
            for r in card.rows}


def _kept(settings: Settings) -> list[Path]:
    return sorted(settings.store_facts_dir.glob("*.json"))


def test_a_new_process_reads_the_kept_facts_of_this_version_of_the_data(
        settings: Settings) -> None:
    assert _leads_by_rep(settings) == {"r1": ("Ann", 2), "r2": ("Bob", 1)}
    (kept,) = _kept(settings)
    facts = json.loads(kept.read_text(encoding="utf-8"))
    assert facts["names"] == {"r1": "Ann", "r2": "Bob"} and facts["sources"] == 1
    assert facts["row_counts"]["leads"] == 3 and "leads" in facts["schema"]
    # What is kept is what the next process uses (changed here by hand to tell).
    facts["names"]["r1"] = "Kept Ann"
    kept.write_text(json.dumps(facts), encoding="utf-8")
    assert _leads_by_rep(settings)["r1"] == ("Kept Ann", 2)


def test_after_a_write_the_store_is_read_again(settings: Settings, tmp_path: Path) -> None:
    assert _leads_by_rep(settings)["r1"] == ("Ann", 2)
    _import(settings, tmp_path / "renamed", reps="id,name,team\nr1,Anna,North\n")
    assert _leads_by_rep(settings) == {"r1": ("Anna", 2), "r2": ("Bob", 1)}
    # Linking two reps (a write that adds no rows) is another version too.
    SalesKpiService(settings).link_reps(["crm:r1", "crm:r2"])
    assert _leads_by_rep(settings) == {"r1": ("Anna", 3)}
    assert len(_kept(settings)) == 3  # one file per version read


def test_a_damaged_file_is_read_from_the_store_again_and_replaced(settings: Settings) -> None:
    _leads_by_rep(settings)
    (kept,) = _kept(settings)
    for damage in ("{", '{"format": 1}', "[]", '{"format": 99}'):
        kept.write_text(damage, encoding="utf-8")
        assert _leads_by_rep(settings) == {"r1": ("Ann", 2), "r2": ("Bob", 1)}
        assert json.loads(kept.read_text(encoding="utf-8"))["names"] == {
            "r1": "Ann", "r2": "Bob"}


def test_a_workspace_it_cannot_write_still_answers(settings: Settings) -> None:
    settings.store_facts_dir.parent.mkdir(parents=True, exist_ok=True)
    settings.store_facts_dir.write_text("not a folder", encoding="utf-8")
    assert _leads_by_rep(settings) == {"r1": ("Ann", 2), "r2": ("Bob", 1)}


def test_when_the_data_runs_and_the_missing_rates_are_kept_too(
        settings: Settings, tmp_path: Path) -> None:
    """Every view stating a range asks when the data runs, every money question which
    currencies have no rate: a fresh process reads both from the kept file."""
    service = SalesKpiService(settings)
    assert service.data_span() == (dt.date(2024, 1, 10), dt.date(2024, 1, 15))
    assert service.currencies_without_rates() == {}
    (kept,) = _kept(settings)
    facts = json.loads(kept.read_text(encoding="utf-8"))
    assert facts["data_span"] == ["2024-01-10T10:00:00", "2024-01-15T10:00:00"]
    assert facts["missing_rates"] == {settings.currency: {}}
    facts["data_span"] = ["2023-05-01T10:00:00", "2024-01-15T10:00:00"]
    facts["missing_rates"] = {settings.currency: {"EUR": [4, "2024-01-02"]}}
    kept.write_text(json.dumps(facts), encoding="utf-8")
    fresh = SalesKpiService(settings)
    assert fresh.data_span() == (dt.date(2023, 5, 1), dt.date(2024, 1, 15))
    assert fresh.currencies_without_rates() == {"EUR": (4, "2024-01-02")}
    # A write is another version: read from the store again.
    _import(settings, tmp_path / "more", leads="id,created_at,rep_id,source\n"
            "L9,2024-02-20 09:00:00,r2,web\n")
    after = SalesKpiService(settings)
    assert after.data_span() == (dt.date(2024, 1, 10), dt.date(2024, 2, 20))
    assert after.currencies_without_rates() == {}


def test_a_workspace_without_data_says_so_and_keeps_it(tmp_path: Path) -> None:
    empty = Settings(workspace=tmp_path / "empty")
    _import(empty, tmp_path / "reps-only", reps=REPS)
    assert SalesKpiService(empty).data_span() is None
    (kept,) = _kept(empty)
    assert json.loads(kept.read_text(encoding="utf-8"))["data_span"] == []
    assert SalesKpiService(empty).data_span() is None


# A writer of another process: takes the store's gate, adds a lead of 2024-03-05 and
# checkpoints (the file is now the new data's), then holds the gate until stdin closes.
WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    import duckdb
    from saleskpi.store.writer_gate import one_writer
    with one_writer(Path(sys.argv[1]), wait=30):
        con = duckdb.connect(sys.argv[1])
        con.execute("INSERT INTO leads (id, datasource, created_at, rep_id, source) "
                    "VALUES ('L9', 'crm', TIMESTAMP '2024-03-05 09:00:00', 'r2', 'web')")
        con.execute("CHECKPOINT")
        con.close()
        print("holding", flush=True)
        sys.stdin.read()
""")


def test_what_was_known_before_a_write_is_not_kept_as_the_new_datas(
        settings: Settings) -> None:
    """While another process writes, a server answers what it read before (the page does
    not wait); that answer must not be kept in the file named for the new data, which
    the next process would read as the new data's."""
    server = SalesKpiService(settings)
    assert server.data_span() == (dt.date(2024, 1, 10), dt.date(2024, 1, 15))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(settings.analytics_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        # Written elsewhere: what was known before, at once.
        assert server.data_span() == (dt.date(2024, 1, 10), dt.date(2024, 1, 15))
    finally:
        writer.communicate("", timeout=30)
    assert writer.returncode == 0
    assert SalesKpiService(settings).data_span() == (dt.date(2024, 1, 10),
                                                     dt.date(2024, 3, 5))
