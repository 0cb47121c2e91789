"""One writer at a time per analytics store: a queue across threads and processes.

DuckDB gives a file to one read-write process and, within it, lets two writers'
transactions conflict; ClickHouse has no writer lock at all. Every writer of those
(an import, a sync batch, a link edit; from the CLI, the dashboard or the
scheduler) therefore passes this gate first (PostgreSQL queues on its own advisory
lock through ``wait_turn``, with the same messages):

- within a process, a re-entrant lock per store: the server's sync and a dashboard
  import take turns, and a writer that opens the store again inside its own write
  (same thread) goes straight through;
- across processes, an exclusive ``flock`` on ``<store>.writer`` beside the file,
  which also records who holds it (process id, since when) for the waiting message.

A writer waits in the queue up to the ``write_wait_seconds`` setting, telling the
person every few seconds who holds the store, then gives up with ``StoreBusy``. The
kernel drops a ``flock`` when its process dies, so a killed import never blocks the
queue. Readers never pass the gate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from saleskpi.domain.files import private_file
from saleskpi.domain.i18n import _
from saleskpi.domain.reports import QueueNotice
from saleskpi.store.facts import StoreBusy

# Tell the waiting person this often that they still wait, and for whom.
TELL_EVERY_SECONDS = 5.0
RETRY_SECONDS = 0.1

Waiting = Callable[[str], object]


@dataclass
class _Gate:
    lock: threading.RLock
    depth: int = 0
    fd: int | None = None


_gates: dict[str, _Gate] = {}
_gates_lock = threading.Lock()


def gate_path(store: Path) -> Path:
    return store.with_name(store.name + ".writer")


def _gate(store: Path) -> _Gate:
    key = str(store.resolve())
    with _gates_lock:
        return _gates.setdefault(key, _Gate(threading.RLock()))


def holder(store: Path) -> str:
    """Who holds (or last held) the gate, as written in the gate file."""
    try:
        return gate_path(store).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def waiting_message(who: str, waited: float) -> str:
    """What a queued writer hears: that it waits, how long so far, and for whom."""
    return _("another import is running; waiting… ({seconds} s; {holder})",
             seconds=f"{waited:.0f}", holder=who or _("another writer"))


def gave_up(place: object, who: str, waited: float) -> StoreBusy:
    """The error of a writer that queued ``write_wait_seconds`` in vain."""
    return StoreBusy(_(
        "another import is still running on {path} ({holder}) after {seconds} s of waiting; "
        "try again when it has finished, or wait longer with the write_wait_seconds "
        "setting (SALESKPI_WRITE_WAIT_SECONDS)", path=place, holder=who or _("another writer"),
        seconds=f"{waited:.0f}"))


def wait_turn(take: Callable[[], bool], *, wait: float, waiting: Waiting | None,
              who: Callable[[], str], place: object) -> None:
    """Try ``take`` until it succeeds, telling ``waiting`` every TELL_EVERY_SECONDS for
    whom (``who``) it waits; after ``wait`` seconds ``StoreBusy`` naming ``place``.

    For a lock held outside this file system (PostgreSQL's advisory lock): the gate
    below does the same with a file.
    """
    started = time.monotonic()
    told = started - TELL_EVERY_SECONDS  # tell at once when the first try fails
    pause = 0.02
    while not take():
        now = time.monotonic()
        if waiting is not None and now - told >= TELL_EVERY_SECONDS:
            told = now
            waiting(QueueNotice(waiting_message(who(), now - started)))
        if now + pause - started > wait:
            raise gave_up(place, who(), now - started)
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _try_flock(fd: int) -> bool:
    if sys.platform == "win32":  # no flock: the in-process queue and DuckDB's own lock
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unflock(fd: int) -> None:
    if sys.platform != "win32":
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def written_elsewhere(store: Path) -> bool:
    """Whether another process holds ``store``'s gate: a write is running there.

    Tried with a shared ``flock`` released at once (a writer that asks in that instant
    retries RETRY_SECONDS later). This process's own writers are not "elsewhere".
    """
    if sys.platform == "win32" or _gate(store).fd is not None:
        return False
    import fcntl

    try:
        fd = os.open(gate_path(store), os.O_RDONLY)
    except OSError:
        return False  # no gate file: nobody has written through the gate yet
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock if it was taken
    return False


@contextlib.contextmanager
def one_writer(store: Path, *, wait: float, waiting: Waiting | None = None,
               what: str = "saleskpi") -> Iterator[None]:
    """Hold ``store``'s writer gate for the block, queueing up to ``wait`` seconds.

    ``waiting`` hears, every TELL_EVERY_SECONDS while the writer waits, who holds
    the store; ``what`` names this writer for those who wait behind it.
    """
    gate = _gate(store)
    started = time.monotonic()
    told = started - TELL_EVERY_SECONDS  # tell at once when the first try fails

    def tell() -> None:
        nonlocal told
        now = time.monotonic()
        if waiting is not None and now - told >= TELL_EVERY_SECONDS:
            told = now
            waiting(QueueNotice(waiting_message(holder(store), now - started)))

    # Threads of this process queue on the lock (re-entrant: a write may open the
    # store again inside itself).
    while not gate.lock.acquire(timeout=RETRY_SECONDS * 10):
        tell()
        if time.monotonic() - started > wait:
            raise gave_up(store, holder(store), time.monotonic() - started)
    try:
        if gate.depth == 0:
            _take_file(store, gate, started, wait, tell, what)
        gate.depth += 1
    except BaseException:
        gate.lock.release()
        raise
    try:
        yield
    finally:
        gate.depth -= 1
        if gate.depth == 0 and gate.fd is not None:
            fd, gate.fd = gate.fd, None
            try:
                _unflock(fd)
            finally:
                os.close(fd)
        gate.lock.release()


def _take_file(store: Path, gate: _Gate, started: float, wait: float,
               tell: Callable[[], None], what: str) -> None:
    """Other processes queue on the gate file's ``flock``."""
    path = gate_path(store)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while not _try_flock(fd):
            tell()
            if time.monotonic() - started > wait:
                raise gave_up(store, holder(store), time.monotonic() - started)
            time.sleep(RETRY_SECONDS)
        since = dt.datetime.now().astimezone().strftime("%H:%M:%S")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, process {os.getpid()}, since {since}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    private_file(path)
    gate.fd = fd
