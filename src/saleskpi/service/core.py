"""The one gateway: every read and write of every surface (through ``saleskpi.views``).

It owns the caller's scope: the scope's filters are added to every query before
the engine sees it, so no surface can forget them. It keeps answers while the
data is unchanged and computes recent questions again in the background (server).
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import threading
import zoneinfo
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from saleskpi.catalog.load import Catalog, CatalogError, load_catalog
from saleskpi.domain.errors import InvalidQuery, QueryTimeout
from saleskpi.domain.filter_names import RepNames, product_ids_by_name, with_ids, with_people
from saleskpi.domain.i18n import _
from saleskpi.domain.query import (
    EVERYTHING,
    KpiQuery,
    KpiValue,
    ResultRow,
    Scope,
    Scorecard,
    Sums,
)
from saleskpi.domain.reports import ImportReport, Progress
from saleskpi.domain.settings import Settings
from saleskpi.engine.scorecard import Engine, QueryError
from saleskpi.engine.store_facts import StoreFacts, StoreFactsFiles
from saleskpi.service import catalogue
from saleskpi.service.results import RecentQuestions, ResultCache
from saleskpi.service.scoping import members_cut, plan_cut
from saleskpi.store.backend import (
    data_key,
    data_version,
    open_store,
    warm_reads,
    writing_elsewhere,
)
from saleskpi.store.facts import FactStore, StoreBusy

if TYPE_CHECKING:
    from saleskpi.catalog.funnel import FunnelConfig
    from saleskpi.domain.funnel import FunnelOptions, FunnelReport
    from saleskpi.domain.targets import Change, KeyTuple, Level, TargetRecord
    from saleskpi.engine.database import Database
    from saleskpi.engine.funnel import StageOrders
    from saleskpi.service.rollup_check import Verification
    from saleskpi.store.people import PeopleReport
    from saleskpi.store.targets import TargetStore

# Imports (pandas) and targets (SQLAlchemy) are imported by the methods that use
# them: a scorecard from the CLI needs neither (tests/test_cli_startup.py); nor the
# funnel's, targets' and people's modules (a few ms of its start-up each).

T = TypeVar("T")
log = logging.getLogger("saleskpi.service")
RECENT_DAYS = 7  # questions not asked for a week are not refreshed any more
TARGET_DAYS_KEPT = 16  # days whose targets are kept (pages ask for a handful)


@dataclass(frozen=True)
class RepEntry:
    """A rep (a person, across sources) as pickers and links show them."""

    rep: str  # the person key that KPI rows and filters use
    name: str
    team: str | None


@dataclass(frozen=True)
class Question:
    """A scorecard asked: what, in whose scope, with totals, as of when (None: now)."""

    query: KpiQuery
    scope: Scope = EVERYTHING
    totals: bool = True
    now: dt.datetime | None = None


@dataclass(frozen=True)
class FunnelQuestion:
    options: FunnelOptions
    scope: Scope = EVERYTHING
    now: dt.datetime | None = None


@dataclass(frozen=True)
class SumsQuestion:
    """KPIs that add up, as plain numbers by key (``SalesKpiService.sums``)."""

    query: KpiQuery
    scope: Scope = EVERYTHING
    now: dt.datetime | None = None


AnyQuestion = Question | FunnelQuestion | SumsQuestion


class SalesKpiService:
    def __init__(self, settings: Settings, *, shared_writer: bool = False) -> None:
        """``shared_writer``: inside the server, which also writes (imports, syncs).

        DuckDB lets one process hold a file read-write and refuses a read-only
        connection next to it (in another process, or in the same one), so the
        server reads read-only while none of its own writers has the file, and
        read-write beside one (``AnalyticsStore(join_writer=True)``). It does not keep
        the file open between computations (that would save 50 ms an open), so that
        the CLI can read, and import into, the same workspace while the server runs.
        While another process holds the file, answers kept for the same question come
        from the cache, however old (issue 16, item 7). On PostgreSQL
        (``store/backend.py``) readers never wait for a writer.
        """
        self.settings = settings
        self.shared_writer = shared_writer
        self._catalog: Catalog | None = None
        # Many people open the same page: a scorecard is kept for ``cache_seconds``
        # and only while the stored data is unchanged (the data version is in the key).
        self.results: ResultCache[Scorecard] = ResultCache(settings.cache_seconds)
        # What the pages asked lately: ``refresh`` computes it again in the background.
        self.recent: RecentQuestions[AnyQuestion] = RecentQuestions(RECENT_DAYS * 86400)
        # A plan's days (``sums``): kept like scorecards, cut per rep and team the same way.
        self.day_sums: ResultCache[Sums] = ResultCache(settings.cache_seconds, 256)
        self.funnels: ResultCache[FunnelReport] = ResultCache(settings.cache_seconds, 256)
        # Forecasts (``saleskpi.service.forecast``): seconds of simulation each.
        self.forecasts: ResultCache[Any] = ResultCache(settings.cache_seconds, 64)
        # Small lookups read from the store once per data version (see ``_per_version``).
        self._lookups: dict[str, tuple[tuple[int, ...], Any]] = {}
        # The funnel's stage orders, keyed by data version and funnel.yaml.
        self._orders: tuple[tuple[tuple[int, ...], str], StageOrders] | None = None
        self._facts: tuple[tuple[int, ...], StoreFacts] | None = None
        # The key the facts are kept in the workspace under, and their text as read or
        # last written (``_keep_facts``); no key: not kept.
        self._facts_kept: tuple[str | None, str] = (None, "")
        self._orders_lock = threading.Lock()
        # The data version and funnel.yaml the funnel's events were last kept for.
        self._funnel_kept_for: tuple[tuple[int, ...], str] | None = None
        self._targets: dict[dt.date, list[TargetRecord]] = {}
        self._targets_version = -1
        self._targets_lock = threading.Lock()
        # Called after each import that stored data (alerts are evaluated then); a
        # listener must not raise: the import is done whatever it does.
        self.after_import: list[Callable[[ImportReport], object]] = []
        # Inside ``sharing_reads``, this thread's reads share one open store.
        self._shared = threading.local()

    @property
    def cache_hits(self) -> int:
        return self.results.stats.hits

    def reload_catalog(self) -> None:
        """After the user's kpis.yaml changed (the web catalogue editor)."""
        self._catalog = None
        self.results.clear()

    def today(self) -> dt.date:
        """Today in the company's time zone."""
        return dt.datetime.now(zoneinfo.ZoneInfo(self.settings.timezone)).date()

    def data_version(self) -> tuple[int, ...]:
        """Changes whenever the stored data does (on DuckDB the files' modification
        times, on PostgreSQL a counter each write raises: ``store/backend.py``)."""
        return data_version(self.settings)

    # -- the workspace's own KPIs -------------------------------------------------------
    def user_kpis(self) -> list[dict[str, Any]]:
        return catalogue.user_kpis(self.settings.user_kpis_path)

    def put_kpi(self, key: str, definition: dict[str, Any]) -> None:
        """Add or replace a user KPI; refused (``CatalogError``) if the catalogue breaks."""
        catalogue.put_kpi(self.settings.user_kpis_path, key, definition)
        self.reload_catalog()

    def delete_kpi(self, key: str) -> None:
        catalogue.delete_kpi(self.settings.user_kpis_path, key)
        self.reload_catalog()

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.user_kpis_path,
                                         keep_in=self.settings.kept_yaml_dir)
        return self._catalog

    @contextmanager
    def engine(self, *, read_only: bool = True,
               catalog: Catalog | None = None) -> Iterator[Engine]:
        """An engine on the store; ``catalog`` instead of the workspace's (a preview)."""
        facts = self._store_facts() if read_only else None
        opened = (self._read_store() if read_only
                  else _written_store(self.settings, join_writer=self.shared_writer))
        with opened as store:
            yield Engine(store, catalog or self.catalog, timezone=self.settings.timezone,
                         currency=self.settings.currency,
                         compiled_sql=self.settings.compiled_sql_dir, facts=facts)
        if facts is not None:
            self._keep_facts(facts)

    def _store_facts(self) -> StoreFacts:
        """What engines read about the store before their questions, shared by every
        reading engine while the data is unchanged (``StoreFacts``), and read from the
        workspace where an earlier process kept them (``engine/store_facts.py``)."""
        version = self.data_version()
        kept = self._facts
        if kept is None or kept[0] != version:
            key = data_key(self.settings)
            found = None if key is None else StoreFactsFiles(
                self.settings.store_facts_dir).read(key)
            facts, text = found or (StoreFacts(), "")
            kept = self._facts = (version, facts)
            self._facts_kept = (key, text)
        return kept[1]

    def _keep_facts(self, facts: StoreFacts) -> None:
        """Keep in the workspace what the engine has read about the store since it was
        last kept, unless the data changed meanwhile (then it may belong to either)."""
        key, text = self._facts_kept
        if key is None or self._facts is None or self._facts[1] is not facts:
            return
        now = facts.as_text()
        if now != text and data_key(self.settings) == key:
            StoreFactsFiles(self.settings.store_facts_dir).write(key, now)
            self._facts_kept = (key, now)

    def preview_kpi(self, key: str, definition: dict[str, Any], query: KpiQuery,
                    scope: Scope = EVERYTHING) -> Scorecard:
        """A KPI not saved yet computed for ``query`` within ``scope``: the definition is
        checked as saving checks it (``CatalogError``), nothing is written or kept."""
        candidate = catalogue.candidate_catalog(self.settings.user_kpis_path, key,
                                                definition)
        scoped = replace(query, where=(*query.where, *scope.as_filters()))
        scoped = self._resolve_names(scoped, scope)
        with self.engine(catalog=candidate) as engine:
            result = engine.scorecard(scoped, totals=False)
        result.query = query
        return result

    # -- scorecards ---------------------------------------------------------------
    def scorecard(self, query: KpiQuery, scope: Scope = EVERYTHING, *, totals: bool = True,
                  now: dt.datetime | None = None) -> Scorecard:
        """KPIs for ``query`` within ``scope``, with total rows.

        With a cache (the server), a rep's or a team lead's scorecard is cut out of
        the company's scorecard by rep or by team (``saleskpi.service.scoping``), which is
        computed once for everybody. The rows are shared with the cache: read them,
        do not change them.
        """
        asked = Question(query, scope, totals, now)
        if self.settings.cache_seconds <= 0:
            return self._compute(asked)
        cut = plan_cut(self.catalog, self._without_redundant_filters(query, scope), scope)
        if cut is None:
            return self._kept(asked)
        cut, members = members_cut(self.catalog, cut, self._people())
        company = self._kept(Question(cut.rows_query, EVERYTHING, False, now))
        if (cut.added or cut.members_only) and not cut.listed(company, members):
            # A rep or team the company's grid does not list (no data, unknown id):
            # the scoped computation gives its row of zeros.
            return self._kept(asked)
        rows = cut.rows(company, members)
        total_rows: list[ResultRow] = []
        if totals and query.by:
            total_rows = cut.totals(self._kept(Question(cut.totals_query, EVERYTHING, False,
                                                        now)))
        return Scorecard(query, rows, total_rows, dict(company.units))

    def _without_redundant_filters(self, query: KpiQuery, scope: Scope) -> KpiQuery:
        """Drop filters the scope already applies, so that equal questions share answers.

        A team lead's page filtered on their own team, or a rep's on their own team
        (every row of a rep is their team's), asks what the scope alone asks.
        """
        if not query.where:
            return query
        teams = scope.teams
        if scope.rep_ids is not None and len(scope.rep_ids) == 1 and teams is None:
            (rep,) = scope.rep_ids
            team = next((r.team for r in self.visible_reps(scope) if r.rep == rep), None)
            teams = frozenset({team}) if team else None
        where = tuple((dim, values) for dim, values in query.where
                      if not (dim == "team" and teams is not None and set(values) >= teams)
                      and not (dim == "rep" and scope.rep_ids is not None
                               and set(values) >= scope.rep_ids))
        return replace(query, where=where)

    def sums(self, query: KpiQuery, scope: Scope = EVERYTHING, *,
             now: dt.datetime | None = None) -> Sums:
        """KPIs that add up (calls, deals won, revenue) for ``query`` within ``scope``, as
        plain numbers by key: what a plan's days need, without a scorecard's rows.

        Kept and cut like ``scorecard``: a rep's or a team's days come from the company's
        by rep or by team (``plan_cut``), computed once for everybody. The numbers are
        shared with the cache: read them, do not change them.
        """
        asked = SumsQuestion(query, scope, now)
        if self.settings.cache_seconds <= 0:
            return self._compute_sums(asked)
        cut = plan_cut(self.catalog, self._without_redundant_filters(query, scope), scope)
        if cut is None:
            return self._kept_sums(asked)
        cut, members = members_cut(self.catalog, cut, self._people())
        company = self._kept_sums(SumsQuestion(cut.rows_query, EVERYTHING, now))
        rep_at = company.keys.index("rep") if members is not None else -1
        if cut.members_only:
            return Sums(company.keys, {key: found for key, found in company.values.items()
                                       if key[rep_at] in (members or ())})
        at = company.keys.index(cut.dim)
        kept = [i for i in range(len(company.keys)) if not (cut.added and i == at)]
        values = {tuple(key[i] for i in kept): found for key, found in company.values.items()
                  if key[at] == cut.value and (members is None or key[rep_at] in members)}
        return Sums(tuple(company.keys[i] for i in kept), values)

    def _people(self) -> list[tuple[str, str | None]]:
        """(person, team) of every rep, a person once per team."""
        return [(r.rep, r.team) for r in self.visible_reps()]

    def _kept_sums(self, question: SumsQuestion) -> Sums:
        sums = _kept_while_written(self.settings, self.day_sums, question)
        try:
            if sums is None:
                sums = self.day_sums.get((question, self.data_version()),
                                         partial(self._compute_sums, question))
        except StoreBusy as busy:
            sums = _latest_answer(self.day_sums, question, busy)
        self.recent.note(question)
        return sums

    def _compute_sums(self, question: SumsQuestion) -> Sums:
        query, scope = question.query, question.scope
        scoped = replace(query, where=(*query.where, *scope.as_filters()))
        scoped = self._resolve_names(scoped, scope)
        with self.engine() as engine:
            return engine.sums(scoped, now=question.now)

    def team_average(self, query: KpiQuery, rep: str, *,
                     now: dt.datetime | None = None) -> list[ResultRow]:
        """The average of ``rep``'s team mates' KPIs, per period: an aggregate only.

        For a rep's own pages: they may compare themselves with their team without
        seeing any team mate's figures. Empty when the rep has no team.
        """
        team = next((r.team for r in self.visible_reps() if r.rep == rep), None)
        if not team:
            return []
        by_rep = replace(query, by=("rep",))
        team_scope = Scope(teams=frozenset({team}))
        return averages(self.scorecard(by_rep, team_scope, totals=False, now=now))

    def _kept(self, question: Question) -> Scorecard:
        key = (question, self.data_version())
        # While another process (a CLI import) writes, the last answer to the same
        # question at once, if one is kept; else it is computed once the write ends.
        card = _kept_while_written(self.settings, self.results, question)
        try:
            if card is None:
                card = self.results.get(key, partial(self._compute, question))
        except StoreBusy as busy:
            # Another process holds the store: the last answer, if one is kept; else
            # the caller gets the 503 "try again".
            card = _latest_answer(self.results, question, busy)
        self.recent.note(question)
        return Scorecard(card.query, list(card.rows), list(card.totals), dict(card.units))

    def _compute(self, question: Question) -> Scorecard:
        query, scope = question.query, question.scope
        scoped = replace(query, where=(*query.where, *scope.as_filters()))
        scoped = self._resolve_names(scoped, scope)
        with self.engine() as engine:
            result = engine.scorecard(scoped, totals=question.totals, now=question.now)
        result.query = query
        return result

    def refresh(self, *, margin: float | None = None) -> int:
        """Compute again what was asked lately and is missing or about to expire.

        Run in the background by the server (``saleskpi.service.refresh``) after imports and
        syncs and before answers expire, so the next visitor is not the one who
        waits. Returns how many scorecards it computed.
        """
        from saleskpi.catalog.funnel import FunnelError

        ttl = self.settings.cache_seconds
        if ttl <= 0:
            return 0
        margin = min(ttl / 2, 300.0) if margin is None else margin
        version = self.data_version()
        done = 0
        for question, _asked in self.recent.items():
            key = (question, version)
            try:
                if isinstance(question, FunnelQuestion):
                    if self.funnels.expires_in(key) > margin:
                        continue
                    self.funnels.get(key, partial(self._compute_funnel, question), fresh=True)
                elif isinstance(question, SumsQuestion):
                    if self.day_sums.expires_in(key) > margin:
                        continue
                    self.day_sums.get(key, partial(self._compute_sums, question), fresh=True)
                else:
                    if self.results.expires_in(key) > margin:
                        continue
                    self.results.get(key, partial(self._compute, question), fresh=True)
            except (QueryError, CatalogError, FunnelError):
                continue  # the catalogue or pipelines changed since: it will not be asked
            except QueryTimeout:
                continue  # too slow for the limit: asked again, it is refused again
            done += 1
            if self.data_version() != version:
                break  # new data arrived meanwhile: start over on it
        return done

    # -- funnels ---------------------------------------------------------------------
    def funnel(self, options: FunnelOptions, scope: Scope = EVERYTHING, *,
               now: dt.datetime | None = None) -> FunnelReport:
        """The stage funnel in ``scope``, kept like scorecards while the data is unchanged."""
        asked = FunnelQuestion(options, scope, now)
        if self.settings.cache_seconds <= 0:
            return self._compute_funnel(asked)
        report = _kept_while_written(self.settings, self.funnels, asked)
        try:
            if report is None:
                report = self.funnels.get((asked, self.data_version()),
                                          partial(self._compute_funnel, asked))
        except StoreBusy as busy:
            report = _latest_answer(self.funnels, asked, busy)
        self.recent.note(asked)
        return report

    def _compute_funnel(self, question: FunnelQuestion) -> FunnelReport:
        from saleskpi.catalog.funnel import load_funnel_config
        from saleskpi.engine.funnel import compute_funnel, reads_kept
        from saleskpi.service.kept_funnel import kept_folder

        config = load_funnel_config(self.settings.workspace)
        with self.engine() as engine:
            version = self.data_version()
            orders = self._stage_orders(engine.store, config)
            kept = None
            if reads_kept(engine.store, question.scope):
                kept = kept_folder(self.settings, engine.store, config, orders, version)
            return compute_funnel(engine.store, self.settings, question.scope,
                                  question.options, now=question.now, config=config,
                                  orders=orders, kept=kept)

    def keep_funnel(self) -> bool:
        """Keep every deal's funnel events for the current data unless they are kept
        (``saleskpi.service.kept_funnel``); True if they were built now.

        Run by the server's background refresh, so that the head of sales's funnel
        after a write reads them rather than ordering every deal's history.
        """
        from saleskpi.catalog.funnel import load_funnel_config
        from saleskpi.service.kept_funnel import keep

        if self.settings.backend != "duckdb":
            return False
        config = load_funnel_config(self.settings.workspace)
        version = self.data_version()
        asked = (version, config.model_dump_json())
        if asked == self._funnel_kept_for:
            return False  # the refresh asks every few seconds: no store opened for it
        built = None
        # Background work for data a write is about to change: an import of another
        # process that waits for the file stops it (10-12 s at a million deals).
        with self.reading() as store, store.giving_way() as gave_way:
            if store.count("stage_changes"):  # else every funnel is quick
                orders = self._stage_orders(store, config)
                built = keep(self.settings, store, config, orders, version)
        if gave_way.stopped:
            log.info("keeping the funnel's events gave way to an import")
            return False
        if self.data_version() != version:
            # New data arrived meanwhile: what was written is named for the data
            # before and would never be read.
            if built is not None:
                shutil.rmtree(built, ignore_errors=True)
            return False
        self._funnel_kept_for = asked
        return built is not None

    def _stage_orders(self, store: Database, config: FunnelConfig) -> StageOrders:
        """The pipelines' stage orders, learned once per data version and funnel.yaml.

        The order is learned from every deal in the store (docs/funnel.md), the same
        for every viewer and filter, and costs seconds on a big company: a funnel
        whose data and funnel.yaml are unchanged since the last one reuses it; any
        write changes the data version, so the next funnel learns it again.
        """
        from saleskpi.engine import funnel

        # The version before learning: a write meanwhile leaves a key that is already
        # old, so the order is learned again rather than kept past the write.
        key = (self.data_version(), config.model_dump_json())
        with self._orders_lock:
            kept = self._orders
        if kept is not None and kept[0] == key:
            return kept[1]
        from saleskpi.service.funnel_orders import read_orders, write_orders

        # Another process (a CLI command, the server before a restart) may have learned
        # it for the same data and funnel.yaml.
        orders = read_orders(self.settings, key)
        if orders is None:
            orders = funnel.stage_orders(store, config, stored=self.settings.compiled_sql_dir)
            write_orders(self.settings, key, orders)
        with self._orders_lock:
            self._orders = (key, orders)
        return orders

    # -- targets ---------------------------------------------------------------------
    def targets_on(self, at: dt.date) -> list[TargetRecord]:
        """The targets whose period contains ``at``: kept until the state database changes.

        Every overview and rep page shows plans; listing thousands of targets from
        SQLite each time cost 70-200 ms a page on a big company. Pages ask for a
        few days at once (today, the end of last month), so several days are kept.
        """
        state = self.settings.workspace / "state.sqlite"
        version = state.stat().st_mtime_ns if state.exists() else 0
        with self._targets_lock:
            if self._targets_version != version:
                self._targets.clear()
                self._targets_version = version
            found = self._targets.get(at)
        if found is None:
            found = self._target_store().list(at=at)
            with self._targets_lock:
                if self._targets_version == version:
                    if len(self._targets) >= TARGET_DAYS_KEPT:
                        self._targets.pop(next(iter(self._targets)))
                    self._targets[at] = found
        return self.as_people(found)

    def as_people(self, targets: list[TargetRecord]) -> list[TargetRecord]:
        """Rep targets named by a source's rep id, as the person that rep counts as.

        A company that moved CRMs has plans set in the old one for ``o1``, who is Anna
        (``n7``) in every KPI: her page, her scope and her actual are the person's. A
        rep id no source has (a person key typed by hand) is left as it is; one that
        several people share, and the target's source does not tell, too.
        """
        people = self._rep_lookup().of_rep
        if all(key == rep for (_source, rep), key in people.items()):
            return targets  # one source: a person is their rep id
        of_id = self._people_of_rep_id()

        def person(target: TargetRecord) -> str | None:
            rep = target.rep_id
            if rep is None:
                return None
            found = people.get((target.source, rep))
            if found is None and len(of_id.get(rep, ())) == 1:
                (found,) = of_id[rep]
            return found or rep

        return [t if (key := person(t)) == t.rep_id else replace(t, rep_id=key)
                for t in targets]

    def targets_of(self, person: str, *, at: dt.date | None = None,
                   kpis: Sequence[str] = ()) -> list[TargetRecord]:
        """The stored targets of one person, whichever of their source rep ids each was
        set for, as stored (``list_targets(rep_ids=...)`` finds those of the ids given)."""
        ids = {person} | {rep for rep, people in self._people_of_rep_id().items()
                          if person in people}
        found = self.list_targets(at=at, kpis=kpis, rep_ids=sorted(ids))
        # An id two sources use for two people is this person's only in their source.
        return [t for t, as_person in zip(found, self.as_people(found), strict=True)
                if as_person.rep_id == person]

    def names_of_reps(self) -> dict[tuple[str, str], str]:
        """(source, rep id) -> the name of the person that rep counts as (a rep matched
        across sources has one name everywhere): what a listing of records shows."""
        lookup = self._rep_lookup()
        return {key: lookup.names.get(person, person) for key, person in lookup.of_rep.items()}

    def _people_of_rep_id(self) -> dict[str, frozenset[str]]:
        """A source's rep id -> the people it is in some source (two for an id that two
        sources use for different reps)."""
        return self._rep_lookup().by_id

    def list_targets(self, *, at: dt.date | None = None, kpis: Sequence[str] = (),
                     rep_ids: Sequence[str] = (), team: str | None = None,
                     source: str | None = None) -> list[TargetRecord]:
        return self._target_store().list(at=at, kpis=kpis, rep_ids=rep_ids, team=team,
                                         source=source)

    def set_target(self, *, kpi: str, period_start: dt.date, period_end: dt.date,
                   value: float, rep_id: str | None = None, team: str | None = None,
                   actor: str = "local") -> tuple[TargetRecord, Change]:
        """Set the one target of this KPI, period and rep, team or company (replacing any,
        typed in or imported); the change is logged with ``actor``."""
        return self._target_store().set(
            kpi=kpi, period_start=period_start, period_end=period_end, value=value,
            rep_id=rep_id, team=team, actor=actor)

    def delete_target(self, *, kpi: str, period_start: dt.date, period_end: dt.date,
                      team: str | None = None, source: str | None = None,
                      actor: str = "local") -> int:
        """Delete the target of a KPI and period set for ``team``, or for the company (a
        person's: ``delete_targets`` with the ids ``targets_of`` finds)."""
        return self._target_store().delete(
            kpi=kpi, period_start=period_start, period_end=period_end, team=team,
            source=source, actor=actor)

    def delete_targets(self, ids: Sequence[int], actor: str = "local") -> int:
        return self._target_store().delete_ids(ids, actor)

    def copy_targets(self, *, source_start: dt.date, source_end: dt.date, start: dt.date,
                     end: dt.date, replace: bool = False, actor: str = "local",
                     kpi: str | None = None, level: Level | None = None
                     ) -> dict[Change, int]:
        """Every target of one period (of one KPI, one level, if given) copied to another
        (kept where one is set, unless ``replace``)."""
        return self._target_store().copy(source_start=source_start, source_end=source_end,
                                         start=start, end=end, replace=replace, actor=actor,
                                         kpi=kpi, level=level)

    def save_target_grid(self, sets: Sequence[tuple[KeyTuple, float]],
                         clears: Sequence[KeyTuple], *, actor: str = "local"
                         ) -> dict[str, int]:
        """A grid of targets saved: ``sets`` replace theirs, ``clears`` delete theirs, all
        or none, each change logged with ``actor``."""
        return self._target_store().save_grid(sets, clears, actor=actor)

    def set_targets(self, keys: Sequence[tuple[KeyTuple, float]], *,
                    actor: str = "local") -> dict[Change, int]:
        """Many targets typed in at once (a grid pasted from a spreadsheet): all or none."""
        return self._target_store().set_many(keys, actor=actor)

    def target_changes(self, limit: int = 100) -> Sequence[dict[str, object]]:
        """Who changed which target, newest first."""
        return self._target_store().changes(limit)

    def _target_store(self) -> TargetStore:
        from saleskpi.store.targets import TargetStore

        return TargetStore(self.settings.state_url)

    # -- rollups -------------------------------------------------------------------
    def verify_rollups(self, *, rebuild: bool = False,
                       progress: Progress | None = None) -> Verification:
        """The rollups against the raw rows (``saleskpi verify``); ``rebuild`` first."""
        from saleskpi.service.rollup_check import verify

        return verify(self.settings, self.catalog, rebuild=rebuild,
                      progress=progress or (lambda _m: None))

    # -- people ---------------------------------------------------------------------
    def people(self) -> PeopleReport:
        """Reps as people matched across sources, with likely duplicates."""
        from saleskpi.store.people import people

        with self.reading() as store:
            return people(store)

    def link_reps(self, refs: Sequence[str]) -> None:
        """Treat reps (``SOURCE:ID``) from different sources as one person."""
        from saleskpi.store.people import link

        with open_store(self.settings) as store:
            link(store, list(refs))

    def unlink_reps(self, refs: Sequence[str]) -> None:
        from saleskpi.store.people import unlink

        with open_store(self.settings) as store:
            unlink(store, list(refs))

    @contextmanager
    def reading(self) -> Iterator[FactStore]:
        """The analytics store, read-only (read-write beside a writer of the server's)."""
        with self._read_store() as store:
            yield store

    @contextmanager
    def sharing_reads(self) -> Iterator[None]:
        """The reads of this thread inside the block share one store, opened by the first
        (if any: kept answers open none) and closed at the end.

        A command that checks a question against the data and then computes it opens
        the file once, not twice: an open is a DuckDB connection and its schema check,
        a tenth of a ``saleskpi kpi`` process (issue 12). A page's questions (the period
        and the one before, the plans, the trend) share it too: opening and closing the
        file for each cost tens of milliseconds and dropped the blocks it had read. A
        page whose answers are all kept opens nothing, so one asked while an import
        holds the file is answered from the kept answers as before. For one command's
        or one page's reads only: the file stays open, and DuckDB lets no writer of
        another process in meanwhile.
        """
        if getattr(self._shared, "active", False):
            yield  # already inside: the outer block closes the store
            return
        if self.shared_writer and self.settings.backend == "duckdb":
            # Not in the server on DuckDB: DuckDB mixes no read-only and read-write
            # connections to a file in one process, so the server's own import waits
            # until no page holds one, while a page holding one may wait for an answer
            # another request computes, which waits for the import: each page would
            # hold the file until the import gave up (tests/test_concurrency.py).
            # Its questions still find the file open: a keep-alive that any writer
            # closes at once (store/warm_reads.py).
            with warm_reads(self.settings):
                yield
            return
        self._shared.active, self._shared.store = True, None
        try:
            yield
        finally:
            self._shared.active = False
            self._let_go()

    def _let_go(self) -> None:
        """Close this thread's shared store, if one is open."""
        held: FactStore | None = getattr(self._shared, "store", None)
        self._shared.store = None
        if held is not None:
            held.close()

    @contextmanager
    def _read_store(self) -> Iterator[FactStore]:
        """A read-only store for one read: the shared one inside ``sharing_reads``."""
        opened: AbstractContextManager[FactStore]
        if not getattr(self._shared, "active", False):
            opened = open_store(self.settings, read_only=True, join_writer=self.shared_writer)
        else:
            held: FactStore | None = self._shared.store
            if held is None:
                held = self._shared.store = open_store(
                    self.settings, read_only=True, join_writer=self.shared_writer)
            opened = _not_closed(held)
        with opened as store, store.time_limit(self.settings.query_timeout_seconds):
            yield store

    def find_rep(self, text: str, scope: Scope = EVERYTHING) -> RepEntry | None:
        """A person by key, or the one person (of those ``scope`` may see) a rep name or
        any source's rep id stands for; None when unknown or several people's
        (``people_called``)."""
        person = self.person_key(text, scope)
        return next((r for r in self.visible_reps() if r.rep == person), None)

    def person_key(self, text: str, scope: Scope = EVERYTHING) -> str | None:
        """The person a rep's person key, name or any source's rep id stands for; None
        when unknown, or when the name or id is several people's (``people_called``)."""
        return self._rep_lookup().one_person(text, scope)

    def people_called(self, text: str, scope: Scope = EVERYTHING) -> list[str]:
        """The people (keys) ``scope`` may see whose rep name, or a source's rep id, is
        ``text``: more than one for namesakes not linked, or the same id in two sources."""
        return self._rep_lookup().people_called(text, scope)

    def ambiguous_rep(self, text: str, people: list[str]) -> InvalidQuery:
        """The error for a rep name or id that is several ``people``'s, naming each."""
        return self._rep_lookup().ambiguous(text, people)

    def data_span(self) -> tuple[dt.date, dt.date] | None:
        """The first and last day, in the company's time zone, of any lead, deal or
        activity; None while there is none. Kept with the store's facts: every view
        stating a range asks, and a fresh process would pay a query over every table."""
        facts = self._store_facts()
        span = facts.data_span
        if span is None:
            found, kept = self._fact_of_this_version("data_span", FactStore.data_span)
            span = [] if found is None else [m.isoformat() for m in found]
            if kept:
                facts.data_span = span
                self._keep_facts(facts)
        if not span:
            return None
        zone = zoneinfo.ZoneInfo(self.settings.timezone)
        first, last = (dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC)
                       .astimezone(zone).date() for moment in span)
        return first, last

    def _fact_of_this_version(self, name: str, load: Callable[[FactStore], T]
                              ) -> tuple[T, bool]:
        """``load``'s value (``_per_version``), and whether it was read at the data version
        of the store's facts, so that it may be kept with them: while another process
        writes, ``_per_version`` answers what was read before the write, which is not the
        data the facts' file will be named for."""
        value = self._per_version(name, load)
        read, facts = self._lookups.get(name), self._facts
        return value, read is not None and facts is not None and read[0] == facts[0]

    def _rep_lookup(self) -> RepNames:
        return self._per_version("rep_lookup", FactStore.rep_lookup)

    def teams(self) -> set[str]:
        """Every team of the data's reps: kept while the data is unchanged."""
        return self._per_version("teams", FactStore.teams)

    def rep_teams(self) -> dict[str, str | None]:
        """Source rep id -> team, as targets name reps: kept while the data is unchanged."""
        return self._per_version("rep_teams", FactStore.rep_teams)

    def known_sources(self) -> set[str]:
        return self._per_version("sources", FactStore.sources)

    def slice_values(self, dim: str) -> set[str]:
        """The values of segment, product or pipeline the data holds (kept per version)."""
        return self._per_version(f"values_{dim}", lambda store: store.slice_values(dim))

    def product_names(self) -> dict[str, str]:
        return self._per_version("product_names", FactStore.product_names)

    def custom_fields(self) -> set[str]:
        """Custom fields any record or rep has (what a custom slice may name)."""
        return self._per_version("custom_fields", FactStore.custom_fields)

    def currencies_without_rates(self) -> dict[str, tuple[int, str]]:
        """Currency -> (records, first day) of amounts with no rate to the reporting one.
        Kept with the store's facts per reporting currency (every money question checks)."""
        currency = self.settings.currency
        facts = self._store_facts()
        missing = facts.missing_rates.get(currency)
        if missing is None:
            found, kept = self._fact_of_this_version(
                f"missing_rates_{currency}",
                lambda store: store.currencies_without_rates(currency))
            missing = {c: [n, day] for c, (n, day) in found.items()}
            if kept:
                facts.missing_rates[currency] = missing
                self._keep_facts(facts)
        return {c: (int(n), str(day)) for c, (n, day) in missing.items()}

    def _per_version(self, name: str, load: Callable[[FactStore], T]) -> T:
        """``load(store)``, read once per data version and kept under ``name``.

        While an import holds the store, the value read before is answered. Read it,
        do not change it.
        """
        version = self.data_version()
        kept = self._lookups.get(name)
        if kept is not None and kept[0] != version and writing_elsewhere(self.settings):
            return cast(T, kept[1])  # an import writes: what was known before, at once
        if kept is None or kept[0] != version:
            try:
                with self.reading() as store:
                    value = load(store)
            except StoreBusy:
                if kept is None:
                    raise
                return cast(T, kept[1])  # an import holds the store: what was known before
            kept = self._lookups[name] = (version, value)
        return cast(T, kept[1])

    def visible_reps(self, scope: Scope = EVERYTHING) -> list[RepEntry]:
        """The reps ``scope`` may see, by name: for pickers and links."""
        people = self._per_version("people", _rep_entries)
        return [r for r in people
                if (scope.rep_ids is None or r.rep in scope.rep_ids)
                and (scope.teams is None or r.team in scope.teams)]

    def rep_names(self) -> dict[str, str]:
        """Source rep id -> name, as targets name reps: kept while the data is unchanged.

        Plan pages name the rep of every target; opening the store for that cost a
        page tens of milliseconds.
        """
        return self._per_version("rep_names", FactStore.rep_names)

    # -- imports ------------------------------------------------------------------------
    def mapping_names(self) -> list[str]:
        """Mappings a user may pick by name: built-in ones and the workspace's own."""
        from saleskpi.sources.ingest.mapping import builtin_mappings

        own = self.settings.mappings_dir
        names = set(builtin_mappings())
        if own.is_dir():
            names |= {p.stem for p in own.glob("*.yaml")}
        return sorted(names)

    def mappings(self) -> list[tuple[str, str]]:
        """(name, description) of every mapping a user may pick."""
        from saleskpi.sources.ingest.mapping import load_mapping

        return [(name, load_mapping(name, self.settings.mappings_dir).description)
                for name in self.mapping_names()]

    def import_path(self, path: Path, *, mapping: str | None, source: str | None,
                    dry_run: bool, progress: Progress | None = None,
                    mapping_by_name_only: bool = False) -> ImportReport:
        """Import a folder of CSV files or a workbook in one transaction (all or nothing).

        ``mapping``: a mapping's name (built-in or the workspace's) or, from the CLI, a
        YAML file; ``mapping_by_name_only`` refuses paths (a server must never read
        files a client names).
        """
        from saleskpi.sources.ingest.mapping import MappingError, load_mapping
        from saleskpi.sources.ingest.run import import_path

        chosen = None
        if mapping:
            if mapping_by_name_only and mapping not in self.mapping_names():
                raise MappingError(_("unknown mapping {name!r}; known: {known}", name=mapping,
                                     known=", ".join(self.mapping_names())))
            chosen = load_mapping(mapping, self.settings.mappings_dir)
        report = import_path(self.settings, path, mapping=chosen, source=source,
                             dry_run=dry_run, progress=progress)
        if not report.dry_run and report.ok:
            for listener in self.after_import:
                try:
                    listener(report)
                except Exception:  # the data is stored: the import has worked
                    log.exception("after the import of %s", path.name)
        return report

    def _resolve_names(self, query: KpiQuery, scope: Scope = EVERYTHING) -> KpiQuery:
        """Let users filter by a rep's or a product's name as well as by id: a rep's name
        or any source's rep id means the person (of those ``scope`` may see)."""
        dims = query.where_dims()
        where = query.where
        if "rep" in dims:
            where = with_people(where, self._rep_lookup(), scope)
        if "product" in dims:
            where = with_ids(where, {"product": product_ids_by_name(self.product_names())})
        return replace(query, where=where) if where != query.where else query


@contextmanager
def _written_store(settings: Settings, *, join_writer: bool) -> Iterator[FactStore]:
    """The store opened as its writer, with no time limit on the queries."""
    with open_store(settings, join_writer=join_writer) as store, store.time_limit(0):
        yield store


@contextmanager
def _not_closed(store: FactStore) -> Iterator[FactStore]:
    """``store`` for a ``with`` that must leave it open (``sharing_reads`` closes it)."""
    yield store


def _rep_entries(store: FactStore) -> list[RepEntry]:
    entries = [RepEntry(p, n or p, t) for p, n, t in store.rep_people()]
    entries.sort(key=lambda r: (r.name.casefold(), r.rep))
    return entries


def _kept_while_written(settings: Settings, cache: ResultCache[T],
                        question: Hashable) -> T | None:
    """The last kept answer to ``question`` while another process writes the store,
    else None (compute as usual)."""
    if not writing_elsewhere(settings):
        return None
    return cache.latest(lambda key: isinstance(key, tuple) and key[0] == question)


def _latest_answer(cache: ResultCache[Any], question: Hashable, busy: StoreBusy) -> Any:
    """The last kept answer to ``question`` (keys are (question, data version)), or
    ``busy`` raised again when there is none."""
    found = cache.latest(lambda key: isinstance(key, tuple) and key[0] == question)
    if found is None:
        raise busy
    return found


def active(row: ResultRow) -> bool:
    """A row (a rep in a period) with anything counted: a value other than none or zero,
    or a rate with cases (a 0% win rate over 5 deals is activity; 0 calls is not)."""
    return any((v.value is not None and v.value != 0) or bool(v.denominator)
               for v in row.values.values())


def averages(scorecard: Scorecard) -> list[ResultRow]:
    """The team-average row(s): the mean of the rows' values, per period.

    Only reps active in the period count (``active``): a rep with nothing at all
    (on leave, just hired, gone) would pull every count towards zero.
    """
    groups: dict[str | None, list[ResultRow]] = {}
    for row in scorecard.rows:
        group = groups.setdefault(row.keys.get("period"), [])
        if active(row):
            group.append(row)
    result = []
    for period, rows in groups.items():
        keys: dict[str, str | None] = {"period": period} if any(
            "period" in r.keys for r in scorecard.rows) else {}
        average = ResultRow(keys)
        for key, unit in scorecard.units.items():
            values = [v for r in rows if (v := r.values[key].value) is not None]
            mean = sum(values) / len(values) if values else None
            average.values[key] = KpiValue(mean, unit)
        result.append(average)
    return result
