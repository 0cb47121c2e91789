"""ClickHouse at scale: import, scorecard, funnel and pages on up to ~100M activities.

Usage::

    python benchmarks/clickhouse_100m.py --target 10          # fill to ~10M activities, measure
    python benchmarks/clickhouse_100m.py --target 30 --steps fill,scorecard
    python benchmarks/clickhouse_100m.py --target 2 --steps all --users 2 --duration 10  # quick

The store is saleskpi's ClickHouse store (``backend: clickhouse``) on chdb, the
ClickHouse engine in this machine's processes (``backend_url: chdb:///…``): there is
no server, so every query runs in the process that asks (the web server's own, for
pages).

1. **Data**: the demo company in chunks. Chunk ``k`` is ``generate_company`` at size
   17 (about 1.09M activities, 102k leads, 32k deals, 123k stage changes) with seed
   ``42 + k``; its ids are prefixed ``c<k>-`` so chunks never collide, and its reps are
   those of rep group ``k mod 32`` (ids ``g<g>-…``, teams ``g<g> …``): 32 groups of 82
   reps = 2,624 reps, as the demo company at size ~1,700 (92 chunks ≈ 100M activities,
   9.4M leads, 3M deals, 11M stage changes). Reps, accounts and products come with the
   chunk that first names them.
2. **Import through the product** (``--product-chunks`` chunks, and one more at each
   size this run reaches): the chunk as canonical CSV files, imported by ``saleskpi
   import`` in a fresh process (start-up included), timed, rows/s. The reference is
   ClickHouse's own ``INSERT INTO … SELECT … FROM file('….csv', CSVWithNames)`` of the
   same files into tables of the same engine and columns (a scratch database).
3. **Fill** to ``--target`` million activities with the rest of the chunks by the
   reference path straight into the store's ``<entity>_versions`` tables (Parquet
   chunk files, ``INSERT … SELECT FROM file``), as the product would have stored
   them (datasource ``demo``, one version per chunk): timed too.
4. **Scorecard**: 16 KPIs × rep × month through ``SalesKpiService.scorecard`` (the
   engine, a cold run then a warm one) and the hand-written ClickHouse SQL below,
   each in a fresh process (peak memory: VmHWM), approaches back to back, compared
   value by value.
5. **Funnel**: ``SalesKpiService.funnel`` for the team and by rep, cold and warm.
6. **Pages**: ``saleskpi serve``'s app (benchmarks/web_latency.py's server) on
   127.0.0.1: one user per role opens every page alone (first visit, then again),
   then ``--users`` users for ``--duration`` seconds; p95 per page.

Every step records the CPU other processes used meanwhile (benchmarks/machine_load.py).
Results are appended to ``<workspace>/results.jsonl``. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from machine_load import machine_busy_s

ZONE = "Europe/Kyiv"
CURRENCY = "USD"
SOURCE = "demo"
SEED = 42
END = dt.date(2026, 11, 1)
CHUNK_SIZE = 17.0  # demo size of one chunk: ~1.09M activities
REP_GROUPS = 32  # 32 × 82 reps = 2,624 reps
ENTITIES = ("reps", "accounts", "products", "leads", "deals", "stage_changes", "activities")
STATE = ".saleskpi-ch100m.json"
QUERY_LIMIT_S = 1800  # query_timeout_seconds (30 s by default): long questions are measured
MEMORY_LIMIT = 6_000_000_000  # bytes a chdb query may take (max_memory_usage)
TIMESTAMP_COLUMNS = {
    "reps": (), "accounts": ("acquired_at", "churned_at"), "products": (),
    "leads": ("created_at", "qualified_at", "lost_at"),
    "deals": ("created_at", "closed_at", "expected_close_at"),
    "stage_changes": ("entered_at",), "activities": ("occurred_at",),
}
# id columns: prefixed per chunk ("c") or per rep group ("g"); products are shared.
PREFIXED = {
    "reps": {"id": "g", "manager_id": "g", "team": "g "},
    "accounts": {"id": "c", "rep_id": "g"},
    "products": {},
    "leads": {"id": "c", "rep_id": "g", "account_id": "c"},
    "deals": {"id": "c", "rep_id": "g", "lead_id": "c", "account_id": "c"},
    "stage_changes": {"deal_id": "c", "rep_id": "g"},
    "activities": {"id": "c", "rep_id": "g", "lead_id": "c", "deal_id": "c",
                   "account_id": "c"},
}


def say(message: str = "") -> None:
    print(message, flush=True)


def peak_rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def record(workspace: Path, step: str, **values: Any) -> None:
    """One measurement, appended to results.jsonl with the time, commit and size."""
    row = {"step": step, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
           "activities": load_state(workspace).get("activities", 0), **values}
    with (workspace / "results.jsonl").open("a") as out:
        out.write(json.dumps(row, default=str) + "\n")


def load_state(workspace: Path) -> dict[str, Any]:
    path = workspace / STATE
    return json.loads(path.read_text()) if path.is_file() else {"chunks": 0, "activities": 0,
                                                                  "rows": {}}


def save_state(workspace: Path, state: dict[str, Any]) -> None:
    (workspace / STATE).write_text(json.dumps(state, indent=2))


class Busy:
    """Wall time, and the CPU share other processes took meanwhile (0–1 of the machine)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.machine = machine_busy_s()
        self.own = _own_cpu()

    def cpu(self) -> float:
        """CPU seconds of this process and its finished children since the start."""
        return _own_cpu() - self.own

    def done(self) -> tuple[float, float]:
        wall = time.perf_counter() - self.started
        others = (machine_busy_s() - self.machine) - (_own_cpu() - self.own)
        return wall, max(0.0, others / ((os.cpu_count() or 1) * wall))


def _own_cpu() -> float:
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --------------------------------------------------------------------------- workspace


def setup(workspace: Path) -> None:
    from saleskpi.domain.settings import Settings, save_workspace_settings

    workspace.mkdir(parents=True, exist_ok=True)
    if not (workspace / "settings.yaml").is_file():
        save_workspace_settings(Settings(workspace=workspace), timezone=ZONE, currency=CURRENCY,
                                backend="clickhouse", query_timeout_seconds=QUERY_LIMIT_S,
                                backend_url=f"chdb://{(workspace / 'clickhouse').resolve()}")


def open_store(workspace: Path) -> Any:
    from saleskpi.domain.settings import Settings
    from saleskpi.store.backend import open_store as opened

    store = opened(Settings(workspace=workspace))
    store.con.execute(f"SET max_memory_usage = {MEMORY_LIMIT}")
    return store


def chunk_frames(k: int) -> dict[str, Any]:
    """Chunk ``k`` of the company: its own ids, the reps of its rep group."""
    from saleskpi.sources.demo import generate_company

    frames = generate_company(CHUNK_SIZE, seed=SEED + k, end=END, timezone=ZONE,
                              currency=CURRENCY)
    out = {}
    group = k % REP_GROUPS
    for name in ENTITIES:
        if name == "reps" and k >= REP_GROUPS:
            continue  # the group's reps came with its first chunk
        if name == "products" and k > 0:
            continue
        frame = frames[name]
        for column, kind in PREFIXED[name].items():
            prefix = f"c{k}-" if kind == "c" else (f"g{group} " if kind == "g " else
                                                   f"g{group}-")
            known = frame[column].notna()
            frame.loc[known, column] = prefix + frame.loc[known, column].astype(str)
        out[name] = frame
    return out


def write_csv(frames: dict[str, Any], folder: Path) -> dict[str, int]:
    """Canonical CSV files; timestamps written in UTC with their offset."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame = frame.copy()
        for column in TIMESTAMP_COLUMNS[name]:
            frame[column] = frame[column].dt.tz_localize("UTC")
        frame.to_csv(folder / f"{name}.csv", index=False)
    return {name: len(frame) for name, frame in frames.items()}


def write_parquet(frames: dict[str, Any], folder: Path) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return {name: len(frame) for name, frame in frames.items()}


def _stored_columns(name: str) -> list[str]:
    from saleskpi.domain.schema import ENTITIES as SCHEMA

    return list(SCHEMA[name].column_names)


def insert_files(con: Any, folder: Path, names: list[str], *, database: str, fmt: str,
                 version: int) -> None:
    """ClickHouse's own load of the chunk files, as the product stores the rows."""
    for name in names:
        path = folder / f"{name}.{'csv' if fmt == 'CSVWithNames' else 'parquet'}"
        columns = _stored_columns(name)
        quoted = ", ".join(f'"{c}"' for c in columns)
        custom = ("if(utm_campaign IS NULL, '{}', concat('{\"utm_campaign\": ', "
                  "toJSONString(utm_campaign), '}'))" if name == "leads" else "NULL")
        con.session.query(
            f'INSERT INTO {database}."{name}_versions" ({quoted}, datasource, custom, _version, '
            f"_deleted) SELECT {quoted}, '{SOURCE}', {custom}, {version}, 0 "
            f"FROM file('{path}', {fmt}) SETTINGS date_time_input_format = 'best_effort'", {})


def fill_child(workspace: Path, first: int, last: int, files: Path) -> None:
    """Chunks ``first``..``last``-1 by the reference path, straight into the store."""
    store = open_store(workspace)
    try:
        for k in range(first, last):
            busy = Busy()
            frames = chunk_frames(k)
            counts = write_parquet(frames, files / f"chunk-{k}")
            generated, _ = busy.done()
            load = Busy()
            insert_files(store.con, files / f"chunk-{k}", list(frames), database="default",
                         fmt="Parquet", version=time.time_ns())
            store.con.bump_version()
            wall, others = load.done()
            cpu = load.cpu()
            shutil.rmtree(files / f"chunk-{k}")
            rows = sum(counts.values())
            state = load_state(workspace)
            state["chunks"] = k + 1
            state["activities"] += counts["activities"]
            for name, n in counts.items():
                state["rows"][name] = state["rows"].get(name, 0) + n
            save_state(workspace, state)
            record(workspace, "fill", chunk=k, rows=rows, generate_s=generated, load_s=wall,
                   load_cpu_s=cpu,
                   rows_per_s=rows / wall, other_load=others)
            say(f"  chunk {k}: {rows:,} rows generated in {generated:.1f} s, loaded in "
                f"{wall:.1f} s ({rows / wall:,.0f} rows/s; other processes {others:.0%}); "
                f"{state['activities']:,} activities stored")
    finally:
        store.close()


def product_import(workspace: Path, k: int, files: Path) -> None:
    """Chunk ``k`` through ``saleskpi import`` (a fresh process), then the reference."""
    folder = files / f"csv-{k}"
    frames = chunk_frames(k)
    counts = write_csv(frames, folder)
    del frames
    rows = sum(counts.values())
    size = sum(f.stat().st_size for f in folder.iterdir())
    stored = load_state(workspace)["activities"]
    say(f"  chunk {k} as CSV: {rows:,} rows ({size / 1e6:,.0f} MB); importing through "
        f"saleskpi into a store of {stored:,} activities…")
    env = {**os.environ, "SALESKPI_WORKSPACE": str(workspace)}
    busy = Busy()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "saleskpi", "import", str(folder),
         "--source", SOURCE, "--format", "json"], env=env, capture_output=True, text=True)
    wall, others = busy.done()
    cpu = busy.cpu()
    if done.returncode != 0:
        say(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"saleskpi import failed (exit {done.returncode})")
    peak_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    state = load_state(workspace)
    state["chunks"] = max(state["chunks"], k + 1)
    state["activities"] += counts["activities"]
    for name, n in counts.items():
        state["rows"][name] = state["rows"].get(name, 0) + n
    state.setdefault("product_chunks", []).append(k)
    save_state(workspace, state)
    say(f"    saleskpi import: {wall:.1f} s (CPU {cpu:.1f} s), {rows / wall:,.0f} rows/s, "
        f"peak {peak_mib:,.0f} MiB; "
        f"other processes {others:.0%}")
    reference = subprocess.run(
        [sys.executable, __file__, "--child", "reference", "--workspace", str(workspace),
         "--chunk", str(k), "--files", str(files)], capture_output=True, text=True)
    if reference.returncode != 0:
        say(reference.stdout[-3000:] + reference.stderr[-3000:])
        raise SystemExit("the reference load failed")
    ref = json.loads(reference.stdout.strip().splitlines()[-1])
    say(f"    ClickHouse INSERT … FROM file(CSV): {ref['load_s']:.1f} s, "
        f"{rows / ref['load_s']:,.0f} rows/s → saleskpi takes {wall / ref['load_s']:.1f}× "
        f"(other processes {ref['other_load']:.0%})")
    record(workspace, "import", chunk=k, rows=rows, csv_mb=size / 1e6, stored_before=stored,
           import_s=wall, import_cpu_s=cpu, rows_per_s=rows / wall,
           reference_cpu_s=ref["cpu_s"], peak_mib=peak_mib, other_load=others,
           reference_s=ref["load_s"], reference_other_load=ref["other_load"],
           ratio=wall / ref["load_s"], counts=counts)
    shutil.rmtree(folder)


def reference_child(workspace: Path, k: int, files: Path) -> None:
    """``INSERT … SELECT FROM file`` of chunk ``k``'s CSV files into a scratch database."""
    store = open_store(workspace)
    con = store.con
    try:
        con.session.query("DROP DATABASE IF EXISTS bench_reference", {})
        con.session.query("CREATE DATABASE bench_reference", {})
        names = [p.stem for p in sorted((files / f"csv-{k}").glob("*.csv"))]
        for name in names:
            con.session.query(f'CREATE TABLE bench_reference."{name}_versions" AS '
                              f'default."{name}_versions"', {})
        busy = Busy()
        insert_files(con, files / f"csv-{k}", names, database="bench_reference",
                     fmt="CSVWithNames", version=1)
        wall, others = busy.done()
        cpu = busy.cpu()
        con.session.query("DROP DATABASE bench_reference", {})
    finally:
        store.close()
    print(json.dumps({"load_s": wall, "other_load": others, "cpu_s": cpu}))


# --------------------------------------------------------------------------- scorecard


def _month(column: str) -> str:
    return f"toStartOfMonth(toTimeZone({column}, '{ZONE}'))"


def _seconds(column: str) -> str:
    return f"(toUnixTimestamp64Micro({column}) / 1e6)"


NOT_IN = "(direction IS NULL OR direction <> 'in')"
# As the product's first-contact views (store/clickhouse.py), written out by hand.
FIRST_CONTACT = ("SELECT datasource, {key}, min(occurred_at) AS first_at FROM activities "
                 "WHERE {key} IS NOT NULL AND type IN ('call', 'email', 'mail', 'meeting', "
                 "'presentation', 'demo', 'proposal') AND occurred_at IS NOT NULL AND "
                 + NOT_IN + " GROUP BY datasource, {key}")
FAR = "toDateTime64('2200-01-01 00:00:00', 6, 'UTC')"

# Hand-written ClickHouse, as benchmarks/scorecard.py's DuckDB SQL (the demo's deals
# are all in USD: no exchange rates to apply). It reads the same views (FINAL).
SQL_ACTIVITIES = f"""
SELECT rep_id AS rep, {_month('occurred_at')} AS month,
       countIf(type = 'call' AND {NOT_IN}) AS calls,
       countIf(type = 'meeting') AS meetings,
       countIf(type IN ('email', 'mail') AND {NOT_IN}) AS emails,
       meetings / nullIf(calls, 0) AS call_to_meeting_conversion
FROM activities WHERE occurred_at IS NOT NULL GROUP BY rep, month"""

SQL_LEADS = f"""
WITH lead_facts AS (
    SELECT l.rep_id AS rep, {_month('l.created_at')} AS month,
           {_seconds('f.first_at')} - {_seconds('l.created_at')} AS wait_s,
           l.id IN (SELECT lead_id FROM deals WHERE lead_id IS NOT NULL) AS has_deal
    FROM leads AS l
    LEFT JOIN ({FIRST_CONTACT.format(key='lead_id')}) AS f
      ON f.lead_id = l.id AND f.datasource = l.datasource
    WHERE l.created_at IS NOT NULL
)
SELECT rep, month, count() AS leads,
       countIf(has_deal) / leads AS lead_to_opportunity,
       quantileExactInclusiveIf(0.5)(wait_s, wait_s >= 0) / 60 AS lead_response_time,
       countIf(wait_s >= 0 AND wait_s <= 300) / leads AS speed_to_lead_5min
FROM lead_facts GROUP BY rep, month"""

SQL_CLOSED_DEALS = f"""
WITH won AS (
    SELECT datasource, id, lead_id, created_at, closed_at FROM deals
    WHERE status = 'won' AND closed_at IS NOT NULL
),
cycle AS (
    SELECT w.id AS id,
           {_seconds('w.closed_at')} - {_seconds(
               f"nullIf(least(ifNull(w.created_at, {FAR}), ifNull(l.created_at, {FAR}), "
               f"ifNull(fd.first_at, {FAR}), ifNull(fl.first_at, {FAR})), {FAR})")}
               AS cycle_s
    FROM won AS w
    LEFT JOIN leads AS l ON l.id = w.lead_id AND l.datasource = w.datasource
    LEFT JOIN ({FIRST_CONTACT.format(key='deal_id')}) AS fd
      ON fd.deal_id = w.id AND fd.datasource = w.datasource
    LEFT JOIN ({FIRST_CONTACT.format(key='lead_id')}) AS fl
      ON fl.lead_id = w.lead_id AND fl.datasource = w.datasource
)
SELECT d.rep_id AS rep, {_month('d.closed_at')} AS month,
       countIf(d.status = 'won') AS deals_won,
       sumIf(toFloat64(d.amount), d.status = 'won') AS revenue,
       deals_won / nullIf(countIf(d.status IN ('won', 'lost')), 0) AS win_rate,
       revenue / nullIf(deals_won, 0) AS average_deal_size,
       quantileExactInclusiveIf(0.5)({_seconds('d.closed_at')} - {_seconds('d.created_at')},
                                     d.status = 'won') / 86400 AS time_to_close,
       quantileExactInclusive(0.5)(c.cycle_s) / 86400 AS sales_cycle_length
FROM deals AS d LEFT JOIN cycle AS c ON c.id = d.id
WHERE d.closed_at IS NOT NULL GROUP BY rep, month"""

SQL_PIPELINE = f"""
WITH bounds AS (
    SELECT {_month('min(created_at)')} AS first_month,
           least(toDate(toTimeZone(max(coalesce(closed_at, created_at)), '{ZONE}')),
                 toDate(now(), '{ZONE}')) AS last_day
    FROM deals
),
month_ends AS (
    SELECT month, least(toDateTime64(addMonths(month, 1), 6, '{ZONE}'), now64(6)) AS as_of
    FROM (SELECT arrayJoin(arrayMap(i -> addMonths(first_month, i),
                 range(toUInt32(dateDiff('month', first_month, last_day)) + 1))) AS month
          FROM bounds)
)
SELECT d.rep_id AS rep, e.month AS month, count() AS pipeline_volume,
       sum(toFloat64(d.amount)) AS pipeline_value
FROM deals AS d CROSS JOIN month_ends AS e
WHERE (d.created_at IS NULL OR d.created_at <= e.as_of)
  AND (d.closed_at IS NULL OR d.closed_at > e.as_of)
GROUP BY rep, month"""


def scorecard_child(workspace: Path, approach: str, out: Path, warm: int) -> None:
    """One approach in this fresh process; times, peak memory and the values to ``out``."""
    import pandas as pd  # noqa: F401  (start-up, not query time)
    import pyarrow  # noqa: F401

    import saleskpi.domain.query
    from scorecard import _combine, run_engine, to_long

    # The answer's size guard (200,000 values) refuses 2,624 reps × months × 16 KPIs: the
    # benchmark measures the computation of the whole grid, so it lifts the guard.
    saleskpi.domain.query.MAX_CELLS = 10**8
    info: dict[str, Any] = {"approach": approach}
    guard = open_store(workspace)  # the service's stores share its session and memory limit
    if approach == "engine":
        frame, warm_s, extra = run_engine(workspace, warm, None)
        info.update(times=warm_s, cold_s=extra["cold_s"], cpu=extra["cpu"],
                    cold_cpu_s=extra["cold_cpu_s"], breakdown_cold=extra["breakdown_cold"])
    else:
        times, cpu = [], []
        for _ in range(1 + warm):
            started, cpu_start = time.perf_counter(), time.process_time()
            parts = [guard.con.session.query(sql, {}).to_pandas()
                     for sql in (SQL_ACTIVITIES, SQL_LEADS, SQL_CLOSED_DEALS, SQL_PIPELINE)]
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_start)
        frame = to_long(_combine(parts))
        info.update(cold_s=times[0], times=times[1:], cpu=cpu)
    info["peak_mib"] = peak_rss_mib()
    guard.close()
    frame.to_parquet(out / f"{approach}.parquet", index=False)
    (out / f"{approach}.json").write_text(json.dumps(info, default=str))


def scorecard_step(workspace: Path, rounds: int, warm: int) -> None:
    import pandas as pd

    from scorecard import compare

    out = workspace / "scorecard-out"
    out.mkdir(exist_ok=True)
    for round_ in range(rounds):
        infos = {}
        for approach in ("engine", "sql"):
            busy = Busy()
            code = subprocess.run([sys.executable, __file__, "--child", "scorecard",
                                   "--approach", approach, "--workspace", str(workspace),
                                   "--files", str(out), "--warm", str(warm)]).returncode
            wall, others = busy.done()
            if code != 0:
                raise SystemExit(f"the scorecard's {approach} process failed ({code})")
            info = json.loads((out / f"{approach}.json").read_text())
            info.update(process_s=wall, other_load=others)
            infos[approach] = info
            cpus = info.get("cold_cpu_s"), *info["cpu"]
            say(f"  {approach:<6} cold {info['cold_s']:.1f} s, warm "
                f"{', '.join(f'{t:.1f}' for t in info['times'])} s; CPU "
                f"{', '.join(f'{t:.1f}' for t in cpus if t is not None)} s; peak "
                f"{info['peak_mib']:,.0f} MiB; process {wall:.1f} s; other processes "
                f"{others:.0%}")
        ratio = (infos["engine"]["times"][0] / infos["sql"]["times"][0]) if warm else None
        cold_ratio = infos["engine"]["cold_s"] / infos["sql"]["cold_s"]
        say(f"  round {round_ + 1}: engine / hand-written SQL = "
            + (f"{ratio:.2f}× warm, " if ratio else "") + f"{cold_ratio:.2f}× cold")
        agreement = compare({a: pd.read_parquet(out / f"{a}.parquet") for a in infos})
        record(workspace, "scorecard", round=round_ + 1, engine=infos["engine"],
               sql=infos["sql"], ratio_warm=ratio, ratio_cold=cold_ratio,
               agreement=agreement)


# --------------------------------------------------------------------------- FINAL


# Calls per rep and month over every activity, four ways: what reading through FINAL
# costs, and the alternatives at scale (docs/capacity.md).
_CALLS = (f"countIf(type = 'call' AND {NOT_IN})", f"rep_id, {_month('occurred_at')}")
FINAL_QUERIES = {
    "no FINAL (wrong if versions are unmerged)":
        f"SELECT {_CALLS[1]}, {_CALLS[0]} FROM activities_versions WHERE _deleted = 0 "
        f"GROUP BY ALL",
    "the view (FINAL)": f"SELECT {_CALLS[1]}, {_CALLS[0]} FROM activities GROUP BY ALL",
    "FINAL, do_not_merge_across_partitions_select_final":
        f"SELECT {_CALLS[1]}, {_CALLS[0]} FROM activities_versions FINAL WHERE _deleted = 0 "
        "GROUP BY ALL SETTINGS do_not_merge_across_partitions_select_final = 1",
    "argMax per key": (
        "SELECT t.1 AS rep, " + _month("t.2") + " AS month, "
        "countIf(t.3 = 'call' AND (t.4 IS NULL OR t.4 <> 'in')) FROM (SELECT argMax(tuple("
        "rep_id, occurred_at, type, direction, _deleted), _version) AS t FROM "
        "activities_versions GROUP BY datasource, id) WHERE t.5 = 0 GROUP BY rep, month"),
}


def final_child(workspace: Path) -> None:
    store = open_store(workspace)
    found: dict[str, Any] = {}
    try:
        parts = store.fetch("SELECT count(), sum(rows), sum(bytes_on_disk) FROM system.parts "
                            "WHERE active AND database = currentDatabase() "
                            "AND table = 'activities_versions'")[0]
        found["parts"], found["rows"], found["bytes"] = (int(v) for v in parts)
        for label, sql in FINAL_QUERIES.items():
            started, cpu_start = time.perf_counter(), time.process_time()
            try:
                rows = store.con.session.query(sql, {})
            except Exception as exc:  # e.g. over the memory limit: that is the finding
                rows, error = None, str(exc).splitlines()[0][:300]
            else:
                error = ""
            found[label] = {"s": time.perf_counter() - started,
                            "cpu_s": time.process_time() - cpu_start,
                            "groups": rows.num_rows if rows is not None else 0, "error": error}
        found["peak_mib"] = peak_rss_mib()
    finally:
        store.close()
    print(json.dumps(found))


def final_step(workspace: Path) -> None:
    busy = Busy()
    done = subprocess.run([sys.executable, __file__, "--child", "final", "--workspace",
                           str(workspace)], capture_output=True, text=True)
    wall, others = busy.done()
    if done.returncode != 0:
        error = done.stderr.strip().splitlines()[-1][:500] if done.stderr.strip() else "?"
        say(f"  the FINAL process failed after {wall:.0f} s: {error}")
        record(workspace, "final", process_s=wall, other_load=others, failed=error)
        return
    found = json.loads(done.stdout.strip().splitlines()[-1])
    say(f"  activities_versions: {found['rows']:,} rows in {found['parts']} parts, "
        f"{found['bytes'] / 1e6:,.0f} MB on disk")
    for label in FINAL_QUERIES:
        say(f"  {label:<52} {found[label]['s']:6.1f} s, CPU {found[label]['cpu_s']:6.1f} s"
            + (f" FAILED: {found[label]['error']}" if found[label]["error"] else ""))
    say(f"  peak {found['peak_mib']:,.0f} MiB; other processes {others:.0%}")
    record(workspace, "final", process_s=wall, other_load=others, **found)


# --------------------------------------------------------------------------- funnel


def funnel_child(workspace: Path, warm: int) -> None:
    from saleskpi.domain.funnel import FunnelOptions
    from saleskpi.domain.settings import Settings
    from saleskpi.service.core import SalesKpiService

    guard = open_store(workspace)  # the service's stores share its session and memory limit
    service = SalesKpiService(Settings(workspace=workspace, cache_seconds=0))
    found: dict[str, Any] = {}
    for label, options in (("team", FunnelOptions()), ("by rep", FunnelOptions(by_rep=True))):
        times, cpu = [], []
        for _ in range(1 + warm):
            started, cpu_start = time.perf_counter(), time.process_time()
            report = service.funnel(options)
            times.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_start)
        found[label] = {"cold_s": times[0], "warm_s": times[1:], "cpu_s": cpu,
                        "slices": len(getattr(report, "slices", []) or [])}
        say(f"  funnel {label:<7} cold {times[0]:.1f} s (CPU {cpu[0]:.1f} s)"
            + "".join(f", warm {t:.1f} s (CPU {c:.1f} s)"
                      for t, c in zip(times[1:], cpu[1:], strict=True)))
    found["peak_mib"] = peak_rss_mib()
    guard.close()
    print(json.dumps(found))


def funnel_step(workspace: Path, warm: int) -> None:
    busy = Busy()
    done = subprocess.run([sys.executable, __file__, "--child", "funnel", "--workspace",
                           str(workspace), "--warm", str(warm)], capture_output=True, text=True)
    wall, others = busy.done()
    if done.returncode != 0:
        error = done.stderr.strip().splitlines()[-1][:500] if done.stderr.strip() else "?"
        say(f"  the funnel process failed after {wall:.0f} s: {error}")
        record(workspace, "funnel", process_s=wall, other_load=others, failed=error)
        return
    lines = done.stdout.strip().splitlines()
    say("\n".join(lines[:-1]))
    found = json.loads(lines[-1])
    say(f"  peak {found['peak_mib']:,.0f} MiB; other processes {others:.0%}")
    record(workspace, "funnel", process_s=wall, other_load=others, **found)


# --------------------------------------------------------------------------- pages


def users_child(workspace: Path) -> None:
    """One user per role (head, team lead of a real team, rep of a real rep), as JSON."""
    import random

    from sqlalchemy import delete
    from sqlalchemy.orm import Session

    from saleskpi.domain.settings import Settings
    from saleskpi.service.auth import add_user
    from saleskpi.store.state import engine_for
    from saleskpi.store.state.users import User
    from web_latency import PASSWORD

    settings = Settings(workspace=workspace)
    store = open_store(workspace)
    try:
        rows = store.fetch("SELECT id, team, role FROM reps WHERE left_at IS NULL "
                           "AND team IS NOT NULL ORDER BY id")
    finally:
        store.close()
    rng = random.Random(SEED)
    reps = sorted(rep for rep, _team, role in rows if role == "rep")
    rng.shuffle(reps)
    team_of = {rep: team for rep, team, _role in rows}
    with Session(engine_for(settings.state_url)) as session, session.begin():
        session.execute(delete(User).where(User.username.like("bench_%")))
    users = []
    for index, role in enumerate(("head", "team_lead", "rep")):
        rep = reps[index]
        user = {"username": f"bench_{index + 1:02d}_{role}", "role": role,
                "rep_id": rep if role == "rep" else None,
                "team": team_of[rep] if role == "team_lead" else None, "page_rep": rep}
        add_user(settings, user["username"], PASSWORD, role, rep_id=user["rep_id"],
                 team=user["team"])
        users.append(user)
    print(json.dumps(users))


def pages_step(workspace: Path, users_n: int, duration: float, timeout: float,
               alone_roles: list[str]) -> None:
    import web_latency as web

    done = subprocess.run([sys.executable, __file__, "--child", "users", "--workspace",
                           str(workspace)], capture_output=True, text=True)
    if done.returncode != 0:
        say(done.stderr[-3000:])
        raise SystemExit("adding the users failed")
    users = [web.BenchUser(**u) for u in json.loads(done.stdout.strip().splitlines()[-1])]
    server, base = web.start_server(workspace, None)
    try:
        busy = Busy()
        say(f"\nEach page alone ({', '.join(alone_roles)}; first visit, then again):")
        alone = web.alone(base, [u for u in users if u.role in alone_roles], END, timeout)
        alone_s, alone_load = busy.done()
        group = [users[i % len(users)] for i in range(users_n)]
        say(f"\n{users_n} users for {duration:.0f} s:")
        busy = Busy()
        samples, wall = web.load(base, group, END, duration, 10_000, timeout, think=1.0)
        _, load_other = busy.done()
        result = web.report(samples, wall, users_n)
        stats = web.server_stats(base)
        server_peak = peak_rss_mib(server.pid)
    finally:
        web.stop_server(server)
    say(f"  server peak memory {server_peak:,.0f} MiB; other processes {load_other:.0%}")
    record(workspace, "pages", alone=alone, alone_s=alone_s, alone_other_load=alone_load,
           load=result, users=users_n, duration=duration, server_peak_mib=server_peak,
           server=stats, other_load=load_other)


# --------------------------------------------------------------------------- main


def fill_to(workspace: Path, target_m: float, files: Path, product_chunks: int,
            product_last: bool = True) -> None:
    state = load_state(workspace)
    per_chunk = 1_093_185  # activities of a size-17 chunk (seed 42; others within ~1 %)
    # Chunks through the product: the first ones, and one at each size a run reaches.
    while state["chunks"] < product_chunks:
        product_import(workspace, state["chunks"], files)
        state = load_state(workspace)
    want = max(state["chunks"], round(target_m * 1e6 / per_chunk))
    last = want - 1 if product_last else want
    if last > state["chunks"]:
        say(f"Filling chunks {state['chunks']}..{last - 1} by ClickHouse's own load:")
        busy = Busy()
        code = subprocess.run([sys.executable, __file__, "--child", "fill", "--workspace",
                               str(workspace), "--chunk", str(state["chunks"]),
                               "--last", str(last), "--files", str(files)]).returncode
        if code != 0:
            raise SystemExit("filling failed")
        wall, others = busy.done()
        say(f"  filled in {wall:.0f} s (other processes {others:.0%})")
        state = load_state(workspace)
    if state["chunks"] < want:
        product_import(workspace, state["chunks"], files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workspace", type=Path, default=Path("/tmp/saleskpi-ch100m"))
    parser.add_argument("--files", type=Path, help="chunk files (default: <workspace>/files)")
    parser.add_argument("--target", type=float, default=100.0,
                        help="million activities to reach before measuring")
    parser.add_argument("--product-chunks", type=int, default=1,
                        help="the first chunks go through saleskpi import")
    parser.add_argument("--no-product-import", action="store_true",
                        help="fill the last chunk too by ClickHouse's load (saves minutes)")
    parser.add_argument("--steps", default="fill,scorecard,funnel,pages",
                        help="fill, scorecard, final, funnel, pages (comma-separated) or all")
    parser.add_argument("--rounds", type=int, default=1, help="scorecard rounds")
    parser.add_argument("--warm", type=int, default=1,
                        help="scorecard and funnel runs after the cold one, per process")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--alone-roles", default="head",
                        help="roles whose user opens every page alone (head,team_lead,rep)")
    parser.add_argument("--timeout", type=float, default=600.0, help="per page request")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--approach", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--last", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workspace: Path = args.workspace.resolve()
    files: Path = (args.files or workspace / "files").resolve()
    if args.child == "fill":
        fill_child(workspace, args.chunk, args.last, files)
    elif args.child == "reference":
        reference_child(workspace, args.chunk, files)
    elif args.child == "scorecard":
        scorecard_child(workspace, args.approach, files, args.warm)
    elif args.child == "funnel":
        funnel_child(workspace, args.warm)
    elif args.child == "final":
        final_child(workspace)
    elif args.child == "users":
        users_child(workspace)
    else:
        steps = set(("fill,scorecard,final,funnel,pages" if args.steps == "all"
                     else args.steps).split(","))
        setup(workspace)
        say(f"Workspace {workspace}; {shutil.disk_usage(workspace).free / 1e9:.0f} GB free")
        if "fill" in steps:
            fill_to(workspace, args.target, files, args.product_chunks,
                    product_last=not args.no_product_import)
        state = load_state(workspace)
        say(f"Stored: {', '.join(f'{n:,} {k}' for k, n in state['rows'].items())}")
        if "scorecard" in steps:
            say("\nScorecard (16 KPIs × rep × month):")
            scorecard_step(workspace, args.rounds, args.warm)
        if "final" in steps:
            say("\nWhat FINAL costs (calls per rep and month):")
            final_step(workspace)
        if "funnel" in steps:
            say("\nFunnel:")
            funnel_step(workspace, args.warm)
        if "pages" in steps:
            pages_step(workspace, args.users, args.duration, args.timeout,
                       args.alone_roles.split(","))


if __name__ == "__main__":
    main()
