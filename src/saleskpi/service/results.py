"""Computed scorecards kept for reuse: one computation however many people ask.

A dashboard's pages ask the same few questions over and over, and on a large
company one question can cost seconds of DuckDB work. ``ResultCache`` keeps each
answer while the stored data is unchanged (the caller puts the data version in the
key) and for at most ``ttl`` seconds (answers such as "open pipeline now" age).
Callers who ask for an answer being computed wait for it instead of computing it
again, so twenty people opening the morning dashboard at once cost one query.

It also remembers what was asked recently (``recent``) so that the server can
compute those answers again in the background after an import or sync, or before
they expire, and the next visitor does not wait (see ``SalesKpiService.refresh``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Pending(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    error: BaseException | None = None


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    waits: int = 0  # asked while another thread computed the same answer


class ResultCache(Generic[T]):
    """A thread-safe LRU of answers with an age limit and single-flight misses."""

    def __init__(self, ttl: float, capacity: int = 2048) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self.stats = CacheStats()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._pending: dict[Hashable, _Pending[T]] = {}

    def get(self, key: Hashable, compute: Callable[[], T], *, fresh: bool = False) -> T:
        """The kept answer for ``key``, else ``compute()``'s (computed once).

        ``fresh``: compute even if an answer is kept (a background refresh).
        """
        with self._lock:
            kept = None if fresh else self._entries.get(key)
            if kept is not None and kept[0] > time.monotonic():
                self._entries.move_to_end(key)
                self.stats.hits += 1
                return kept[1]
            pending = self._pending.get(key)
            owner = pending is None
            if pending is None:
                pending = self._pending[key] = _Pending()
                self.stats.misses += 1
            else:
                self.stats.waits += 1
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            assert pending.value is not None
            return pending.value
        try:
            value = compute()
        except BaseException as exc:
            pending.error = exc
            raise
        else:
            pending.value = value
            self.put(key, value)
            return value
        finally:
            with self._lock:
                self._pending.pop(key, None)
            pending.done.set()

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def latest(self, match: Callable[[Hashable], bool]) -> T | None:
        """The most recently kept answer whose key ``match``es, expired or not.

        For when the answer cannot be computed now (another process holds the store):
        an older answer to the same question beats none.
        """
        with self._lock:
            for key in reversed(self._entries):
                if match(key):
                    return self._entries[key][1]
        return None

    def expires_in(self, key: Hashable) -> float:
        """Seconds until ``key``'s answer expires; 0 if none is kept."""
        with self._lock:
            kept = self._entries.get(key)
        return max(0.0, kept[0] - time.monotonic()) if kept else 0.0

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class RecentQuestions(Generic[T]):
    """What was asked lately, most recent first: what a background refresh recomputes."""

    def __init__(self, keep_seconds: float, limit: int = 512) -> None:
        self.keep_seconds = keep_seconds
        self.limit = limit
        self._lock = threading.Lock()
        self._asked: OrderedDict[T, float] = OrderedDict()  # question -> last asked (wall)

    def note(self, question: T, at: float | None = None) -> None:
        with self._lock:
            self._asked[question] = time.time() if at is None else at
            self._asked.move_to_end(question, last=False)
            while len(self._asked) > self.limit:
                self._asked.popitem(last=True)

    def items(self) -> list[tuple[T, float]]:
        """(question, last asked) for those asked within ``keep_seconds``, newest first."""
        horizon = time.time() - self.keep_seconds
        with self._lock:
            return [(q, at) for q, at in self._asked.items() if at >= horizon]
