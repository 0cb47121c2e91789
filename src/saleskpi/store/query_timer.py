"""Stopping a connection's queries from another thread: a question's time limit, and
background work that gives way to a writer.

DuckDB (``interrupt``) and PostgreSQL (``cancel_safe``) stop a running query when
asked from another thread; ClickHouse takes a per-query setting instead. A timer
thread interrupts the running query once the time is up and keeps interrupting every
later one until the block ends, so a computation made of many queries stops too.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from saleskpi.domain.errors import QueryTimeout

# After a question's time is up, its connection is interrupted this often until the
# computation gives up (a query started between two interrupts is stopped too).
INTERRUPT_EVERY_SECONDS = 0.05


@contextlib.contextmanager
def interrupted_after(seconds: float, interrupt: Callable[[], object], *,
                      driver_error: type[Exception],
                      interrupted: type[Exception]) -> Iterator[None]:
    """Run the block, calling ``interrupt`` once ``seconds`` have passed (0: never) and
    every INTERRUPT_EVERY_SECONDS after; ``QueryTimeout`` if the time ran out.

    ``driver_error``: the driver's errors, each taken for the interrupt's once the time
    is up; ``interrupted``: the one an interrupted query raises.
    """
    if seconds <= 0:
        yield
        return
    done = threading.Event()
    fired = threading.Event()

    def watch() -> None:
        if done.wait(seconds):
            return
        fired.set()
        interrupt()
        while not done.wait(INTERRUPT_EVERY_SECONDS):
            interrupt()

    watcher = threading.Thread(target=watch, name="saleskpi-query-timeout", daemon=True)
    watcher.start()
    try:
        yield
        if fired.is_set():
            # Every query began after an interrupt landed (between two of them): the
            # question still took longer than allowed, and is stopped all the same
            # rather than answered late.
            raise QueryTimeout.after(seconds)
    except driver_error as exc:
        if fired.is_set() or isinstance(exc, interrupted):
            raise QueryTimeout.after(seconds) from exc
        raise
    finally:
        done.set()
        watcher.join()


# How often background work asks whether a writer waits for it.
WATCH_EVERY_SECONDS = 0.1


@dataclass
class GaveWay:
    """Whether a block run ``interrupted_when`` was stopped (and ended early)."""

    stopped: bool = False


@contextlib.contextmanager
def interrupted_when(should_stop: Callable[[], bool], interrupt: Callable[[], object], *,
                     interrupted: type[Exception],
                     every: float = WATCH_EVERY_SECONDS) -> Iterator[GaveWay]:
    """Run the block, asking ``should_stop`` every ``every`` seconds; once it says yes,
    call ``interrupt`` then and at every later tick, and end the block quietly when the
    query it stopped raises ``interrupted`` (``stopped`` tells the caller so)."""
    done = threading.Event()
    result = GaveWay()

    def watch() -> None:
        while not done.wait(every):
            if result.stopped or should_stop():
                result.stopped = True
                interrupt()

    watcher = threading.Thread(target=watch, name="saleskpi-give-way", daemon=True)
    watcher.start()
    try:
        yield result
    except interrupted:
        if not result.stopped:
            raise  # another's interrupt (the question's time limit): theirs to handle
    finally:
        done.set()
        watcher.join()
