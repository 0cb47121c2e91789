"""Scorecards and funnels for programs as CSV: apart from the Rich tables (``output``),
so that a ``--format csv`` command does not import Rich (tests/test_cli_startup.py)."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from saleskpi.domain.query import ResultRow, Scorecard, plain_number
from saleskpi.domain.text import safe_cell

if TYPE_CHECKING:
    from saleskpi.domain.funnel import FunnelReport, StageRow

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
