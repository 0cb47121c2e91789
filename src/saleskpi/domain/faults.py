"""Named fault points: a test can stop the process dead at one step of a write.

``SALESKPI_FAULT=after_duckdb_commit`` kills the process (SIGKILL, as ``kill -9``:
no cleanup, no flush, no ``finally``) the first time it reaches that point;
``SALESKPI_FAULT=after_duckdb_commit@3`` the third time (the third batch of a
sync). Without the variable a fault point costs one dictionary lookup.

The points, in the order one journaled write reaches them (``store/journal.py``):

* ``journal_begun``: the pending journal entry is committed in SQLite, DuckDB untouched;
* ``facts_written``: DuckDB's rows and commit marker written, not committed;
* ``state_written``: SQLite's side (targets, import log, cursor...) flushed, neither
  store committed;
* ``after_duckdb_commit``: DuckDB committed, SQLite not;
* ``after_state_commit``: both committed, DuckDB's commit marker not yet cleared;
* ``after_marker_cleared``: the write is complete.

A sync also has ``sync_started`` (its start is recorded in SQLite) and
``hints_deleted`` (the ids a webhook said were deleted are gone from DuckDB).
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "SALESKPI_FAULT"
FAULT_POINTS = ("journal_begun", "facts_written", "state_written", "after_duckdb_commit",
                "after_state_commit", "after_marker_cleared", "sync_started",
                "hints_deleted")
_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Kill this process here if ``SALESKPI_FAULT`` names this point (and this hit)."""
    wanted = os.environ.get(FAULT_VARIABLE)
    if not wanted:
        return
    point, _sep, nth = wanted.partition("@")
    if point != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)
