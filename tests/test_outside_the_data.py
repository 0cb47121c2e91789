"""A period the data does not reach says where the data is, rather than only zeros.

A company importing an export of past years (the Maven CRM export is 2016-2017) and
asking as the README does (month to date, the default) got a table of zeros. Now the
table is followed by when the data runs and what to type (CLI, on stderr: pipes get
the table alone; JSON has it as ``range.data``), and the pages' filter bar says it with
a link to that range.

Hand-made data in Kyiv's time zone, instants given in UTC, so that the first and last
day are the company's, not UTC's:
- the earliest record: an activity at 2020-02-29 22:30 UTC = 1 March 00:30 in Kyiv
  (UTC+2 in winter);
- the latest: a deal closed at 2020-04-10 21:30 UTC = 11 April 00:30 (UTC+3 in summer).
So the data runs from 2020-03-01 to 2020-04-11.
"""

from __future__ import annotations

from pathlib import Path

from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.auth import add_user
from saleskpi.surfaces.server import create_app
from tests.conftest import CliResult
from tests.test_web import PASSWORD, sign_in

HINT = ("Nothing was recorded in this period: the data runs from 2020-03-01 to 2020-04-11. "
        "Add --from 2020-03-01 --to 2020-04-11, or --range all.")


def _company(root: Path) -> Path:
    folder = root / "crm"
    folder.mkdir()
    (folder / "reps.csv").write_text("id,name,team\nr1,Anna Adams,North\n", encoding="utf-8")
    (folder / "leads.csv").write_text(
        "id,created_at,rep_id\nL1,2020-03-02T09:00:00Z,r1\n", encoding="utf-8")
    (folder / "deals.csv").write_text(
        "id,rep_id,status,amount,created_at,closed_at\n"
        "D1,r1,won,100,2020-03-03T09:00:00Z,2020-04-10T21:30:00Z\n", encoding="utf-8")
    (folder / "activities.csv").write_text(
        "id,rep_id,type,occurred_at\nA1,r1,call,2020-02-29T22:30:00Z\n", encoding="utf-8")
    return folder


def _said(result: CliResult) -> str:
    return " ".join(result.stderr.split())


def _workspace(run_cli, tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="USD")
    imported = run_cli(workspace, "import", _company(tmp_path))
    assert imported.returncode == 0, imported.stderr
    return workspace


def test_a_period_before_or_after_the_data_says_when_the_data_runs(
        run_cli, tmp_path: Path) -> None:
    workspace = _workspace(run_cli, tmp_path)
    for args in (("kpi", "revenue"),  # this month: years after the data
                 ("kpi", "revenue", "--from", "2020-01-01", "--to", "2020-02-29"),
                 ("kpi", "calls", "--from", "2020-04-12", "--to", "2020-04-30"),
                 ("leaderboard", "revenue"), ("compare", "revenue"), ("funnel",),
                 ("rows", "revenue")):
        result = run_cli(workspace, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert HINT in _said(result), args
    # A period that holds any of it (its first day, its last day) says nothing.
    for first, last in (("2020-02-01", "2020-03-01"), ("2020-04-11", "2020-05-31")):
        held = run_cli(workspace, "kpi", "calls", "revenue", "--from", first, "--to", last)
        assert held.returncode == 0 and "Nothing was recorded" not in held.stderr, first
    # Pipes get the figures alone; JSON (the API's, an assistant's) says it in the range.
    piped = run_cli(workspace, "kpi", "revenue", "--format", "csv")
    assert piped.returncode == 0 and piped.stdout.splitlines() == ["revenue", "0"]
    assert "Nothing was recorded" not in piped.stderr
    for args in (("kpi", "revenue"), ("leaderboard", "revenue"), ("funnel",)):
        answer = run_cli(workspace, *args, "--format", "json")
        assert answer.json()["range"]["data"] == {"from": "2020-03-01", "to": "2020-04-11"}
    held = run_cli(workspace, "kpi", "revenue", "--format", "json", "--range", "all")
    assert "data" not in held.json()["range"]


def test_the_filter_bar_links_to_when_the_data_runs(run_cli, tmp_path: Path) -> None:
    workspace = _workspace(run_cli, tmp_path)
    settings = Settings(workspace=workspace)
    add_user(settings, "boss", PASSWORD, "head", lang="en")
    client = sign_in(create_app(settings), "boss")
    page = client.get("/").text  # month to date
    assert "the data runs from Mar 1, 2020 to Apr 11, 2020" in page
    assert 'href="/?from=2020-03-01&amp;to=2020-04-11"' in page
    shown = client.get("/", params={"from": "2020-03-01", "to": "2020-04-11"}).text
    assert "outside-data" not in shown and "Nothing was recorded" not in shown
