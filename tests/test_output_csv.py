"""Records as CSV (``saleskpi plan --format csv`` and the like), on hand-written records."""

from __future__ import annotations

import csv
import io

from saleskpi.surfaces.cli.output_csv import records_csv


def test_nested_objects_lists_missing_keys_and_formulas() -> None:
    records = [
        {"kpi": "calls", "who": "=HYPERLINK(1)", "activity": None, "tags": ["a", "b"]},
        {"kpi": "deals_won", "who": "Ann", "activity": {"calls": 37.5, "meetings": 5},
         "extra": True},
    ]
    text = records_csv(records)
    rows = list(csv.reader(io.StringIO(text)))
    # Columns in the order keys first appear; the object's values as parent.child, and
    # no column for the object itself, although the first record holds null there.
    assert rows[0] == ["kpi", "who", "tags", "activity.calls", "activity.meetings", "extra"]
    # A formula is neutralised; a list joined with ';'; what a record lacks is empty.
    assert rows[1] == ["calls", "'=HYPERLINK(1)", "a;b", "", "", ""]
    assert rows[2] == ["deals_won", "Ann", "", "37.5", "5", "True"]


def test_no_records_is_an_empty_table() -> None:
    assert records_csv([]) == "\n"
