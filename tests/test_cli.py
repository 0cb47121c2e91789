"""The command line as a user meets it: help, formats, workbooks, languages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from tests.conftest import CliResult

COMMANDS = ["import", "kpi", "kpis", "demo", "mappings"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(run_cli, workspace: Path, command: str) -> None:
    result: CliResult = run_cli(workspace, command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout


def _workbook(path: Path) -> None:
    book = Workbook()
    reps = book.active
    assert reps is not None
    reps.title = "reps"
    reps.append(["id", "name", "team"])
    reps.append(["r1", "placeholder", "A"])
    reps.append(["r2", "Петро Іваненко", "A"])
    # Text that starts like a formula (typed as text in Excel, e.g. '=HYPERLINK...)
    reps["B2"].value = '=HYPERLINK("http://x")'
    reps["B2"].data_type = "s"
    deals = book.create_sheet("deals")
    deals.append(["id", "rep_id", "status", "amount", "closed_at", "created_at"])
    deals.append(["D1", "r1", "won", 100.5, dt.datetime(2024, 1, 5, 10), dt.date(2024, 1, 1)])
    deals.append(["D2", "r2", "lost", 70, dt.datetime(2024, 1, 6, 10), dt.date(2024, 1, 2)])
    deals.append(["D3", "r2", "won", 30, dt.datetime(2024, 2, 6, 10), dt.date(2024, 1, 3)])
    book.save(path)


def test_xlsx_workbook_imports_and_csv_output_is_safe(run_cli, workspace: Path,
                                                       tmp_path: Path) -> None:
    book = tmp_path / "crm.xlsx"
    _workbook(book)
    imported = run_cli(workspace, "import", book, "--format", "json")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    assert imported.json()["entities"]["deals"]["inserted"] == 3

    result = run_cli(workspace, "kpi", "deals_won", "revenue", "win_rate", "--by", "rep",
                     "--range", "all", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    by_rep = {r["rep"]: r for r in rows}
    # A name that a spreadsheet would run as a formula is neutralised.
    assert by_rep["r1"]["rep_name"] == "'=HYPERLINK(\"http://x\")"
    assert by_rep["r2"]["rep_name"] == "Петро Іваненко"
    assert float(by_rep["r1"]["revenue"]) == pytest.approx(100.5)
    assert float(by_rep["r2"]["win_rate"]) == pytest.approx(0.5)
    assert by_rep["r2"]["win_rate_numerator"] == "1"
    assert by_rep["r2"]["win_rate_denominator"] == "2"


def test_kpi_by_month_json_and_table(run_cli, workspace: Path, tmp_path: Path) -> None:
    book = tmp_path / "crm.xlsx"
    _workbook(book)
    assert run_cli(workspace, "import", book).returncode == 0
    result = run_cli(workspace, "kpi", "deals_won", "--period", "month", "--format", "json")
    data = json.loads(result.stdout)
    assert [(r["period"], r["deals_won"]["value"]) for r in data["rows"]] == [
        ("2024-01-01", 1), ("2024-02-01", 1)]
    table = run_cli(workspace, "kpi", "win_rate", "--by", "rep", "--range", "all")
    assert "Period: all time" in table.stdout
    assert "Петро Іваненко" in table.stdout
    assert "50.0% (1/2)" in table.stdout
    assert "Total" in table.stdout and "Team average" in table.stdout


def test_bad_query_is_a_clear_error(run_cli, workspace: Path) -> None:
    result = run_cli(workspace, "kpi", "win_rat")
    assert result.returncode == 2
    assert "unknown KPI 'win_rat'" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(workspace, "kpi", "leads", "--period", "fortnight")
    assert result.returncode == 2
    assert "unknown period" in result.stderr



def test_team_and_rep_options_are_the_filters_they_name(run_cli, workspace: Path,
                                                        tmp_path: Path) -> None:
    """``--team`` and ``--rep`` (what a head of sales types first) filter as --where does."""
    book = tmp_path / "crm.xlsx"
    _workbook(book)
    loaded = load_workbook(book)
    loaded["reps"].append(["r3", "Olga Lee", "B"])
    loaded["deals"].append(["D4", "r3", "won", 500, dt.datetime(2024, 1, 7, 10),
                               dt.date(2024, 1, 1)])
    loaded.save(book)
    assert run_cli(workspace, "import", book).returncode == 0

    def figures(*args: str) -> dict[str, str]:
        result = run_cli(workspace, "kpi", "deals_won", "revenue", "win_rate", "--range",
                         "all", "--format", "csv", *args)
        assert result.returncode == 0, result.stderr
        (row,) = csv.DictReader(io.StringIO(result.stdout))
        return {k: row[k] for k in ("deals_won", "revenue", "win_rate_numerator",
                                    "win_rate_denominator")}

    # Counted by hand from the workbook: team A is D1 (won 100.5), D2 (lost), D3 (won 30).
    team_a = {"deals_won": "2", "revenue": "130.5", "win_rate_numerator": "2",
              "win_rate_denominator": "3"}
    assert figures("--team", "A") == team_a == figures("--where", "team=A")
    assert figures("--team", "B")["revenue"] == "500"
    assert figures("--rep", "Петро Іваненко") == {  # D2 lost, D3 won 30
        "deals_won": "1", "revenue": "30", "win_rate_numerator": "1",
        "win_rate_denominator": "2"}
    typo = run_cli(workspace, "kpi", "revenue", "--team", "Z")
    assert typo.returncode == 2 and "unknown team 'Z'" in typo.stderr

