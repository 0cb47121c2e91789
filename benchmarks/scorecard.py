"""Scorecard benchmark: the KPI engine against hand-written DuckDB SQL and pandas.

Usage::

    python benchmarks/scorecard.py [--size 170] [--workspace DIR] [--repeat 3]

1. Builds (or reuses) a workspace holding the demo company at ``--size``
   (170 gives about 1M leads and 10M activities).
2. Times the full scorecard (16 KPIs by rep by month over all the data) three
   ways, each in a fresh subprocess so that peak memory is per approach:
   the engine (``SalesKpiService.scorecard``), hand-written DuckDB SQL, and
   pandas on tables loaded from the same DuckDB file. ``--repeat`` rounds run
   every approach once each, interleaved; medians are over the rounds.
3. Checks that the three give the same numbers and prints every disagreement.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from machine_load import machine_busy_s

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

KPIS: tuple[str, ...] = (
    "leads", "calls", "meetings", "emails", "deals_won", "revenue", "win_rate",
    "average_deal_size", "pipeline_volume", "pipeline_value", "time_to_close",
    "lead_to_opportunity", "call_to_meeting_conversion", "lead_response_time",
    "speed_to_lead_5min", "sales_cycle_length",
)
# Counts and sums: "nothing happened" is 0 for these, NULL for medians and ratios.
ADDITIVE_KPIS = frozenset({
    "leads", "calls", "meetings", "emails", "deals_won", "revenue", "pipeline_volume",
    "pipeline_value",
})
APPROACHES: tuple[str, ...] = ("engine", "sql", "pandas")
ZONE = "Europe/Kyiv"
CURRENCY = "USD"
SOURCE = "demo"
DEFAULT_END = dt.date(2026, 11, 1)
MARKER = ".saleskpi-benchmark.json"
REL_TOL = 1e-6
GOAL_SQL_RATIO = 1.3
GOAL_PANDAS_SPEEDUP = 3.0
GOAL_MEMORY_MIB = 1024.0


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    print(message, flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process.

    /proc/self/status VmHWM belongs to the process's own address space, so it is
    not inherited from the parent the way ru_maxrss can be across fork and exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 / (1024 if sys.platform == "darwin" else 1)


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def analytics_path(workspace: Path) -> Path:
    return workspace / "analytics.duckdb"


def connect(workspace: Path) -> duckdb.DuckDBPyConnection:
    import duckdb

    con = duckdb.connect(str(analytics_path(workspace)), read_only=True)
    con.execute("SET TimeZone = 'UTC'")  # timestamps are naive UTC
    return con


# --------------------------------------------------------------------------- workspace


def make_dirty(frames: dict[str, pd.DataFrame], seed: int) -> None:
    """Add the quirks of real exports the demo company does not have, in place.

    Each one exercises a clause of a KPI definition: deals without a creation
    date (open since before the data starts), won deals without a close date,
    leads without a rep, leads "created" after their first contact (negative
    response time, left out), inbound meetings and contacts without a direction,
    'mail' activities, deals in another currency (with and without a rate),
    timestamps exactly at a local month start and fractions of a second.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed + 1)

    def pick(frame: pd.DataFrame, share: float, mask: Any = None) -> Any:
        candidates = frame.index if mask is None else frame.index[mask]
        return rng.choice(candidates, int(len(candidates) * share), replace=False)

    def month_start_utc(ts: pd.Series) -> pd.Series:
        local = ts.dt.tz_localize("UTC").dt.tz_convert(ZONE)
        start = local.dt.tz_localize(None).dt.to_period("M").dt.start_time
        utc: pd.Series = start.dt.tz_localize(ZONE).dt.tz_convert("UTC").dt.tz_localize(None)
        return utc.astype(ts.dtype)

    leads, deals, acts = frames["leads"], frames["deals"], frames["activities"]
    leads.loc[pick(leads, 0.02), "rep_id"] = None
    late = pick(leads, 0.03)
    leads.loc[late, "created_at"] += pd.Timedelta(days=3)
    edge = pick(leads, 0.01)
    leads.loc[edge, "created_at"] = month_start_utc(leads.loc[edge, "created_at"])

    deals.loc[pick(deals, 0.03), "created_at"] = pd.NaT
    deals.loc[pick(deals, 0.01, (deals["status"] == "won").to_numpy()), "closed_at"] = pd.NaT
    edge = pick(deals, 0.01, deals["closed_at"].notna().to_numpy())
    deals.loc[edge, "closed_at"] = month_start_utc(deals.loc[edge, "closed_at"])
    foreign = pick(deals, 0.05)
    deals.loc[foreign, "currency"] = rng.choice(["EUR", "eur"], len(foreign))
    on = deals["closed_at"].fillna(deals["created_at"]).dropna()
    # A rate every third working day from the twentieth day: a rate holds until the next
    # one, and the first deals have none.
    days = pd.date_range(on.min().normalize() + pd.Timedelta(days=20), on.max(), freq="B")[::3]
    frames["fx_rates"] = pd.DataFrame({
        "date": days.date, "currency": "EUR", "rate": rng.uniform(1.02, 1.12, len(days)),
    })

    emails = (acts["type"] == "email").to_numpy()
    acts.loc[pick(acts, 0.1, emails), "type"] = "mail"
    calls_or_emails = acts["type"].isin(["call", "email"]).to_numpy()
    acts.loc[pick(acts, 0.03, calls_or_emails), "direction"] = None
    acts.loc[pick(acts, 0.1, (acts["type"] == "meeting").to_numpy()), "direction"] = "in"
    fraction = pick(acts, 0.02)
    acts.loc[fraction, "occurred_at"] += pd.Timedelta(milliseconds=250)


def _generator_digest() -> str:
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("saleskpi.sources.demo")
    if spec is None or spec.origin is None:
        return "?"
    return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()[:16]


def build_workspace(workspace: Path, size: float, seed: int, end: dt.date,
                    dirty: bool = False, rebuild: bool = False) -> None:
    """The demo company in ``workspace``, reused when the marker says it is the same."""
    wanted: dict[str, Any] = {"size": size, "seed": seed, "end": end.isoformat(),
                              "timezone": ZONE, "currency": CURRENCY}
    if dirty:
        wanted["dirty"] = True
    marker = workspace / MARKER
    store = analytics_path(workspace)
    if marker.is_file() and store.is_file() and not rebuild:
        built = json.loads(marker.read_text())
        if built.get("dataset") == wanted:
            say(f"Reusing the workspace {workspace} (size {size:g}, seed {seed}, end {end}): "
                f"{_counts_text(built.get('counts', {}))}")
            say(f"  it was generated in {built['generate_s']:.1f} s and imported in "
                f"{built['import_s']:.1f} s")
            if built.get("generator") != _generator_digest():
                say("  note: saleskpi/sources/demo.py changed since; --rebuild to regenerate")
            from saleskpi.store.analytics import AnalyticsStore

            # Opening the store for writing brings its schema up to date (tables and
            # views a newer saleskpi added), as any import would.
            AnalyticsStore(store).close()
            return
    if store.exists() and not marker.is_file():
        raise SystemExit(f"{workspace} holds an analytics store the benchmark did not build; "
                         "pass an empty or new --workspace")
    for name in (MARKER, "analytics.duckdb", "analytics.duckdb.wal", "state.sqlite"):
        (workspace / name).unlink(missing_ok=True)

    from saleskpi.domain.settings import Settings, save_workspace_settings
    from saleskpi.sources.demo import generate_company
    from saleskpi.sources.ingest.run import import_frames

    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency=CURRENCY)
    settings = Settings(workspace=workspace)
    assert settings.timezone == ZONE and settings.currency == CURRENCY, settings

    say(f"Generating the demo company (size {size:g}, seed {seed}, end {end})…")
    with stopwatch() as generate_s:
        frames = generate_company(
            size, seed=seed, end=end, timezone=ZONE, currency=CURRENCY,
            progress=lambda message: say(f"  [{generate_s():6.1f} s] {message}"),
        )
    if dirty:
        make_dirty(frames, seed)
    counts = {name: len(frame) for name, frame in frames.items()}
    say(f"  generated in {generate_s():.1f} s: {_counts_text(counts)}"
        + (" (with real-export quirks added)" if dirty else ""))
    say("Importing…")
    with stopwatch() as import_s:
        report = import_frames(
            settings, frames, source=SOURCE,
            progress=lambda message: say(f"  [{import_s():6.1f} s] {message}"),
        )
    if not report.ok:
        raise SystemExit(f"import failed: {json.dumps(report.to_dict(), default=str)[:4000]}")
    say(f"  imported in {import_s():.1f} s")
    marker.write_text(json.dumps({
        "dataset": wanted, "generator": _generator_digest(), "counts": counts,
        "generate_s": round(generate_s(), 2),
        "import_s": round(import_s(), 2), "built_at": dt.datetime.now(dt.UTC).isoformat(),
    }, indent=2))


def _counts_text(counts: dict[str, int]) -> str:
    shown = ("reps", "leads", "deals", "activities")
    return ", ".join(f"{counts.get(name, 0):,} {name}" for name in shown)


# --------------------------------------------------------------------------- engine


def run_engine(workspace: Path, runs: int, sql_dir: Path | None
               ) -> tuple[pd.DataFrame, list[float], dict[str, Any]]:
    """The first run is cold (Ibis compiles each query); the next ``runs`` are warm."""
    import pandas as pd

    import saleskpi.engine.compile as compile_module
    from saleskpi.domain.query import KpiQuery, Scorecard
    from saleskpi.domain.settings import Settings
    from saleskpi.engine.scorecard import Engine
    from saleskpi.service.core import SalesKpiService

    # Where the time goes: compilation and each query group, measured by wrapping.
    spent: dict[str, float] = {}
    original_compile = compile_module.compile_shape
    original_run_group = Engine._run_group

    compiled_sql: list[tuple[str, str]] = []  # (query group, SQL) for --dump-sql

    def timed_compile(*args: Any, **kwargs: Any) -> Any:
        with stopwatch() as elapsed:
            result = original_compile(*args, **kwargs)
        spent["compile"] = spent.get("compile", 0.0) + elapsed()
        shape = args[1] if len(args) > 1 else kwargs.get("shape")
        compiled_sql.append((_group_label((shape,)), str(getattr(result, "sql", result))))
        return result

    def timed_run_group(self: Engine, query: KpiQuery, *args: Any) -> pd.DataFrame:
        with stopwatch() as elapsed:
            frame = original_run_group(self, query, *args)
        spent[_group_label(args)] = spent.get(_group_label(args), 0.0) + elapsed()
        return frame

    compile_module.compile_shape = timed_compile
    Engine._run_group = timed_run_group  # type: ignore[method-assign,assignment]

    # Measure the computation: no scorecard result cache (the server keeps one).
    settings = Settings(workspace=workspace, cache_seconds=0)
    assert settings.timezone == ZONE, settings.timezone
    service = SalesKpiService(settings)
    query = KpiQuery(KPIS, by=("rep",), period="month")
    times: list[float] = []
    cpu: list[float] = []
    breakdowns: list[dict[str, float]] = []
    scorecard: Scorecard | None = None
    for _ in range(runs + 1):
        spent.clear()
        cpu_start = time.process_time()
        with stopwatch() as elapsed:
            scorecard = service.scorecard(query, totals=False)
        times.append(elapsed())
        cpu.append(time.process_time() - cpu_start)
        # Compilation happens inside the query groups (on a cache miss).
        breakdown = {"total": elapsed(), **spent}
        breakdown["other (connect, merge, grid, rows)"] = elapsed() - sum(
            v for k, v in spent.items() if k != "compile")
        breakdowns.append(breakdown)
    assert scorecard is not None
    assert not getattr(service, "cache_hits", 0), "a warm run came from the result cache"
    if sql_dir is not None:
        sql_dir.mkdir(parents=True, exist_ok=True)
        for i, (label, sql) in enumerate(compiled_sql):
            (sql_dir / f"{i}_{label.replace(' ', '_')}.sql").write_text(sql + "\n")
    records = [
        {"rep": row.keys.get("rep"), "month": row.keys.get("period"), "kpi": kpi,
         "value": value.value}
        for row in scorecard.rows for kpi, value in row.values.items()
    ]
    extra = {"cold_s": times[0], "cold_cpu_s": cpu[0], "cpu": cpu[1:],
             "breakdown_cold": breakdowns[0], "breakdown_warm": breakdowns[-1]}
    return pd.DataFrame.from_records(records), times[1:], extra


def _group_label(args: tuple[Any, ...]) -> str:
    """"deals by created_at until closed_at" from Engine._run_group's arguments."""
    group: Any = args[0] if args else None
    if hasattr(group, "view") and hasattr(group, "time"):  # a group object
        view, time_column, until = group.view, group.time, getattr(group, "until", None)
    elif len(args) >= 3 and all(isinstance(a, str | None) for a in args[:3]):
        view, time_column, until = args[:3]
    else:
        return "query group"
    return f"{view} by {time_column}" + (f" until {until}" if until else "")


# --------------------------------------------------------------------------- hand-written SQL


def _month(column: str) -> str:
    return f"date_trunc('month', timezone('{ZONE}', {column}::TIMESTAMPTZ))::DATE"


SQL_ACTIVITIES = f"""
WITH per_month AS (
    SELECT rep_id AS rep,
           {_month('occurred_at')} AS month,
           count(*) FILTER (WHERE type = 'call' AND direction IS DISTINCT FROM 'in') AS calls,
           count(*) FILTER (WHERE type = 'meeting') AS meetings,
           count(*) FILTER (WHERE type IN ('email', 'mail')
                                AND direction IS DISTINCT FROM 'in') AS emails
    FROM activities
    WHERE occurred_at IS NOT NULL
    GROUP BY 1, 2
)
SELECT *, meetings / nullif(calls, 0) AS call_to_meeting_conversion
FROM per_month
"""

SQL_LEADS = f"""
-- each lead's first outbound contact: kept at import time (lead_first_contacts), as
-- the engine reads it
WITH first_contact AS (
    SELECT datasource, lead_id, first_contact_at AS first_at FROM lead_first_contacts
),
lead_facts AS (
    SELECT l.rep_id AS rep,
           {_month('l.created_at')} AS month,
           epoch(f.first_at) - epoch(l.created_at) AS wait_s,
           l.id IN (SELECT lead_id FROM deals WHERE lead_id IS NOT NULL) AS has_deal
    FROM leads AS l
    LEFT JOIN first_contact AS f ON f.lead_id = l.id AND f.datasource = l.datasource
    WHERE l.created_at IS NOT NULL
),
per_month AS (
    SELECT rep, month,
           count(*) AS leads,
           count(*) FILTER (WHERE has_deal) AS leads_with_deal,
           -- a contact before the lead existed is bad data: no response time
           median(wait_s) FILTER (WHERE wait_s >= 0) AS response_s,
           count(*) FILTER (WHERE wait_s BETWEEN 0 AND 300) AS contacted_in_5min
    FROM lead_facts
    GROUP BY 1, 2
)
SELECT rep, month, leads,
       leads_with_deal / leads AS lead_to_opportunity,
       response_s / 60 AS lead_response_time,
       contacted_in_5min / leads AS speed_to_lead_5min
FROM per_month
"""

# amount_rc: the amount in the reporting currency, at the latest rate on or before the
# close (or creation) day in the company's calendar; no rate yet gives NULL.
_DEALS_RC = f"""
rates AS (
    SELECT upper(currency) AS currency, date, max(rate) AS rate
    FROM fx_rates GROUP BY 1, 2
),
deals_rc AS (
    SELECT d.*,
           CASE WHEN d.currency IS NULL OR upper(d.currency) = '{CURRENCY}'
                THEN d.amount::DOUBLE ELSE d.amount::DOUBLE * r.rate END AS amount_rc
    FROM (SELECT *, upper(currency) AS fx_currency,
                 timezone('{ZONE}', coalesce(closed_at, created_at)::TIMESTAMPTZ)::DATE
                     AS fx_date
          FROM deals) AS d
    ASOF LEFT JOIN rates AS r
      ON r.currency = d.fx_currency AND d.fx_date >= r.date
)"""

SQL_CLOSED_DEALS = f"""
WITH {_DEALS_RC},
won AS (
    SELECT datasource, id, lead_id, created_at, closed_at FROM deals
    WHERE status = 'won' AND closed_at IS NOT NULL
),
-- first outbound contacts, kept at import time (as the engine reads them)
first_by_deal AS (
    SELECT datasource, deal_id, first_contact_at AS first_at FROM deal_first_contacts
),
first_by_lead AS (
    SELECT datasource, lead_id, first_contact_at AS first_at FROM lead_first_contacts
),
-- the sales cycle starts at the first touch: lead, deal, or any contact on either
cycle AS (
    SELECT w.id,
           epoch(w.closed_at)
             - epoch(least(w.created_at, l.created_at, fd.first_at, fl.first_at)) AS cycle_s
    FROM won AS w
    LEFT JOIN leads AS l ON l.id = w.lead_id AND l.datasource = w.datasource
    LEFT JOIN first_by_deal AS fd ON fd.deal_id = w.id AND fd.datasource = w.datasource
    LEFT JOIN first_by_lead AS fl ON fl.lead_id = w.lead_id AND fl.datasource = w.datasource
),
per_month AS (
    SELECT d.rep_id AS rep,
           {_month('d.closed_at')} AS month,
           count(*) FILTER (WHERE d.status = 'won') AS deals_won,
           coalesce(sum(d.amount_rc) FILTER (WHERE d.status = 'won'), 0) AS revenue,
           count(*) FILTER (WHERE d.status IN ('won', 'lost')) AS closed,
           median(epoch(d.closed_at) - epoch(d.created_at))
               FILTER (WHERE d.status = 'won') AS close_s,
           median(c.cycle_s) AS cycle_s
    FROM deals_rc AS d
    LEFT JOIN cycle AS c ON c.id = d.id
    WHERE d.closed_at IS NOT NULL
    GROUP BY 1, 2
)
SELECT rep, month, deals_won, revenue,
       deals_won / nullif(closed, 0) AS win_rate,
       revenue / nullif(deals_won, 0) AS average_deal_size,
       close_s / 86400 AS time_to_close,
       cycle_s / 86400 AS sales_cycle_length
FROM per_month
"""

# Open at each month's end: created by then (or creation unknown) and not closed by then.
# Months run from the first deal's creation to the last deal event, today at the latest.
SQL_PIPELINE = f"""
WITH {_DEALS_RC},
bounds AS (
    SELECT {_month('min(created_at)')} AS first_month,
           least(timezone('{ZONE}', max(coalesce(closed_at, created_at))::TIMESTAMPTZ),
                 timezone('{ZONE}', now()))::DATE AS last_day
    FROM deals
),
month_ends AS (
    SELECT m::DATE AS month,
           least(timezone('{ZONE}', m + INTERVAL 1 MONTH)::TIMESTAMP,
                 now()::TIMESTAMP) AS as_of
    FROM bounds, generate_series(first_month::TIMESTAMP, last_day::TIMESTAMP,
                                 INTERVAL 1 MONTH) AS s(m)
)
SELECT d.rep_id AS rep, e.month,
       count(*) AS pipeline_volume,
       coalesce(sum(d.amount_rc), 0) AS pipeline_value
FROM deals_rc AS d
JOIN month_ends AS e
  ON (d.created_at IS NULL OR d.created_at <= e.as_of)
 AND (d.closed_at IS NULL OR d.closed_at > e.as_of)
GROUP BY 1, 2
"""


def _combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-fact results side by side on (rep, month); no row means 0 for counts and sums."""
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part, on=["rep", "month"], how="outer")
    for kpi in ADDITIVE_KPIS & set(merged.columns):
        merged[kpi] = merged[kpi].fillna(0)
    return merged


def run_sql(workspace: Path) -> pd.DataFrame:
    con = connect(workspace)
    try:
        parts = [con.execute(sql).df()
                 for sql in (SQL_ACTIVITIES, SQL_LEADS, SQL_CLOSED_DEALS, SQL_PIPELINE)]
    finally:
        con.close()
    return _combine(parts)


# --------------------------------------------------------------------------- pandas


def run_pandas(workspace: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    con = connect(workspace)
    try:
        acts = con.execute(
            "SELECT rep_id, type, direction, occurred_at, lead_id, deal_id FROM activities"
        ).df()
        leads = con.execute("SELECT id, rep_id, created_at FROM leads").df()
        deals = con.execute(
            "SELECT id, rep_id, status, lead_id, created_at, closed_at, amount, currency "
            "FROM deals"
        ).df()
        rates = con.execute("SELECT date, currency, rate FROM fx_rates").df()
        # First outbound contacts, kept at import time (as the engine reads them).
        first_by_lead = con.execute(
            "SELECT lead_id, first_contact_at FROM lead_first_contacts").df().set_index(
            "lead_id")["first_contact_at"]
        first_by_deal = con.execute(
            "SELECT deal_id, first_contact_at FROM deal_first_contacts").df().set_index(
            "deal_id")["first_contact_at"]
    finally:
        con.close()

    def month(ts: pd.Series) -> np.ndarray:
        local = ts.dt.tz_localize("UTC").dt.tz_convert(ZONE).dt.tz_localize(None)
        months: np.ndarray = local.to_numpy().astype("datetime64[M]")
        return months

    keys = ["rep", "month"]

    # Activities: counts per rep and month.
    acts = acts[acts["occurred_at"].notna()]
    outbound = (acts["direction"] != "in").to_numpy()
    kind = acts["type"]
    activity = pd.DataFrame({
        "rep": acts["rep_id"].to_numpy(),
        "month": month(acts["occurred_at"]),
        "calls": (kind == "call").to_numpy() & outbound,
        "meetings": (kind == "meeting").to_numpy(),
        "emails": kind.isin(["email", "mail"]).to_numpy() & outbound,
    }).groupby(keys, dropna=False, sort=False).sum().reset_index()
    activity["call_to_meeting_conversion"] = (
        activity["meetings"] / activity["calls"].where(activity["calls"] > 0)
    )

    del acts, kind, outbound

    # Leads.
    leads = leads[leads["created_at"].notna()]
    wait_s = (leads["id"].map(first_by_lead) - leads["created_at"]).dt.total_seconds()
    wait_s = wait_s.where(wait_s >= 0)  # contacted before created: bad data, left out
    lead = pd.DataFrame({
        "rep": leads["rep_id"].to_numpy(),
        "month": month(leads["created_at"]),
        "has_deal": leads["id"].isin(deals["lead_id"].dropna()).to_numpy(),
        "wait_s": wait_s.to_numpy(),
        "fast": (wait_s <= 300).to_numpy(),
    }).groupby(keys, dropna=False, sort=False).agg(
        leads=("has_deal", "size"), with_deal=("has_deal", "sum"),
        response_s=("wait_s", "median"), fast=("fast", "sum"),
    ).reset_index()
    lead["lead_to_opportunity"] = lead["with_deal"] / lead["leads"]
    lead["lead_response_time"] = lead["response_s"] / 60
    lead["speed_to_lead_5min"] = lead["fast"] / lead["leads"]
    lead = lead.drop(columns=["with_deal", "response_s", "fast"])

    # Deals: amount in the reporting currency, at the latest rate on or before the close
    # (or creation) day in the company's calendar.
    currency = deals["currency"].str.upper()
    amount = deals["amount"].astype("float64")
    same = currency.isna() | (currency == CURRENCY)
    deals["amount_rc"] = amount.where(same)
    on = (deals["closed_at"].fillna(deals["created_at"]).dt.tz_localize("UTC")
          .dt.tz_convert(ZONE).dt.tz_localize(None).dt.normalize())
    candidates = pd.DataFrame({"at": on, "currency": currency, "amount": amount})
    foreign = candidates[(~same & on.notna()).to_numpy()].sort_values(by="at")
    if len(foreign):
        daily = rates.assign(
            at=pd.to_datetime(rates["date"]).astype(on.dtype),
            currency=rates["currency"].str.upper(),
        ).groupby(["at", "currency"])["rate"].max().reset_index().sort_values(by="at")
        converted = pd.merge_asof(foreign.reset_index(), daily, on="at", by="currency")
        deals.loc[converted["index"].to_numpy(), "amount_rc"] = (
            converted["amount"] * converted["rate"]).to_numpy()

    # Closed deals by close month.
    closed = deals[deals["closed_at"].notna()]
    won = (closed["status"] == "won").to_numpy()
    close_s = (closed["closed_at"] - closed["created_at"]).dt.total_seconds()
    lead_created = closed["lead_id"].map(leads.set_index("id")["created_at"])
    start = pd.concat([
        closed["created_at"], lead_created, closed["id"].map(first_by_deal),
        closed["lead_id"].map(first_by_lead),
    ], axis=1).min(axis=1)
    cycle_s = (closed["closed_at"] - start).dt.total_seconds()
    deal = pd.DataFrame({
        "rep": closed["rep_id"].to_numpy(),
        "month": month(closed["closed_at"]),
        "won": won,
        "revenue": np.where(won, closed["amount_rc"].to_numpy(), np.nan),
        "closed": closed["status"].isin(["won", "lost"]).to_numpy(),
        "close_s": np.where(won, close_s.to_numpy(), np.nan),
        "cycle_s": np.where(won, cycle_s.to_numpy(), np.nan),
    }).groupby(keys, dropna=False, sort=False).agg(
        deals_won=("won", "sum"), revenue=("revenue", "sum"), closed=("closed", "sum"),
        close_s=("close_s", "median"), cycle_s=("cycle_s", "median"),
    ).reset_index()
    deal["win_rate"] = deal["deals_won"] / deal["closed"].where(deal["closed"] > 0)
    deal["average_deal_size"] = deal["revenue"] / deal["deals_won"].where(deal["deals_won"] > 0)
    deal["time_to_close"] = deal["close_s"] / 86400
    deal["sales_cycle_length"] = deal["cycle_s"] / 86400
    deal = deal.drop(columns=["closed", "close_s", "cycle_s"])

    # Pipeline: deals open at each month's end (local midnight starting the next month).
    def local(moment: pd.Timestamp) -> pd.Timestamp:
        return moment.tz_localize("UTC").tz_convert(ZONE).tz_localize(None)

    now_utc = pd.Timestamp.now(tz="UTC").tz_localize(None)
    first = local(deals["created_at"].min()).to_period("M").start_time
    last = min(local(deals["closed_at"].fillna(deals["created_at"]).max()), local(now_utc))
    created, closed_at = deals["created_at"], deals["closed_at"]
    snapshots = []
    for start_of_month in pd.date_range(first, last, freq="MS"):
        next_month = start_of_month + pd.offsets.MonthBegin(1)
        as_of = min(next_month.tz_localize(ZONE).tz_convert("UTC").tz_localize(None), now_utc)
        is_open = (created.isna() | (created <= as_of)) & ~(closed_at <= as_of)
        snapshot = deals[is_open].groupby("rep_id", dropna=False, sort=False).agg(
            pipeline_volume=("id", "size"), pipeline_value=("amount_rc", "sum"))
        snapshots.append(snapshot.reset_index().assign(month=start_of_month.to_datetime64()))
    pipeline = pd.concat(snapshots, ignore_index=True).rename(columns={"rep_id": "rep"})
    pipeline["month"] = pipeline["month"].astype(activity["month"].dtype)

    return _combine([activity, lead, deal, pipeline])


# --------------------------------------------------------------------------- results


def to_long(frame: pd.DataFrame) -> pd.DataFrame:
    """(rep, month, kpi, value) rows from a wide frame with one column per KPI."""
    import pandas as pd

    month = pd.to_datetime(frame["month"]).dt.strftime("%Y-%m-%d")
    rep = frame["rep"].astype(object).where(frame["rep"].notna(), None)
    wide = frame[list(KPIS)].astype("float64")
    wide.insert(0, "month", month.to_numpy())
    wide.insert(0, "rep", rep.to_numpy())
    return wide.melt(id_vars=["rep", "month"], var_name="kpi", value_name="value")


def child(approach: str, workspace: Path, runs: int, out_dir: Path,
          sql_dir: Path | None,
          computes: dict[str, Callable[[Path], pd.DataFrame]] | None = None) -> None:
    """Run one approach ``runs`` times in this process; write timings and the result.

    ``computes``: the hand-written approaches by name (default: DuckDB SQL and pandas);
    benchmarks/backends_scorecard.py passes the SQL of another backend.
    """
    # Importing libraries is start-up cost, not query cost: done before any timing.
    import duckdb  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401

    extra: dict[str, Any] = {}
    times: list[float] = []
    if approach == "engine":
        result, times, extra = run_engine(workspace, runs, sql_dir)
    else:
        compute = (computes or {"sql": run_sql, "pandas": run_pandas})[approach]
        wide: pd.DataFrame | None = None
        cpu: list[float] = []
        for _ in range(runs):
            cpu_start = time.process_time()
            with stopwatch() as elapsed:
                wide = compute(workspace)
            times.append(elapsed())
            cpu.append(time.process_time() - cpu_start)
        extra["cpu"] = cpu
        assert wide is not None
        result = to_long(wide)
    peak = peak_rss_mib()
    result.to_parquet(out_dir / f"{approach}.parquet", index=False)
    (out_dir / f"{approach}.json").write_text(json.dumps(
        {"approach": approach, "times": times, "peak_mib": peak, **extra}, indent=2))


def run_child(approach: str, args: argparse.Namespace, out_dir: Path,
              script: Path | None = None, extra: Sequence[str] = ()) -> dict[str, Any] | None:
    """One fresh process running ``approach`` (the engine: one cold run, then warm ones).

    ``script``: the benchmark the child runs (``--only approach``), this one by default;
    ``extra``: more arguments for it.
    """
    argv = [sys.executable, str((script or Path(__file__)).resolve()), "--only", approach,
            "--workspace", str(args.workspace), "--runs", str(args.runs),
            "--out-dir", str(out_dir), *extra]
    if args.dump_sql and approach == "engine":
        argv += ["--dump-sql", str(args.dump_sql)]
    if approach == "engine":
        # The cold run compiles: drop the SQL a previous process kept in the workspace.
        shutil.rmtree(args.workspace / "cache" / "sql", ignore_errors=True)
    machine_start, children_start = machine_busy_s(), _children_cpu_s()
    with stopwatch() as elapsed:
        code = subprocess.run(argv).returncode
    if code != 0:
        say(f"  {approach:<7} FAILED (exit code {code}; its error is above)")
        return None
    # CPU the rest of the machine used meanwhile, as a share of its capacity: other
    # processes (or a noisy host) slow every timing down.
    others = (machine_busy_s() - machine_start) - (_children_cpu_s() - children_start)
    info: dict[str, Any] = json.loads((out_dir / f"{approach}.json").read_text())
    info["background_load"] = max(0.0, others / ((os.cpu_count() or 1) * elapsed()))
    say(f"  {approach:<7} {', '.join(f'{t:.2f}' for t in info['times'])} s"
        + (f" (cold {info['cold_s']:.2f} s)" if "cold_s" in info else "")
        + f"; CPU {', '.join(f'{t:.1f}' for t in info['cpu'])} s"
        + f"; peak {info['peak_mib']:.0f} MiB; process {elapsed():.1f} s"
        + f"; other processes' load {info['background_load']:.0%}")
    return info


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_rounds(approaches: list[str], args: argparse.Namespace, out_dir: Path,
               script: Path | None = None, extra: Sequence[str] = ()
               ) -> dict[str, dict[str, Any]]:
    """``--repeat`` rounds, each running every approach once in a fresh process.

    Interleaving the approaches spreads the machine's slow spells over all of them
    instead of penalising whichever ran during one.
    """
    rounds: dict[str, list[dict[str, Any]]] = {a: [] for a in approaches}
    for index in range(args.repeat):
        say(f"Round {index + 1}/{args.repeat} (seconds per run):")
        for approach in approaches:
            if index and not rounds[approach]:
                continue  # failed in the first round: failing again tells nothing new
            info = run_child(approach, args, out_dir, script, extra)
            if info is not None:
                rounds[approach].append(info)
    infos: dict[str, dict[str, Any]] = {}
    for approach, done in rounds.items():
        if not done:
            continue
        times = [t for info in done for t in info["times"]]
        cpu = [t for info in done for t in info["cpu"]]
        info = {"times": times, "median_s": statistics.median(times), "best_s": min(times),
                "cpu": cpu, "cpu_s": statistics.median(cpu),
                "peak_mib": max(i["peak_mib"] for i in done),
                "background_load": [i["background_load"] for i in done]}
        if approach == "engine":
            colds = [i["cold_s"] for i in done]
            info |= {"cold_times": colds, "cold_s": statistics.median(colds),
                     "cold_cpu_s": statistics.median(i["cold_cpu_s"] for i in done)}
            for when in ("cold", "warm"):
                parts = [i[f"breakdown_{when}"] for i in done]
                info[f"breakdown_{when}"] = {
                    key: statistics.median(p.get(key, 0.0) for p in parts) for key in parts[0]}
        infos[approach] = info
    return infos


# --------------------------------------------------------------------------- comparison


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def _keyed(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for rep, month, kpi, value in frame.itertuples(index=False, name=None):
        key = ("<no rep>" if rep is None or rep != rep else str(rep), str(month))
        out.setdefault(key, {})[kpi] = float("nan") if value is None else float(value)
    return out


def compare(results: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Every disagreement between the approaches, by KPI; key-set differences apart."""
    keyed = {name: _keyed(frame) for name, frame in results.items()}
    names = list(keyed)
    summary: dict[str, Any] = {"pairs": {}, "by_kpi": {}}
    mismatched: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    say("")
    say("Agreement (relative tolerance 1e-6, NULL == NaN), on (rep, month) keys present in both:")
    for i, left in enumerate(names):
        for right in names[i + 1:]:
            a, b = keyed[left], keyed[right]
            common = a.keys() & b.keys()
            only_left, only_right = a.keys() - b.keys(), b.keys() - a.keys()
            diffs: dict[str, list[tuple[tuple[str, str], float, float]]] = {}
            for key in common:
                for kpi in KPIS:
                    x, y = a[key].get(kpi, math.nan), b[key].get(kpi, math.nan)
                    if not _same(x, y):
                        diffs.setdefault(kpi, []).append((key, x, y))
                        mismatched.setdefault((left, right), set()).add((kpi, *key))
            pair = f"{left} vs {right}"
            say(f"  {pair}: {len(common):,} common keys, {sum(map(len, diffs.values())):,} "
                f"differing values; keys only in {left}: {len(only_left):,}, "
                f"only in {right}: {len(only_right):,}")
            for side, only, table in ((left, only_left, a), (right, only_right, b)):
                if not only:
                    continue
                nonzero = [k for k in only if any(
                    not math.isnan(v) and v != 0 for v in table[k].values())]
                say(f"    keys only in {side}: {len(only):,}, of which {len(nonzero):,} carry a "
                    "non-zero value" + (f", e.g. {sorted(nonzero)[:3]}" if nonzero else
                                        " (zero-filled rows: expected)"))
            for kpi, rows in sorted(diffs.items()):
                rows.sort()
                reps = sorted({k[0] for k, _x, _y in rows})
                say(f"    {kpi}: {len(rows):,} values differ ({len(reps)} reps)")
                for (rep, month), x, y in rows[:5]:
                    say(f"      rep {rep}, {month}: {left} {x!r}  {right} {y!r}")
            summary["pairs"][pair] = {
                "common_keys": len(common), "only_left": len(only_left),
                "only_right": len(only_right),
                "differences": {k: len(v) for k, v in diffs.items()},
            }
    if {"engine", "sql", "pandas"} <= set(names):
        es = mismatched.get(("engine", "sql"), set())
        ep = mismatched.get(("engine", "pandas"), set())
        sp = mismatched.get(("sql", "pandas"), set())
        engine_alone = (es & ep) - sp
        for kpi in KPIS:
            alone = sum(1 for m in engine_alone if m[0] == kpi)
            summary["by_kpi"][kpi] = alone
            if alone:
                say(f"  !! {kpi}: the engine disagrees with both SQL and pandas (which agree) "
                    f"on {alone:,} values: likely an engine bug")
        if not (es or ep or sp):
            say("  All three agree on every common key.")
    return summary


# --------------------------------------------------------------------------- report


def report(infos: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    sql = infos.get("sql", {}).get("median_s")
    engine = infos.get("engine", {}).get("median_s")
    pandas_s = infos.get("pandas", {}).get("median_s")
    runs = args.repeat * args.runs
    say("")
    say(f"Scorecard: {len(KPIS)} KPIs by rep by month, size {args.size:g}, "
        f"{os.cpu_count()} cores; median (and best) of {runs} runs")
    header = (f"{'approach':<18}{'median s':>10}{'best s':>9}{'CPU s':>8}{'peak MiB':>10}"
              f"{'× SQL':>8}{'pandas ÷':>10}")
    say(header)
    say("-" * len(header))
    rows: list[tuple[str, float, float, float, float]] = []
    if "engine" in infos:
        e = infos["engine"]
        rows.append(("engine, cold", e["cold_s"], min(e["cold_times"]), e["cold_cpu_s"],
                     e["peak_mib"]))
        rows.append(("engine, warm", e["median_s"], e["best_s"], e["cpu_s"], e["peak_mib"]))
    for name, label in (("sql", "hand-written SQL"), ("pandas", "pandas")):
        if name in infos:
            i = infos[name]
            rows.append((label, i["median_s"], i["best_s"], i["cpu_s"], i["peak_mib"]))
    for label, seconds, best, cpu, peak in rows:
        ratio = f"{seconds / sql:.2f}" if sql else "-"
        speedup = f"{pandas_s / seconds:.1f}" if pandas_s else "-"
        say(f"{label:<18}{seconds:>10.2f}{best:>9.2f}{cpu:>8.1f}{peak:>10.0f}{ratio:>8}"
            f"{speedup:>10}")
    if "engine" in infos:
        # Approaches of one round ran back to back: their ratio suffers less from the
        # machine's load changing between rounds.
        warm = infos["engine"]["times"]
        paired = []
        if "sql" in infos:
            ratios = [e / q for e, q in zip(warm, infos["sql"]["times"], strict=False)]
            paired.append(f"engine ÷ SQL {statistics.median(ratios):.2f}×")
            # CPU time of the process and its threads: steadier than wall time on a busy
            # machine (meaningless for a database server's work done in its processes).
            ratios = [e / q for e, q in zip(infos["engine"]["cpu"], infos["sql"]["cpu"],
                                            strict=False) if q]
            if ratios:
                paired.append(f"engine ÷ SQL in CPU time {statistics.median(ratios):.2f}×")
        if "pandas" in infos:
            ratios = [p / e for e, p in zip(warm, infos["pandas"]["times"], strict=False)]
            paired.append(f"pandas ÷ engine {statistics.median(ratios):.1f}×")
        if paired:
            say("Ratios within each round (median over rounds): " + ", ".join(paired))
    loads = [x for i in infos.values() for x in i["background_load"]]
    say(f"Other processes' load while timing: median {statistics.median(loads):.0%}, "
        f"max {max(loads):.0%} of the machine"
        + ("  (busy machine: timings are noisy; rerun when it is quiet)"
           if max(loads) > 0.15 else ""))
    goals: dict[str, bool] = {}
    if engine is not None:
        say("")
        say("Goals (engine warm, medians):")
        if sql:
            goals["engine <= 1.3x SQL"] = engine <= GOAL_SQL_RATIO * sql
            say(f"  engine ≤ {GOAL_SQL_RATIO}× hand-written SQL: {engine / sql:.2f}× "
                f"{'PASS' if goals['engine <= 1.3x SQL'] else 'MISS'}")
        if pandas_s:
            goals["engine >= 3x faster than pandas"] = pandas_s >= GOAL_PANDAS_SPEEDUP * engine
            say(f"  engine ≥ {GOAL_PANDAS_SPEEDUP:g}× faster than pandas: "
                f"{pandas_s / engine:.1f}× "
                f"{'PASS' if goals['engine >= 3x faster than pandas'] else 'MISS'}")
        peak = infos["engine"]["peak_mib"]
        goals["engine peak <= 1 GiB"] = peak <= GOAL_MEMORY_MIB
        say(f"  engine peak memory ≤ 1 GiB: {peak:.0f} MiB "
            f"{'PASS' if goals['engine peak <= 1 GiB'] else 'MISS'}")
        say("")
        say("Engine time by part (medians over the rounds; compilation happens inside the "
            "query groups of the cold run):")
        for when in ("cold", "warm"):
            breakdown = infos["engine"][f"breakdown_{when}"]
            say(f"  {when}: " + "; ".join(f"{k} {v:.2f} s" for k, v in breakdown.items()))
    return goals


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--size", type=float, default=170.0,
                        help="demo company size (170: ~1M leads, ~10M activities)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=DEFAULT_END,
                        help=f"the demo data ends before this date (default {DEFAULT_END})")
    parser.add_argument("--workspace", type=Path, default=None,
                        help="workspace folder (default: <tmp>/saleskpi-bench-<size>)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds: each runs every approach in a fresh process")
    parser.add_argument("--runs", type=int, default=1,
                        help="timed runs per process and round (the engine's come after "
                             "its cold run)")
    parser.add_argument("--approaches", default=",".join(APPROACHES),
                        help="comma-separated subset of engine,sql,pandas")
    parser.add_argument("--dirty", action="store_true",
                        help="add real-export quirks to the demo data (checks the definitions' "
                             "edge cases; a separate workspace)")
    parser.add_argument("--rebuild", action="store_true",
                        help="regenerate the workspace even if it was built with these options")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the measurements to this JSON file")
    parser.add_argument("--dump-sql", type=Path, default=None,
                        help="write the engine's compiled SQL into this folder")
    parser.add_argument("--only", choices=[*APPROACHES, "build"], help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workspace is None:
        args.workspace = Path(tempfile.gettempdir()) / (
            f"saleskpi-bench-{args.size:g}" + ("-dirty" if args.dirty else ""))
    args.workspace = args.workspace.resolve()
    if args.repeat < 1 or args.runs < 1:
        parser.error("--repeat and --runs must be at least 1")

    if args.only == "build":
        build_workspace(args.workspace, args.size, args.seed, args.end, args.dirty,
                        args.rebuild)
        return
    if args.only:
        child(args.only, args.workspace, args.runs, args.out_dir, args.dump_sql)
        return

    approaches = [a.strip() for a in args.approaches.split(",") if a.strip()]
    unknown = set(approaches) - set(APPROACHES)
    if unknown:
        parser.error(f"unknown approaches: {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    # Generating holds every frame in memory: do it in a process of its own.
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--only", "build",
                    "--workspace", str(args.workspace), "--size", str(args.size),
                    "--seed", str(args.seed), "--end", args.end.isoformat(),
                    *(["--dirty"] if args.dirty else []),
                    *(["--rebuild"] if args.rebuild else [])], check=True)
    out_dir = Path(tempfile.mkdtemp(prefix="saleskpi-bench-results-"))
    try:
        infos = run_rounds(approaches, args, out_dir)
        import pandas as pd

        results = {a: pd.read_parquet(out_dir / f"{a}.parquet") for a in infos}
        agreement = compare(results)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    goals = report(infos, args)
    total = time.perf_counter() - started
    say(f"\nTotal benchmark time: {total:.0f} s")
    if args.json:
        marker = json.loads((args.workspace / MARKER).read_text())
        args.json.write_text(json.dumps({
            "date": dt.date.today().isoformat(), "machine": {
                "cpus": os.cpu_count(), "platform": platform.platform(),
                "python": platform.python_version()},
            "dataset": marker, "repeat": args.repeat, "runs": args.runs, "approaches": infos,
            "agreement": agreement, "goals": goals, "total_s": total,
        }, indent=2, default=str))
        say(f"Measurements written to {args.json}")


if __name__ == "__main__":
    main()
