"""Scorecards for programs as CSV: apart from the Rich tables (``output``), so that a
``--format csv`` command does not import Rich (tests/test_cli_startup.py)."""

from __future__ import annotations

import csv
import io

from saleskpi.domain.query import ResultRow, Scorecard, plain_number
from saleskpi.domain.text import safe_cell


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
