"""Reps from several sources: matched by e-mail or by hand, duplicates reported."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.query import KpiQuery
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.store.analytics import AnalyticsStore
from saleskpi.store.people import LinkError, link, people
from tests.backends import BackendChoice

ON_CLICKHOUSE = True  # the matching test below runs on every backend

OLD_REPS = """id,name,email,team
o1,Anna Lee,anna@acme.test,North
o2,Boris Kim,boris@acme.test,North
o3,Vera Popova,,South
1,Gleb Orlov,gleb@acme.test,South
"""
OLD_DEALS = """id,rep_id,status,amount,closed_at
d1,o1,won,100,2024-01-10
d2,o2,won,50,2024-01-11
d3,1,won,5,2024-01-12
"""
NEW_REPS = """id,name,email,team
n7,Anna Lee,ANNA@acme.test ,North
n8,Boris Kim,b.other@acme.test,North
n9,vera  popova,,South
1,Dana Fox,dana@acme.test,South
"""
NEW_DEALS = """id,rep_id,status,amount,closed_at
d1,n7,won,30,2024-02-10
d2,n8,won,20,2024-02-11
d3,n9,lost,70,2024-02-12
d4,1,won,7,2024-02-13
"""


def _folder(root: Path, name: str, reps: str, deals: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "reps.csv").write_text(reps, encoding="utf-8")
    (folder / "deals.csv").write_text(deals, encoding="utf-8")
    return folder


def _two_sources(tmp_path: Path, settings: Settings) -> SalesKpiService:
    svc = SalesKpiService(settings)
    for name, reps, deals in (("old_crm", OLD_REPS, OLD_DEALS), ("new_crm", NEW_REPS, NEW_DEALS)):
        report = svc.import_path(_folder(tmp_path, name, reps, deals), mapping=None,
                                 source=name, dry_run=False)
        assert report.ok, report.errors
    return svc


@pytest.fixture
def service(tmp_path: Path) -> SalesKpiService:
    return _two_sources(tmp_path, Settings(workspace=tmp_path / "ws"))


def _won(service: SalesKpiService) -> dict[str, tuple[float | None, float | None]]:
    card = service.scorecard(KpiQuery(("deals_won", "revenue"), by=("rep",)))
    return {r.keys["rep"] or "": (r.values["deals_won"].value, r.values["revenue"].value)
            for r in card.rows}


def test_same_email_in_two_sources_is_one_person(service: SalesKpiService) -> None:
    won = _won(service)
    # Anna: o1 (old) and n7 (new) share an e-mail (case and spaces aside). Her person key
    # is the first member by source name: new_crm:n7 -> "n7".
    assert won["n7"] == (2, 130)
    assert "o1" not in won
    # Boris has different e-mails: two people until linked.
    assert won["o2"] == (1, 50) and won["n8"] == (1, 20)
    # Two different people with the id "1" keep apart, with the source in the key.
    assert won["old_crm:1"] == (1, 5) and won["new_crm:1"] == (1, 7)
    assert len(won) == 7  # n7, o2, n8, o3, n9, old_crm:1, new_crm:1


def test_every_backend_matches_the_same_people(tmp_path: Path, backend: BackendChoice) -> None:
    """The rep_people view is spelt per dialect (store/rep_people.py, store/clickhouse.py):
    the same reps make the same people everywhere."""
    save_workspace_settings(Settings(workspace=tmp_path / "ws"), **backend.settings())
    won = _won(_two_sources(tmp_path, Settings(workspace=tmp_path / "ws")))
    assert won == {"n7": (2, 130), "o2": (1, 50), "n8": (1, 20), "o3": (0, 0),
                   "n9": (0, 0), "old_crm:1": (1, 5), "new_crm:1": (1, 7)}


def test_reps_linked_within_one_source_are_one_person_on_every_backend(
        tmp_path: Path, backend: BackendChoice) -> None:
    """A rep whose account in the one CRM was made anew (o1, then o9): linked by hand,
    their deals are one person's, as across sources."""
    save_workspace_settings(Settings(workspace=tmp_path / "ws"), **backend.settings())
    svc = SalesKpiService(Settings(workspace=tmp_path / "ws"))
    reps = OLD_REPS + "o9,Anna Lee,,North\n"
    deals = OLD_DEALS + "d4,o9,won,40,2024-03-01\n"
    report = svc.import_path(_folder(tmp_path, "old_crm", reps, deals), mapping=None,
                             source="old_crm", dry_run=False)
    assert report.ok, report.errors
    assert _won(svc)["o9"] == (1, 40)
    svc.link_reps(["old_crm:o1", "old_crm:o9"])
    # d1 100 + d4 40, under the first member's id; the others as they were.
    assert _won(SalesKpiService(Settings(workspace=tmp_path / "ws"))) == {
        "o1": (2, 140), "o2": (1, 50), "1": (1, 5), "o3": (0, 0)}


def test_manual_link_merges_and_possible_duplicates_are_reported(
        service: SalesKpiService) -> None:
    with AnalyticsStore(service.settings.analytics_path) as store:
        report = people(store)
        # "Vera Popova" and "vera  popova" look alike but nothing proves it: reported only.
        assert ["n9", "o3"] in report.possible_duplicates
        assert ["n8", "o2"] in report.possible_duplicates
        anna = next(p for p in report.people if p.person == "n7")
        assert anna.matched_by == "email" and len(anna.members) == 2
        link(store, ["old_crm:o2", "new_crm:n8"])
        with pytest.raises(LinkError, match="no rep with id 'x9'"):
            link(store, ["old_crm:o3", "new_crm:x9"])
    won = _won(service)
    assert won["n8"] == (2, 70)
    assert "o2" not in won
    # Filtering by the person works across both sources.
    card = service.scorecard(KpiQuery(("deals_won",), where=(("rep", ("n8",)),)))
    assert card.rows[0].values["deals_won"].value == 2


def test_team_slice_uses_each_reps_own_team(service: SalesKpiService) -> None:
    card = service.scorecard(KpiQuery(("revenue",), by=("team",)))
    revenue = {r.keys["team"]: r.values["revenue"].value for r in card.rows}
    assert revenue == {"North": 200, "South": 12}


def test_a_workspace_made_before_the_people_view_is_upgraded_on_read(
        service: SalesKpiService) -> None:
    import duckdb

    con = duckdb.connect(str(service.settings.analytics_path))
    con.execute("DROP VIEW rep_people")
    con.close()
    won = _won(service)  # a read-only scorecard: must upgrade, not fail
    assert won["n7"] == (2, 130)


def test_a_person_in_two_teams_keeps_each_teams_part_in_a_team_leads_view(
        tmp_path: Path) -> None:
    """A team lead's scorecard by rep, cut from the company's answers (the server's
    way): Anna moved from North (old CRM, o1) to South (new CRM, n7), so each team's
    row of her holds only that team's deals, as computing the team alone gives; the
    company's row by rep alone (130) is no team's."""
    from saleskpi.domain.query import Scope

    moved = NEW_REPS.replace("n7,Anna Lee,ANNA@acme.test ,North",
                             "n7,Anna Lee,ANNA@acme.test ,South")
    settings = Settings(workspace=tmp_path / "ws")
    svc = SalesKpiService(settings)
    for name, reps, deals in (("old_crm", OLD_REPS, OLD_DEALS), ("new_crm", moved, NEW_DEALS)):
        assert svc.import_path(_folder(tmp_path, name, reps, deals), mapping=None,
                               source=name, dry_run=False).ok
    cached = SalesKpiService(settings.model_copy(update={"cache_seconds": 600}))
    query = KpiQuery(("deals_won", "revenue"), by=("rep",))
    for team, anna in (("North", (1, 100)), ("South", (1, 30))):
        scope = Scope(teams=frozenset({team}))
        rows = {r.keys["rep"]: (r.values["deals_won"].value, r.values["revenue"].value)
                for r in cached.scorecard(query, scope).rows}
        assert rows["n7"] == anna
        direct = {r.keys["rep"]: (r.values["deals_won"].value, r.values["revenue"].value)
                  for r in svc.scorecard(query, scope).rows}
        assert rows == direct


OLD_STAGES = """deal_id,stage,entered_at
d1,New,2024-01-02 10:00
d1,Proposal,2024-01-05 10:00
d2,New,2024-01-03 10:00
"""
NEW_STAGES = """deal_id,stage,entered_at
d1,New,2024-02-01 10:00
d1,Proposal,2024-02-05 10:00
d2,New,2024-02-02 10:00
d4,New,2024-02-03 10:00
"""


def test_the_funnel_counts_a_persons_deals_from_every_source(
        tmp_path: Path, backend: BackendChoice) -> None:
    """Anna is o1 in the old CRM and n7 in the new one (one e-mail): her funnel, asked
    by her name, by either id, by her person key (her own login's scope) or by rep, holds
    both deals (hand-counted: two entered New and both went on), as her scorecard does."""
    from saleskpi.domain.funnel import FunnelOptions
    from saleskpi.domain.query import Scope

    save_workspace_settings(Settings(workspace=tmp_path / "ws"), **backend.settings())
    svc = SalesKpiService(Settings(workspace=tmp_path / "ws"))
    for name, reps, deals, stages in (("old_crm", OLD_REPS, OLD_DEALS, OLD_STAGES),
                                      ("new_crm", NEW_REPS, NEW_DEALS, NEW_STAGES)):
        folder = _folder(tmp_path, name, reps, deals)
        (folder / "stage_changes.csv").write_text(stages, encoding="utf-8")
        assert svc.import_path(folder, mapping=None, source=name, dry_run=False).ok

    def new_stage(report: object, rep: str | None = None) -> tuple[int, int]:
        (pipeline,) = report.pipelines  # type: ignore[attr-defined]
        part = pipeline.team if rep is None else next(r for r in pipeline.reps
                                                      if r.rep == rep)
        row = next(s for s in part.stages if s.stage == "New")
        return row.entered, row.converted

    assert new_stage(svc.funnel(FunnelOptions(where=(("rep", ("Anna Lee",)),)))) == (2, 2)
    assert new_stage(svc.funnel(FunnelOptions(where=(("rep", ("n7",)),)))) == (2, 2)
    # Her old CRM's id means her too.
    assert new_stage(svc.funnel(FunnelOptions(where=(("rep", ("o1",)),)))) == (2, 2)
    assert new_stage(svc.funnel(FunnelOptions(), Scope(rep_ids=frozenset({"n7"})))) == (2, 2)
    by_rep = svc.funnel(FunnelOptions(by_rep=True))
    (pipeline,) = by_rep.pipelines
    anna = [r for r in pipeline.reps if r.rep_name == "Anna Lee"]
    assert [r.rep for r in anna] == ["n7"]  # one row of hers, not one per source
    assert new_stage(by_rep, "n7") == (2, 2)
    # Boris (o2, n8: two people until linked) and the two different reps named "1";
    # every deal with a history was won, so each entry into New converted.
    assert new_stage(by_rep, "o2") == (1, 1) and new_stage(by_rep, "n8") == (1, 1)
    assert new_stage(by_rep, "new_crm:1") == (1, 1)
    assert "old_crm:1" not in {r.rep for r in pipeline.reps}  # d3 has no history
    assert new_stage(by_rep) == (5, 5)
    if backend.name != "duckdb":
        return
    # The same from the events the server keeps for the head of sales's funnels.
    assert svc.keep_funnel()
    assert new_stage(svc.funnel(FunnelOptions(where=(("rep", ("Anna Lee",)),)))) == (2, 2)
    kept = svc.funnel(FunnelOptions(by_rep=True))
    assert [r.rep for r in kept.pipelines[0].reps if r.rep_name == "Anna Lee"] == ["n7"]
    assert new_stage(kept, "n7") == (2, 2) and new_stage(kept) == (5, 5)


def test_the_reps_list_as_csv_names_every_source_rep_and_its_person(
        service: SalesKpiService, run_cli: Any) -> None:
    """``saleskpi reps --format csv``: a line per source's rep with the person it counts
    as (Anna's two records are one person, n7; the two reps named "1" are two)."""
    result = run_cli(service.settings.workspace, "reps", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["person", "person_name", "matched_by", "source", "id", "name",
                             "email"]
    person = {(r["source"], r["id"]): r["person"] for r in rows}
    assert person == {("old_crm", "o1"): "n7", ("new_crm", "n7"): "n7",
                      ("old_crm", "o2"): "o2", ("new_crm", "n8"): "n8",
                      ("old_crm", "o3"): "o3", ("new_crm", "n9"): "n9",
                      ("old_crm", "1"): "old_crm:1", ("new_crm", "1"): "new_crm:1"}
    assert {r["matched_by"] for r in rows if r["person"] == "n7"} == {"email"}


def test_plans_set_in_the_old_crm_are_the_persons_plans(tmp_path: Path) -> None:
    """Plans imported with the old CRM name Anna by her old id (o1); she is n7 in every
    KPI. Her plan vs actual counts both sources' deals (hand-counted: one won in January
    for 100 in the old CRM, one in February for 30 in the new), she sees her own plans,
    and North's sum of reps' plans holds hers."""
    import datetime as dt

    from saleskpi.domain.query import Scope
    from saleskpi.service.planner import plan_vs_actual

    svc = SalesKpiService(Settings(workspace=tmp_path / "ws"))
    for name, reps, deals in (("old_crm", OLD_REPS, OLD_DEALS), ("new_crm", NEW_REPS, NEW_DEALS)):
        folder = _folder(tmp_path, name, reps, deals)
        if name == "old_crm":
            (folder / "targets.csv").write_text(
                "kpi,period_start,period_end,value,rep_id,team\n"
                "deals_won,2024-01-01,2024-01-31,2,o1,\n"
                "revenue,2024-01-01,2024-03-31,500,o1,\n", encoding="utf-8")
        assert svc.import_path(folder, mapping=None, source=name, dry_run=False).ok
    anna = Scope(rep_ids=frozenset({"n7"}))

    def plans(at: dt.date, **kw: Any) -> dict[tuple[str, str | None], tuple[float, Any]]:
        return {(line.target.kpi, line.target.rep_id or line.target.team):
                (line.result.plan, line.result.actual)
                for line in plan_vs_actual(svc, at, **kw)}

    january = plans(dt.date(2024, 1, 31), level="rep", scope=anna, who="n7")
    assert january == {("deals_won", "n7"): (2, 1), ("revenue", "n7"): (500, 100)}
    assert plans(dt.date(2024, 2, 29), level="rep", scope=anna) == {
        ("revenue", "n7"): (500, 130)}
    # The team's plan is the sum of its reps' plans: North's revenue is Anna's 500.
    assert plans(dt.date(2024, 2, 29), level="team")[("revenue", "North")][0] == 500
    lines = plan_vs_actual(svc, dt.date(2024, 2, 29), level="rep")
    assert [line.rep_name for line in lines] == ["Anna Lee"]


def test_a_rep_user_names_one_person_or_is_asked_which(service: SalesKpiService) -> None:
    """A rep user given by a source's id or name is stored as the person; a name two
    people have (Boris, o2 and n8, not linked) or an id two sources use ("1") is refused
    with the people to choose from: the wrong one would see another's figures."""
    from saleskpi.domain.errors import InvalidQuery
    from saleskpi.views.base import LOCAL
    from saleskpi.views.people import NewUser, create_user

    def add(username: str, rep: str) -> str | None:
        return create_user(service, LOCAL, NewUser(username=username, role="rep",
                                                   password="long enough pw",
                                                   rep_id=rep)).rep_id

    assert add("anna_old_id", "o1") == "n7" and add("anna_by_name", "Anna Lee") == "n7"
    assert add("gleb", "old_crm:1") == "old_crm:1"
    borises = "give one of n8 (Boris Kim), o2 (Boris Kim)"
    with pytest.raises(InvalidQuery, match=re.escape(borises)) as boris:
        add("boris", "Boris Kim")
    assert boris.value.code == "ambiguous_rep"
    ones = "give one of new_crm:1 (Dana Fox), old_crm:1 (Gleb Orlov)"
    with pytest.raises(InvalidQuery, match=re.escape(ones)):
        add("one", "1")


def test_a_rep_filter_means_the_person_its_id_or_name_is_or_asks_which(
        service: SalesKpiService) -> None:
    """A filter by Anna's old CRM id means Anna (both CRMs' deals: 2 won, 130), as her
    name and her person key do; a name two people have (Boris, o2 and n8) or an id two
    sources use ("1") is refused naming both, never answered for one of them (or for
    no one: a silent zero). Within a caller's scope only the people they may see count:
    a rep who is o2 asking for "Boris Kim" gets their own figures."""
    from saleskpi.domain.errors import InvalidQuery
    from saleskpi.domain.funnel import FunnelOptions
    from saleskpi.domain.query import Scope

    def won(rep: str, scope: Scope | None = None) -> tuple[object, object]:
        query = KpiQuery(("deals_won", "revenue"), where=(("rep", (rep,)),))
        card = service.scorecard(query) if scope is None else service.scorecard(query, scope)
        (row,) = card.rows
        return row.values["deals_won"].value, row.values["revenue"].value

    assert won("o1") == won("Anna Lee") == won("n7") == (2, 130)
    assert won("old_crm:1") == (1, 5) and won("n8") == (1, 20)
    for text, named in (("Boris Kim", "n8 (Boris Kim), o2 (Boris Kim)"),
                        ("1", "new_crm:1 (Dana Fox), old_crm:1 (Gleb Orlov)")):
        with pytest.raises(InvalidQuery, match=f"give one of {re.escape(named)}") as asked:
            won(text)
        assert asked.value.code == "ambiguous_rep"
        with pytest.raises(InvalidQuery, match="several reps"):
            service.funnel(FunnelOptions(where=(("rep", (text,)),)))
    assert won("Boris Kim", Scope(rep_ids=frozenset({"o2"}))) == (1, 50)


def test_a_target_or_contest_for_a_name_two_people_have_asks_which(
        service: SalesKpiService) -> None:
    """Setting Boris's plan by a name two people have, or a contest of the two reps
    named "1", is refused naming both (the wrong one's plan would be set); by her old
    CRM id Anna's plan is hers."""
    from saleskpi.domain.contests import parse_definition
    from saleskpi.domain.errors import InvalidQuery
    from saleskpi.service import contests as contest_service
    from saleskpi.service.contests import ContestError
    from saleskpi.service.principal import Principal
    from saleskpi.views.base import LOCAL
    from saleskpi.views.plans import GridParams, SetTargetParams, import_grid, set_target

    def plan(rep: str, caller: Principal = LOCAL) -> str | None:
        return set_target(service, caller, SetTargetParams(
            kpi="revenue", value=100, rep=rep, start="2024-02-01")).rep_id

    assert plan("o1") == "n7"
    with pytest.raises(InvalidQuery, match=re.escape("n8 (Boris Kim), o2 (Boris Kim)")) as asked:
        plan("Boris Kim")
    assert asked.value.code == "ambiguous_rep"
    # In a grid of plans, on the line that names him; no cell of the grid is set.
    grid = "rep,2024-02\nAnna Lee,7\nBoris Kim,5\n"
    with pytest.raises(InvalidQuery, match=r"plans\.csv, line 3: 'Boris Kim' is several"):
        import_grid(service, LOCAL, GridParams(kpi="deals_won", grid=grid, name="plans.csv"))
    with pytest.raises(ContestError, match=re.escape("new_crm:1 (Dana Fox), old_crm:1")):
        contest_service.checked(service, parse_definition({
            "name": "Ones", "kpi": "revenue", "start": "2024-02-01", "end": "2024-02-29",
            "members": ["1", "n8"]}))
    assert [(t.kpi, t.rep_id) for t in service.list_targets()] == [("revenue", "n7")]


def test_the_rep_pickers_tell_namesakes_apart_by_id(service: SalesKpiService) -> None:
    """Two Boris Kims (o2 and n8, not linked) are two choices that say which is which;
    a name only one person has is shown as it is."""
    from saleskpi.service.auth import add_user
    from saleskpi.surfaces.server import create_app
    from tests.test_web import PASSWORD, sign_in

    add_user(service.settings, "boss", PASSWORD, "head", lang="en")
    client = sign_in(create_app(service.settings), "boss")
    for path in ("/", "/targets"):
        options = re.findall(r'<option translate="no" value="([^"]+)"[^>]*>([^<]+)</option>',
                             client.get(path).text)
        assert ("n8", "Boris Kim (n8)") in options and ("o2", "Boris Kim (o2)") in options
        assert ("n7", "Anna Lee") in options, path


def test_the_rows_behind_a_number_name_each_reps_person(service: SalesKpiService) -> None:
    """Rep id 1 is Gleb in the old CRM and Dana in the new: each record's rep is named by
    its own source's rep, right after the id the CRM gave."""
    from saleskpi.views.base import LOCAL
    from saleskpi.views.drill import RowsParams, rows_behind

    view = rows_behind(service, LOCAL, RowsParams.model_validate(
        {"kpi": "deals_won", "range": "all"}))
    columns = view.columns
    assert columns[columns.index("rep_id") + 1] == "rep_name"
    named = {(r["datasource"], r["id"]): (r["rep_id"], r["rep_name"]) for r in view.rows}
    assert named == {
        ("old_crm", "d1"): ("o1", "Anna Lee"), ("old_crm", "d2"): ("o2", "Boris Kim"),
        ("old_crm", "d3"): ("1", "Gleb Orlov"), ("new_crm", "d1"): ("n7", "Anna Lee"),
        ("new_crm", "d2"): ("n8", "Boris Kim"), ("new_crm", "d4"): ("1", "Dana Fox")}
