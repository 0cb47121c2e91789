"""Scorecard benchmark on each backend: the engine against hand-written SQL on the same one.

Usage::

    python benchmarks/backends_scorecard.py --backend duckdb|postgres|clickhouse \\
        [--size 170] [--backend-url URL] [--workspace DIR] [--repeat 3] [--json FILE]

1. Builds (or reuses) a workspace whose ``backend`` setting names the backend and
   imports the demo company at ``--size`` into it through the product
   (``import_frames``, as ``saleskpi demo`` does), timing the import. PostgreSQL:
   the server at ``--backend-url``, or a throwaway cluster this script starts
   under the temp folder (Debian's binaries) and deletes at the end. ClickHouse:
   ``chdb://`` in the workspace (ClickHouse in the process), or ``--backend-url``.
2. Times the full scorecard (16 KPIs by rep by month over all the data), each
   approach in a fresh subprocess so that peak memory (VmHWM) is per approach:
   the engine (``SalesKpiService.scorecard``) and hand-written SQL for that
   backend (PostgreSQL: ``date_trunc`` of ``AT TIME ZONE``; ClickHouse:
   ``toStartOfMonth(toTimeZone(...))`` over the store's current views, which read
   ``FINAL``). Rounds run the approaches back to back (benchmarks/scorecard.py).
3. Checks that both give the same numbers.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import scorecard as sc
from machine_load import machine_busy_s

if TYPE_CHECKING:
    import pandas as pd

BACKENDS = ("duckdb", "postgres", "clickhouse")
APPROACHES = ("engine", "sql")
ZONE, CURRENCY = sc.ZONE, sc.CURRENCY
# A benchmark server is tuned as a DBA would tune one for analytics on this machine
# (both approaches run on it, so the ratio is fair either way).
PG_OPTIONS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
              "-c shared_buffers=2GB -c work_mem=256MB -c maintenance_work_mem=1GB "
              "-c max_wal_size=8GB -c max_parallel_workers_per_gather=2 "
              "-c max_connections=50")


# --------------------------------------------------------------------------- servers


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A throwaway PostgreSQL cluster under the temp folder; its URL; deleted after."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import postgres_server as pg

    binaries = pg.binaries()
    if binaries is None:
        raise SystemExit("PostgreSQL's binaries are not installed (apt-get install postgresql)")
    server = pg.PostgresServer(binaries, folder=Path(tempfile.mkdtemp(prefix="bench-pg-")))
    password_file = server.folder / "password"
    password_file.write_text(server.password, encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(server.folder, pg.USER)
        shutil.chown(password_file, pg.USER)
    try:
        server._run([str(binaries / "initdb"), "-D", str(server.data), "-U", pg.USER,
                     "--auth=scram-sha-256", f"--pwfile={password_file}", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync"])
        options = f"-h 127.0.0.1 -p {server.port} -k {server.data} {PG_OPTIONS}"
        server._run([str(binaries / "pg_ctl"), "-D", str(server.data), "-l",
                     str(server.folder / "server.log"), "-o", options, "-w", "-t", "60",
                     "start"])
        sc.say(f"Started a throwaway PostgreSQL cluster in {server.folder} "
               f"(port {server.port}; {PG_OPTIONS})")
        yield server.create_database("bench")
    finally:
        server.stop()
        sc.say(f"Stopped and deleted the PostgreSQL cluster in {server.folder}")


def masked(url: str) -> str:
    from saleskpi.domain.backends import masked_url

    return masked_url(url)


# --------------------------------------------------------------------------- workspace


def backend_rows(workspace: Path) -> int:
    """Activities the workspace's backend holds now (0 when it has no tables yet)."""
    from saleskpi.domain.settings import Settings
    from saleskpi.store.backend import open_store

    try:
        with open_store(Settings(workspace=workspace), read_only=True) as store:
            return int(store.fetch("SELECT count(*) FROM activities")[0][0])
    except Exception:  # a missing table or database means: build it
        return 0


def build(workspace: Path, backend: str, size: float, seed: int, end: dt.date,
          rebuild: bool) -> None:
    """The demo company imported into ``backend`` through the product; reused if there.

    DuckDB: benchmarks/scorecard.py's workspace (the same folder serves both).
    """
    if backend == "duckdb":
        sc.build_workspace(workspace, size, seed, end, rebuild=rebuild)
        return
    url = os.environ.get("SALESKPI_BACKEND_URL", "")
    wanted = {"size": size, "seed": seed, "end": end.isoformat(), "timezone": ZONE,
              "currency": CURRENCY, "backend": backend,
              "url": masked(url) if url else None}
    marker = workspace / sc.MARKER
    if marker.is_file() and not rebuild:
        built = json.loads(marker.read_text())
        if built.get("dataset") == wanted and backend_rows(workspace) == \
                built["counts"]["activities"]:
            sc.say(f"Reusing the {backend} data of {workspace}: "
                   f"{sc._counts_text(built['counts'])}; it was imported in "
                   f"{built['import_s']:.1f} s")
            return
    if workspace.exists() and any(workspace.iterdir()) and not marker.is_file():
        raise SystemExit(f"{workspace} is not a benchmark workspace; pass an empty or new "
                         "--workspace")
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)

    from saleskpi.domain.settings import Settings, save_workspace_settings
    from saleskpi.sources.demo import generate_company
    from saleskpi.sources.ingest.run import import_frames

    save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency=CURRENCY,
                            backend=backend)
    settings = Settings(workspace=workspace)
    assert settings.backend == backend and settings.timezone == ZONE, settings
    sc.say(f"Generating the demo company (size {size:g}, seed {seed}, end {end})…")
    with sc.stopwatch() as generate_s:
        frames = generate_company(size, seed=seed, end=end, timezone=ZONE, currency=CURRENCY)
    counts = {name: len(frame) for name, frame in frames.items()}
    sc.say(f"  generated in {generate_s():.1f} s: {sc._counts_text(counts)}")
    sc.say(f"Importing into {backend} through the product (import_frames)…")
    busy = machine_busy_s()
    cpu = time.process_time()
    with sc.stopwatch() as import_s:
        report = import_frames(settings, frames, source=sc.SOURCE,
                               progress=lambda m: sc.say(f"  [{import_s():7.1f} s] {m}"))
    if not report.ok:
        raise SystemExit(f"import failed: {json.dumps(report.to_dict(), default=str)[:4000]}")
    # The machine's CPU during the import, this process's included (the PostgreSQL
    # server's work is in other processes: it shows here, not in our CPU time).
    machine_cpu = machine_busy_s() - busy
    sc.say(f"  imported in {import_s():.1f} s ({counts['activities'] / import_s():,.0f} "
           f"activities/s; this process's CPU {time.process_time() - cpu:.0f} s, the "
           f"machine's {machine_cpu:.0f} s)")
    marker.write_text(json.dumps({
        "dataset": wanted, "counts": counts, "generate_s": round(generate_s(), 2),
        "import_s": round(import_s(), 2), "import_machine_cpu_s": round(machine_cpu, 1),
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
    }, indent=2))


# --------------------------------------------------------------------------- PostgreSQL SQL


def _pg_local(column: str) -> str:
    """A naive UTC timestamp as the company's wall clock (the session is UTC)."""
    return f"(({column}) AT TIME ZONE 'UTC' AT TIME ZONE '{ZONE}')"


def _pg_month(column: str) -> str:
    return f"date_trunc('month', {_pg_local(column)})::date"


def _pg_epoch(column: str) -> str:
    return f"extract(epoch FROM {column})::float8"


PG_ACTIVITIES = f"""
WITH per_month AS (
    SELECT rep_id AS rep, {_pg_month('occurred_at')} AS month,
           count(*) FILTER (WHERE type = 'call' AND direction IS DISTINCT FROM 'in') AS calls,
           count(*) FILTER (WHERE type = 'meeting') AS meetings,
           count(*) FILTER (WHERE type IN ('email', 'mail')
                                AND direction IS DISTINCT FROM 'in') AS emails
    FROM activities WHERE occurred_at IS NOT NULL
    GROUP BY 1, 2
)
SELECT *, meetings::float8 / nullif(calls, 0) AS call_to_meeting_conversion FROM per_month
"""

PG_LEADS = f"""
WITH lead_facts AS (
    SELECT l.rep_id AS rep, {_pg_month('l.created_at')} AS month,
           {_pg_epoch('f.first_contact_at')} - {_pg_epoch('l.created_at')} AS wait_s,
           EXISTS (SELECT 1 FROM deals d WHERE d.lead_id = l.id) AS has_deal
    FROM leads AS l
    LEFT JOIN lead_first_contacts AS f ON f.lead_id = l.id AND f.datasource = l.datasource
    WHERE l.created_at IS NOT NULL
),
per_month AS (
    SELECT rep, month, count(*) AS leads,
           count(*) FILTER (WHERE has_deal) AS leads_with_deal,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s)
               FILTER (WHERE wait_s >= 0) AS response_s,
           count(*) FILTER (WHERE wait_s BETWEEN 0 AND 300) AS contacted_in_5min
    FROM lead_facts GROUP BY 1, 2
)
SELECT rep, month, leads,
       leads_with_deal::float8 / leads AS lead_to_opportunity,
       response_s / 60 AS lead_response_time,
       contacted_in_5min::float8 / leads AS speed_to_lead_5min
FROM per_month
"""

# The amount in the reporting currency: the latest rate on or before the close (or
# creation) day in the company's calendar, looked up only for deals in another one.
_PG_FX_DAY = _pg_local("coalesce(d.closed_at, d.created_at)") + "::date"
_PG_DEALS_RC = f"""
deals_rc AS (
    SELECT d.*,
           CASE WHEN d.currency IS NULL OR upper(d.currency) = '{CURRENCY}'
                THEN d.amount::float8
                ELSE d.amount::float8 * (
                    SELECT max(r.rate) FROM fx_rates AS r
                    WHERE upper(r.currency) = upper(d.currency)
                      AND r.date = (SELECT max(r2.date) FROM fx_rates AS r2
                                    WHERE upper(r2.currency) = upper(d.currency)
                                      AND r2.date <= {_PG_FX_DAY}))
           END AS amount_rc
    FROM deals AS d
)"""

PG_CLOSED_DEALS = f"""
WITH {_PG_DEALS_RC},
won AS (
    SELECT datasource, id, lead_id, created_at, closed_at FROM deals
    WHERE status = 'won' AND closed_at IS NOT NULL
),
cycle AS (
    SELECT w.id,
           {_pg_epoch('w.closed_at')} - {_pg_epoch(
               'least(w.created_at, l.created_at, fd.first_contact_at, fl.first_contact_at)')}
               AS cycle_s
    FROM won AS w
    LEFT JOIN leads AS l ON l.id = w.lead_id AND l.datasource = w.datasource
    LEFT JOIN deal_first_contacts AS fd ON fd.deal_id = w.id AND fd.datasource = w.datasource
    LEFT JOIN lead_first_contacts AS fl
           ON fl.lead_id = w.lead_id AND fl.datasource = w.datasource
),
per_month AS (
    SELECT d.rep_id AS rep, {_pg_month('d.closed_at')} AS month,
           count(*) FILTER (WHERE d.status = 'won') AS deals_won,
           coalesce(sum(d.amount_rc) FILTER (WHERE d.status = 'won'), 0) AS revenue,
           count(*) FILTER (WHERE d.status IN ('won', 'lost')) AS closed,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY {_pg_epoch('d.closed_at')} - {_pg_epoch('d.created_at')})
               FILTER (WHERE d.status = 'won') AS close_s,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY c.cycle_s) AS cycle_s
    FROM deals_rc AS d LEFT JOIN cycle AS c ON c.id = d.id
    WHERE d.closed_at IS NOT NULL
    GROUP BY 1, 2
)
SELECT rep, month, deals_won, revenue,
       deals_won::float8 / nullif(closed, 0) AS win_rate,
       revenue / nullif(deals_won, 0) AS average_deal_size,
       close_s / 86400 AS time_to_close, cycle_s / 86400 AS sales_cycle_length
FROM per_month
"""

PG_PIPELINE = f"""
WITH {_PG_DEALS_RC},
bounds AS (
    SELECT date_trunc('month', {_pg_local('min(created_at)')}) AS first_month,
           least({_pg_local('max(coalesce(closed_at, created_at))')},
                 now() AT TIME ZONE '{ZONE}')::date AS last_day
    FROM deals
),
month_ends AS (
    SELECT m::date AS month,
           least((m + INTERVAL '1 month') AT TIME ZONE '{ZONE}' AT TIME ZONE 'UTC',
                 now() AT TIME ZONE 'UTC') AS as_of
    FROM bounds, generate_series(first_month, last_day::timestamp, INTERVAL '1 month') AS s(m)
)
SELECT d.rep_id AS rep, e.month, count(*) AS pipeline_volume,
       coalesce(sum(d.amount_rc), 0) AS pipeline_value
FROM deals_rc AS d
JOIN month_ends AS e
  ON (d.created_at IS NULL OR d.created_at <= e.as_of)
 AND (d.closed_at IS NULL OR d.closed_at > e.as_of)
GROUP BY 1, 2
"""


def run_postgres_sql(workspace: Path) -> pd.DataFrame:
    import pandas as pd
    import psycopg

    with psycopg.connect(os.environ["SALESKPI_BACKEND_URL"], autocommit=True) as con:
        con.execute("SET TimeZone = 'UTC'")  # timestamps are naive UTC
        parts = []
        for sql in (PG_ACTIVITIES, PG_LEADS, PG_CLOSED_DEALS, PG_PIPELINE):
            cursor = con.execute(sql)  # type: ignore[arg-type]
            names = [c.name for c in cursor.description or ()]
            parts.append(pd.DataFrame(cursor.fetchall(), columns=names))
    return sc._combine(parts)


# --------------------------------------------------------------------------- ClickHouse SQL


def _ch_month(column: str) -> str:
    return f"toStartOfMonth(toTimeZone({column}, '{ZONE}'))"


def _ch_epoch(column: str) -> str:
    return f"toUnixTimestamp64Micro({column}) / 1e6"


# Every query reads the store's current views (``FINAL``, one row per record); LEFT
# JOINs give NULL, not a default value, for a missing match; times are UTC.
CH_SETTINGS = "SETTINGS join_use_nulls = 1, session_timezone = 'UTC'"

CH_ACTIVITIES = f"""
SELECT rep_id AS rep, {_ch_month('occurred_at')} AS month,
       countIf(type = 'call' AND (direction IS NULL OR direction != 'in')) AS calls,
       countIf(type = 'meeting') AS meetings,
       countIf(type IN ('email', 'mail') AND (direction IS NULL OR direction != 'in')) AS emails,
       meetings / nullIf(calls, 0) AS call_to_meeting_conversion
FROM activities WHERE occurred_at IS NOT NULL
GROUP BY rep, month
{CH_SETTINGS}
"""

CH_LEADS = f"""
WITH lead_facts AS (
    SELECT l.rep_id AS rep, {_ch_month('l.created_at')} AS month,
           {_ch_epoch('f.first_contact_at')} - {_ch_epoch('l.created_at')} AS wait_s,
           l.id IN (SELECT lead_id FROM deals WHERE lead_id IS NOT NULL) AS has_deal
    FROM leads AS l
    LEFT JOIN lead_first_contacts AS f ON f.lead_id = l.id AND f.datasource = l.datasource
    WHERE l.created_at IS NOT NULL
)
SELECT rep, month, count() AS leads,
       countIf(has_deal) / leads AS lead_to_opportunity,
       quantileExactInclusiveIf(0.5)(wait_s, wait_s >= 0) / 60 AS lead_response_time,
       countIf(wait_s >= 0 AND wait_s <= 300) / leads AS speed_to_lead_5min
FROM lead_facts GROUP BY rep, month
{CH_SETTINGS}
"""

_CH_DEALS_RC = f"""
rates AS (
    SELECT upperUTF8(assumeNotNull(currency)) AS fx_currency, assumeNotNull(date) AS fx_date,
           max(rate) AS rate
    FROM fx_rates WHERE currency IS NOT NULL AND date IS NOT NULL
    GROUP BY fx_currency, fx_date
),
deals_rc AS (
    SELECT d.*,
           if(d.currency IS NULL OR upperUTF8(d.currency) = '{CURRENCY}',
              toFloat64(d.amount), toFloat64(d.amount) * r.rate) AS amount_rc
    FROM (SELECT *, upperUTF8(ifNull(currency, '')) AS fx_currency,
                 toDate(toTimeZone(ifNull(coalesce(closed_at, created_at), toDateTime64(0, 6)),
                                   '{ZONE}')) AS fx_date
          FROM deals) AS d
    ASOF LEFT JOIN rates AS r ON r.fx_currency = d.fx_currency AND d.fx_date >= r.fx_date
)"""

CH_CLOSED_DEALS = f"""
WITH {_CH_DEALS_RC},
cycle AS (
    SELECT w.id AS id,
           {_ch_epoch('w.closed_at')} - arrayMin(arrayFilter(x -> x IS NOT NULL, [
               {_ch_epoch('w.created_at')}, {_ch_epoch('l.created_at')},
               {_ch_epoch('fd.first_contact_at')}, {_ch_epoch('fl.first_contact_at')}]))
               AS cycle_s
    FROM (SELECT datasource, id, lead_id, created_at, closed_at FROM deals
          WHERE status = 'won' AND closed_at IS NOT NULL) AS w
    LEFT JOIN leads AS l ON l.id = w.lead_id AND l.datasource = w.datasource
    LEFT JOIN deal_first_contacts AS fd ON fd.deal_id = w.id AND fd.datasource = w.datasource
    LEFT JOIN lead_first_contacts AS fl
           ON fl.lead_id = w.lead_id AND fl.datasource = w.datasource
)
SELECT d.rep_id AS rep, {_ch_month('d.closed_at')} AS month,
       countIf(d.status = 'won') AS deals_won,
       sumIf(d.amount_rc, d.status = 'won') AS revenue,
       deals_won / nullIf(countIf(d.status IN ('won', 'lost')), 0) AS win_rate,
       revenue / nullIf(deals_won, 0) AS average_deal_size,
       quantileExactInclusiveIf(0.5)({_ch_epoch('d.closed_at')} - {_ch_epoch('d.created_at')},
                                      d.status = 'won') / 86400 AS time_to_close,
       quantileExactInclusive(0.5)(c.cycle_s) / 86400 AS sales_cycle_length
FROM deals_rc AS d LEFT JOIN cycle AS c ON c.id = d.id
WHERE d.closed_at IS NOT NULL
GROUP BY rep, month
{CH_SETTINGS}
"""

CH_PIPELINE = f"""
WITH {_CH_DEALS_RC},
bounds AS (
    SELECT {_ch_month('min(created_at)')} AS first_month,
           least(toDate(toTimeZone(max(coalesce(closed_at, created_at)), '{ZONE}')),
                 toDate(now('{ZONE}'))) AS last_day
    FROM deals
),
month_ends AS (
    SELECT month,
           least(toDateTime64(toDateTime(addMonths(month, 1), '{ZONE}'), 6, 'UTC'),
                 now64(6, 'UTC')) AS as_of
    FROM bounds
    ARRAY JOIN arrayMap(i -> addMonths(first_month, i),
                        range(toUInt64(dateDiff('month', first_month, last_day) + 1))) AS month
)
SELECT d.rep_id AS rep, e.month AS month, count() AS pipeline_volume,
       sum(d.amount_rc) AS pipeline_value
FROM deals_rc AS d CROSS JOIN month_ends AS e
WHERE (d.created_at IS NULL OR d.created_at <= e.as_of)
  AND (d.closed_at IS NULL OR d.closed_at > e.as_of)
GROUP BY rep, month
{CH_SETTINGS}
"""


def run_clickhouse_sql(workspace: Path) -> pd.DataFrame:
    from saleskpi.store.ch_connection import open_session

    session = open_session(os.environ["SALESKPI_BACKEND_URL"])
    try:
        parts = []
        for sql in (CH_ACTIVITIES, CH_LEADS, CH_CLOSED_DEALS, CH_PIPELINE):
            table = session.query(sql, {})
            assert table is not None
            parts.append(table.to_pandas())
    finally:
        session.close()
    return sc._combine(parts)


HAND_WRITTEN: dict[str, Callable[[Path], pd.DataFrame]] = {
    "duckdb": sc.run_sql, "postgres": run_postgres_sql, "clickhouse": run_clickhouse_sql,
}


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--backend-url", default=None,
                        help="the PostgreSQL or ClickHouse database (default: a throwaway "
                             "PostgreSQL cluster; chdb:// in the workspace). Better given "
                             "as SALESKPI_BACKEND_URL: it holds a password")
    parser.add_argument("--size", type=float, default=170.0,
                        help="demo company size (170: ~1M leads, ~10M activities)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=sc.DEFAULT_END)
    parser.add_argument("--workspace", type=Path, default=None,
                        help="default: <tmp>/saleskpi-bench-<backend>-<size> "
                             "(DuckDB: scorecard.py's <tmp>/saleskpi-bench-<size>)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--only", choices=[*APPROACHES, "build"], help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dump_sql = None  # scorecard.run_child's option, not offered here
    if args.workspace is None:
        name = "" if args.backend == "duckdb" else f"{args.backend}-"
        args.workspace = Path(tempfile.gettempdir()) / f"saleskpi-bench-{name}{args.size:g}"
    args.workspace = args.workspace.resolve()
    # Children run this script with these arguments and find the backend in the
    # environment, as saleskpi itself does (SALESKPI_BACKEND, SALESKPI_BACKEND_URL).
    os.environ["SALESKPI_BACKEND"] = args.backend
    # The benchmark measures the computation however long it takes: no time limit (the
    # default 30 s stops a slow scorecard on a busy machine; the report says how long).
    os.environ.setdefault("SALESKPI_QUERY_TIMEOUT_SECONDS", "0")
    if args.backend_url:
        os.environ["SALESKPI_BACKEND_URL"] = args.backend_url

    if args.only == "build":
        build(args.workspace, args.backend, args.size, args.seed, args.end, args.rebuild)
        return
    if args.only:
        sc.child(args.only, args.workspace, args.runs, args.out_dir, None,
                 computes={"sql": HAND_WRITTEN[args.backend]})
        return

    with contextlib.ExitStack() as stack:
        if args.backend == "postgres" and "SALESKPI_BACKEND_URL" not in os.environ:
            os.environ["SALESKPI_BACKEND_URL"] = stack.enter_context(postgres_cluster())
        if args.backend == "clickhouse" and "SALESKPI_BACKEND_URL" not in os.environ:
            os.environ["SALESKPI_BACKEND_URL"] = f"chdb://{args.workspace / 'clickhouse'}"
        if args.backend == "duckdb":
            os.environ.pop("SALESKPI_BACKEND_URL", None)
        run(args)


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    script = Path(__file__).resolve()
    passed = ["--backend", args.backend, "--workspace", str(args.workspace),
              "--size", str(args.size), "--seed", str(args.seed), "--end", args.end.isoformat()]
    # Generating holds every frame in memory: a process of its own.
    subprocess.run([sys.executable, str(script), "--only", "build", *passed,
                    *(["--rebuild"] if args.rebuild else [])], check=True)
    out_dir = Path(tempfile.mkdtemp(prefix="saleskpi-bench-results-"))
    try:
        infos = sc.run_rounds(list(APPROACHES), args, out_dir, script,
                              extra=["--backend", args.backend])
        import pandas as pd

        results = {a: pd.read_parquet(out_dir / f"{a}.parquet") for a in infos}
        agreement = sc.compare(results)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    sc.say(f"\nBackend: {args.backend}"
           + (f" ({masked(os.environ['SALESKPI_BACKEND_URL'])})"
              if os.environ.get("SALESKPI_BACKEND_URL") else ""))
    goals = sc.report(infos, args)
    total = time.perf_counter() - started
    sc.say(f"\nTotal benchmark time: {total:.0f} s")
    if args.json:
        marker = json.loads((args.workspace / sc.MARKER).read_text())
        args.json.write_text(json.dumps({
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="minutes"),
            "commit": _commit(), "backend": args.backend,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "dataset": marker, "repeat": args.repeat, "runs": args.runs, "approaches": infos,
            "agreement": agreement, "goals": goals, "total_s": total,
        }, indent=2, default=str))
        sc.say(f"Measurements written to {args.json}")


def _commit() -> str:
    done = subprocess.run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short",
                           "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "?"


if __name__ == "__main__":
    main()
