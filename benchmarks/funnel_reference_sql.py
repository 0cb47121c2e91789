"""The reference for benchmarks/funnel.py: the funnel as hand-written DuckDB SQL.

This is saleskpi's funnel before it became Ibis expressions (commit 4c91489,
src/saleskpi/engine/funnel.py), unchanged apart from this paragraph and the small
Python helpers it now imports from the engine (they did not change): the benchmark
times it against the engine's funnel on the same store and checks that both give
the same report.

Every deal's history becomes one ordered list of events: its stage entries
(``stage_changes``) and its closes (entries into a won or lost stage, or, when
the history has none after the last stage entry, the deal's own status and
``closed_at``). Consecutive entries into the same stage are one stay. From it:

- stage conversion: of the deals whose first entry into stage k is in range,
  those that afterwards entered a later stage (k+1 or beyond: skipping a stage
  is progress) or were won;
- drop-off: of the same deals, those finally lost while in stage k (a deal lost
  and then reopened is not lost there unless it is lost there again);
- time in stage: each finished stay in k that began in range, from entering k to
  the next event (another stage, won or lost); open stays are not durations;
- the open pipeline at an instant: each deal is in the stage of its latest event
  at or before it, unless that event closed it.

Slices use the deal's rep (the owner), like the scorecard.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import ibis

from saleskpi.catalog.funnel import FunnelConfig, FunnelError, load_funnel_config
from saleskpi.domain.funnel import (
    FunnelOptions,
    FunnelReport,
    PipelineFunnel,
    StageRow,
)
from saleskpi.domain.i18n import _
from saleskpi.domain.query import EVERYTHING, Scope, local_midnight_utc
from saleskpi.domain.settings import Settings
from saleskpi.engine.database import Database
from saleskpi.engine.funnel import (  # the Python around the queries is the engine's
    _check_dimension,
    _number,
    _reps_in_scope,
    _resolve_rep_names,
    _slice,
)
from saleskpi.engine.views import ViewContext, build_view

Where = tuple[tuple[str, tuple[str, ...]], ...]
# Sort keys for events at the same instant: stages in funnel order, closes last.
_UNKNOWN_POS = 1_000_000_000
_CLOSE_POS = 2_000_000_000

# Deals (``{deals}``: a query with datasource, id, rep_id, status, closed_at,
# amount_rc, pipeline) and their history, one ordered event per row.
_EVENTS = """
d AS (
    SELECT v.datasource AS src, v.id AS deal, v.rep_id AS rep, v.status, v.closed_at,
           CAST(v.amount_rc AS DOUBLE) AS amount, v.pipeline AS d_pipeline
    FROM ({deals}) v
    WHERE {filters}
),
sc AS (
    SELECT s.datasource AS src, s.deal_id AS deal, trim(s.stage) AS stage, s.entered_at AS ts,
           s.pipeline AS s_pipeline,
           CASE WHEN list_contains(CAST($won AS VARCHAR[]), lower(trim(s.stage))) THEN 'won'
                WHEN list_contains(CAST($lost AS VARCHAR[]), lower(trim(s.stage))) THEN 'lost'
                ELSE 'stage' END AS kind
    FROM stage_changes s
    JOIN d ON s.deal_id = d.deal AND s.datasource = d.src
    WHERE s.entered_at IS NOT NULL AND trim(coalesce(s.stage, '')) <> ''
),
deal AS (
    SELECT d.src, d.deal, d.rep, d.status, d.closed_at, d.amount,
           coalesce(d.d_pipeline, h.s_pipeline) AS pipeline,
           h.deal IS NOT NULL AS has_history, h.last_stage_at
    FROM d LEFT JOIN (
        SELECT src, deal,
               arg_max(s_pipeline, ts) FILTER (WHERE s_pipeline IS NOT NULL) AS s_pipeline,
               max(ts) FILTER (WHERE kind = 'stage') AS last_stage_at
        FROM sc GROUP BY src, deal
    ) h ON h.src = d.src AND h.deal = d.deal
),
closes AS (
    SELECT src, deal, CAST(NULL AS VARCHAR) AS stage,
           greatest(closed_at, coalesce(last_stage_at, closed_at)) AS ts, status AS kind
    FROM deal
    WHERE has_history AND status IN ('won', 'lost') AND closed_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM sc
          WHERE sc.src = deal.src AND sc.deal = deal.deal AND sc.kind = deal.status
            AND sc.ts >= coalesce(deal.last_stage_at, sc.ts))
),
ord AS (
    SELECT unnest(CAST($o_pipeline AS VARCHAR[])) AS pipeline,
           unnest(CAST($o_stage AS VARCHAR[])) AS stage,
           unnest(CAST($o_pos AS BIGINT[])) AS pos
),
ev AS (
    SELECT e.src, e.deal, dl.pipeline, dl.rep, dl.amount, e.stage, e.ts, e.kind,
           CASE WHEN e.kind <> 'stage' THEN {close_pos}
                ELSE coalesce(o.pos, {unknown_pos}) END AS pos
    FROM (SELECT src, deal, stage, ts, kind FROM sc
          UNION ALL SELECT src, deal, stage, ts, kind FROM closes) e
    JOIN deal dl ON dl.src = e.src AND dl.deal = e.deal
    LEFT JOIN ord o ON o.pipeline IS NOT DISTINCT FROM dl.pipeline AND o.stage = e.stage
),
marked AS (
    SELECT *, lag(kind) OVER w AS prev_kind, lag(stage) OVER w AS prev_stage
    FROM ev
    WINDOW w AS (PARTITION BY src, deal ORDER BY ts, pos, kind, stage NULLS LAST)
),
evs AS (
    SELECT src, deal, pipeline, rep, amount, stage, ts, kind, pos,
           row_number() OVER w AS seq, lead(ts) OVER w AS next_at
    FROM marked
    WHERE prev_kind IS NULL OR kind <> prev_kind
       OR (kind = 'stage' AND stage IS DISTINCT FROM prev_stage)
    WINDOW w AS (PARTITION BY src, deal ORDER BY ts, pos, kind, stage NULLS LAST)
)
"""

_ORDER = """
WITH {events}
, firsts AS (
    SELECT src, deal, pipeline, stage, min(ts) AS ts
    FROM evs WHERE kind = 'stage' GROUP BY src, deal, pipeline, stage
), positions AS (
    SELECT pipeline, stage,
           row_number() OVER (PARTITION BY src, deal ORDER BY ts, stage) AS position
    FROM firsts
)
SELECT pipeline, stage, quantile_cont(position, 0.5), avg(position), count(*)
FROM positions GROUP BY pipeline, stage
"""

# Over the events of the deals in scope, materialised once as table {evs}.
_FLOW = """
WITH fin AS (
    SELECT src, deal, kind AS final_kind FROM {evs}
    QUALIFY row_number() OVER (PARTITION BY src, deal ORDER BY seq DESC) = 1
), last_stage AS (
    SELECT src, deal, arg_max(stage, seq) AS final_stage
    FROM {evs} WHERE kind = 'stage' GROUP BY src, deal
), later AS (
    SELECT *,
           -- what the deal did after this event: the furthest stage it entered, and a win
           max(CASE WHEN kind = 'stage' THEN pos END) OVER after_this AS later_pos,
           bool_or(kind = 'won') OVER after_this AS later_won
    FROM {evs}
    WINDOW after_this AS (PARTITION BY src, deal ORDER BY seq
                          ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)
), visits AS (
    SELECT v.*,
           row_number() OVER (PARTITION BY v.src, v.deal, v.stage ORDER BY v.seq) = 1
               AS is_first,
           (CAST($start AS TIMESTAMP) IS NULL OR v.ts >= CAST($start AS TIMESTAMP))
           AND (CAST($end AS TIMESTAMP) IS NULL OR v.ts < CAST($end AS TIMESTAMP)) AS in_range
    FROM later v WHERE v.kind = 'stage'
), facts AS (
    SELECT v.pipeline, v.stage, v.rep, v.is_first, v.in_range,
           coalesce(v.later_won, false) OR coalesce(v.later_pos > v.pos, false) AS converted,
           coalesce(f.final_kind = 'lost' AND l.final_stage = v.stage, false) AS dropped,
           (epoch(v.next_at) - epoch(v.ts)) / 86400.0 AS days
    FROM visits v
    JOIN fin f ON f.src = v.src AND f.deal = v.deal
    JOIN last_stage l ON l.src = v.src AND l.deal = v.deal
)
SELECT pipeline, stage, rep, GROUPING(rep) AS team_row,
       count(*) FILTER (WHERE is_first AND in_range),
       count(*) FILTER (WHERE is_first AND in_range AND converted),
       count(*) FILTER (WHERE is_first AND in_range AND dropped),
       count(days) FILTER (WHERE in_range),
       quantile_cont(days, 0.5) FILTER (WHERE in_range),
       quantile_cont(days, 0.9) FILTER (WHERE in_range)
FROM facts
GROUP BY GROUPING SETS ((pipeline, stage), (pipeline, stage, rep))
"""

_OPEN = """
WITH snap AS (
    SELECT pipeline, rep, amount, stage, kind FROM {evs}
    WHERE ts < CAST($as_of AS TIMESTAMP)
    QUALIFY row_number() OVER (PARTITION BY src, deal ORDER BY seq DESC) = 1
)
SELECT pipeline, stage, rep, GROUPING(rep) AS team_row, count(*), sum(amount)
FROM snap WHERE kind = 'stage'
GROUP BY GROUPING SETS ((pipeline, stage), (pipeline, stage, rep))
"""

_WITHOUT_HISTORY = """
WITH {events}
SELECT count(*) FROM deal
WHERE status = 'open' AND NOT has_history
  AND (CAST($pipeline AS VARCHAR) IS NULL OR pipeline = CAST($pipeline AS VARCHAR))
"""

_PLAIN_DEALS = "SELECT *, CAST(NULL AS DOUBLE) AS amount_rc FROM deals"


def _events(deals: str, filters: str) -> str:
    return _EVENTS.format(deals=deals, filters=filters, close_pos=_CLOSE_POS,
                          unknown_pos=_UNKNOWN_POS)


def _filters(where: Where) -> tuple[str, dict[str, Any]]:
    """``where`` as SQL over the deals view's ``dim_*`` columns, values bound."""
    parts: list[str] = ["true"]
    params: dict[str, Any] = {}
    for index, (dim, values) in enumerate(where):
        names = [f"f{index}_{i}" for i in range(len(values))]
        params.update(zip(names, values, strict=True))
        column = '"dim_' + dim.replace('"', "") + '"'  # checked by _check_dimension
        # No values (a scope that sees no one) lets nothing through.
        parts.append(f"v.{column} IN ({', '.join('$' + n for n in names)})" if names
                     else "false")
    return " AND ".join(parts), params


def _terminal_params(config: FunnelConfig) -> dict[str, Any]:
    return {"won": config.won_names(), "lost": config.lost_names()}


def _no_order() -> dict[str, Any]:
    return {"o_pipeline": [], "o_stage": [], "o_pos": []}


def stage_orders(store: Database, config: FunnelConfig) -> dict[str | None, tuple[
        list[str], str]]:
    """Per pipeline: its stages in order and where the order came from.

    From the data: stages sorted by the median position at which deals first
    enter them (1 = a deal's first stage), over every deal in the store, so the
    order is the pipeline's and not the viewer's. A pipeline listed in
    funnel.yaml keeps that order; stages the data has and the file does not
    follow it, in data order.
    """
    sql = _ORDER.format(events=_events(_PLAIN_DEALS, "true"))
    rows = store.fetch(sql, {**_terminal_params(config), **_no_order()})
    learned: dict[str | None, list[tuple[float, float, int, str]]] = {}
    for pipeline, stage, median, mean, count in rows:
        learned.setdefault(pipeline, []).append((float(median), float(mean), -int(count), stage))
    orders: dict[str | None, tuple[list[str], str]] = {
        pipeline: ([s for *_keys, s in sorted(found)], "data")
        for pipeline, found in learned.items()
    }
    for pipeline, listed in config.pipelines.items():
        from_data = orders.get(pipeline, ([], "data"))[0]
        spelled = {s.casefold(): s for s in from_data}
        chosen = [spelled.get(s.strip().casefold(), s.strip()) for s in listed
                  if not config.is_terminal(s)]
        chosen = list(dict.fromkeys(chosen))
        orders[pipeline] = (chosen + [s for s in from_data if s not in chosen], "funnel.yaml")
    return orders


def compute_funnel(store: Database, settings: Settings, scope: Scope = EVERYTHING,
                   options: FunnelOptions | None = None, *, now: dt.datetime | None = None,
                   config: FunnelConfig | None = None) -> FunnelReport:
    """The funnel of every pipeline (or ``options.pipeline``) for the deals in ``scope``."""
    options = options or FunnelOptions()
    config = config or load_funnel_config(settings.workspace)
    if options.start and options.end and options.start > options.end:
        raise FunnelError(_("--from is after --to"))
    for dim, _values in options.where:
        _check_dimension(dim)
    # The user's filters may name reps; the scope holds ids and is added as it is.
    where = (*_resolve_rep_names(store, options.where), *scope.as_filters())
    zone = settings.timezone
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    as_of = now
    if options.as_of is not None:
        as_of = min(now, local_midnight_utc(options.as_of + dt.timedelta(days=1), zone))

    orders = stage_orders(store, config)
    if options.pipeline is not None and options.pipeline not in orders:
        known = ", ".join(sorted(p for p in orders if p is not None)) or "—"
        raise FunnelError(_("no stage history for pipeline {pipeline!r}; pipelines: {known}",
                            pipeline=options.pipeline, known=known))

    view = build_view(ViewContext(tables=store.ibis.table, currency=settings.currency),
                      "deals", {"amount_rc"}, list(dict.fromkeys(d for d, _v in where)))
    filters, params = _filters(where)
    events = _events(str(ibis.to_sql(view, dialect="duckdb")), filters)
    params |= _terminal_params(config)
    params |= {
        "o_pipeline": [p for p, (stages, _f) in orders.items() for _s in stages],
        "o_stage": [s for stages, _f in orders.values() for s in stages],
        "o_pos": [i for stages, _f in orders.values() for i in range(1, len(stages) + 1)],
    }
    table = f"funnel_events_{uuid.uuid4().hex}"
    store.con.execute(f'CREATE TEMP TABLE "{table}" AS WITH {events} SELECT * FROM evs', params)
    try:
        flow = store.fetch(_FLOW.format(evs=f'"{table}"'), {
            "start": local_midnight_utc(options.start, zone) if options.start else None,
            "end": local_midnight_utc(options.end + dt.timedelta(days=1), zone)
            if options.end else None,
        })
        open_rows = store.fetch(_OPEN.format(evs=f'"{table}"'), {"as_of": as_of})
    finally:
        store.con.execute(f'DROP TABLE IF EXISTS "{table}"')
    without = store.fetch(_WITHOUT_HISTORY.format(events=events),
                          {**params, "pipeline": options.pipeline})[0][0]

    # {(pipeline, rep or None for the team)}: {stage: row}
    slices: dict[tuple[str | None, str | None], dict[str, StageRow]] = {}

    def row(pipeline: str | None, rep: str | None, team_row: int, stage: str) -> StageRow:
        key = (pipeline, None if team_row else rep)
        return slices.setdefault(key, {}).setdefault(stage, StageRow(stage))

    for pipeline, stage, rep, team_row, entered, conv, dropped, finished, med, p90 in flow:
        target = row(pipeline, rep, team_row, stage)
        target.entered, target.converted, target.dropped = int(entered), int(conv), int(dropped)
        target.finished, target.median_days, target.p90_days = (
            int(finished), _number(med), _number(p90))
    for pipeline, stage, rep, team_row, count, amount in open_rows:
        target = row(pipeline, rep, team_row, stage)
        target.open_deals, target.open_amount = int(count), _number(amount)

    names = _reps_in_scope(store, where) if options.by_rep else {}
    pipelines: list[PipelineFunnel] = []
    for pipeline, (stages, order_from) in orders.items():
        if options.pipeline is not None and pipeline != options.pipeline:
            continue
        if (pipeline, None) not in slices:
            continue  # nothing in scope
        team = _slice(stages, slices[(pipeline, None)], None, None)
        reps = []
        for rep_id, name in names.items():
            if (pipeline, rep_id) in slices:
                rep = _slice(stages, slices[(pipeline, rep_id)], rep_id, name)
                for mine, theirs in zip(rep.stages, team.stages, strict=True):
                    mine.compare(theirs)
                reps.append(rep)
        pipelines.append(PipelineFunnel(pipeline, stages, order_from, team, reps))
    pipelines.sort(key=lambda p: (p.pipeline is None, p.pipeline or ""))
    return FunnelReport(options, as_of, zone, settings.currency, pipelines, int(without))


