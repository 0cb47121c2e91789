"""What engines read about a version of the store's data, kept for the next process too.

Before its questions an engine reads a handful of small things about the store: the
reps' names, how many sources name reps, the rollups kept, tables' row counts, the
schema compiled SQL is keyed by; and the service, what its views check (when the data
runs, the currencies without a rate). Together 20-30 ms of every `saleskpi kpi` process
(the names alone ~10 ms: DuckDB plans the ``rep_people`` view afresh each time), for
answers that only change when the data does (issue 12). A server reads them once per
data version (``SalesKpiService._store_facts``); a command keeps them in the
workspace (``cache/facts``), one small JSON file per version of the data, named by a
key the caller makes of it (on DuckDB the file's and its log's modification times and
sizes) and of this code's version (``engine/compile.code_fingerprint``). Any problem
reading or writing a file only means reading the store again.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saleskpi.domain.files import keep_newest, private_dir, replace_private
from saleskpi.engine.compile import code_fingerprint
from saleskpi.engine.rollups import RollupSpec

FORMAT = 2
KEPT_FILES = 8  # the newest versions of the data; an older one is rarely read again


@dataclass
class StoreFacts:
    """What an engine reads about the store before its questions: the reps' names, how
    many sources name reps, the rollups kept, tables' row counts, the schema. Read once
    per engine, or, passed in by the caller, once per version of the data: a page asks
    ten questions, each on an engine of its own, and these reads cost it ~0.1 s (issue
    12). Only for engines that read: a write changes them."""

    names: dict[str, str] | None = None
    sources: int | None = None
    # The rollups' rows of meta as read (``engine/rollups.META_SELECT``), and parsed.
    rollup_meta: list[list[Any]] | None = None
    rollups: dict[tuple[str, str], RollupSpec] | None = field(default=None, compare=False)
    row_counts: dict[str, int] = field(default_factory=dict)
    schema: str | None = None  # the tables and columns, as ``Engine._schema`` reads them
    # The first and last moment (UTC, ISO) of any lead, deal or activity; [] for none.
    data_span: list[str] | None = None
    # Reporting currency -> currency -> [records, first day] with no rate to it.
    missing_rates: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def as_text(self) -> str:
        """The facts read so far as JSON (``rollups`` is made again from its rows).

        Copies first: the server's engines add to the same facts from other threads.
        """
        names = None if self.names is None else dict(self.names)
        meta = None if self.rollup_meta is None else list(self.rollup_meta)
        return json.dumps({"format": FORMAT, "names": names, "sources": self.sources,
                           "rollup_meta": meta, "row_counts": dict(self.row_counts),
                           "schema": self.schema, "data_span": self.data_span,
                           "missing_rates": dict(self.missing_rates)},
                          ensure_ascii=False, sort_keys=True)


def facts_from_text(text: str) -> StoreFacts | None:
    """``StoreFacts.as_text`` read back; None for anything else."""
    try:
        kept = json.loads(text)
        if kept.get("format") != FORMAT:
            return None
        names, meta, counts = kept["names"], kept["rollup_meta"], kept["row_counts"]
        span, rates = kept["data_span"], kept["missing_rates"]
        return StoreFacts(
            names=None if names is None else {str(k): str(v) for k, v in names.items()},
            sources=None if kept["sources"] is None else int(kept["sources"]),
            rollup_meta=None if meta is None else [list(row) for row in meta],
            row_counts={str(k): int(v) for k, v in counts.items()},
            schema=None if kept["schema"] is None else str(kept["schema"]),
            data_span=None if span is None else [str(moment) for moment in span],
            missing_rates={str(reporting): {str(c): [int(n), str(day)]
                                            for c, (n, day) in found.items()}
                           for reporting, found in rates.items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class StoreFactsFiles:
    """The workspace's kept facts: ``folder``/<key>.json, for this code's version."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, data_key: str) -> Path:
        return self.folder / f"{code_fingerprint()[:16]}-{data_key}.json"

    def read(self, data_key: str) -> tuple[StoreFacts, str] | None:
        """The facts kept for ``data_key`` and their text, if a process kept them."""
        try:
            text = self._path(data_key).read_text(encoding="utf-8")
        except OSError:
            return None
        found = facts_from_text(text)
        return None if found is None else (found, text)

    def write(self, data_key: str, text: str) -> None:
        with contextlib.suppress(OSError):
            private_dir(self.folder)
            replace_private(self._path(data_key), text)
            keep_newest(self.folder, "*.json", KEPT_FILES)
