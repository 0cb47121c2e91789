"""Truthful edges (issue 13, item 8): what would answer zeros, "—" or nothing is an error
that says what is wrong and what is known.

Each test builds its own small company from CSV files and runs the CLI as a user does.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.conftest import CliResult

RANGE = ("--from", "2024-01-01", "--to", "2024-01-31")


def _company(folder: Path, *, fx: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reps.csv").write_text(
        "id,name,team,manager\nr1,Anna Adams,North,Zed\nr2,Boris Bell,South,\n",
        encoding="utf-8")
    (folder / "leads.csv").write_text(
        "id,created_at,rep_id,source\nL1,2024-01-02,r1,ads\nL2,2024-01-03,r2,referral\n",
        encoding="utf-8")
    # D2 is in EUR: without a rate it has no amount in USD.
    (folder / "deals.csv").write_text(
        "id,rep_id,status,amount,currency,created_at,closed_at\n"
        "D1,r1,won,100,USD,2024-01-02,2024-01-10\n"
        "D2,r2,won,50,EUR,2024-01-03,2024-01-12\n", encoding="utf-8")
    if fx:
        (folder / "fx_rates.csv").write_text("date,currency,rate\n2024-01-01,EUR,2\n",
                                             encoding="utf-8")
    return folder


def said(result: CliResult) -> str:
    """stderr as one line (the console wraps long messages)."""
    return " ".join(result.stderr.split())


@pytest.fixture
def company(run_cli, workspace: Path, tmp_path: Path) -> Path:
    imported = run_cli(workspace, "import", _company(tmp_path / "crm"))
    assert imported.returncode == 0, imported.stdout + imported.stderr
    return workspace


def test_missing_fx_rates_stop_money_kpis_naming_the_currency(run_cli, company: Path,
                                                              tmp_path: Path) -> None:
    result: CliResult = run_cli(company, "kpi", "revenue", *RANGE)
    assert result.returncode == 2
    assert "EUR (1 records from 2024-01-12)" in said(result)
    assert "fx_rates" in said(result) and "USD" in said(result)
    assert result.stdout == ""  # never a silent 100
    # KPIs without money still answer.
    counted = run_cli(company, "kpi", "deals_won", *RANGE, "--format", "json")
    assert counted.returncode == 0, counted.stderr
    assert counted.json()["rows"][0]["deals_won"]["value"] == 2
    # With a rate the EUR deal counts: 100 + 50 × 2.
    (tmp_path / "rates").mkdir()
    (tmp_path / "rates" / "fx_rates.csv").write_text("date,currency,rate\n2024-01-01,EUR,2\n",
                                                     encoding="utf-8")
    assert run_cli(company, "import", tmp_path / "rates").returncode == 0
    fixed = run_cli(company, "kpi", "revenue", *RANGE, "--format", "json")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.json()["rows"][0]["revenue"]["value"] == 200


def test_an_unknown_slice_is_an_error_with_did_you_mean(run_cli, company: Path) -> None:
    result = run_cli(company, "kpi", "deals_won", "--by", "manger", *RANGE)
    assert result.returncode == 2
    assert "unknown slice 'manger'" in said(result)
    assert "did you mean manager?" in said(result)
    # A custom field some rep has is a slice.
    sliced = run_cli(company, "kpi", "deals_won", "--by", "manager", *RANGE, "--format", "json")
    assert sliced.returncode == 0, sliced.stderr
    assert {r["manager"] for r in sliced.json()["rows"]} == {"Zed", None}


@pytest.mark.parametrize(("where", "message"), [
    ("team=Nort", "unknown team 'Nort': no rep of the data is in it; did you mean North?"),
    ("rep=Ana Adams", "unknown rep 'Ana Adams'"),
    ("source=add", "unknown source 'add': no lead, account or spend has it; did you mean ads?"),
])
def test_an_unknown_filter_value_is_an_error(run_cli, company: Path, where: str,
                                             message: str) -> None:
    for command in (("kpi", "deals_won"), ("compare", "deals_won"),
                    ("leaderboard", "deals_won")):
        result = run_cli(company, *command, "--where", where, *RANGE)
        assert result.returncode == 2, (command, result.stdout)
        assert message in said(result), (command, result.stderr)


def test_segment_product_and_pipeline_values_are_checked(run_cli, workspace: Path,
                                                          tmp_path: Path) -> None:
    """A misspelt segment, product or pipeline used to answer zeros; a product may be
    named by its id or its name (in any case), as a rep by id or name."""
    crm = _company(tmp_path / "crm", fx=True)
    (crm / "leads.csv").write_text(
        "id,created_at,rep_id,source,segment\nL1,2024-01-02,r1,ads,smb\n"
        "L2,2024-01-03,r2,referral,enterprise\n", encoding="utf-8")
    (crm / "products.csv").write_text("id,name\nP1,Training day\nP2,Headset kit\n",
                                      encoding="utf-8")
    (crm / "deals.csv").write_text(
        "id,rep_id,status,amount,currency,created_at,closed_at,lead_id,product_id,pipeline\n"
        "D1,r1,won,100,USD,2024-01-02,2024-01-10,L1,P1,main\n"
        "D2,r2,won,50,EUR,2024-01-03,2024-01-12,L2,P2,partners\n", encoding="utf-8")
    assert run_cli(workspace, "import", crm).returncode == 0
    for where, message in [
        ("segment=enterprize", "unknown segment 'enterprize': no lead or account has it; "
                               "did you mean enterprise?"),
        ("product=Trainig day", "unknown product 'Trainig day': no deal or revenue has it; "
                                "did you mean P1 (Training day)?"),
        ("product=P3", "unknown product 'P3'"),
        ("pipeline=partner", "unknown pipeline 'partner': no deal is in it; did you mean "
                             "partners?"),
    ]:
        for command in (("kpi", "deals_won"), ("funnel",)):
            result = run_cli(workspace, *command, "--where", where, *RANGE)
            assert result.returncode == 2, (where, command, result.stdout)
            assert message in said(result), (where, command, result.stderr)
    # The values the data holds answer, counted by hand: D1 is smb, P1 and main.
    for where in ("segment=smb", "product=P1", "product=Training day",
                  "product=training DAY", "pipeline=main"):
        found = run_cli(workspace, "kpi", "deals_won", "--where", where, *RANGE,
                        "--format", "json")
        assert found.returncode == 0, (where, found.stderr)
        assert found.json()["rows"][0]["deals_won"]["value"] == 1, where
    # Both products by name in one filter: D1 and D2.
    both = run_cli(workspace, "kpi", "deals_won", "--where", "product=Training day,P2",
                   *RANGE, "--format", "json")
    assert both.json()["rows"][0]["deals_won"]["value"] == 2, both.stderr


def test_unknown_rep_suggests_the_name(run_cli, company: Path) -> None:
    result = run_cli(company, "kpi", "deals_won", "--where", "rep=Ana Adams", *RANGE)
    assert "did you mean Anna Adams?" in said(result)
    # The same wherever a rep is named alone: the reverse planner, the bonus explained.
    for command in (("plan", "reverse", "--goal", "deals_won=5", "--rep", "Ana Adams"),
                    ("bonus", "explain", "Ana Adams")):
        named = run_cli(company, *command)
        assert named.returncode == 2, (command, named.stdout)
        assert "unknown rep 'Ana Adams'" in said(named), command
        assert "did you mean Anna Adams?" in said(named), command


@pytest.mark.parametrize(("typed", "meant"), [("Belk", "Boris Bell"), ("Adms", "Anna Adams"),
                                              ("Borys", "Boris Bell")])
def test_one_word_of_a_name_suggests_the_rep(run_cli, company: Path, typed: str,
                                            meant: str) -> None:
    """A first name or a surname alone, even misspelt, names the rep meant."""
    result = run_cli(company, "kpi", "deals_won", "--rep", typed, *RANGE)
    assert result.returncode == 2
    assert f"unknown rep '{typed}'" in said(result)
    assert f"did you mean {meant}?" in said(result)


@pytest.mark.parametrize(("option", "typed", "meant"), [
    ("--rep", "Anna Morozova", "Анна Морозова"),
    ("--rep", "Iryna Bondarenko", "Ірина Бондаренко"),
    ("--rep", "Morozova", "Анна Морозова"),
    ("--rep", "Джеймс Смит", "James Smith"),
    ("--team", "Kyiv", "Київ"),
])
def test_a_name_typed_in_another_alphabet_suggests_the_one_meant(
        run_cli, workspace: Path, tmp_path: Path, option: str, typed: str,
        meant: str) -> None:
    """A Ukrainian or Russian company's names typed in Latin letters (or the other way
    round) are compared in Latin letters: the name meant is suggested, never guessed."""
    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "reps.csv").write_text(
        "id,name,team\nr1,Анна Морозова,Київ\nr2,Ірина Бондаренко,Київ\n"
        "r3,James Smith,London\n", encoding="utf-8")
    (crm / "leads.csv").write_text("id,created_at,rep_id,source\nL1,2024-01-02,r1,ads\n",
                                   encoding="utf-8")
    assert run_cli(workspace, "import", crm).returncode == 0
    result = run_cli(workspace, "kpi", "leads", option, typed, *RANGE)
    assert result.returncode == 2, result.stdout
    assert f"did you mean {meant}" in said(result)
    assert result.stdout == ""


def test_a_misspelt_kpi_gets_did_you_mean(run_cli, company: Path) -> None:
    result = run_cli(company, "kpi", "revnue", *RANGE)
    assert result.returncode == 2
    assert "unknown KPI 'revnue'; did you mean revenue" in said(result)
    board = run_cli(company, "leaderboard", "deal_won", *RANGE)
    assert board.returncode == 2
    assert "did you mean deals_won" in said(board)


def test_an_absent_workspace_is_an_error_unless_demo_or_import_makes_it(
        run_cli, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    result = run_cli(missing, "kpi", "calls")
    assert result.returncode == 2
    assert "does not exist" in said(result) and str(missing) in said(result)
    assert not missing.exists()  # nothing was created there
    imported = run_cli(missing, "import", _company(tmp_path / "crm", fx=True))
    assert imported.returncode == 0, imported.stderr
    assert missing.is_dir()
    assert run_cli(missing, "kpi", "calls", *RANGE).returncode == 0


def test_settings_stored_first_make_the_workspace_as_the_readme_says(
        run_cli, tmp_path: Path) -> None:
    """README, "Your own data": ``saleskpi settings --timezone ... --currency ...`` comes
    before the first import. Showing a workspace that is not there is still a typo, and
    a value refused makes nothing."""
    missing = tmp_path / "new-company"
    shown = run_cli(missing, "settings")
    assert shown.returncode == 2 and "does not exist" in said(shown)
    refused = run_cli(missing, "settings", "--timezone", "Europe/Kiev2")
    assert refused.returncode == 2 and "unknown time zone" in said(refused)
    assert not missing.exists()
    made = run_cli(missing, "settings", "--timezone", "Europe/Kyiv", "--currency", "UAH")
    assert made.returncode == 0, made.stderr
    assert "Created the workspace" in made.stdout and "currency: UAH" in made.stdout
    assert run_cli(missing, "settings").stdout.count("timezone: Europe/Kyiv") == 1


def test_a_taken_port_is_reported_before_listening(run_cli_process, workspace: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli_process(workspace, "serve", "--port", port, timeout=60)
        assert result.returncode == 2
        assert f"127.0.0.1:{port}" in said(result) and "taken" in said(result)
        assert "listening" not in result.stdout


@pytest.mark.parametrize(("kpis", "needed"), [
    (("gross_margin",), True), (("cost_of_goods",), True), (("win_rate",), False),
    # Percent KPIs over converted money: a missing rate would skew them silently.
    (("forecast_accuracy",), True), (("forecast_bias",), True), (("calls",), False),
])
def test_every_kpi_on_money_in_the_reporting_currency_needs_its_rates(
        kpis: tuple[str, ...], needed: bool) -> None:
    from types import SimpleNamespace
    from typing import cast

    from saleskpi.catalog.load import load_catalog
    from saleskpi.domain.query import KpiQuery
    from saleskpi.service.core import SalesKpiService
    from saleskpi.service.query_checks import needs_rates

    service = cast(SalesKpiService, SimpleNamespace(catalog=load_catalog()))
    assert needs_rates(service, KpiQuery(kpis)) is needed
