"""DuckDB's half of the write journal: one row per committed write not yet settled.

A journaled write (``store/journal.py``) inserts its journal entry's id here in
the same DuckDB transaction as its facts, and deletes it once SQLite has its side
too. So a row here means "these facts are committed; SQLite may still lack its
part", which is all a reader needs to know to decide whether to look at the
journal. Kept apart from the journal so that a read-only open can check it
without importing SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

MARKER_TABLE = "saleskpi_writes"
MARKER_DDL = (f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} "
              "(id VARCHAR PRIMARY KEY, committed_at TIMESTAMP NOT NULL)")


def markers_exist(con: Any) -> bool:
    """Whether the marker table exists (it is made by the first journaled write)."""
    return bool(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                            "AND table_schema = current_schema() "
                            "AND table_catalog = current_database()",
                            [MARKER_TABLE]).fetchall())


def ensure_markers(con: Any) -> None:
    # Looked up first: even a no-op CREATE rewrites the file.
    if not markers_exist(con):
        con.execute(MARKER_DDL)


def has_markers(con: Any) -> bool:
    """Whether a write committed in DuckDB may not be settled in SQLite yet."""
    return bool(con.execute(f"SELECT 1 FROM {MARKER_TABLE} LIMIT 1").fetchall())


def marker_ids(con: Any) -> set[str]:
    if not markers_exist(con):
        return set()
    return {str(i) for (i,) in con.execute(f"SELECT id FROM {MARKER_TABLE}").fetchall()}
