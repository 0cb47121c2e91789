"""The forecast through the service, the views and the CLI, on a real workspace.

The company is ``tests/forecast_world.py``'s, exported as CSV as its CRM showed it on
AT (reps a and b in team North, c in South) and imported; expected figures (won so
far, open deals, actuals) are counted from the generated deals, not by the code
under test. Scope: a rep's forecast is made from the rep's deals and the team's
aggregate only, so changing another rep's open deals changes nothing of it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pytest

from saleskpi.domain.errors import Forbidden, InvalidQuery, NotFound
from saleskpi.domain.forecasting import Band, ForecastLine
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.service.core import SalesKpiService
from saleskpi.service.principal import Principal
from saleskpi.views.base import LOCAL
from saleskpi.views.forecast import (
    BacktestParams,
    DealChancesParams,
    ForecastParams,
    TrackRecordParams,
    backtest,
    deal_chances,
    forecast,
    track_record,
)
from tests.backends import BackendChoice
from tests.forecast_world import START, Rep, TrueDeal, as_known, generate, write_csv
from tests.postgres_server import PostgresServer

REPS = [Rep("a", "North", 0.8, 0.6), Rep("b", "North", 0.6, 0.4), Rep("c", "South", 0.5, 0.5)]
AT = START + dt.timedelta(days=200)  # 2023-07-20 00:00 UTC: the data's "now"
DAY = (AT - dt.timedelta(days=1)).date()  # --at DAY: as of the end of 2023-07-19
JULY = (dt.datetime(2023, 7, 1), dt.datetime(2023, 8, 1))
MAY = (dt.date(2023, 5, 1), dt.date(2023, 5, 31))
COMMIT_JULY_A = 12345.0
COMMIT_MAY_A = 20000.0
ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend


def head() -> Principal:
    return Principal(user_id=1, username="head", role="head", rep_id=None, team=None,
                     lang="en")


def rep_a() -> Principal:
    return Principal(user_id=2, username="a", role="rep", rep_id="a", team="North", lang="en")


def lead_north() -> Principal:
    return Principal(user_id=3, username="n", role="team_lead", rep_id=None, team="North",
                     lang="en")


def _workspace(root: Path, world: list[TrueDeal], backend: BackendChoice) -> Settings:
    data = root / "data"
    write_csv(world, AT, data)
    with (data / "forecasts.csv").open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "made_at", "period_start", "period_end", "amount", "rep_id",
                         "category", "currency"])
        writer.writerow(["f1", "2023-07-01 09:00", "2023-07-01", "2023-07-31",
                         COMMIT_JULY_A, "a", "commit", "USD"])
        writer.writerow(["f2", "2023-05-01 09:00", MAY[0], MAY[1], COMMIT_MAY_A, "a", "commit",
                         "USD"])
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="UTC", currency="USD",
                            **backend.settings())
    settings = Settings(workspace=workspace)
    assert settings.backend == backend.name
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings


@pytest.fixture(scope="module")
def world() -> list[TrueDeal]:
    return generate(REPS, 230, seed=11)


@pytest.fixture(scope="module")
def settings(world: list[TrueDeal], tmp_path_factory: pytest.TempPathFactory,
             backend: BackendChoice) -> Settings:
    return _workspace(tmp_path_factory.mktemp("forecast"), world, backend)


@pytest.fixture(scope="module")
def others_changed(world: list[TrueDeal], tmp_path_factory: pytest.TempPathFactory,
                   backend: BackendChoice) -> Settings:
    """The same company, but every open deal of b and c is worth a thousand times more."""
    changed = [TrueDeal(d.rep, d.id, d.created, d.proposal, d.closed, d.won,
                        d.amount * 1000 if d.rep.id != "a" and d.closed > AT else d.amount)
               for d in world]
    return _workspace(tmp_path_factory.mktemp("forecast-changed"), changed, backend)


def ask(settings: Settings, caller: Principal, **params: object) -> dict[str, object]:
    view = forecast(SalesKpiService(settings), caller, ForecastParams(at=DAY, **params))
    return view.to_json()


def open_at(world: list[TrueDeal], rep: str | None = None) -> list[str]:
    return sorted(d.id for d in as_known(world, AT)
                  if d.status == "open" and (rep is None or d.rep == rep))


def won_in(world: list[TrueDeal], start: dt.datetime, end: dt.datetime,
           rep: str | None = None) -> float:
    return sum(d.amount for d in world if d.won and start <= d.closed < end
               and (rep is None or d.rep.id == rep))


def test_head_sees_reps_teams_and_company_with_won_so_far(settings: Settings,
                                                          world: list[TrueDeal]) -> None:
    found = ask(settings, head(), deals=1000)
    assert found["periods"] == [{"start": "2023-07-01", "end": "2023-07-31"},
                                {"start": "2023-08-01", "end": "2023-08-31"}]
    assert found["as_of"] == "2023-07-20T00:00:00"
    lines = {(ln["level"], ln["rep"], ln["team"], ln["period_start"]): ln
             for ln in found["lines"]}
    company = lines[("company", None, None, "2023-07-01")]
    assert company["won_to_date"] == pytest.approx(won_in(world, JULY[0], AT), abs=0.01)
    assert company["open_deals"] == len(open_at(world))
    assert company["p10"] <= company["p50"] <= company["p90"]
    assert company["p10"] >= company["won_to_date"]
    north = lines[("team", None, "North", "2023-07-01")]
    assert north["won_to_date"] == pytest.approx(
        won_in(world, JULY[0], AT, "a") + won_in(world, JULY[0], AT, "b"), abs=0.01)
    assert lines[("rep", "a", "North", "2023-07-01")]["commit"] == COMMIT_JULY_A
    # A team's or the company's commit: the sum of its reps' (only a made one).
    assert north["commit"] == COMMIT_JULY_A
    assert company["commit"] == COMMIT_JULY_A
    assert sorted(d["id"] for d in found["deals"]) == open_at(world)
    # The learned chances sit beside the stage win rate of closed deals.
    stages = {s["stage"]: s for s in found["stages"]}
    assert set(stages) == {"Qualify", "Proposal"}
    assert stages["Proposal"]["learned"][0]["low"] <= stages["Proposal"]["learned"][0]["p"]


def test_a_rep_gets_only_their_own_forecast(settings: Settings,
                                            world: list[TrueDeal]) -> None:
    found = ask(settings, rep_a(), deals=1000)
    assert {(ln["level"], ln["rep"]) for ln in found["lines"]} == {("rep", "a")}
    assert sorted(d["id"] for d in found["deals"]) == open_at(world, "a")
    assert found["lines"][0]["won_to_date"] == pytest.approx(won_in(world, JULY[0], AT, "a"),
                                                             abs=0.01)
    # The learned table: the team's aggregate and the rep's own, no one else's.
    assert {b["rep"] for s in found["stages"] for b in s["learned"]} == {None, "a"}
    chances = deal_chances(SalesKpiService(settings), rep_a(), DealChancesParams())
    assert {d["rep"] for d in chances.to_json()["deals"]} <= {"a"}


def test_other_reps_open_deals_do_not_move_a_reps_forecast(
        settings: Settings, others_changed: Settings) -> None:
    mine = ask(settings, rep_a())
    mine_again = ask(others_changed, rep_a())
    assert mine["lines"] == mine_again["lines"]
    assert mine["deals"] == mine_again["deals"]
    # ... while the head's company forecast does move (the change is real).
    company = [ln for ln in ask(settings, head())["lines"] if ln["level"] == "company"]
    changed = [ln for ln in ask(others_changed, head())["lines"] if ln["level"] == "company"]
    assert changed[0]["p50"] > 10 * company[0]["p50"]


def test_a_team_lead_sees_their_team(settings: Settings, world: list[TrueDeal]) -> None:
    found = ask(settings, lead_north(), deals=1000)
    keys = {(ln["level"], ln["rep"], ln["team"]) for ln in found["lines"]}
    assert keys == {("rep", "a", "North"), ("rep", "b", "North"), ("team", None, "North")}
    assert sorted(d["id"] for d in found["deals"]) == sorted(open_at(world, "a")
                                                              + open_at(world, "b"))


def test_scope_refusals(settings: Settings) -> None:
    service = SalesKpiService(settings)
    with pytest.raises(NotFound):
        forecast(service, rep_a(), ForecastParams(rep="c"))
    with pytest.raises(Forbidden):
        forecast(service, rep_a(), ForecastParams(team="North"))
    with pytest.raises(Forbidden):
        forecast(service, lead_north(), ForecastParams(team="South"))


def test_a_misspelled_team_is_named_not_an_empty_forecast(settings: Settings) -> None:
    service = SalesKpiService(settings)
    with pytest.raises(InvalidQuery, match=r"unknown team 'Nort'.*did you mean North"):
        forecast(service, head(), ForecastParams(team="Nort"))
    lines = forecast(service, head(), ForecastParams(team="North")).to_json()["lines"]
    assert {ln["team"] for ln in lines} == {"North"}


def test_the_same_seed_gives_the_same_forecast(settings: Settings) -> None:
    assert ask(settings, head(), seed=3) == ask(settings, head(), seed=3)
    assert ask(settings, head(), seed=3)["lines"] != ask(settings, head(), seed=4)["lines"]


def test_backtest_scores_each_method_with_sample_sizes(settings: Settings,
                                                       world: list[TrueDeal]) -> None:
    view = backtest(SalesKpiService(settings), LOCAL, BacktestParams(simulations=200))
    found = view.to_json()
    # Periods from 90 days after the first deal to the last that had ended by the data's
    # end: May and June 2023.
    assert found["periods"] == [{"start": "2023-05-01", "end": "2023-05-31"},
                                {"start": "2023-06-01", "end": "2023-06-30"}]
    scores = {(s["method"], s["level"]): s for s in found["scores"]}
    for method in ("ours", "weighted_pipeline", "run_rate"):
        assert scores[(method, "company")]["periods"] == 2
        assert scores[(method, "team")]["periods"] == 4
        assert scores[(method, "rep")]["periods"] == 6
    assert scores[("commit", "rep")]["periods"] == 1  # a's May commit only
    assert scores[("ours", "company")]["calibration"] is not None
    may = next(r for r in found["rows"] if r["method"] == "commit" and r["level"] == "rep")
    assert may["forecast"] == COMMIT_MAY_A
    assert may["actual"] == pytest.approx(won_in(world, dt.datetime(2023, 5, 1),
                                                 dt.datetime(2023, 6, 1), "a"), abs=0.01)


def test_track_record_scores_kept_forecasts_of_closed_periods(
        world: list[TrueDeal], tmp_path: Path,
        backend: BackendChoice) -> None:
    settings = _workspace(tmp_path, world, backend)
    from saleskpi.store.state.forecast_log import record

    lines = [ForecastLine("rep", "a", "A", "North", MAY[0], MAY[1], 0.0, 0.0, 0.0,
                          Band(1000.0, 2000.0, 3000.0, 2000.0), 3),
             ForecastLine("company", None, None, None, MAY[0], MAY[1], 0.0, 0.0, 0.0,
                          Band(10.0, 20.0, 30.0, 20.0), 9)]
    made = dt.datetime(2023, 5, 1, 8, 0)
    record(settings.state_url, lines, made_at=made, grain="month", currency="USD")
    record(settings.state_url, lines, made_at=made + dt.timedelta(hours=2), grain="month",
           currency="USD")  # the same day: replaces the first
    may = (dt.datetime(2023, 5, 1), dt.datetime(2023, 6, 1))
    service = SalesKpiService(settings)
    found = track_record(service, head(), TrackRecordParams()).to_json()
    ours = [r for r in found["rows"] if r["method"] == "ours"]
    assert [(r["level"], r["rep"]) for r in ours] == [("company", None), ("rep", "a")]
    assert ours[0]["made_at"] == "2023-05-01T10:00:00"
    assert ours[1]["actual"] == pytest.approx(won_in(world, *may, "a"), abs=0.01)
    assert ours[0]["actual"] == pytest.approx(won_in(world, *may), abs=0.01)
    scores = {(s["method"], s["level"]): s for s in found["scores"]}
    inside = 1000 <= won_in(world, *may, "a") <= 3000
    assert scores[("ours", "rep")]["calibration"] == (1 if inside else 0)
    # a's May and July commits: both periods have closed.
    assert scores[("commit", "rep")]["periods"] == 2
    # A rep sees their own record; a rep of the other team nothing of a's.
    mine = track_record(service, rep_a(), TrackRecordParams()).to_json()
    assert {(r["level"], r["rep"]) for r in mine["rows"]} == {("rep", "a")}
    other = Principal(user_id=4, username="c", role="rep", rep_id="c", team="South",
                      lang="en")
    assert track_record(service, other, TrackRecordParams()).to_json()["rows"] == []


def test_a_live_forecast_is_kept(world: list[TrueDeal], tmp_path: Path,
        backend: BackendChoice) -> None:
    settings = _workspace(tmp_path, world, backend)
    forecast(SalesKpiService(settings), head(), ForecastParams())
    from saleskpi.store.state.forecast_log import closed_before

    kept = closed_before(settings.state_url, dt.date(2100, 1, 1))
    assert {r.level for r in kept} == {"rep", "team", "company"}
    assert all(r.p10 <= r.p50 <= r.p90 for r in kept)


def test_forecast_page_draws_a_fan_with_the_plan_line(settings: Settings) -> None:
    from fastapi.testclient import TestClient

    from saleskpi.service.auth import add_user
    from saleskpi.surfaces.server import create_app

    add_user(settings, "fc_head", "correct horse battery", "head")
    SalesKpiService(settings).set_target(kpi="revenue", period_start=dt.date(2023, 7, 1),
                                         period_end=dt.date(2023, 7, 31), value=90000.0)
    client = TestClient(create_app(settings))
    login = client.get("/login").text
    token = login.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/login", data={"username": "fc_head", "password":
                                       "correct horse battery", "csrf": token},
                       follow_redirects=False).status_code == 303
    html = client.get("/forecast", params={"at": DAY.isoformat()}).text
    api = client.get("/api/v1/forecast", params={"at": DAY.isoformat()}).json()
    company = next(ln for ln in api["lines"] if ln["level"] == "company")
    assert company["plan"] == 90000
    # Two fans (July, August), each a P10-P90 band and a P50 line; July's plan line.
    assert html.count('class="band"') == 2 and html.count('class="line"') == 2
    assert html.count('class="reference"') == 1
    assert 'data-as-of="2023-07-20T00:00:00"' in html
    # The deals that move the number are named by their rep's name (reps.csv writes
    # "Rep <ID>"), not by the CRM's id.
    deals = html.split('id="forecast_deals"')[1].split("</table>")[0]
    named = {d["rep"]: f"Rep {d['rep'].upper()}" for d in api["deals"]}
    assert named and all(f">{name}<" in deals for name in named.values())
    assert all(d["rep_name"] == named[d["rep"]] for d in api["deals"])
    assert client.get("/forecast", params={"at": "someday"}).status_code == 400


# -- the command line ----------------------------------------------------------------
def test_cli_json_csv_and_table(run_cli, settings: Settings) -> None:
    ws = settings.workspace
    as_json = run_cli(ws, "forecast", "--at", DAY.isoformat(), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    data = as_json.json()
    assert data["lines"] == ask(settings, LOCAL)["lines"]
    as_csv = run_cli(ws, "forecast", "--at", DAY.isoformat(), "--by", "team",
                     "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert {r["level"] for r in rows} == {"team", "company"}
    table = run_cli(ws, "forecast", "--at", DAY.isoformat(), "--stages")
    assert table.returncode == 0, table.stderr
    assert "P50" in table.stdout and "Qualify" in table.stdout
    helped = run_cli(ws, "forecast", "--help")
    assert "Example: saleskpi forecast" in helped.stdout
    bad = run_cli(ws, "forecast", "--by", "product")
    assert bad.returncode != 0 and "--by takes rep or team" in bad.stderr


def test_cli_backtest_deals_and_track(run_cli, settings: Settings) -> None:
    ws = settings.workspace
    done = run_cli(ws, "forecast", "backtest", "--simulations", "200", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert {s["method"] for s in done.json()["scores"]} == {"ours", "weighted_pipeline",
                                                            "commit", "run_rate"}
    table = run_cli(ws, "forecast", "backtest", "--simulations", "200")
    assert table.returncode == 0 and "weighted pipeline" in table.stdout
    deals = run_cli(ws, "forecast", "deals", "--rep", "a", "--format", "csv")
    assert deals.returncode == 0, deals.stderr
    assert deals.stdout.splitlines()[0].startswith("source,id,rep,pipeline,stage")
    track = run_cli(ws, "forecast", "track", "--format", "json")
    assert track.returncode == 0, track.stderr
    assert "scores" in json.loads(track.stdout)


def test_the_server_keeps_a_forecast_while_the_data_is_unchanged(
        world: list[TrueDeal], tmp_path: Path,
        backend: BackendChoice) -> None:
    settings = _workspace(tmp_path, world, backend).model_copy(update={"cache_seconds": 60})
    service = SalesKpiService(settings)
    first = forecast(service, head(), ForecastParams()).source
    assert forecast(service, head(), ForecastParams(deals=3)).source is first
    assert forecast(service, rep_a(), ForecastParams()).source is not first  # another scope
    from saleskpi.store.state.forecast_log import closed_before

    kept = closed_before(settings.state_url, dt.date(2100, 1, 1))
    assert {r.made_at for r in kept if r.level == "company"} == {first.as_of}


def test_the_rows_of_open_deals_carry_their_learned_chance(settings: Settings,
                                                           world: list[TrueDeal]) -> None:
    from saleskpi.views.drill import RowsParams, rows_behind

    service = SalesKpiService(settings)
    found = rows_behind(service, rep_a(), RowsParams(kpi="pipeline_value", limit=1000))
    rows = found.to_json()["rows"]
    assert {"learned_p_win", "learned_p_this_month"} <= set(found.columns)
    chances = {d["id"]: d for d in deal_chances(service, rep_a(), DealChancesParams(
        limit=1000)).to_json()["deals"]}
    # Open now, a's deals (the rows are open at the end of today, as the KPI counts them).
    assert sorted(r["id"] for r in rows) == open_at(world, "a")
    for row in rows:
        assert row["learned_p_win"] == pytest.approx(chances[row["id"]]["p_win"], abs=1e-4)
        assert 0 <= row["learned_p_this_month"] <= row["learned_p_win"] + 1e-9


def test_team_and_company_plans_are_the_sums_of_the_reps_plans(
        world: list[TrueDeal], tmp_path: Path, backend: BackendChoice) -> None:
    """As on the overview: with only reps' plans set, a team's plan beside its forecast is
    the sum of its reps', the company's the sum of all; a plan set on its own wins."""
    settings = _workspace(tmp_path, world, backend)
    service = SalesKpiService(settings)
    teams = {d.rep.id: d.rep.team for d in world}
    plans = {rep: 1000.0 * (i + 1) for i, rep in enumerate(sorted(teams))}
    for rep, value in plans.items():
        service.set_target(kpi="revenue", period_start=dt.date(2023, 7, 1),
                           period_end=dt.date(2023, 7, 31), value=value, rep_id=rep)
    some_team = sorted(set(teams.values()))[0]
    by_hand = {team: sum(v for r, v in plans.items() if teams[r] == team)
               for team in set(teams.values())}
    lines = [ln for ln in ask(settings, head(), by="team")["lines"]
             if ln["period_start"] == "2023-07-01"]
    assert {ln["team"]: ln["plan"] for ln in lines if ln["level"] == "team"} == by_hand
    company = next(ln for ln in lines if ln["level"] == "company")
    assert company["plan"] == sum(plans.values())
    service.set_target(kpi="revenue", period_start=dt.date(2023, 7, 1),
                       period_end=dt.date(2023, 7, 31), value=5.0, team=some_team)
    again = [ln for ln in ask(settings, head(), by="team")["lines"]
             if ln["period_start"] == "2023-07-01" and ln["team"] == some_team]
    assert again[0]["plan"] == 5.0


def test_the_forecast_is_the_same_on_every_backend(
        world: list[TrueDeal], tmp_path_factory: pytest.TempPathFactory,
        postgres_server: PostgresServer) -> None:
    """The same company on DuckDB, PostgreSQL and ClickHouse (chdb): the same deals, stage
    entries and commits read, so the same seeded simulation gives the very same figures,
    and won-so-far is the hand-counted sum on each."""
    pytest.importorskip("chdb")
    choices = [BackendChoice("duckdb"), BackendChoice("postgres", postgres_server),
               BackendChoice("clickhouse", folder=tmp_path_factory.mktemp("chdb-same"))]
    found = {choice.name: ask(_workspace(tmp_path_factory.mktemp(f"same-{choice.name}"),
                                         world, choice), head(), seed=5, deals=1000)
             for choice in choices}
    for name in ("postgres", "clickhouse"):
        assert found[name] == found["duckdb"], name
    company = next(ln for ln in found["clickhouse"]["lines"]
                   if ln["level"] == "company" and ln["period_start"] == "2023-07-01")
    assert company["won_to_date"] == pytest.approx(won_in(world, JULY[0], AT), abs=0.01)
    assert company["open_deals"] == len(open_at(world))
