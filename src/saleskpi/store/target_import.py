"""Imported targets: checked like every entity, stored in the transactional store.

The import Loader stages ``targets.csv`` (or the targets sheet) in DuckDB like
any other entity, so types, required columns, duplicates and rep references are
checked the same way. This module adds what only targets need and routes the rows
to SQLite instead of DuckDB:

* every ``kpi`` must name a KPI of the catalogue (error at file, row, column kpi);
* counts (inserted / updated / unchanged) are taken against SQLite, so importing
  the same targets again changes nothing;
* the targets are written in SQLite as part of the import's journaled write
  (``store/journal.py``): stored if and only if the import's facts are.

The transactional store sits beside the analytical one in the workspace
(``Settings.state_url``, ``Settings.user_kpis_path``), which is how the Loader,
given only its AnalyticsStore, finds both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from saleskpi.domain.i18n import _
from saleskpi.domain.reports import EntityCounts, ImportReport
from saleskpi.domain.targets import KeyTuple
from saleskpi.store.targets import existing_by_key, who_key

STAGE_TABLE = "stage_targets"
STATE_FILE = "state.sqlite"  # as Settings.state_url
USER_KPIS_FILE = "kpis.yaml"  # as Settings.user_kpis_path
MAX_ERRORS = 10


@dataclass(frozen=True)
class StagedTarget:
    file: str
    row: int
    key: KeyTuple
    value: float
    custom: dict[str, object] | None


def _custom(raw: Any) -> dict[str, object] | None:
    if raw is None:
        return None
    data = json.loads(raw) if isinstance(raw, str) else raw
    return data if isinstance(data, dict) and data else None


class TargetImport:
    """The targets of one import run."""

    def __init__(self, con: Any, analytics_path: Path, source: str,
                 report: ImportReport) -> None:
        self.con = con
        self.workspace = analytics_path.parent
        self.source = source
        self.report = report
        self._rows: list[StagedTarget] | None = None

    @property
    def state_path(self) -> Path:
        return self.workspace / STATE_FILE

    @property
    def state_url(self) -> str:
        return f"sqlite:///{self.state_path}"

    def staged(self) -> list[StagedTarget]:
        if self._rows is None:
            rows = self.con.execute(
                f'SELECT _file, _row, kpi, period_start, period_end, rep_id, team, value, '
                f'custom FROM "{STAGE_TABLE}" ORDER BY _file, _row'
            ).fetchall()
            self._rows = [
                StagedTarget(str(file), int(row), (str(kpi), start, end, rep_id, team),
                             float(value), _custom(custom))
                for file, row, kpi, start, end, rep_id, team, value, custom in rows
            ]
        return self._rows

    # -- checks ----------------------------------------------------------------
    def check(self) -> None:
        """Every kpi is a KPI of the catalogue; every period ends on or after its start."""
        from saleskpi.catalog.load import CatalogError, load_catalog

        try:
            known = set(load_catalog(self.workspace / USER_KPIS_FILE).kpis)
        except CatalogError as exc:
            self.report.error(USER_KPIS_FILE, None, None, str(exc))
            return
        shown = 0
        for target in self.staged():
            kpi, start, end = target.key[:3]
            problems = []
            if kpi not in known:
                problems.append(("kpi", _("unknown KPI {kpi!r}", kpi=kpi), _(
                    "Use a KPI key from 'saleskpi kpis', e.g. deals_won, revenue or calls.")))
            if end < start:
                problems.append(("period_end", _(
                    "period_end {end} is before period_start {start}", end=end, start=start),
                    _("A target's period ends on or after the day it starts.")))
            for column, message, hint in problems:
                if shown < MAX_ERRORS:
                    self.report.error(target.file, target.row, column, message, hint)
                    shown += 1
                else:
                    self.report.errors_not_shown += 1

    # -- counting --------------------------------------------------------------
    def _stored(self) -> dict[KeyTuple, tuple[float, dict[str, object] | None]]:
        if not self.state_path.is_file():  # nothing stored yet; a dry run creates nothing
            return {}
        from saleskpi.store.state import engine_for

        with Session(engine_for(self.state_url)) as session:
            return {k: (r.value, r.custom) for k, r in existing_by_key(session).items()}

    def count(self) -> EntityCounts:
        stored = self._stored()
        counts = EntityCounts()
        for target in self.staged():
            before = stored.get(who_key(target.key))
            if before is None:
                counts.inserted += 1
            elif before == (target.value, target.custom):
                counts.unchanged += 1
            else:
                counts.updated += 1
        return counts

    # -- writing ---------------------------------------------------------------
    def journal_rows(self) -> list[dict[str, object]]:
        """The staged targets as the write journal keeps them (JSON), for SQLite's side."""
        return [{"kpi": t.key[0], "period_start": t.key[1].isoformat(),
                 "period_end": t.key[2].isoformat(), "rep_id": t.key[3], "team": t.key[4],
                 "value": t.value, "custom": t.custom} for t in self.staged()]
