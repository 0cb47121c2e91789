"""The server's background refresh: answers are ready before people ask.

After an import or a sync every kept scorecard is stale (the data version in its
key changed), and a big company's scorecard costs seconds. The refresher
computes again, in a background thread, what the pages asked during the last
week, newest first, whenever it is missing or about to expire. The list of
questions is saved in the workspace, so a restarted server warms up by itself.
Between rounds it looks every second whether the data changed (a CLI import, another
server's sync) and starts the next round at once: until it has kept the funnel's
events of the new data, the head of sales's funnel is computed from the stage
history (1.2 s at a million deals instead of 0.3 s).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from saleskpi.domain.files import replace_private
from saleskpi.domain.funnel import FunnelOptions
from saleskpi.domain.query import PERIODS, KpiQuery, Scope
from saleskpi.service.core import (
    AnyQuestion,
    FunnelQuestion,
    Question,
    SalesKpiService,
    SumsQuestion,
)
from saleskpi.store.backend import writing_elsewhere

log = logging.getLogger("saleskpi.service.refresh")
QUESTIONS_FILE = "recent-questions.json"
# How often, between rounds, the data's version is looked at (a file's times on
# DuckDB, a counter on PostgreSQL: what every page asks anyway).
WRITE_CHECK_SECONDS = 1.0


class Refresher:
    def __init__(self, service: SalesKpiService, *, every: float = 10.0,
                 write_check: float = WRITE_CHECK_SECONDS) -> None:
        self.service = service
        self.every = every
        self.write_check = write_check
        self.path = service.settings.workspace / QUESTIONS_FILE
        self.computed = 0
        self._stop = threading.Event()
        self._idle = threading.Event()  # set after a round that found nothing to do
        self._saved: set[AnyQuestion] = set()
        self._thread = threading.Thread(target=self._run, name="saleskpi-refresh",
                                        daemon=True)

    def start(self) -> None:
        for question, asked in load_questions(self.path):
            self.service.recent.note(question, at=asked)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._save()
        gc.unfreeze()  # at shutdown: let the collector see everything again

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until a round found everything fresh (a benchmark's warm-up)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            version = self._data_version()
            try:
                # Before the funnels are refreshed: they read what it keeps.
                self.service.keep_funnel()
            except Exception:  # the funnel is then answered without them
                log.exception("keeping the funnel's events failed")
            try:
                done = self.service.refresh()
            except Exception:  # a refresh must never take the server down
                log.exception("background refresh failed")
                done = 0
            self.computed += done
            if done:
                log.info("refreshed %d scorecards in %.1f s", done,
                         time.monotonic() - started)
                self._idle.clear()
            else:
                self._idle.set()
            # Kept answers are millions of small objects; without this every full
            # garbage collection walks them all, a pause of hundreds of milliseconds in
            # whatever request triggers it. Frozen objects are skipped by the collector;
            # answers let go of later are still freed by reference counting.
            gc.freeze()
            asked = {q for q, _at in self.service.recent.items()}
            if asked != self._saved:  # new questions: a restart should know them too
                self._save()
                self._saved = asked
            self._pause(version)

    def _pause(self, version: tuple[int, ...] | None) -> None:
        """``every`` seconds, or less: until the data is another than ``version`` (the
        round's) and no other process is writing it (a long import changes the files
        all along; the round is for what it commits)."""
        deadline = time.monotonic() + self.every
        while (left := deadline - time.monotonic()) > 0:
            if self._stop.wait(min(self.write_check, left)):
                return
            now = self._data_version()
            if now is not None and now != version and not self._written_elsewhere():
                return

    def _data_version(self) -> tuple[int, ...] | None:
        try:
            return self.service.data_version()
        except Exception:  # a server store out of reach: the round's pause as before
            log.debug("cannot read the data's version", exc_info=True)
            return None

    def _written_elsewhere(self) -> bool:
        try:
            return writing_elsewhere(self.service.settings)
        except OSError:
            return False

    def _save(self) -> None:
        try:
            save_questions(self.path, self.service.recent.items())
        except OSError as exc:  # the server works on without it
            log.warning("cannot save %s: %s", self.path, exc)


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value else None


def _where(item: list[list[Any]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((str(dim), tuple(str(v) for v in values)) for dim, values in item)


def _members(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


def _scope_json(scope: Scope) -> dict[str, list[str] | None]:
    return {"rep_ids": sorted(scope.rep_ids) if scope.rep_ids is not None else None,
            "teams": sorted(scope.teams) if scope.teams is not None else None}


def question_to_json(question: AnyQuestion, asked: float) -> dict[str, Any]:
    scope = {"scope": _scope_json(question.scope), "asked": asked}
    if isinstance(question, FunnelQuestion):
        options = question.options
        return {"kind": "funnel", "pipeline": options.pipeline, "by_rep": options.by_rep,
                "as_of": _iso(options.as_of), "start": _iso(options.start),
                "end": _iso(options.end), "where": [[d, list(v)] for d, v in options.where],
                **scope}
    query = question.query
    return {
        "kind": "sums" if isinstance(question, SumsQuestion) else "scorecard",
        "kpis": list(query.kpis), "by": list(query.by),
        "period": query.period, "start": _iso(query.start), "end": _iso(query.end),
        "where": [[dim, list(values)] for dim, values in query.where],
        "totals": isinstance(question, Question) and question.totals,
        "now": _iso(question.now), **scope,
    }


def question_from_json(item: dict[str, Any]) -> tuple[AnyQuestion, float]:
    scope = Scope(_members(item["scope"]["rep_ids"]), _members(item["scope"]["teams"]))
    asked = float(item["asked"])
    if item.get("kind") == "funnel":
        pipeline = item["pipeline"]
        options = FunnelOptions(None if pipeline is None else str(pipeline),
                                bool(item["by_rep"]), _day(item["as_of"]),
                                _day(item["start"]), _day(item["end"]), _where(item["where"]))
        return FunnelQuestion(options, scope), asked
    period = next((p for p in PERIODS if p == item["period"]), None)
    if period is None:
        raise ValueError(f"unknown period {item['period']!r}")
    query = KpiQuery(tuple(str(k) for k in item["kpis"]), tuple(str(b) for b in item["by"]),
                     period, _day(item["start"]), _day(item["end"]), _where(item["where"]))
    now = dt.datetime.fromisoformat(item["now"]) if item.get("now") else None
    if item.get("kind") == "sums":
        return SumsQuestion(query, scope, now), asked
    return Question(query, scope, bool(item["totals"]), now), asked


def save_questions(path: Path, items: list[tuple[AnyQuestion, float]]) -> None:
    text = json.dumps([question_to_json(q, at) for q, at in items], ensure_ascii=False)
    replace_private(path, text)


def load_questions(path: Path) -> list[tuple[AnyQuestion, float]]:
    """The saved questions; a missing or damaged file is an empty list (it is a cache)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        return [question_from_json(item) for item in items]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []
