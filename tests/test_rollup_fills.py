"""The built-in catalogue's rollup fills, shipped compiled (``store/rollup_fills.py``).

A shipped fill, given a workspace's zone and currency, must fill a rollup with exactly
the rows the fill Ibis compiles for that zone and currency gives (both run over the
same stored rows here); the shipped file must be the current code's; and a
workspace's first import then builds its rollups without importing Ibis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saleskpi.catalog.load import load_catalog
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.engine.compile import code_fingerprint
from saleskpi.engine.context import ViewContext
from saleskpi.engine.rollup_build import fill_sql
from saleskpi.engine.rollups import DIRTY_TABLE, META_TABLE, wanted_specs
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from saleskpi.store.rollup_fills import (
    CURRENCY_MARK,
    SHIPPED,
    ZONE_MARK,
    fill_digest,
    shipped_fill,
)
from saleskpi.store.rollup_fills_build import library_versions
from tests.test_rollups import write_folder

SRC = Path(__file__).resolve().parents[1] / "src"
# Accounts too (test_rollups' files have none): each rollup's days hold rows.
ACCOUNTS = """id,name,segment,sector,source,acquired_at,churned_at,rep_id
C1,Acme,b2b,retail,website,2024-01-31 23:30:00,2024-02-10 08:00:00,r1
C2,Beta,b2c,consumer,ads,2024-02-01 00:30:00,,r2
C3,Gamma,b2b,retail,website,2024-02-10 12:00:00,2024-02-01 01:00:00,r1
"""


def _files(folder: Path) -> Path:
    write_folder(folder)
    (folder / "accounts.csv").write_text(ACCOUNTS, encoding="utf-8")
    return folder


def test_the_shipped_fills_are_the_current_codes() -> None:
    """Stale, they are never used (every fill is compiled with Ibis): write them again
    with ``python -m saleskpi.store.rollup_fills_build``."""
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    if data["libraries"] != library_versions():
        # Other versions of Ibis, sqlglot or DuckDB compile other text: the fills are
        # then not used (the fingerprint differs), which the tests below cover.
        pytest.skip(f"compiled with {data['libraries']}, installed {library_versions()}")
    assert data["fingerprint"] == code_fingerprint()
    specs = [*wanted_specs(load_catalog(), ZONE_MARK, CURRENCY_MARK),
             *wanted_specs(load_catalog(), "UTC", CURRENCY_MARK)]
    assert set(data["fills"]) == {fill_digest(s, "duckdb", d)
                                  for s in specs for d in (False, True)}


@pytest.mark.parametrize(("zone", "currency"), [("Europe/Kyiv", "UAH"),
                                                ("America/New_York", "USD"),
                                                ("Asia/Kathmandu", "EUR"),
                                                ("UTC", "USD")])
def test_a_shipped_fill_gives_the_rows_of_the_compiled_one(
        tmp_path: Path, zone: str, currency: str) -> None:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=zone, currency=currency)
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(_files(tmp_path / "files"),
                                                   mapping=None, source=None, dry_run=False)
    assert report.ok, report.errors
    specs = wanted_specs(load_catalog(), zone, currency)
    assert len(specs) >= 4
    with open_store(settings) as store:
        ctx = ViewContext(tables=store.ibis.table, currency=currency, zone=zone)
        for spec in specs:
            # Dirty days on both sides of the data's month boundary, and one without rows.
            store.con.execute(f"DELETE FROM {DIRTY_TABLE}")
            store.con.execute(
                f"INSERT INTO {DIRTY_TABLE} VALUES (?, DATE '2024-01-31'), "
                f"(?, DATE '2024-02-01'), (?, DATE '2024-02-10'), (?, DATE '2030-01-01')",
                [spec.name] * 4)
            for dirty_only in (False, True):
                shipped = shipped_fill(spec, "duckdb", dirty_only=dirty_only)
                assert shipped is not None, (spec.view, spec.time)
                assert ZONE_MARK not in shipped and CURRENCY_MARK not in shipped
                compiled = fill_sql(ctx, spec, "duckdb", dirty_only=dirty_only)
                expected = sorted(store.con.execute(compiled).fetchall(), key=repr)
                assert expected, (spec.view, spec.time, dirty_only)  # the data reaches it
                assert sorted(store.con.execute(shipped).fetchall(), key=repr) == expected


def test_no_fill_is_shipped_for_a_workspaces_own_kpis_or_another_dialect() -> None:
    kyiv = max(wanted_specs(load_catalog(), "Europe/Kyiv", "USD"), key=lambda s: len(s.measures))
    assert len(kyiv.measures) > 1
    fewer = type(kyiv)(kyiv.view, kyiv.time, kyiv.measures[:1], kyiv.zone, kyiv.currency)
    assert shipped_fill(fewer, "duckdb", dirty_only=False) is None
    assert shipped_fill(kyiv, "postgres", dirty_only=False) is None


@pytest.mark.parametrize("zone", ["Europe/Kyiv", "UTC"])  # UTC: the default zone
def test_a_workspaces_first_import_builds_its_rollups_without_ibis(
        tmp_path: Path, zone: str) -> None:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone=zone, currency="UAH")
    folder = _files(tmp_path / "files")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from saleskpi.domain.settings import Settings\n"
        "from saleskpi.service.core import SalesKpiService\n"
        f"settings = Settings(workspace=Path({str(workspace)!r}))\n"
        f"report = SalesKpiService(settings).import_path(Path({str(folder)!r}), "
        "mapping=None, source=None, dry_run=False)\n"
        "assert report.ok, report.errors\n"
        "print('ibis' in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(SRC), os.environ.get("PYTHONPATH", "")) if p))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, check=True)
    assert done.stdout.strip() == "False", done.stderr
    with open_store(Settings(workspace=workspace), read_only=True) as store:
        built = {str(r[0]) for r in store.fetch(f"SELECT table_name FROM {META_TABLE}")}
    assert built == {s.name for s in wanted_specs(load_catalog(), zone, "UAH")}
