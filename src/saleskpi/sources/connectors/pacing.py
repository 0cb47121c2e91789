"""How fast every connector calls its CRM, and how it tries again: one layer for all four.

- **Rate limits** are leaky buckets (pyrate-limiter's GCRA): up to ``capacity``
  requests at once, then ``per_second``. Bitrix24 counts exactly this way (a
  bucket of 50 draining 2 a second); a CRM that counts per second gets a bucket
  of one, which spaces requests evenly.
- **Retries** (tenacity): 429, 5xx, a dropped connection and a CRM's own "too
  fast" answer are tried again with exponential backoff and jitter, never
  sooner than the CRM's ``Retry-After``.

Both take the clock and the sleep as arguments, so tests run thousands of
requests on a fake clock.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from pyrate_limiter import GCRA, AbstractClock, Rate, RateItem, StateBucket
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

MAX_PAUSE_S = 60.0  # no single retry waits longer than a minute


class _Clock(AbstractClock):
    """Milliseconds of ``clock``, never earlier than the end of the last pause we took.

    A ``sleep`` that returns early (or a test's sleep that does not sleep) still
    counts as the whole pause: otherwise a pause would be asked for again.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.floor = 0

    def now(self) -> int:
        # Rounded, not truncated: a float clock's 0.049999... is the 50 ms it means.
        return max(round(self.clock() * 1000), self.floor)


class LeakyBucket:
    """At most ``capacity`` requests at once, then ``per_second`` (one every 1/per_second s).

    Each request adds 1 to a level that drains ``per_second`` a second; a request
    that would take the level over ``capacity`` waits until it would not.
    """

    def __init__(self, per_second: float, capacity: float = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self.capacity = capacity
        self._clock = _Clock(clock)
        # One unit per emission interval (whole ms: the library's resolution).
        interval_ms = max(1, round(1000 / per_second))
        self._bucket = StateBucket([Rate(1, interval_ms, burst=max(1, int(capacity)))],
                                   algorithm=GCRA(), clock=self._clock)

    @property
    def level(self) -> float:
        """How many requests are in the bucket now, by our count."""
        count = self._bucket.count()
        assert isinstance(count, int)  # an in-memory bucket answers at once
        return float(count)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Return once one more request fits; the request is counted."""
        while True:
            now = self._clock.now()
            item = RateItem("request", now)
            if self._bucket.put(item):
                return
            pause_ms = self._bucket.waiting(item)
            assert isinstance(pause_ms, int) and pause_ms >= 0  # weight 1 always fits
            pause_ms = max(1, pause_ms)
            sleep(pause_ms / 1000)
            self._clock.floor = max(self._clock.floor, now + pause_ms)


class TryAgain(Exception):
    """A transient refusal: the CRM asks us to come back (``retry_after`` s, if it says)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` in seconds; an HTTP date or nonsense gives None (our own delay then)."""
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def backoff_wait(backoff: float) -> Callable[[RetryCallState], float]:
    """``backoff`` · 2^n plus up to a quarter of jitter, at least the CRM's ``Retry-After``."""

    def wait(state: RetryCallState) -> float:
        delay = backoff * float(2 ** (state.attempt_number - 1)) * (1 + random.random() / 4)
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, TryAgain) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return min(delay, MAX_PAUSE_S)

    return wait


def retrying(retries: int, backoff: float,
             sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """Run a block up to ``retries`` more times while it raises ``TryAgain``.

    The last ``TryAgain`` is raised when the tries are spent; the caller turns it
    into an error the user can act on.
    """
    return Retrying(retry=retry_if_exception_type(TryAgain),
                    stop=stop_after_attempt(retries + 1), wait=backoff_wait(backoff),
                    sleep=sleep, reraise=True)
