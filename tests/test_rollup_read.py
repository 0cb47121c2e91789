"""Rollups read by SQL written directly on DuckDB (engine/rollup_read.py) answer exactly
what the Ibis-compiled reading did, and what the raw rows give.

Two companies: the demo company (one source) in Kyiv time, and the same company's reps
split over two sources with one person in both (matched by e-mail), where a rep slice
joins each source's rep to their person. For every kind of question a rollup answers
(by nothing, rep, team, both, a stored slice; each period grain; filters on a stored
slice, a team and a rep; open and closed date ranges; counts, money, averages), the
rows must be equal value for value to the Ibis path's (the SQL it replaces), and to
the raw rows' within the verify command's tolerance (the independent computation).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from saleskpi.domain.query import KpiQuery, Scorecard
from saleskpi.domain.settings import Settings, save_workspace_settings
from saleskpi.engine import rollup_read
from saleskpi.engine.compile import SqlCache
from saleskpi.engine.scorecard import Engine
from saleskpi.service.core import SalesKpiService
from saleskpi.sources.demo import generate_company
from saleskpi.sources.ingest.run import import_frames
from saleskpi.store.backend import open_store

ZONE = "Europe/Kyiv"
END = dt.date(2026, 10, 1)
# Additive KPIs of every rollup: counts of leads, deals and activities, money, a rate
# (two counts) and an average (a sum over a count).
KPIS = ("leads", "calls", "meetings", "deals_won", "revenue", "win_rate",
        "average_deal_size")
BY: tuple[tuple[str, ...], ...] = ((), ("rep",), ("team",), ("rep", "team"), ("source",),
                                   ("product",))
PERIODS = ("all", "day", "week", "month", "quarter", "year")
RANGES: tuple[tuple[dt.date | None, dt.date | None], ...] = (
    (None, None), (dt.date(2026, 3, 1), None), (dt.date(2026, 1, 15), dt.date(2026, 8, 20)))


def _company(tmp_path: Path, *, split: bool) -> Settings:
    workspace = tmp_path / ("split" if split else "one")
    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE)
    settings = Settings(workspace=workspace)
    frames = generate_company(0.15, seed=3, end=END, timezone=ZONE, currency=settings.currency)
    if not split:
        assert import_frames(settings, frames, source="demo").ok
        return settings
    # The first half of the reps' deals and activities come from an old CRM, where the
    # first rep has another id; the same e-mail makes them one person.
    reps = frames["reps"]
    first = str(frames["deals"]["rep_id"].value_counts().index[0])  # the busiest rep
    old = {name: frame.copy() for name, frame in frames.items()}
    for name, frame in old.items():
        for column in ("id", "rep_id", "manager_id") if name == "reps" else ("rep_id",):
            if column in frame.columns:
                frame.loc[frame[column] == first, column] = "old-" + first
    assert import_frames(settings, old, source="old_crm").ok
    assert import_frames(settings, {"reps": reps}, source="new_crm").ok
    return settings


@pytest.fixture(scope="module", params=["one_source", "two_sources"])
def company(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return _company(tmp_path_factory.mktemp("rollup-read"), split=request.param == "two_sources")


def _questions(settings: Settings) -> Iterator[KpiQuery]:
    """Every slice and period, each with a date range and a filter in turn; then every
    range with every filter, by rep and team by month."""
    service = SalesKpiService(settings)
    person = sorted(r.rep for r in service.visible_reps())[0]
    team = sorted(service.teams())[0]
    filters: tuple[tuple[tuple[str, tuple[str, ...]], ...], ...] = (
        (), (("source", ("ads", "referral")),), (("team", (team,)),), (("rep", (person,)),))
    turns = itertools.cycle(itertools.product(RANGES[1:], filters))
    for by, period in itertools.product(BY, PERIODS):
        (start, end), where = next(turns)
        yield KpiQuery(KPIS, by=by, period=period, start=start, end=end, where=where)
    for (start, end), where in itertools.product(RANGES, filters):
        yield KpiQuery(KPIS, by=("rep", "team"), period="month", start=start, end=end,
                       where=where)


def _answer(settings: Settings, query: KpiQuery, *, rollups: bool) -> Scorecard:
    with open_store(settings, read_only=True) as store:
        engine = Engine(store, SalesKpiService(settings).catalog, timezone=ZONE,
                        currency=settings.currency, use_rollups=rollups, cache=SqlCache())
        card = engine.scorecard(query, totals=False)
        if rollups:
            assert any(a.startswith("rollup_") for a in engine.answered_from), query
        return card


def _values(card: Scorecard) -> dict[tuple[Any, ...], Any]:
    return {(tuple(row.keys.items()), kpi): (value.value, value.numerator, value.denominator)
            for row in card.rows for kpi, value in row.values.items()}


def test_direct_sql_answers_as_the_ibis_path_and_the_raw_rows(
        company: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    written = rollup_read.to_sql

    def counted(*args: Any) -> Any:
        found = written(*args)
        compiled.append(found.sql)
        return found

    monkeypatch.setattr(rollup_read, "to_sql", counted)
    questions = list(_questions(company))
    direct = [_answer(company, q, rollups=True) for q in questions]
    assert compiled and all("EXCLUDE" not in sql for sql in compiled)  # no Ibis text
    with open_store(company, read_only=True) as store:
        several = store.sources_of_reps() > 1
    # Reps from two sources are people: the rep slice joins each rep to theirs.
    assert any('"rep_people"' in sql for sql in compiled) == several
    # The reference: the rollups read by the SQL Ibis compiles.
    monkeypatch.setattr(rollup_read, "can_read", lambda shape, dialect: False)
    compared = 0
    for query, card in zip(questions, direct, strict=True):
        ours = _values(card)
        assert ours == _values(_answer(company, query, rollups=True)), query
        raw = _values(_answer(company, query, rollups=False))
        for slot in ours.keys() | raw.keys():
            mine = ours.get(slot, (None, None, None))[0]
            theirs = raw.get(slot, (None, None, None))[0]
            assert math.isclose(mine or 0, theirs or 0, rel_tol=1e-9, abs_tol=1e-6), (
                query, slot, mine, theirs)
            compared += 1
    assert compared > 5_000
