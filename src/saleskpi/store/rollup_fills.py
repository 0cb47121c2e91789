"""The built-in catalogue's rollup fill queries, compiled ahead and shipped.

A workspace's first import builds the rollups; their fill queries are compiled with
Ibis, and importing Ibis and compiling cost about 1 s of a new process (a tenth of an
import of 2M activities). The built-in catalogue's fills are the same for every
workspace but for the company's time zone and currency, so they ship compiled
(``rollup_fills.json``) with a mark in place of each, which a workspace's zone and
currency replace. The file names the code version it was compiled by
(``code_fingerprint``): after any change to the engine, its libraries or the
catalogue it no longer matches and the fills are compiled with Ibis as before, until
it is written again::

    python -m saleskpi.store.rollup_fills_build

(``tests/test_rollup_fills.py`` fails while the file is stale, and checks that a
shipped fill equals the one Ibis compiles for other zones and currencies.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import cache
from pathlib import Path

from saleskpi.engine.rollups import RollupSpec
from saleskpi.store.dialects import string_literal

SHIPPED = Path(__file__).with_name("rollup_fills.json")
DIALECTS = ("duckdb",)
# Marks compiled in place of the zone and the currency: names no zone or currency has.
ZONE_MARK = "Etc/Saleskpi-Zone-Mark"
CURRENCY_MARK = "QQQ-SALESKPI-MARK"
UTC = "UTC"


def fill_digest(spec: RollupSpec, dialect: str, dirty_only: bool) -> str:
    """What a fill's SQL depends on (the code version aside: see ``code_fingerprint``)."""
    text = json.dumps({"kind": "rollup_fill", "view": spec.view, "time": spec.time,
                       "zone": spec.zone, "currency": spec.currency, "format": spec.format,
                       "measures": [m.model_dump(mode="json") for m in spec.measures],
                       "dialect": dialect, "dirty_only": dirty_only}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _marked(spec: RollupSpec) -> RollupSpec:
    """The spec its shipped fill was compiled for: marks for the zone and currency; UTC
    compiles without any zone conversion (``engine.derived.local_time``), so it ships
    as a zone of its own (the default: a new workspace's first import)."""
    zone = UTC if spec.zone == UTC else ZONE_MARK
    return dataclasses.replace(spec, zone=zone, currency=CURRENCY_MARK)


@cache
def _shipped() -> dict[str, str]:
    """The shipped fills by digest, if compiled by this code version (else none)."""
    from saleskpi.engine.compile import code_fingerprint

    try:
        data = json.loads(SHIPPED.read_text(encoding="utf-8"))
        if data["fingerprint"] != code_fingerprint():
            return {}
        return {str(k): str(v) for k, v in data["fills"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def shipped_fill(spec: RollupSpec, dialect: str, *, dirty_only: bool) -> str | None:
    """The fill of ``spec`` as shipped, for its zone and currency; None: not shipped
    (what a workspace's own KPIs add, another dialect)."""
    template = _shipped().get(fill_digest(_marked(spec), dialect, dirty_only))
    if template is None:
        return None
    return (template.replace(string_literal(ZONE_MARK), string_literal(spec.zone))
            .replace(string_literal(CURRENCY_MARK), string_literal(spec.currency)))
