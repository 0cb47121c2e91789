"""The server's background refresh: answers are ready before people ask.

After an import or a sync every kept scorecard is stale (the data version in its
key changed), and a big company's scorecard costs seconds. The refresher
computes again, in a background thread, what the pages asked during the last
week, newest first, whenever it is missing or about to expire. The list of
questions is saved in the workspace, so a restarted server warms up by itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from saleskpi.engine.query import PERIODS, KpiQuery, Scope
from saleskpi.service import Question, SalesKpiService

log = logging.getLogger("saleskpi.refresh")
QUESTIONS_FILE = "recent-questions.json"


class Refresher:
    def __init__(self, service: SalesKpiService, *, every: float = 10.0) -> None:
        self.service = service
        self.every = every
        self.path = service.settings.workspace / QUESTIONS_FILE
        self.rounds = 0
        self.computed = 0
        self._stop = threading.Event()
        self._idle = threading.Event()  # set after a round that found nothing to do
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

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Until a round found everything fresh (a benchmark's warm-up)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                done = self.service.refresh()
            except Exception:  # a refresh must never take the server down
                log.exception("background refresh failed")
                done = 0
            self.rounds += 1
            self.computed += done
            if done:
                log.info("refreshed %d scorecards in %.1f s", done,
                         time.monotonic() - started)
                self._idle.clear()
                self._save()
            else:
                self._idle.set()
            self._stop.wait(self.every)

    def _save(self) -> None:
        # Scorecards only: a funnel is asked again by its first visitor after a restart.
        questions = [(q, at) for q, at in self.service.recent.items()
                     if isinstance(q, Question)]
        try:
            save_questions(self.path, questions)
        except OSError as exc:  # the server works on without it
            log.warning("cannot save %s: %s", self.path, exc)


def question_to_json(question: Question, asked: float) -> dict[str, Any]:
    query, scope = question.query, question.scope
    return {
        "kpis": list(query.kpis), "by": list(query.by), "period": query.period,
        "start": query.start.isoformat() if query.start else None,
        "end": query.end.isoformat() if query.end else None,
        "where": [[dim, list(values)] for dim, values in query.where],
        "scope": {"rep_ids": sorted(scope.rep_ids) if scope.rep_ids is not None else None,
                  "teams": sorted(scope.teams) if scope.teams is not None else None},
        "totals": question.totals, "asked": asked,
        "now": question.now.isoformat() if question.now else None,
    }


def question_from_json(item: dict[str, Any]) -> tuple[Question, float]:
    def day(text: str | None) -> dt.date | None:
        return dt.date.fromisoformat(text) if text else None

    def members(values: list[str] | None) -> frozenset[str] | None:
        return None if values is None else frozenset(str(v) for v in values)

    period = next((p for p in PERIODS if p == item["period"]), None)
    if period is None:
        raise ValueError(f"unknown period {item['period']!r}")
    query = KpiQuery(
        tuple(str(k) for k in item["kpis"]), tuple(str(b) for b in item["by"]), period,
        day(item["start"]), day(item["end"]),
        tuple((str(dim), tuple(str(v) for v in values)) for dim, values in item["where"]),
    )
    scope = Scope(members(item["scope"]["rep_ids"]), members(item["scope"]["teams"]))
    now = dt.datetime.fromisoformat(item["now"]) if item.get("now") else None
    return Question(query, scope, bool(item["totals"]), now), float(item["asked"])


def save_questions(path: Path, items: list[tuple[Question, float]]) -> None:
    text = json.dumps([question_to_json(q, at) for q, at in items], ensure_ascii=False)
    partial = path.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def load_questions(path: Path) -> list[tuple[Question, float]]:
    """The saved questions; a missing or damaged file is an empty list (it is a cache)."""
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        return [question_from_json(item) for item in items]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return []
