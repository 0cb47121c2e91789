"""The funnel from stage history, against a hand-counted company in Europe/Kyiv.

Times without an offset are Kyiv wall-clock time (UTC+2 in January). Every
expected number below is counted by hand from the fixture; the comments show
the counting. Durations are in days.

    deal rep  history (Kyiv time)                                          status
    D1   r1   new 01-01 10:00, qualified 01-03 10:00, proposal 01-08 10:00,
              won 01-10 10:00                                              won
    D2   r1   new 01-02 10:00, qualified 01-06 10:00, lost 01-09 10:00      lost
    D3   r1   new 01-05 00:30, proposal 01-06 10:00 (skips qualified);
              no won row: closed by its status at closed_at 01-15 10:00   won
    D4   r2   new 01-03 10:00, qualified 01-10 10:00, lost 01-12 10:00,
              qualified 01-20 10:00 (reopened), proposal 01-24 10:00,
              won 02-01 10:00                                              won
    D5   r2   new 01-10 10:00, qualified 01-13 10:00, qualified 01-14 10:00
              (the same stage again: one stay)                             open
    D6   r2   new 01-15 10:00                                              open
    D7   r2   new 01-06 10:00, lost 01-16 10:00                             lost
    D8   r1   new 01-20 10:00, qualified 01-26 10:00,
              proposal 02-01 00:30 (= 01-31 22:30 UTC)                     open
    D9   r1   no history                                                   open

Reps: r1 Anna (team North), r2 Boris (team South), r3 Idle (team South, no deals).
Amounts (UAH): D1 1000, D2 500, D3 2000, D4 3000, D5 700, D6 300, D7 100, D8 400, D9 50.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest

from saleskpi.catalog.funnel import FunnelError, load_funnel_config
from saleskpi.domain.funnel import FunnelOptions, FunnelReport, PipelineFunnel, StageRow
from saleskpi.domain.query import Scope
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.engine.funnel import compute_funnel
from saleskpi.service.core import SalesKpiService
from saleskpi.store.backend import open_store
from tests.backends import BackendChoice

REPS = """id,name,team
r1,Anna,North
r2,Boris,South
r3,Idle,South
"""
DEALS = """id,rep_id,status,pipeline,amount,currency,created_at,closed_at
D1,r1,won,main,1000,UAH,2024-01-01 10:00,2024-01-10 10:00
D2,r1,lost,main,500,UAH,2024-01-02 10:00,2024-01-09 10:00
D3,r1,won,main,2000,UAH,2024-01-05 00:30,2024-01-15 10:00
D4,r2,won,main,3000,UAH,2024-01-03 10:00,2024-02-01 10:00
D5,r2,open,main,700,UAH,2024-01-10 10:00,
D6,r2,open,main,300,UAH,2024-01-15 10:00,
D7,r2,lost,main,100,UAH,2024-01-06 10:00,2024-01-16 10:00
D8,r1,open,main,400,UAH,2024-01-20 10:00,
D9,r1,open,main,50,UAH,2024-01-21 10:00,
"""
STAGE_CHANGES = """deal_id,stage,entered_at
D1,new,2024-01-01 10:00
D1,qualified,2024-01-03 10:00
D1,proposal,2024-01-08 10:00
D1,won,2024-01-10 10:00
D2,new,2024-01-02 10:00
D2,qualified,2024-01-06 10:00
D2,lost,2024-01-09 10:00
D3,new,2024-01-05 00:30
D3,proposal,2024-01-06 10:00
D4,new,2024-01-03 10:00
D4,qualified,2024-01-10 10:00
D4,lost,2024-01-12 10:00
D4,qualified,2024-01-20 10:00
D4,proposal,2024-01-24 10:00
D4,won,2024-02-01 10:00
D5,new,2024-01-10 10:00
D5,qualified,2024-01-13 10:00
D5,qualified,2024-01-14 10:00
D6,new,2024-01-15 10:00
D7,new,2024-01-06 10:00
D7,lost,2024-01-16 10:00
D8,new,2024-01-20 10:00
D8,qualified,2024-01-26 10:00
D8,proposal,2024-02-01 00:30
"""
NOW = dt.datetime(2024, 12, 1)
ON_CLICKHOUSE = True  # every test here also runs on ClickHouse (chdb): conftest.backend
ON_CLICKHOUSE_HTTP = True  # and as a server is reached: tests/fakes/clickhouse_http.py
# D8's stay in qualified: 01-26 10:00 -> 02-01 00:30 = 5 days 14.5 hours
D8_QUALIFIED = 5 + 14.5 / 24
# D3's stay in new: 01-05 00:30 -> 01-06 10:00 = 1 day 9.5 hours
D3_NEW = 1 + 9.5 / 24


@pytest.fixture(scope="module", params=["live", "kept"])
def settings(tmp_path_factory: pytest.TempPathFactory, backend: BackendChoice,
             request: pytest.FixtureRequest) -> Settings:
    """The company, its funnel asked of the stored tables ("live") or, where the
    question is everyone's, of every deal's events kept for the data ("kept",
    ``saleskpi.service.kept_funnel``, DuckDB only): the same hand-counted figures."""
    if request.param == "kept" and backend.name != "duckdb":
        pytest.skip("the funnel's events are kept on DuckDB only")
    settings = make_workspace(tmp_path_factory.mktemp("funnel"), backend)
    if request.param == "kept":
        assert SalesKpiService(settings).keep_funnel()
        assert len(list(settings.kept_funnel_dir.glob("*/events.parquet"))) == 1
    return settings


def make_workspace(root: Path, backend: BackendChoice) -> Settings:
    """The hand-counted company above, imported into a workspace of ``backend``."""
    settings, report = kyiv_workspace(
        root, {"reps": REPS, "deals": DEALS, "stage_changes": STAGE_CHANGES},
        **backend.settings())
    assert settings.backend == backend.name
    assert report.entities["stage_changes"].inserted == 24
    return settings


def kyiv_workspace(root: Path, files: dict[str, str], **options: Any
                   ) -> tuple[Settings, ImportReport]:
    """A new workspace in Kyiv time reporting in UAH (``options``: more settings, e.g. a
    backend) with ``files`` ({entity: CSV text}) imported."""
    data = root / "data"
    data.mkdir()
    for name, text in files.items():
        (data / f"{name}.csv").write_text(text, encoding="utf-8")
    workspace = root / "ws"
    save_workspace_settings(Settings(workspace=workspace), timezone="Europe/Kyiv",
                            currency="UAH", **options)
    settings = Settings(workspace=workspace)
    report = SalesKpiService(settings).import_path(data, mapping=None, source=None,
                                                   dry_run=False)
    assert report.ok, report.errors
    return settings, report


def funnel(settings: Settings, scope: Scope | None = None, **options: Any) -> FunnelReport:
    return SalesKpiService(settings).funnel(FunnelOptions(**options), scope or Scope(), now=NOW)


def main(report: FunnelReport) -> PipelineFunnel:
    assert [p.pipeline for p in report.pipelines] == ["main"]
    return report.pipelines[0]


def flow(row: StageRow) -> tuple[int, int, int]:
    return row.entered, row.converted, row.dropped


def by_stage(rows: list[StageRow]) -> dict[str, StageRow]:
    return {r.stage: r for r in rows}


def open_by_stage(rows: list[StageRow]) -> dict[str, tuple[int, float | None]]:
    return {r.stage: (r.open_deals, r.open_amount) for r in rows}


# ---------------------------------------------------------------- stage order


def test_stage_order_is_learned_from_median_entry_position(settings: Settings) -> None:
    # First-entry positions: new is 1 for all 8 deals; qualified 2 (D1 D2 D4 D5 D8);
    # proposal 3, 2 (D3 skipped qualified), 3, 3 -> median 3.
    pipeline = main(funnel(settings))
    assert pipeline.stages == ["new", "qualified", "proposal"]
    assert pipeline.order_from == "data"


def test_the_stage_order_is_learned_once_per_data_version(
        tmp_path: Path, backend: BackendChoice, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order depends on every deal and funnel.yaml, not on who asks or the filters:
    one service (the server's) learns it once, for any viewer and filter, and again
    only after a write. Counted: the calls of the engine's ``stage_orders`` (the real
    one, counted on its way through)."""
    from saleskpi.engine import funnel as engine_funnel

    settings = make_workspace(tmp_path, backend)
    learned = engine_funnel.stage_orders
    calls: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return learned(*args, **kwargs)

    monkeypatch.setattr(engine_funnel, "stage_orders", counted)
    service = SalesKpiService(settings)
    team = main(service.funnel(FunnelOptions(), Scope(), now=NOW))
    south = main(service.funnel(FunnelOptions(where=(("rep", ("Boris",)),)),
                                Scope(teams=frozenset({"South"})), now=NOW))
    mine = main(service.funnel(FunnelOptions(by_rep=True), Scope(rep_ids=frozenset({"r1"})),
                               now=NOW))
    assert len(calls) == 1
    # The figures are the hand-counted ones (test_team_conversion_and_drop_off,
    # test_scope_limits_the_team, test_where_filters_by_team_and_rep_name).
    assert team.stages == south.stages == mine.stages == ["new", "qualified", "proposal"]
    assert [flow(s) for s in team.team.stages] == [(8, 6, 1), (5, 3, 1), (4, 3, 0)]
    assert [flow(s) for s in south.team.stages] == [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
    assert [flow(s) for s in mine.team.stages] == [(4, 4, 0), (3, 2, 1), (3, 2, 0)]
    # Another process (a new service) reads the order the first kept in the workspace.
    again = main(SalesKpiService(settings).funnel(FunnelOptions(), Scope(), now=NOW))
    assert len(calls) == 1
    assert again.stages == team.stages
    assert [flow(s) for s in again.team.stages] == [(8, 6, 1), (5, 3, 1), (4, 3, 0)]

    # A write: D10 enters a stage no deal had, second as qualified is, by fewer deals
    # (median first-entry position 2, ties broken by more deals first).
    import_d10(service, tmp_path / "more")
    after = main(service.funnel(FunnelOptions(), Scope(), now=NOW))
    assert len(calls) == 2
    assert after.stages == ["new", "qualified", "negotiation", "proposal"]
    # new: D1..D8 and D10 = 9; converted: the 6 before and D10 (negotiation is later).
    assert [flow(s) for s in after.team.stages] == [(9, 7, 1), (5, 3, 1), (1, 0, 0),
                                                    (4, 3, 0)]
    south_after = main(service.funnel(FunnelOptions(), Scope(teams=frozenset({"South"})),
                                      now=NOW))
    assert len(calls) == 2
    assert south_after.stages == after.stages
    # A new process after the write reads the order learned after it, not the old one.
    fresh = main(SalesKpiService(settings).funnel(FunnelOptions(), Scope(), now=NOW))
    assert len(calls) == 2
    assert fresh.stages == after.stages


def import_d10(service: SalesKpiService, folder: Path) -> None:
    """A write: D10 (r2, open, 10 UAH) enters new on 02-01 and negotiation, a stage no
    other deal has, on 02-02 (both 10:00 Kyiv)."""
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "id,rep_id,status,pipeline,amount,currency,created_at,closed_at\n"
        "D10,r2,open,main,10,UAH,2024-02-01 10:00,\n", encoding="utf-8")
    (folder / "stage_changes.csv").write_text(
        "deal_id,stage,entered_at\nD10,new,2024-02-01 10:00\n"
        "D10,negotiation,2024-02-02 10:00\n", encoding="utf-8")
    assert service.import_path(folder, mapping=None, source=None, dry_run=False).ok


def test_funnel_yaml_sets_the_order(settings: Settings, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "funnel.yaml").write_text(
        "pipelines:\n  main: [New, demo, qualified, won]\n", encoding="utf-8")
    # The store is the fixture's; only funnel.yaml is read from the other folder.
    with open_store(settings, read_only=True) as store:
        report = compute_funnel(store, settings, Scope(), FunnelOptions(), now=NOW,
                                config=load_funnel_config(workspace))
    pipeline = main(report)
    # "New" matches the data's "new"; won is a close, not a stage; proposal is not
    # listed and follows; demo has no deals and shows zeros.
    assert pipeline.stages == ["new", "demo", "qualified", "proposal"]
    assert pipeline.order_from == "funnel.yaml"
    assert flow(by_stage(pipeline.team.stages)["demo"]) == (0, 0, 0)
    assert flow(by_stage(pipeline.team.stages)["new"]) == (8, 6, 1)


def test_bad_funnel_yaml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "funnel.yaml").write_text("pipelines: [new, won]\n", encoding="utf-8")
    with pytest.raises(FunnelError, match="pipelines"):
        load_funnel_config(tmp_path)


# ---------------------------------------------------------------- conversion, drop-off, time


def test_clickhouse_parts_read_the_kept_deals_and_events_and_drop_them(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """On ClickHouse the deals and the ordered events are kept in two temporary tables
    first, each part reads them (not the stored tables again), and they are gone after;
    the other backends run one query and keep none. The figures stay the hand-counted
    ones (test_team_conversion_and_drop_off)."""
    from saleskpi.engine import funnel as engine_funnel

    parts: list[str] = []
    left: list[int] = []
    kept = engine_funnel._kept
    run = engine_funnel._run

    @contextmanager
    def watched(store: Any, *args: Any) -> Iterator[dict[str, str]]:
        with kept(store, *args) as names:
            yield names
        for name in names.values():  # after they were dropped
            left.append(int(store.fetch(
                "SELECT count() FROM system.tables WHERE is_temporary AND name = ?",
                [name])[0][0]))
        left.append(-len(names))

    def recorded(store: Any, query: Any, values: dict[str, Any]) -> Any:
        if "part" in query.columns:  # the funnel's, not the stage order's
            parts.append(query.sql)
        return run(store, query, values)

    monkeypatch.setattr(engine_funnel, "_kept", watched)
    monkeypatch.setattr(engine_funnel, "_run", recorded)
    stages = main(funnel(settings, by_rep=True, start=dt.date(2024, 1, 1))).team.stages
    assert flow(stages[0]) == (8, 6, 1)
    if settings.backend != "clickhouse":
        assert len(parts) == 1 and left == [0]
        return
    assert len(parts) == 7  # flow, open and seen for the team and by rep; no history
    assert left == [0, 0, -2]
    for sql in parts:
        assert "saleskpi_funnel_events_" in sql or "saleskpi_funnel_deals_" in sql
        assert "stage_changes" not in sql


def test_team_conversion_and_drop_off(settings: Settings) -> None:
    stages = by_stage(main(funnel(settings)).team.stages)
    # new: entered D1..D8 = 8. Converted (later a later stage or won): D1 D2 D3 (skip to
    # proposal counts) D4 D5 D8 = 6; D6 still in new, D7 lost. Dropped: D7 = 1.
    assert flow(stages["new"]) == (8, 6, 1)
    assert stages["new"].conversion == pytest.approx(0.75)
    assert stages["new"].drop_off == pytest.approx(0.125)
    # qualified: D1 D2 D4 D5 D8 = 5 (D3 never entered it). Converted: D1, D4 (proposal
    # after it was reopened), D8 = 3. Dropped: D2 = 1; D4 was lost in qualified but
    # reopened and won, so it is not a drop-off.
    assert flow(stages["qualified"]) == (5, 3, 1)
    assert stages["qualified"].conversion == pytest.approx(0.6)
    # proposal: D1 D3 D4 D8 = 4; won: D1, D3 (by its status), D4 = 3; none lost.
    assert flow(stages["proposal"]) == (4, 3, 0)


def test_team_time_in_stage(settings: Settings) -> None:
    stages = by_stage(main(funnel(settings)).team.stages)
    # new, finished stays: D1 2, D2 4, D3 1.396, D4 7, D5 3, D7 10, D8 6 (D6 still in new)
    # sorted 1.396 2 3 4 6 7 10: median 4; p90 at 0.9*6 = 5.4: 7 + 0.4*(10-7) = 8.2
    new = stages["new"]
    assert (new.finished, new.median_days, new.p90_days) == (7, pytest.approx(4),
                                                             pytest.approx(8.2))
    # qualified stays: D1 5, D2 3, D4 2 (until lost) and 4 (reopened, until proposal),
    # D8 5.604; D5's two entries are one stay, still open.
    # sorted 2 3 4 5 5.604: median 4; p90 at 3.6: 5 + 0.6*0.604 = 5.3625
    qualified = stages["qualified"]
    assert qualified.finished == 5
    assert qualified.median_days == pytest.approx(4)
    assert qualified.p90_days == pytest.approx(5 + 0.6 * (D8_QUALIFIED - 5))
    # proposal: D1 2, D3 9 (until its closed_at), D4 8; D8 open. sorted 2 8 9:
    # median 8; p90 at 1.8: 8 + 0.8*1 = 8.8
    proposal = stages["proposal"]
    assert (proposal.finished, proposal.median_days, proposal.p90_days) == (
        3, pytest.approx(8), pytest.approx(8.8))


def test_by_rep_next_to_the_team_marks_leaks(settings: Settings) -> None:
    pipeline = main(funnel(settings, by_rep=True))
    # r3 has no deals: not listed; the team is still everyone's deals.
    assert [(r.rep, r.rep_name) for r in pipeline.reps] == [("r1", "Anna"), ("r2", "Boris")]
    assert flow(by_stage(pipeline.team.stages)["new"]) == (8, 6, 1)
    r1, r2 = (by_stage(r.stages) for r in pipeline.reps)
    # r1 (D1 D2 D3 D8): new 4 entered, all 4 moved on; qualified D1 D2 D8, converted D1 D8,
    # D2 lost there; proposal D1 D3 D8, won D1 D3.
    assert [flow(r1[s]) for s in ("new", "qualified", "proposal")] == [
        (4, 4, 0), (3, 2, 1), (3, 2, 0)]
    # r2 (D4 D5 D6 D7): new 4, moved on D4 D5, D7 lost; qualified D4 D5, converted D4;
    # proposal D4, won.
    assert [flow(r2[s]) for s in ("new", "qualified", "proposal")] == [
        (4, 2, 1), (2, 1, 0), (1, 1, 0)]
    # Time in stage, r1 new: 2 4 1.396 6 -> median (2+4)/2 = 3, p90 at 2.7: 4 + 0.7*2 = 5.4
    assert (r1["new"].median_days, r1["new"].p90_days) == (pytest.approx(3),
                                                           pytest.approx(5.4))
    # r1 proposal: 2 9 -> median 5.5, p90 at 0.9: 2 + 0.9*7 = 8.3
    assert (r1["proposal"].median_days, r1["proposal"].p90_days) == (
        pytest.approx(5.5), pytest.approx(8.3))
    # r2 new: 7 3 10 -> median 7, p90 at 1.8: 7 + 0.8*3 = 9.4
    assert (r2["new"].median_days, r2["new"].p90_days) == (pytest.approx(7),
                                                           pytest.approx(9.4))
    # Leaks: more than 10 points below the team. new: team 75%, r2 50% (-25): leak.
    # qualified: team 60%, r2 50% is exactly 10 points below: not a leak.
    assert r2["new"].leak and r2["new"].vs_team == pytest.approx(-0.25)
    assert not r2["qualified"].leak and r2["qualified"].vs_team == pytest.approx(-0.1)
    assert [r.leaks for r in pipeline.reps] == [[], ["new"]]
    assert r1["new"].vs_team == pytest.approx(0.25)


def test_date_range_selects_deals_by_stage_entry_in_company_time(settings: Settings) -> None:
    # 2024-01-05 .. 2024-01-10 in Kyiv: [01-04 22:00 UTC, 01-10 22:00 UTC).
    stages = by_stage(main(funnel(settings, start=dt.date(2024, 1, 5),
                                  end=dt.date(2024, 1, 10))).team.stages)
    # new entered in range: D3 (01-05 00:30 Kyiv, which is still 01-04 in UTC), D5 (01-10),
    # D7 (01-06) = 3; converted D3 D5; D7 lost in new.
    assert flow(stages["new"]) == (3, 2, 1)
    # stays that began in range: D3 1.396, D5 3, D7 10 -> median 3, p90 3 + 0.8*7 = 8.6
    assert (stages["new"].median_days, stages["new"].p90_days) == (pytest.approx(3),
                                                                   pytest.approx(8.6))
    # qualified first entered in range: D2 (01-06), D4 (01-10); D4 converted, D2 dropped.
    # Stays begun in range: D2 3, D4 2 (its second stay began 01-20) -> median 2.5
    assert flow(stages["qualified"]) == (2, 1, 1)
    assert stages["qualified"].median_days == pytest.approx(2.5)
    # proposal: D1 (01-08), D3 (01-06), both won.
    assert flow(stages["proposal"]) == (2, 2, 0)


# ---------------------------------------------------------------- the pipeline as of a date


def test_pipeline_as_of_past_dates(settings: Settings) -> None:
    def at(day: dt.date) -> dict[str, tuple[int, float | None]]:
        return open_by_stage(main(funnel(settings, as_of=day)).team.stages)

    # End of 01-04: D1 qualified (1000); D2 new (500), D4 new (3000); D3 not yet created.
    assert at(dt.date(2024, 1, 4)) == {"new": (2, 3500), "qualified": (1, 1000),
                                       "proposal": (0, None)}
    # End of 01-12: D1 won, D2 lost, D4 lost (01-12 10:00); D3 proposal (2000);
    # D5 new (its qualified entry is 01-13) 700, D7 new 100.
    assert at(dt.date(2024, 1, 12)) == {"new": (2, 800), "qualified": (0, None),
                                        "proposal": (1, 2000)}
    # End of 01-22: D4 reopened into qualified on 01-20 is open again (3000), with
    # D5 (700); D6 new (300), D8 new (400); D3 won 01-15, D7 lost 01-16.
    assert at(dt.date(2024, 1, 22)) == {"new": (2, 700), "qualified": (2, 3700),
                                        "proposal": (0, None)}


def test_as_of_is_the_end_of_the_day_in_company_time(settings: Settings) -> None:
    # The end of 01-31 in Kyiv is 01-31 22:00 UTC. D8 entered proposal at 02-01 00:30 Kyiv
    # (01-31 22:30 UTC): after it, so D8 is still in qualified. (Ending the day at UTC
    # midnight would wrongly move D8 to proposal.) D4 is in proposal until 02-01 10:00.
    report = funnel(settings, as_of=dt.date(2024, 1, 31))
    assert report.as_of == dt.datetime(2024, 1, 31, 22, 0)
    assert open_by_stage(main(report).team.stages) == {
        "new": (1, 300), "qualified": (2, 1100), "proposal": (1, 3000)}
    # The next day D8 is in proposal and D4 won.
    assert open_by_stage(main(funnel(settings, as_of=dt.date(2024, 2, 1))).team.stages) == {
        "new": (1, 300), "qualified": (1, 700), "proposal": (1, 400)}


def test_as_of_by_rep_and_now(settings: Settings) -> None:
    pipeline = main(funnel(settings, as_of=dt.date(2024, 1, 31), by_rep=True))
    r1, r2 = (open_by_stage(r.stages) for r in pipeline.reps)
    assert r1 == {"new": (0, None), "qualified": (1, 400), "proposal": (0, None)}
    assert r2 == {"new": (1, 300), "qualified": (1, 700), "proposal": (1, 3000)}
    assert (pipeline.reps[1].open_deals, pipeline.reps[1].open_amount) == (3, 4000)
    # Now: D6 new, D5 qualified, D8 proposal; D9 is open but has no history.
    report = funnel(settings)
    assert report.as_of == NOW
    assert open_by_stage(main(report).team.stages) == {
        "new": (1, 300), "qualified": (1, 700), "proposal": (1, 400)}
    assert report.open_without_history == 1


# ---------------------------------------------------------------- scope and filters


def test_scope_limits_the_team(settings: Settings) -> None:
    pipeline = main(funnel(settings, Scope(rep_ids=frozenset({"r1"})), by_rep=True))
    assert [r.rep for r in pipeline.reps] == ["r1"]
    # The team is now r1's deals only, and the order is still the pipeline's.
    assert pipeline.stages == ["new", "qualified", "proposal"]
    assert [flow(s) for s in pipeline.team.stages] == [(4, 4, 0), (3, 2, 1), (3, 2, 0)]
    # A scope that sees no one sees no funnel.
    assert funnel(settings, Scope(rep_ids=frozenset()), by_rep=True).pipelines == []
    report = funnel(settings, Scope(teams=frozenset({"South"})))
    assert [flow(s) for s in main(report).team.stages] == [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
    assert report.open_without_history == 0  # D9 is r1's


def test_where_filters_by_team_and_rep_name(settings: Settings) -> None:
    by_team = funnel(settings, where=(("team", ("South",)),))
    by_name = funnel(settings, where=(("rep", ("Boris",)),))
    expected = [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
    assert [flow(s) for s in main(by_team).team.stages] == expected
    assert [flow(s) for s in main(by_name).team.stages] == expected
    # A scope and a filter together: nothing is both North's and Boris's.
    assert funnel(settings, Scope(teams=frozenset({"North"})),
                  where=(("rep", ("Boris",)),)).pipelines == []


def test_unknown_pipeline_and_filter_are_errors(settings: Settings) -> None:
    with pytest.raises(FunnelError, match="partners"):
        funnel(settings, pipeline="partners")
    with pytest.raises(FunnelError, match="unknown filter"):
        funnel(settings, where=(("team; drop", ("x",)),))
    assert main(funnel(settings, pipeline="main")).stages == ["new", "qualified", "proposal"]


# ---------------------------------------------------------------- CLI


def test_a_range_ending_on_the_as_of_day_is_over(run_cli, settings: Settings) -> None:
    """As of a past day means as of its end: January as of 01-31 is a whole month (no
    "not over yet"); as of 01-15 it is January to date, not over."""
    def asked(*args: str) -> dict[str, Any]:
        result = run_cli(settings.workspace, "funnel", *args, "--format", "json")
        assert result.returncode == 0, result.stderr
        found: dict[str, Any] = result.json()["range"]
        return found

    assert asked("--from", "2024-01-01", "--to", "2024-01-31", "--as-of", "2024-01-31") == {
        "name": "custom", "from": "2024-01-01", "to": "2024-01-31", "partial": False}
    assert asked("--as-of", "2024-01-31")["partial"] is False
    assert asked("--as-of", "2024-01-15") == {
        "name": "mtd", "from": "2024-01-01", "to": "2024-01-15", "partial": True}
    table = run_cli(settings.workspace, "funnel", "--from", "2024-01-01", "--to",
                    "2024-01-31", "--as-of", "2024-01-31")
    assert "Period: 2024-01-01 – 2024-01-31\n" in table.stdout


def test_cli_json_shape(run_cli, settings: Settings) -> None:
    result = run_cli(settings.workspace, "funnel", "--by", "rep", "--as-of", "2024-01-31",
                     "--format", "json")
    assert result.returncode == 0, result.stderr
    out = result.json()
    assert out["as_of"] == "2024-01-31"
    assert out["as_of_utc"] == "2024-01-31T22:00:00"
    assert (out["timezone"], out["currency"], out["by"]) == ("Europe/Kyiv", "UAH", ["rep"])
    assert out["open_deals_without_history"] == 1
    (pipeline,) = out["pipelines"]
    assert pipeline["pipeline"] == "main"
    assert pipeline["stage_order"] == ["new", "qualified", "proposal"]
    assert pipeline["order_from"] == "data"
    new = pipeline["team"]["stages"][0]
    assert new == {
        "stage": "new", "entered": 8, "converted": 6, "stage_conversion": 0.75,
        "dropped": 1, "stage_drop_off": 0.125,
        "time_in_stage": {"median_days": 4, "p90_days": 8.2, "count": 7},
        "open_deals": 1, "open_amount": 300,
    }
    assert (pipeline["team"]["open_deals"], pipeline["team"]["open_amount"]) == (4, 4400)
    boris = pipeline["reps"][1]
    assert (boris["rep"], boris["rep_name"], boris["leaks"]) == ("r2", "Boris", ["new"])
    assert boris["stages"][0]["leak"] is True
    assert boris["stages"][0]["conversion_vs_team"] == -0.25
    assert "leak" not in new


def test_cli_csv_has_the_json_figures_row_by_row(run_cli, settings: Settings) -> None:
    args = ("funnel", "--by", "rep", "--as-of", "2024-01-31")
    result = run_cli(settings.workspace, *args, "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    # The team, then Anna and Boris (Idle has no deals), each new, qualified, proposal.
    assert [(r["rep"], r["stage"]) for r in rows] == [
        (rep, stage) for rep in ("", "r1", "r2") for stage in ("new", "qualified", "proposal")]
    team_new = rows[0]
    # Counted by hand above (test_team_conversion_and_drop_off, test_team_time_in_stage);
    # open in new as of 01-31: D6 (300 UAH).
    assert {k: team_new[k] for k in (
        "pipeline", "entered", "converted", "stage_conversion", "dropped", "stage_drop_off",
        "median_days", "p90_days", "finished_stays", "open_deals", "open_amount", "currency",
        "conversion_vs_team", "leak")} == {
        "pipeline": "main", "entered": "8", "converted": "6", "stage_conversion": "0.75",
        "dropped": "1", "stage_drop_off": "0.125", "median_days": "4", "p90_days": "8.2",
        "finished_stays": "7", "open_deals": "1", "open_amount": "300", "currency": "UAH",
        "conversion_vs_team": "", "leak": ""}
    boris_new = rows[6]
    assert (boris_new["rep_name"], boris_new["conversion_vs_team"], boris_new["leak"]) == (
        "Boris", "-0.25", "True")
    # Every figure is the JSON's: one report, two formats.
    (pipeline,) = run_cli(settings.workspace, *args, "--format", "json").json()["pipelines"]
    parts = [pipeline["team"], *pipeline["reps"]]
    as_json = [s for part in parts for s in part["stages"]]
    for row, stage in zip(rows, as_json, strict=True):
        assert (row["entered"], row["converted"], row["open_deals"]) == (
            str(stage["entered"]), str(stage["converted"]), str(stage["open_deals"]))
        assert float(row["stage_conversion"] or "nan") == pytest.approx(
            stage["stage_conversion"] if stage["stage_conversion"] is not None
            else float("nan"), nan_ok=True)
        assert row["median_days"] == ("" if stage["time_in_stage"]["median_days"] is None
                                      else str(stage["time_in_stage"]["median_days"]))


def test_cli_table(run_cli, settings: Settings) -> None:
    result = run_cli(settings.workspace, "funnel", "--by", "rep", "--range", "all")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Pipeline main" in text
    # The team's new stage, then Boris 25 points below it: a leak.
    for expected in ("Team", "Anna", "Boris", "75.0% (6/8)", "12.5% (1/8)", "4.0 (n=7)",
                     "▼ -25.0 pp", "1 open deals have no stage history"):
        assert expected in text, expected
    south = run_cli(settings.workspace, "funnel", "--where", "team=South", "--as-of",
                    "2024-01-31")
    assert south.returncode == 0, south.stderr
    assert "as of 2024-01-31" in south.stdout
    assert "50.0% (2/4)" in south.stdout and "Anna" not in south.stdout


def test_cli_errors(run_cli, settings: Settings) -> None:
    bad_by = run_cli(settings.workspace, "funnel", "--by", "team")
    assert bad_by.returncode == 2 and "--by" in bad_by.stderr
    unknown = run_cli(settings.workspace, "funnel", "--pipeline", "nope")
    assert unknown.returncode == 2 and "nope" in unknown.stderr


def test_cli_names_a_misspelled_filter_and_an_empty_one(run_cli, settings: Settings) -> None:
    """A typo is an error naming the closest, not "no stage history"; filters that match
    no deal say it is the filters."""
    team = run_cli(settings.workspace, "funnel", "--team", "Suoth")
    assert team.returncode == 2 and "unknown team 'Suoth'" in team.stderr
    assert "South" in team.stderr
    rep = run_cli(settings.workspace, "funnel", "--where", "rep=Ana")
    assert rep.returncode == 2 and "unknown rep 'Ana'" in rep.stderr and "Anna" in rep.stderr
    dim = run_cli(settings.workspace, "funnel", "--where", "tem=South")
    assert dim.returncode == 2 and "did you mean team?" in dim.stderr
    # Both known, none of South's deals is Anna's (she is not in South).
    nothing = run_cli(settings.workspace, "funnel", "--team", "South", "--rep", "Anna",
                      "--range", "all")
    assert nothing.returncode == 0, nothing.stderr
    assert "No deal with these filters has a stage history" in nothing.stdout
    # --team is --where team=..: South's 50.0% (2/4), as test_cli_table counts it.
    south = run_cli(settings.workspace, "funnel", "--team", "South", "--as-of", "2024-01-31")
    assert "50.0% (2/4)" in south.stdout and "Anna" not in south.stdout


def test_cli_says_when_there_is_no_history(run_cli, workspace: Path) -> None:
    result = run_cli(workspace, "funnel")
    assert result.returncode == 0, result.stderr
    assert "stage_changes" in result.stdout


# ---------------------------------------------------------------- the Maven export

MAVEN_DIR = Path(__file__).parent / "data" / "maven-crm"
RAW = f"""
CREATE VIEW pipeline AS SELECT * FROM read_csv('{(MAVEN_DIR / "sales_pipeline.csv").as_posix()}',
    header = true, columns = {{'opportunity_id': 'VARCHAR', 'sales_agent': 'VARCHAR',
    'product': 'VARCHAR', 'account': 'VARCHAR', 'deal_stage': 'VARCHAR',
    'engage_date': 'DATE', 'close_date': 'DATE', 'close_value': 'BIGINT'}})
"""
# The Engaging stage, straight from the CSV: deals with an engage date entered it;
# the Won ones converted, the Lost ones dropped; a closed deal stayed close - engage days.
ENGAGING_SQL = """
SELECT {key} AS key,
       count(*) FILTER (WHERE engage_date IS NOT NULL) AS entered,
       count(*) FILTER (WHERE deal_stage = 'Won') AS won,
       count(*) FILTER (WHERE deal_stage = 'Lost') AS lost,
       count(close_date - engage_date) AS closed,
       quantile_cont(close_date - engage_date, 0.5) AS median_days,
       quantile_cont(close_date - engage_date, 0.9) AS p90_days
FROM pipeline GROUP BY ALL
"""


def raw(sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        con.execute(RAW)
        return con.execute(sql).fetchall()
    finally:
        con.close()


MAVEN_FUNNEL = ("funnel", "--by", "rep", "--as-of", "2017-06-30", "--range", "all",
                "--format", "json")


@pytest.fixture(scope="module")
def maven_workspace(run_cli, tmp_path_factory: pytest.TempPathFactory,
                    backend: BackendChoice) -> Path:
    ws = tmp_path_factory.mktemp("maven-funnel") / "workspace"
    ws.mkdir()
    save_workspace_settings(Settings(workspace=ws), **backend.settings())
    imported = run_cli(ws, "import", MAVEN_DIR, "--mapping", "maven-crm", "--format", "json")
    assert imported.returncode == 0, imported.stdout + imported.stderr
    return ws


@pytest.fixture(scope="module")
def maven(run_cli, maven_workspace: Path) -> dict[str, Any]:
    result = run_cli(maven_workspace, *MAVEN_FUNNEL)
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = result.json()
    return out


def engaging(slice_: dict[str, Any]) -> tuple[Any, ...]:
    (stage,) = slice_["stages"]
    assert stage["stage"] == "Engaging"
    t = stage["time_in_stage"]
    return (stage["entered"], stage["converted"], stage["dropped"], t["count"],
            t["median_days"], t["p90_days"])


def test_maven_engaging_funnel_matches_sql(maven: dict[str, Any]) -> None:
    (pipeline,) = maven["pipelines"]
    assert (pipeline["pipeline"], pipeline["stage_order"]) == ("sales", ["Engaging"])
    ((_key, entered, won, lost, closed, median, p90),) = raw(ENGAGING_SQL.format(key="'all'"))
    assert (entered, won, lost, closed) == (8300, 4238, 2473, 6711)
    got = engaging(pipeline["team"])
    assert got[:4] == (entered, won, lost, closed)
    assert got[4:] == (pytest.approx(median), pytest.approx(p90))
    stage = pipeline["team"]["stages"][0]
    assert stage["stage_conversion"] == pytest.approx(won / entered, abs=1e-6)
    assert stage["stage_drop_off"] == pytest.approx(lost / entered, abs=1e-6)
    # Prospecting deals have no dates: open, but in no stage.
    assert maven["open_deals_without_history"] == raw(
        "SELECT count(*) FROM pipeline WHERE deal_stage = 'Prospecting'")[0][0] == 500


def test_maven_engaging_funnel_per_agent_matches_sql(maven: dict[str, Any]) -> None:
    (pipeline,) = maven["pipelines"]
    expected = {key: rest for key, *rest in raw(ENGAGING_SQL.format(key="sales_agent"))}
    got = {rep["rep"]: engaging(rep) for rep in pipeline["reps"]}
    assert set(got) == set(expected)  # the 30 agents with deals
    assert len(got) == 30
    for agent, (entered, won, lost, closed, median, p90) in expected.items():
        assert got[agent][:4] == (entered, won, lost, closed), agent
        assert got[agent][4:] == (pytest.approx(median), pytest.approx(p90)), agent
    team = pipeline["team"]["stages"][0]["stage_conversion"]
    for rep in pipeline["reps"]:
        stage = rep["stages"][0]
        assert stage["leak"] == (stage["stage_conversion"] < team - 0.10 - 1e-9)


def test_maven_pipeline_as_of_matches_sql(maven: dict[str, Any]) -> None:
    # Open at the end of 2017-06-30 (UTC): engaged by then and not closed by then.
    rows = raw("""
        SELECT sales_agent, count(*), sum(close_value) FROM pipeline
        WHERE engage_date <= DATE '2017-06-30'
          AND (close_date IS NULL OR close_date > DATE '2017-06-30')
        GROUP BY ALL""")
    (pipeline,) = maven["pipelines"]
    team = pipeline["team"]["stages"][0]
    assert (team["open_deals"], team["open_amount"]) == (
        sum(r[1] for r in rows), pytest.approx(sum(r[2] or 0 for r in rows)))
    got = {rep["rep"]: (rep["stages"][0]["open_deals"], rep["stages"][0]["open_amount"])
           for rep in pipeline["reps"]}
    for agent, count, amount in rows:
        assert got[agent][0] == count, agent
        assert got[agent][1] == (None if amount is None else pytest.approx(amount)), agent


def test_kept_events_filtered_by_a_custom_field(tmp_path: Path, backend: BackendChoice,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A custom field (the reps' extra column ``region``) filters the kept events through
    the deals view: Boris's deals, the South team's figures (test_scope_limits_the_team)."""
    if backend.name != "duckdb":
        pytest.skip("the funnel's events are kept on DuckDB only")
    from saleskpi.engine import funnel as engine_funnel

    reps = "id,name,team,region\nr1,Anna,North,West\nr2,Boris,South,East\nr3,Idle,South,East\n"
    settings, _report = kyiv_workspace(
        tmp_path, {"reps": reps, "deals": DEALS, "stage_changes": STAGE_CHANGES})
    east = (("region", ("East",)),)
    live = main(funnel(settings, where=east, by_rep=True))
    assert SalesKpiService(settings).keep_funnel()
    read: list[bool] = []
    run = engine_funnel._run

    def recorded(store: Any, query: Any, values: dict[str, Any]) -> Any:
        if "part" in query.columns:
            read.append("saleskpi_funnel_events" in query.sql)
        return run(store, query, values)

    monkeypatch.setattr(engine_funnel, "_run", recorded)
    kept = main(funnel(settings, where=east, by_rep=True))
    assert read == [True]
    for report in (live, kept):
        assert [flow(s) for s in report.team.stages] == [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
        assert [r.rep for r in report.reps] == ["r2"]
    assert kept.team.stages == live.team.stages


def test_maven_funnel_from_kept_events_is_the_same(run_cli, maven_workspace: Path,
                                                   maven: dict[str, Any],
                                                   backend: BackendChoice) -> None:
    """Everyone's funnel read from the kept events (``saleskpi.service.kept_funnel``)
    is the one the tests above check against SQL, for the whole range and for a month."""
    if backend.name != "duckdb":
        pytest.skip("the funnel's events are kept on DuckDB only")
    march = ("funnel", "--by", "rep", "--from", "2017-03-01", "--to", "2017-03-31",
             "--as-of", "2017-03-31", "--format", "json")
    live_march = run_cli(maven_workspace, *march).json()
    assert live_march["pipelines"][0]["team"]["stages"][0]["entered"] > 0
    settings = Settings(workspace=maven_workspace)
    assert SalesKpiService(settings).keep_funnel()
    assert len(list(settings.kept_funnel_dir.glob("*/events.parquet"))) == 1
    assert run_cli(maven_workspace, *MAVEN_FUNNEL).json() == maven
    assert run_cli(maven_workspace, *march).json() == live_march


def test_kept_events_serve_one_data_version(tmp_path: Path, backend: BackendChoice,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A funnel without a scope reads the kept events of its data (with the head's own
    filters too); a scope's never does; after a write the old ones are not read (the
    answer is the new data's, asked live) until the refresh keeps the new data's; two
    folders are kept, private to the owner."""
    if backend.name != "duckdb":
        pytest.skip("the funnel's events are kept on DuckDB only")
    from saleskpi.engine import funnel as engine_funnel
    from saleskpi.service.refresh import Refresher

    settings = make_workspace(tmp_path, backend)
    read: list[bool] = []
    run = engine_funnel._run

    def recorded(store: Any, query: Any, values: dict[str, Any]) -> Any:
        if "part" in query.columns:  # the funnel's, not the stage order's
            read.append("saleskpi_funnel_events" in query.sql)
        return run(store, query, values)

    monkeypatch.setattr(engine_funnel, "_run", recorded)
    service = SalesKpiService(settings)
    assert service.keep_funnel()
    assert not service.keep_funnel()  # kept already: nothing to do
    assert not SalesKpiService(settings).keep_funnel()  # another process finds them
    (folder,) = settings.kept_funnel_dir.iterdir()
    assert folder.stat().st_mode & 0o777 == 0o700
    assert sorted((f.name, f.stat().st_mode & 0o777) for f in folder.iterdir()) == [
        ("deals.parquet", 0o600), ("events.parquet", 0o600)]
    team = main(funnel(settings))
    south = main(funnel(settings, Scope(teams=frozenset({"South"}))))
    # The head's own filter reads the kept events of the deals it lets through.
    filtered = main(funnel(settings, where=(("team", ("South",)),), by_rep=True))
    assert read == [True, False, True]
    assert [flow(s) for s in team.team.stages] == [(8, 6, 1), (5, 3, 1), (4, 3, 0)]
    assert [flow(s) for s in south.team.stages] == [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
    assert [flow(s) for s in filtered.team.stages] == [(4, 2, 1), (2, 1, 0), (1, 1, 0)]
    assert [r.rep for r in filtered.reps] == ["r2"]
    assert open_by_stage(filtered.team.stages) == open_by_stage(south.team.stages)

    # A write (as in test_the_stage_order_is_learned_once_per_data_version).
    import_d10(service, tmp_path / "more")
    after = [(9, 7, 1), (5, 3, 1), (1, 0, 0), (4, 3, 0)]
    assert [flow(s) for s in main(funnel(settings)).team.stages] == after
    assert read[3:] == [False]
    # The server's background refresh keeps the new data's before anything else.
    refresher = Refresher(SalesKpiService(settings), every=0.05)
    refresher.start()
    try:
        assert refresher.wait_idle(60)
    finally:
        refresher.stop()
    assert len(list(settings.kept_funnel_dir.iterdir())) == 2
    new_open = main(funnel(settings, as_of=dt.date(2024, 2, 3)))
    assert [flow(s) for s in new_open.team.stages] == after
    assert read[4:] == [True]
    # D10 is open in negotiation from 02-02: with D5 (qualified) and D6 (new), D8 is
    # in proposal since 02-01 00:30 Kyiv.
    assert open_by_stage(new_open.team.stages) == {
        "new": (1, 300.0), "qualified": (1, 700.0), "negotiation": (1, 10.0),
        "proposal": (1, 400.0)}


def test_the_refresh_keeps_a_writes_funnel_events_within_seconds(
        tmp_path: Path, backend: BackendChoice) -> None:
    """After a write the head of sales's funnel is computed from the stage history until
    the background refresh keeps the new data's events: it looks at the data's version
    between rounds, so a write starts the next round at once, not a round's pause later
    (here ten minutes)."""
    if backend.name != "duckdb":
        pytest.skip("the funnel's events are kept on DuckDB only")
    from saleskpi.service.refresh import Refresher

    settings = make_workspace(tmp_path, backend)
    refresher = Refresher(SalesKpiService(settings), every=600, write_check=0.05)
    refresher.start()
    try:
        assert refresher.wait_idle(60)
        (before,) = settings.kept_funnel_dir.iterdir()
        import_d10(SalesKpiService(settings), tmp_path / "more")
        deadline = time.monotonic() + 60
        while len(kept := built(settings)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        refresher.stop()
    assert len(kept) == 2 and before in kept


def built(settings: Settings) -> list[Path]:
    """The kept funnel folders written to the end (one being written is ``*.part``)."""
    return sorted(f for f in settings.kept_funnel_dir.iterdir()
                  if not f.name.endswith(".part"))


def test_mapping_entries_for_the_same_file_all_apply(tmp_path: Path) -> None:
    from saleskpi.sources.ingest.mapping import MappingError, load_mapping

    good = tmp_path / "good.yaml"
    good.write_text(
        "name: t\nfiles:\n"
        "  - {file: export.csv, entity: deals, columns: {id: ID, rep_id: Rep, status: S}}\n"
        "  - {file: export*.csv, entity: stage_changes, skip_rows_without: [entered_at],\n"
        "     columns: {deal_id: ID, stage: S, entered_at: When}}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(str(good))
    assert [s.entity for s in mapping.matches("export.csv")] == ["deals", "stage_changes"]
    assert mapping.match("export.csv") is mapping.files[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: t\nfiles:\n"
        "  - {file: x.csv, entity: stage_changes, skip_rows_without: [engage_date]}\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match="engage_date"):
        load_mapping(str(bad))


def test_open_amounts_use_the_rate_of_the_companys_day(tmp_path: Path) -> None:
    """A EUR deal made at 00:30 in Kyiv on 03-02 (still 03-01 in UTC) is worth 03-02's rate.

    The scorecard converts by the company's calendar day; the funnel must agree.
    """
    settings, _report = kyiv_workspace(tmp_path, {
        "reps": "id,name,team\nr1,Ann,North\n",
        "deals": "id,rep_id,status,pipeline,amount,currency,created_at\n"
                 "E1,r1,open,main,100,EUR,2024-03-02 00:30\n",
        "stage_changes": "deal_id,stage,entered_at\nE1,new,2024-03-02 00:30\n",
        "fx_rates": "date,currency,rate\n2024-03-01,EUR,40\n2024-03-02,EUR,41\n"})
    pipeline = main(funnel(settings))
    assert open_by_stage(pipeline.team.stages)["new"] == (1, 100 * 41)


def test_stage_spellings_are_trimmed_and_blank_entries_ignored(tmp_path: Path) -> None:
    """Entries spelled with spaces, tabs or another case of a close name are the same
    stages and closes (each spelling is classified once and joined back); blank and
    missing stages are no entries at all. Hand-counted: D1 new -> qualified -> won,
    D2 new -> qualified, open."""
    settings, _report = kyiv_workspace(tmp_path, {
        "reps": "id,name,team\nr1,Ann,North\n",
        "deals": "id,rep_id,status,pipeline,amount,currency,created_at,closed_at\n"
                 "D1,r1,won,main,100,UAH,2024-01-01 10:00,2024-01-03 10:00\n"
                 "D2,r1,open,main,50,UAH,2024-01-01 10:00,\n",
        "stage_changes": "deal_id,stage,entered_at\nD2,new,2024-01-01 10:00\n"})
    # Written as stored, past the importer's own cleaning: what another loader may leave.
    con = duckdb.connect(str(settings.analytics_path))
    try:
        (source,) = con.execute("SELECT DISTINCT datasource FROM stage_changes").fetchone() or ()
        con.executemany(
            "INSERT INTO stage_changes (deal_id, stage, entered_at, datasource) "
            "VALUES (?, ?, ?, ?)",
            [("D1", " new ", "2024-01-01 10:00", source),
             ("D1", "qualified\t", "2024-01-02 10:00", source),
             ("D1", " Closed Won", "2024-01-03 10:00", source),
             ("D2", "  ", "2024-01-02 10:00", source),
             ("D2", None, "2024-01-03 10:00", source),
             ("D2", "qualified", "2024-01-04 10:00", source)])
    finally:
        con.close()
    pipeline = main(funnel(settings))
    # No "Closed Won" stage, no blank one: the close is D1's win.
    assert pipeline.stages == ["new", "qualified"]
    stages = by_stage(pipeline.team.stages)
    assert flow(stages["new"]) == (2, 2, 0)
    assert flow(stages["qualified"]) == (2, 1, 0)
    assert open_by_stage(pipeline.team.stages) == {"new": (0, None), "qualified": (1, 50.0)}
