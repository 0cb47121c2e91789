"""Scorecards, funnels and lists of records for programs as CSV: apart from the Rich
tables (``output``), so that a ``--format csv`` command does not import Rich
(tests/test_cli_startup.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from saleskpi.domain.query import ResultRow, Scorecard, plain_number
from saleskpi.domain.text import safe_cell

if TYPE_CHECKING:
    from saleskpi.domain.funnel import FunnelReport, StageRow
    from saleskpi.domain.targets import TargetRecord

# The funnel's columns, named as in its JSON (time_in_stage's count: finished_stays).
FUNNEL_COLUMNS = ("pipeline", "rep", "rep_name", "stage", "entered", "converted",
                  "stage_conversion", "dropped", "stage_drop_off", "median_days", "p90_days",
                  "finished_stays", "open_deals", "open_amount", "currency",
                  "conversion_vs_team", "leak")


def scorecard_csv(scorecard: Scorecard, rows: list[ResultRow] | None = None) -> str:
    query = scorecard.query
    kpis = list(dict.fromkeys(query.kpis))
    keys = [*query.by, *(["period"] if query.period != "all" else [])]
    labels = ["rep_name"] if "rep" in query.by else []
    header = [*keys, *labels]
    for key in kpis:
        header.append(key)
        if scorecard.rows and scorecard.rows[0].values[key].is_ratio:
            header += [f"{key}_numerator", f"{key}_denominator"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in (scorecard.rows if rows is None else rows):
        cells: list[object] = [row.keys.get(k) for k in keys]
        cells += [row.labels.get(k) for k in labels]
        for key in kpis:
            value = row.values[key]
            cells.append(plain_number(value.value))
            if value.is_ratio:
                cells += [plain_number(value.numerator), plain_number(value.denominator)]
        writer.writerow([safe_cell(c) for c in cells])
    return buffer.getvalue()


def funnel_csv(report: FunnelReport) -> str:
    """One row per pipeline, slice and stage: the team's rows (``rep`` empty) first,
    then each rep's; a rep's rows add the gap to the team and whether it is a leak."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FUNNEL_COLUMNS)

    def cells(stage: StageRow, rep_row: bool) -> list[object]:
        return [stage.stage, stage.entered, stage.converted, plain_number(stage.conversion),
                stage.dropped, plain_number(stage.drop_off), plain_number(stage.median_days),
                plain_number(stage.p90_days), stage.finished, stage.open_deals,
                plain_number(stage.open_amount), report.currency,
                plain_number(stage.vs_team) if rep_row else None,
                stage.leak if rep_row else None]

    for pipeline in report.pipelines:
        for part in (pipeline.team, *pipeline.reps):
            rep_row = part.rep is not None
            for stage in part.stages:
                row = [pipeline.pipeline, part.rep, part.rep_name, *cells(stage, rep_row)]
                writer.writerow([safe_cell(c) for c in row])
    return buffer.getvalue()


def records_csv(records: Sequence[Mapping[str, Any]],
                columns: Sequence[str] | None = None) -> str:
    """A view's JSON records, one row each: ``columns``, else every key in the order
    keys first appear; a nested object's values as ``parent.child`` columns (as pandas'
    json_normalize names them; a record whose object is null leaves them empty), a
    list's items joined with ``;``, a key a record lacks left empty."""
    nested: set[str] = set()
    for record in records:
        _objects(record, "", nested)
    flat = [dict(_flatten(record, "", nested)) for record in records]
    if columns is None:
        columns = list(dict.fromkeys(key for row in flat for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in flat:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def _objects(record: Mapping[str, Any], prefix: str, found: set[str]) -> None:
    """The paths at which ``record`` holds an object (``found`` grows)."""
    for key, value in record.items():
        if isinstance(value, Mapping):
            found.add(prefix + key)
            _objects(value, f"{prefix}{key}.", found)


def _flatten(record: Mapping[str, Any], prefix: str,
             nested: set[str]) -> list[tuple[str, Any]]:
    cells: list[tuple[str, Any]] = []
    for key, value in record.items():
        path = prefix + key
        if isinstance(value, Mapping):
            cells += _flatten(value, f"{path}.", nested)
        elif path in nested and value is None:
            continue  # an object other records have: its columns stay empty here
        elif isinstance(value, list):
            cells.append((path, ";".join(str(v) for v in value)))
        else:
            cells.append((path, value))
    return cells


def targets_csv(targets: Sequence[TargetRecord]) -> str:
    """Targets as the canonical targets.csv, their own (custom) fields as more columns:
    imported again into their source, the same file changes nothing."""
    from saleskpi.domain.schema import ENTITIES

    records = [{"kpi": t.kpi, "period_start": t.period_start.isoformat(),
                "period_end": t.period_end.isoformat(), "value": plain_number(t.value),
                "rep_id": t.rep_id, "team": t.team, **(t.custom or {})} for t in targets]
    canonical = ENTITIES["targets"].column_names
    own = dict.fromkeys(k for t in targets for k in (t.custom or {}) if k not in canonical)
    return records_csv(records, [*canonical, *own])
