"""One page's reads of a DuckDB file share its open database: a keep-alive connection.

In the server every question of a page opens the store read-only on its own and closes
it after (``SalesKpiService.sharing_reads`` says why none holds a connection for the
whole page). Opening a DuckDB file costs 16-25 ms at a million deals (its header and
catalogue read, the blocks it had read dropped on close), and a rep's page asks ten
questions: a quarter of a second a page. DuckDB keeps one database per file and
process while any connection to it is open, and a new connection to an open database
costs a tenth of a millisecond. So inside ``warm_reads`` a thread's first read-only
open also opens a keep-alive connection (``Anchor``), used for no query, that keeps
the database open between the page's questions, and closes it when the page is done.

A keep-alive must never keep a writer out, nor be waited for: any writer of this
process, and any reader that finds a writer of another process waiting, closes every
keep-alive of the file at once (``let_writers_in``). The page's later questions then
open the file as they did before. A keep-alive is only ever closed, never used, by
another thread, under one lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb

from saleskpi.store.writer_gate import written_elsewhere

_lock = threading.Lock()
_local = threading.local()
# The open keep-alives, by resolved file path.
_anchors: dict[str, set[Anchor]] = {}


class Anchor:
    """A thread's keep-alive of one file, opened by its first read-only open."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.con: duckdb.DuckDBPyConnection | None = None
        self.opened = False  # once closed for a writer, not opened again in this block

    def close(self) -> None:
        """Close the keep-alive (the caller holds ``_lock``)."""
        if self.con is not None:
            con, self.con = self.con, None
            with contextlib.suppress(duckdb.Error):
                con.close()
        kept = _anchors.get(self.key)
        if kept is not None:
            kept.discard(self)
            if not kept:
                del _anchors[self.key]


def _key(path: Path) -> str:
    return str(path.resolve())


@contextlib.contextmanager
def warm_reads(path: Path) -> Iterator[None]:
    """This thread's read-only opens of ``path`` in the block keep its database open
    between them (nested blocks: the outer one's keep-alive)."""
    if getattr(_local, "anchor", None) is not None:
        yield
        return
    anchor = _local.anchor = Anchor(_key(path))
    try:
        yield
    finally:
        _local.anchor = None
        with _lock:
            anchor.close()


def opened_read_only(path: Path, writer_here: bool) -> None:
    """After a read-only connection to ``path`` opened: inside ``warm_reads``, open the
    thread's keep-alive, unless a writer of this process has or awaits the file
    (``writer_here``: it would have to wait for the keep-alive)."""
    anchor: Anchor | None = getattr(_local, "anchor", None)
    if anchor is None or anchor.opened or writer_here or anchor.key != _key(path):
        return
    with _lock:
        anchor.opened = True
        # The database is open (the caller's connection): this connection only joins it.
        anchor.con = duckdb.connect(str(path), read_only=True)
        _anchors.setdefault(anchor.key, set()).add(anchor)


def open_ahead(path: Path) -> Callable[[], None]:
    """Open ``path``'s database read-only on a thread of its own while the command is
    still starting; returns what closes it, for when the command is done.

    A command that reads opens the file after importing its modules. DuckDB opens a
    file (16-50 ms at a million deals) without holding Python's lock, so opened on a
    thread meanwhile it costs no time, and the command's own open then joins the open
    database in a tenth of a millisecond: a tenth of a ``saleskpi kpi`` (issue 12).

    A keep-alive as a page's: any writer of this process closes it at once
    (``let_writers_in``). Nothing is opened for a missing file or while a writer of
    another process holds or awaits it (readers queue behind it, ``analytics._connect``);
    an open that fails is left for the command's own open to report.
    """
    anchor = Anchor(_key(path))

    def open_it() -> None:
        if not path.exists() or written_elsewhere(path):
            return
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            return
        with contextlib.suppress(duckdb.Error):
            # The database's first query reads its catalogue (4 ms at a million deals):
            # done here, it is one the command's open does not wait for.
            con.execute("SELECT count(*) FROM duckdb_tables() "
                        "UNION ALL SELECT count(*) FROM duckdb_views()").fetchall()
        with _lock:
            if anchor.opened:  # the command is done already
                con.close()
                return
            anchor.opened, anchor.con = True, con
            _anchors.setdefault(anchor.key, set()).add(anchor)

    opening = threading.Thread(target=open_it, name="saleskpi-open-ahead", daemon=True)
    opening.start()

    def close() -> None:
        with _lock:
            anchor.opened = True  # an open still under way closes its connection
            anchor.close()
        # Not left running into the interpreter's exit, which a thread inside DuckDB
        # may not survive.
        opening.join()

    return close


def let_writers_in(path: Path) -> None:
    """Close every keep-alive of ``path``, of every thread: a writer wants the file."""
    with _lock:
        for anchor in list(_anchors.get(_key(path), ())):
            anchor.close()
