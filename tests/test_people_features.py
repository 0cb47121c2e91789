"""Targets, contests and the forecast for a person who has several rep ids.

Anna Lee is one person under two rep ids: ``o1`` in the old CRM and ``n7`` in the new
one (one e-mail; her person key is ``n7``), or, in one CRM, ``o1`` and ``o9`` (her
account made anew) linked by hand (person key ``o1``). Counted by hand, January 2024
(UTC, USD):

rep          won in January                open deals (made in January)
Anna         100 (10 Jan) + 30 (20 Jan) = 130   2 (1000 and 2000)
Boris (o2)   50 (11 Jan)                        0
Carl         20 (21 Jan)                        0

A head of sales expects one Anna everywhere: her target found whichever of her ids it
was set for, her actual and her forecast over both ids' deals, one row of hers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from saleskpi.domain.contests import parse_definition
from saleskpi.domain.errors import NotFound
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service import contests as contest_service
from saleskpi.service.auth import add_user
from saleskpi.service.core import SalesKpiService
from saleskpi.service.planner import plan_vs_actual
from saleskpi.service.principal import Principal
from saleskpi.surfaces.server import create_app
from saleskpi.views.base import LOCAL
from saleskpi.views.forecast import ForecastParams, forecast
from saleskpi.views.plans import (
    DeleteTargetsParams,
    SetTargetParams,
    TargetsParams,
    delete_targets,
    set_target,
    targets,
)
from tests.test_web import PASSWORD, read, sign_in

JANUARY = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))
DEALS = "id,rep_id,status,amount,created_at,closed_at,stage\n"
OLD_REPS = ("id,name,email,team\no1,Anna Lee,anna@acme.test,North\n"
            "o2,Boris Kim,boris@acme.test,North\n")
OLD_DEALS = (DEALS + "d1,o1,won,100,2024-01-02,2024-01-10,Won\n"
             "d2,o2,won,50,2024-01-02,2024-01-11,Won\n"
             "d5,o1,open,1000,2024-01-03,,Proposal\n")
NEW_REPS = ("id,name,email,team\nn7,Anna Lee,anna@acme.test,North\n"
            "n8,Carl Diaz,carl@acme.test,South\n")
NEW_DEALS = (DEALS + "d1,n7,won,30,2024-01-05,2024-01-20,Won\n"
             "d2,n8,won,20,2024-01-05,2024-01-21,Won\n"
             "d6,n7,open,2000,2024-01-06,,Proposal\n")
# One CRM: Anna's account made anew (o9, no e-mail), Carl as o8.
ONE_REPS = OLD_REPS + "o9,Anna Lee,,North\no8,Carl Diaz,carl@acme.test,South\n"
ONE_DEALS = (OLD_DEALS + "d4,o9,won,30,2024-01-05,2024-01-20,Won\n"
             "d8,o8,won,20,2024-01-05,2024-01-21,Won\n"
             "d6,o9,open,2000,2024-01-06,,Proposal\n")


@dataclass(frozen=True)
class Company:
    service: SalesKpiService
    anna: str  # her person key: what every KPI row names her by
    anna_other: str  # her other rep id
    carl: str


def _import(service: SalesKpiService, root: Path, source: str, reps: str,
            deals: str) -> None:
    folder = root / source
    folder.mkdir()
    (folder / "reps.csv").write_text(reps, encoding="utf-8")
    (folder / "deals.csv").write_text(deals, encoding="utf-8")
    report = service.import_path(folder, mapping=None, source=source, dry_run=False)
    assert report.ok, report.errors


@pytest.fixture(params=["two_sources", "one_source_linked"])
def company(request: pytest.FixtureRequest, tmp_path: Path) -> Company:
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    service = SalesKpiService(Settings(workspace=workspace))
    if request.param == "two_sources":
        _import(service, tmp_path, "old_crm", OLD_REPS, OLD_DEALS)
        _import(service, tmp_path, "new_crm", NEW_REPS, NEW_DEALS)
        return Company(service, anna="n7", anna_other="o1", carl="n8")
    _import(service, tmp_path, "old_crm", ONE_REPS, ONE_DEALS)
    service.link_reps(["old_crm:o1", "old_crm:o9"])
    return Company(SalesKpiService(Settings(workspace=workspace)), anna="o1",
                   anna_other="o9", carl="o8")


def _rep_plans(service: SalesKpiService) -> dict[str | None, tuple[str | None, float, object]]:
    return {line.target.rep_id: (line.rep_name, line.result.plan, line.result.actual)
            for line in plan_vs_actual(service, JANUARY[1], level="rep")}


# -- 1. targets and plan attainment ----------------------------------------------------
def test_a_persons_target_is_found_under_either_id_and_edited_in_place(
        company: Company) -> None:
    svc, anna, other = company.service, company.anna, company.anna_other
    # A target set naming her other id is hers: stored for her, measured on 130.
    done = set_target(svc, LOCAL, SetTargetParams(kpi="revenue", value=200, rep=other,
                                                  start=JANUARY[0]))
    assert (done.rep_id, done.change) == (anna, "inserted")
    assert _rep_plans(svc) == {anna: ("Anna Lee", 200, 130)}
    # Edited by her name: the same target changes, no second one.
    again = set_target(svc, LOCAL, SetTargetParams(kpi="revenue", value=300, rep="Anna Lee",
                                                   start=JANUARY[0]))
    assert (again.id, again.change) == (done.id, "updated")
    assert _rep_plans(svc) == {anna: ("Anna Lee", 300, 130)}
    listed = targets(svc, LOCAL, TargetsParams(rep=other)).to_json()["targets"]
    assert [(t["rep_id"], t["value"]) for t in listed] == [(anna, 300)]


def test_a_target_stored_under_her_other_id_is_listed_measured_and_deleted_as_hers(
        company: Company) -> None:
    """As one imported from the old CRM, or typed before the reps were linked."""
    svc, anna, other = company.service, company.anna, company.anna_other
    svc.set_target(kpi="deals_won", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=4, rep_id=other)
    assert _rep_plans(svc) == {anna: ("Anna Lee", 4, 2)}  # her 2 won deals, both ids
    listed = targets(svc, LOCAL, TargetsParams(rep="Anna Lee")).to_json()["targets"]
    assert [(t["kpi"], t["value"], t["rep_id"], t["person"], t["rep_name"])
            for t in listed] == [("deals_won", 4, other, anna, "Anna Lee")]
    gone = delete_targets(svc, LOCAL, DeleteTargetsParams(kpi="deals_won", rep=anna,
                                                          start=JANUARY[0]))
    assert gone.deleted == 1
    assert svc.list_targets() == []


def test_her_targets_under_both_ids_are_deleted_together_and_no_one_elses(
        company: Company) -> None:
    """Typed once for each id before the reps were linked: one delete takes both."""
    svc, anna, other = company.service, company.anna, company.anna_other
    for rep, value in ((anna, 4), (other, 5), (company.carl, 6)):
        svc.set_target(kpi="deals_won", period_start=JANUARY[0], period_end=JANUARY[1],
                       value=value, rep_id=rep)
    assert sorted(t.value for t in svc.targets_of(anna)) == [4, 5]
    gone = delete_targets(svc, LOCAL, DeleteTargetsParams(kpi="deals_won", rep="Anna Lee",
                                                          start=JANUARY[0]))
    assert gone.deleted == 2
    assert [(t.rep_id, t.value) for t in svc.list_targets()] == [(company.carl, 6)]
    log = svc.target_changes(2)
    assert sorted((c["action"], c["rep_id"]) for c in log) == sorted(
        [("deleted", anna), ("deleted", other)])


def test_an_id_two_sources_use_for_two_people_keeps_each_ones_target_apart(
        tmp_path: Path) -> None:
    """``s1`` is Dana in CRM A and Eve in CRM B; A's plan file sets Dana's calls. Listed
    as Dana's; deleting Eve's calls target finds none and leaves Dana's."""
    workspace = tmp_path / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD")
    svc = SalesKpiService(Settings(workspace=workspace))
    for source, who in (("crm_a", "s1,Dana Ray,dana@acme.test,North"),
                        ("crm_b", "s1,Eve Stone,eve@acme.test,South")):
        folder = tmp_path / source
        folder.mkdir()
        (folder / "reps.csv").write_text(f"id,name,email,team\n{who}\n", encoding="utf-8")
        if source == "crm_a":
            (folder / "targets.csv").write_text(
                "rep_id,kpi,period_start,period_end,value\n"
                "s1,calls,2024-01-01,2024-01-31,10\n", encoding="utf-8")
        assert svc.import_path(folder, mapping=None, source=source, dry_run=False).ok
    listed = targets(svc, LOCAL, TargetsParams()).to_json()["targets"]
    assert [(t["rep_id"], t["person"], t["rep_name"]) for t in listed] == [
        ("s1", "crm_a:s1", "Dana Ray")]
    with pytest.raises(NotFound):
        delete_targets(svc, LOCAL, DeleteTargetsParams(kpi="calls", rep="Eve Stone",
                                                       start=JANUARY[0]))
    assert [t.value for t in svc.list_targets()] == [10]
    gone = delete_targets(svc, LOCAL, DeleteTargetsParams(kpi="calls", rep="Dana Ray",
                                                          start=JANUARY[0]))
    assert gone.deleted == 1 and svc.list_targets() == []


def test_she_and_her_team_lead_see_a_target_stored_under_her_other_id(
        company: Company) -> None:
    svc, anna, other = company.service, company.anna, company.anna_other
    svc.set_target(kpi="deals_won", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=4, rep_id=other)
    svc.set_target(kpi="deals_won", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=1, rep_id=company.carl)
    for caller in (Principal(1, "anna", "rep", anna, "North", "en"),
                   Principal(2, "lead", "team_lead", None, "North", "en")):
        listed = targets(svc, caller, TargetsParams()).to_json()["targets"]
        assert [(t["kpi"], t["value"]) for t in listed] == [("deals_won", 4)], caller.role
    carl = Principal(3, "carl", "rep", company.carl, "South", "en")
    listed = targets(svc, carl, TargetsParams()).to_json()["targets"]
    assert [(t["kpi"], t["value"]) for t in listed] == [("deals_won", 1)]


def test_the_targets_page_names_a_target_under_her_other_id_by_her_name(
        company: Company) -> None:
    svc = company.service
    svc.set_target(kpi="deals_won", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=4, rep_id=company.anna_other)
    add_user(svc.settings, "boss", PASSWORD, "head", lang="en")
    client = sign_in(create_app(svc.settings), "boss")
    rows = read(client.get("/targets").text).rows("targets")
    assert [(row[1].text, row[2].text) for row in rows] == [("Deals won", "Anna Lee")]


def test_a_link_naming_her_other_id_shows_her_figures_with_her_in_the_rep_box(
        company: Company) -> None:
    """``?rep=o1`` (her old CRM's id, as in a link from before the move): the head and
    Anna herself see her 130 over both ids, the rep box naming her, nothing left out."""
    svc = company.service
    add_user(svc.settings, "boss", PASSWORD, "head", lang="en")
    add_user(svc.settings, "anna", PASSWORD, "rep", rep_id=company.anna, lang="en")
    for user in ("boss", "anna"):
        client = sign_in(create_app(svc.settings), user)
        html = client.get("/", params={"rep": company.anna_other, "from": "2024-01-01",
                                       "to": "2024-01-31"}).text
        revenue = next(r for r in read(html).rows("headline")
                       if r[1].attrs.get("data-kpi") == "revenue")
        assert revenue[1].value == 130, user
        assert f'value="{company.anna}" selected>Anna Lee<' in html, user
        assert "not among those you may see" not in html, user


# -- 2. contests ---------------------------------------------------------------------
def test_a_contest_names_the_person_and_counts_both_ids(company: Company) -> None:
    svc, anna = company.service, company.anna
    definition = parse_definition({
        "name": "January", "kpi": "revenue", "start": "2024-01-01", "end": "2024-01-31",
        "members": [company.anna_other, "o2", company.carl]})
    contest = contest_service.create(svc, definition, actor="head")
    assert contest.definition.members == [anna, "o2", company.carl]
    board = contest_service.board(svc, contest, LOCAL)
    assert [(e.key, e.name, e.rank, e.score) for e in board.entries] == [
        (anna, "Anna Lee", 1, 130), ("o2", "Boris Kim", 2, 50),
        (company.carl, "Carl Diaz", 3, 20)]
    # Both her ids are one participant, not two.
    twice = contest_service.create(svc, parse_definition({
        "name": "Twice", "kpi": "revenue", "start": "2024-01-01", "end": "2024-01-31",
        "members": [company.anna_other, anna, "o2"]}), actor="head")
    assert twice.definition.members == [anna, "o2"]


def test_a_contest_by_target_finds_a_target_set_under_her_other_id(
        company: Company) -> None:
    svc, anna = company.service, company.anna
    svc.set_target(kpi="revenue", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=260, rep_id=company.anna_other)
    svc.set_target(kpi="revenue", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=200, rep_id="o2")
    contest = contest_service.create(svc, parse_definition({
        "name": "Plan", "kpi": "revenue", "rank_by": "target", "start": "2024-01-01",
        "end": "2024-01-31", "members": [anna, "o2"]}), actor="head")
    board = contest_service.board(svc, contest, LOCAL)
    # 130 / 260 = 0.5 ahead of 50 / 200 = 0.25.
    assert [(e.key, e.target, e.score) for e in board.entries] == [
        (anna, 260, 0.5), ("o2", 200, 0.25)]


# -- 3. the forecast -----------------------------------------------------------------
def _january_lines(svc: SalesKpiService, **params: object) -> dict[tuple[str, str | None],
                                                                   dict[str, object]]:
    found = forecast(svc, LOCAL, ForecastParams(at=dt.date(2024, 1, 25), simulations=200,
                                                **params)).to_json()
    return {(ln["level"], ln["rep"] or ln["team"]): ln for ln in found["lines"]
            if ln["period_start"] == "2024-01-01"}


def test_the_forecast_has_one_row_per_person_over_both_ids(company: Company) -> None:
    svc, anna = company.service, company.anna
    lines = _january_lines(svc)
    reps = {who: (ln["rep_name"], ln["won_to_date"], ln["open_deals"])
            for (level, who), ln in lines.items() if level == "rep"}
    assert reps == {anna: ("Anna Lee", 130, 2), "o2": ("Boris Kim", 50, 0),
                    company.carl: ("Carl Diaz", 20, 0)}
    assert lines[("team", "North")]["won_to_date"] == 180
    # Asked for by her other id: her line, not an empty forecast.
    mine = _january_lines(svc, rep=company.anna_other)
    assert [(who, ln["won_to_date"]) for (_level, who), ln in mine.items()] == [(anna, 130)]


def test_the_forecasts_plan_is_her_latest_target_counted_once(company: Company) -> None:
    """A plan under her other id (imported from the old CRM), then one set for her: the
    latest is her plan, and North's sum of reps' plans holds it once (300, not 500)."""
    svc, anna = company.service, company.anna
    svc.set_target(kpi="revenue", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=200, rep_id=company.anna_other)
    svc.set_target(kpi="revenue", period_start=JANUARY[0], period_end=JANUARY[1],
                   value=300, rep_id=anna)
    lines = _january_lines(svc)
    assert lines[("rep", anna)]["plan"] == 300
    assert lines[("team", "North")]["plan"] == 300
    assert lines[("company", None)]["plan"] == 300
