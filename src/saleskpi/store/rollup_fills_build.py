"""Writes ``rollup_fills.json``: the built-in catalogue's rollup fills compiled with Ibis,
the zone and currency left as marks, and for UTC the currency only (``rollup_fills.py``
reads them)::

    python -m saleskpi.store.rollup_fills_build
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from saleskpi.engine.rollups import RollupSpec
from saleskpi.store.rollup_fills import (
    CURRENCY_MARK,
    DIALECTS,
    SHIPPED,
    UTC,
    ZONE_MARK,
    fill_digest,
)


def compile_fills(specs: list[RollupSpec], dialect: str) -> dict[str, str]:
    """Each spec's fills (every day and dirty days only) compiled with Ibis, by digest,
    over the tables of a new, empty store."""
    from saleskpi.engine.context import ViewContext
    from saleskpi.engine.rollup_build import fill_sql
    from saleskpi.store.analytics import AnalyticsStore
    from saleskpi.store.rollups import DIRTY_DDL

    fills: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = AnalyticsStore(Path(folder) / "analytics.duckdb")
        try:
            store.con.execute(DIRTY_DDL)
            for spec in specs:
                ctx = ViewContext(tables=store.ibis.table, currency=spec.currency,
                                  zone=spec.zone)
                for dirty_only in (False, True):
                    fills[fill_digest(spec, dialect, dirty_only)] = fill_sql(
                        ctx, spec, dialect, dirty_only=dirty_only)
        finally:
            store.close()
    return fills


def builtin_templates() -> dict[str, Any]:
    """The file's content: the built-in catalogue's fills with the marks, and the code
    version that compiled them."""
    from saleskpi.catalog.load import load_catalog
    from saleskpi.engine.compile import code_fingerprint
    from saleskpi.engine.rollups import wanted_specs

    catalog = load_catalog()
    specs = [*wanted_specs(catalog, ZONE_MARK, CURRENCY_MARK),
             *wanted_specs(catalog, UTC, CURRENCY_MARK)]
    fills: dict[str, str] = {}
    for dialect in DIALECTS:
        fills.update(compile_fills(specs, dialect))
    return {"fingerprint": code_fingerprint(), "libraries": library_versions(),
            "fills": dict(sorted(fills.items()))}


def library_versions() -> dict[str, str]:
    """The versions of the libraries that compiled the fills: where others are installed,
    the fingerprint differs and the fills are compiled with Ibis instead."""
    from importlib.metadata import version

    from saleskpi.engine.compile import LIBRARIES

    return {library: version(library) for library in LIBRARIES}


def write_shipped() -> None:
    SHIPPED.write_text(json.dumps(builtin_templates(), indent=1, ensure_ascii=False) + "\n",
                       encoding="utf-8")


if __name__ == "__main__":
    write_shipped()
