"""The service's scorecard cache: reused while the data is unchanged, dropped after a change."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from saleskpi.domain.funnel import FunnelOptions
from saleskpi.domain.query import EVERYTHING, KpiQuery, ResultRow, Scope, Scorecard
from saleskpi.domain.settings import Settings
from saleskpi.service.core import FunnelQuestion, Question, SalesKpiService
from saleskpi.service.refresh import load_questions, save_questions
from saleskpi.service.results import ResultCache
from saleskpi.sources.demo import generate_company
from saleskpi.sources.ingest.run import import_frames


def _write(folder: Path, deals: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "reps.csv").write_text("id,name\nr1,Ann\nr2,Bob\n", encoding="utf-8")
    (folder / "deals.csv").write_text("id,rep_id,status,amount,closed_at\n" + deals,
                                      encoding="utf-8")
    return folder


def test_cached_scorecard_is_reused_until_the_data_changes(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", cache_seconds=60)
    service = SalesKpiService(settings)
    assert service.import_path(_write(tmp_path / "a", "d1,r1,won,100,2024-01-10\n"),
                               mapping=None, source=None, dry_run=False).ok
    query = KpiQuery(("revenue",), by=("rep",))
    first = service.scorecard(query)
    again = service.scorecard(query)
    assert service.cache_hits == 1
    assert again.rows[0].values["revenue"].value == first.rows[0].values["revenue"].value == 100
    # A rep's answer is cut out of the company's by-rep answer (one more hit), and
    # holds only their own row.
    mine = service.scorecard(query, Scope(rep_ids=frozenset({"r2"})))
    assert [r.keys["rep"] for r in mine.rows] == ["r2"]
    assert mine.totals[0].values["revenue"].value == 0  # r2's total, not the company's
    assert service.cache_hits == 2
    assert service.import_path(_write(tmp_path / "b", "d2,r1,won,50,2024-01-11\n"),
                               mapping=None, source=None, dry_run=False).ok
    after = service.scorecard(query)
    assert after.rows[0].values["revenue"].value == 150


def test_concurrent_misses_of_one_question_compute_it_once() -> None:
    cache: ResultCache[int] = ResultCache(ttl=60)
    calls: list[int] = []
    go = threading.Barrier(8)

    def slow() -> int:
        calls.append(1)
        time.sleep(0.3)
        return 42

    answers: list[int] = []

    def ask() -> None:
        go.wait()
        answers.append(cache.get("q", slow))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [42] * 8
    assert len(calls) == 1
    assert cache.stats.misses == 1 and cache.stats.waits == 7


def test_a_failed_computation_is_not_kept_and_waiters_see_the_error() -> None:
    cache: ResultCache[int] = ResultCache(ttl=60)

    def broken() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get("q", broken)
    assert cache.get("q", lambda: 7) == 7


def test_answers_expire() -> None:
    cache: ResultCache[int] = ResultCache(ttl=0.05)
    assert cache.get("q", lambda: 1) == 1
    time.sleep(0.1)
    assert cache.get("q", lambda: 2) == 2


# -- a rep's and a team's answers cut out of the company's -----------------------------

@pytest.fixture(scope="module")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    workspace = tmp_path_factory.mktemp("cut")
    settings = Settings(workspace=workspace, timezone="Europe/Kyiv")
    frames = generate_company(0.15, seed=3, end=dt.date(2026, 11, 1), timezone="Europe/Kyiv")
    assert import_frames(settings, frames, source="demo").ok
    return settings


def _same(one: Scorecard, other: Scorecard, *, reasons: bool = True) -> None:
    """Equal rows; sums of floats may differ in the last digits (DuckDB adds in parallel).

    ``reasons=False``: of a value that is not available, compare only that it is not
    (a KPI with no slice by rep nor team names the first of them the query has).
    """
    def number(x: float | None) -> object:
        return None if x is None or math.isnan(x) else pytest.approx(x, rel=1e-9, abs=1e-9)

    def plain(rows: list[ResultRow]) -> list[tuple[object, ...]]:
        return [(r.keys, r.labels,
                 {k: (number(v.value), number(v.numerator), number(v.denominator),
                      number(v.ci_low), number(v.ci_high),
                      v.unavailable if reasons else bool(v.unavailable))
                  for k, v in r.values.items()}) for r in rows]

    assert plain(one.rows) == plain(other.rows)
    assert plain(one.totals) == plain(other.totals)


def test_every_kpi_cut_from_the_company_equals_the_scoped_computation(
        demo_settings: Settings) -> None:
    """The cut (cached server) and the direct scoped query (CLI) give the same rows."""
    direct = SalesKpiService(demo_settings)  # no cache: computes each scope by itself
    cached = SalesKpiService(demo_settings.model_copy(update={"cache_seconds": 600}))
    # Shares are computed per scope (their whole is the scope's total): checked apart.
    shares = {k for k, spec in cached.catalog.kpis.items() if spec.kind == "share"}
    kpis = tuple(sorted(k for k in cached.catalog.kpis if k not in shares))
    people = direct.visible_reps()
    rep, team = people[0].rep, next(p.team for p in people if p.team)
    queries = [
        KpiQuery(kpis),
        KpiQuery(kpis, period="month", start=dt.date(2026, 7, 1), end=dt.date(2026, 10, 31)),
        KpiQuery(kpis, by=("rep",), start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 31)),
        KpiQuery(kpis, by=("source",)),
        KpiQuery(kpis, by=("team",), period="quarter"),
    ]
    scopes = [Scope(rep_ids=frozenset({rep})), Scope(teams=frozenset({team}))]
    for query in queries:
        for scope in scopes:
            _same(cached.scorecard(query, scope), direct.scorecard(query, scope))
    # A head of sales filtering on one rep or one team (a rep's page) is cut the same way.
    computed = cached.results.stats.misses
    for query in queries:
        for where in ((("rep", (rep,)),), (("team", (team,)),)):
            _same(cached.scorecard(replace(query, where=where)),
                  direct.scorecard(replace(query, where=where)))
    # A filter the scope already applies (a team lead's own team, a rep's own team)
    # changes nothing and shares the same answers.
    rep_team = next(p.team for p in people if p.rep == rep)
    for query in queries:
        for scope, where in ((scopes[1], (("team", (team,)),)),
                             (scopes[0], (("team", (rep_team,)),)),
                             (scopes[0], (("rep", (rep,)),))):
            _same(cached.scorecard(replace(query, where=where), scope),
                  direct.scorecard(replace(query, where=where), scope), reasons=False)
    # Every other rep and team is served from the same company-wide answers.
    for query in queries:
        for person in people:
            cached.scorecard(query, Scope(rep_ids=frozenset({person.rep})))
        for other in {p.team for p in people if p.team}:
            cached.scorecard(query, Scope(teams=frozenset({other})))
    assert cached.results.stats.misses == computed
    with_shares = KpiQuery(tuple(sorted(shares)), by=("source",))
    for scope in scopes:
        _same(cached.scorecard(with_shares, scope), direct.scorecard(with_shares, scope))


@pytest.fixture(scope="module")
def teams_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo company large enough to have several teams."""
    settings = Settings(workspace=tmp_path_factory.mktemp("teams"), timezone="Europe/Kyiv")
    frames = generate_company(3, seed=5, end=dt.date(2026, 11, 1), timezone="Europe/Kyiv")
    assert import_frames(settings, frames, source="demo").ok
    return settings


def test_a_teams_question_by_rep_is_cut_from_the_companys_by_rep(
        teams_settings: Settings) -> None:
    """Each rep is in one team: a team lead's scorecard by rep is their members' rows of
    the company's by rep, the answer every rep's page uses too (one company-wide
    computation, not a second by rep and team), and equals computing the team alone."""
    direct = SalesKpiService(teams_settings)
    cached = SalesKpiService(teams_settings.model_copy(update={"cache_seconds": 600}))
    catalog = cached.catalog
    # Forecasts name a team of their own and spend has no rep: those KPIs are cut from
    # the company's by rep and team instead (the test above covers them).
    kpis = tuple(sorted(k for k, spec in catalog.kpis.items() if spec.kind != "share"
                        and not any(m.entity in ("forecasts", "spend")
                                    for m in catalog.measures(k))))
    by_rep = KpiQuery(kpis, by=("rep",), period="month",
                      start=dt.date(2026, 8, 1), end=dt.date(2026, 10, 31))
    people = direct.visible_reps()
    teams = sorted({p.team for p in people if p.team})
    assert len(teams) > 1
    for query in (by_rep, replace(by_rep, by=("rep", "source"))):
        for team in teams:
            scope = Scope(teams=frozenset({team}))
            card = cached.scorecard(query, scope)
            assert {r.keys["rep"] for r in card.rows} == \
                {p.rep for p in people if p.team == team}
            _same(card, direct.scorecard(query, scope))
        for person in people[:5]:
            scope = Scope(rep_ids=frozenset({person.rep}))
            _same(cached.scorecard(query, scope), direct.scorecard(query, scope))
    # Three company-wide answers: the rows by rep, and by rep and source; the teams'
    # totals by team (the same for both). A rep's totals are their rows by rep.
    assert cached.results.stats.misses == 3


def test_by_rep_and_team_lists_each_rep_with_their_own_team(demo_settings: Settings) -> None:
    """Not every rep crossed with every team (the grid of zeros that made caches huge)."""
    service = SalesKpiService(demo_settings)
    card = service.scorecard(KpiQuery(("calls",), by=("rep", "team")))
    assert {(r.keys["rep"], r.keys["team"]) for r in card.rows} == \
        {(p.rep, p.team) for p in service.visible_reps()}
    assert len(card.rows) == len(service.visible_reps())


def test_a_team_lead_by_rep_gets_only_their_team(demo_settings: Settings) -> None:
    service = SalesKpiService(demo_settings.model_copy(update={"cache_seconds": 600}))
    people = service.visible_reps()
    team = next(p.team for p in people if p.team)
    members = {p.rep for p in people if p.team == team}
    card = service.scorecard(KpiQuery(("calls",), by=("rep",)), Scope(teams=frozenset({team})))
    assert {r.keys["rep"] for r in card.rows} == members
    assert all(set(r.keys) == {"rep"} for r in card.rows)


def test_team_average_for_a_rep_is_the_mean_of_the_team(demo_settings: Settings) -> None:
    service = SalesKpiService(demo_settings)
    people = service.visible_reps()
    rep = next(p for p in people if p.team)
    query = KpiQuery(("calls", "win_rate"), start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 30))
    # Independently: each team mate's own scorecard, then the mean by hand.
    mates = [p.rep for p in people if p.team == rep.team]
    # Only mates active in the month count: with a call, or with a deal closed (win rate).
    calls = []
    for mate in mates:
        values = service.scorecard(query, Scope(rep_ids=frozenset({mate}))).rows[0].values
        if values["calls"].value or values["win_rate"].denominator:
            calls.append(values["calls"].value or 0)
    assert calls
    (average,) = service.team_average(query, rep.rep)
    assert average.values["calls"].value == pytest.approx(sum(calls) / len(calls))
    assert "rep" not in average.keys  # an aggregate: no team mate's row is handed out


def test_visible_reps_follow_the_scope(demo_settings: Settings) -> None:
    service = SalesKpiService(demo_settings)
    everyone = service.visible_reps(EVERYTHING)
    team = next(p.team for p in everyone if p.team)
    assert {p.rep for p in service.visible_reps(Scope(teams=frozenset({team})))} == \
        {p.rep for p in everyone if p.team == team}
    assert [p.rep for p in service.visible_reps(Scope(rep_ids=frozenset({everyone[0].rep})))] \
        == [everyone[0].rep]


def test_refresh_computes_what_was_asked_after_the_data_changed(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", cache_seconds=600)
    service = SalesKpiService(settings)
    assert service.import_path(_write(tmp_path / "a", "d1,r1,won,100,2024-01-10\n"),
                               mapping=None, source=None, dry_run=False).ok
    query = KpiQuery(("revenue",), by=("rep",))
    service.scorecard(query)
    assert service.refresh() == 0  # nothing missing or expiring
    assert service.import_path(_write(tmp_path / "b", "d2,r1,won,50,2024-01-11\n"),
                               mapping=None, source=None, dry_run=False).ok
    assert service.refresh() == 1
    hits = service.cache_hits
    after = service.scorecard(query)
    assert service.cache_hits == hits + 1  # ready before anyone asked
    assert after.rows[0].values["revenue"].value == 150


def test_recent_questions_survive_a_restart(tmp_path: Path) -> None:
    question = Question(KpiQuery(("revenue", "win_rate"), by=("rep",), period="month",
                                 start=dt.date(2026, 1, 1), end=dt.date(2026, 3, 31),
                                 where=(("source", ("ads", "Реклама")),)),
                        Scope(teams=frozenset({"North"})), True, dt.datetime(2026, 4, 1, 21))
    funnel = FunnelQuestion(FunnelOptions("Sales", True, dt.date(2026, 3, 31),
                                          dt.date(2026, 3, 1), dt.date(2026, 3, 31),
                                          (("source", ("ads",)),)),
                            Scope(rep_ids=frozenset({"r1"})))
    path = tmp_path / "q.json"
    save_questions(path, [(question, 1700000000.0), (funnel, 1700000001.0)])
    assert load_questions(path) == [(question, 1700000000.0), (funnel, 1700000001.0)]
    path.write_text("{broken", encoding="utf-8")
    assert load_questions(path) == []  # a cache file: damaged means empty, not a crash


def test_a_restarted_server_computes_the_saved_questions_by_itself(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from saleskpi.service.refresh import QUESTIONS_FILE
    from saleskpi.surfaces.server import create_app

    settings = Settings(workspace=tmp_path / "ws")
    service = SalesKpiService(settings)
    assert service.import_path(_write(tmp_path / "a", "d1,r1,won,100,2024-01-10\n"),
                               mapping=None, source=None, dry_run=False).ok
    asked = Question(KpiQuery(("revenue",), by=("rep",)), EVERYTHING, True, None)
    save_questions(settings.workspace / QUESTIONS_FILE, [(asked, time.time())])
    app = create_app(settings, refresh=True)
    with TestClient(app):  # runs the lifespan: the refresher starts
        refresher = app.state.refresher
        deadline = time.monotonic() + 60
        while refresher.computed < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert refresher.computed >= 1
        kept = app.state.service
        card = kept.scorecard(asked.query)
        assert kept.cache_hits == 1  # ready before anyone asked
        assert card.rows[0].values["revenue"].value == 100
