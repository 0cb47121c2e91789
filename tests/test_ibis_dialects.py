"""engine/ibis_dialects.py: one dialect's compiler without Ibis's other nineteen.

Each check runs in a fresh Python process: what a process has imported is the point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from tests.conftest import SRC_DIR

# The same expression compiled for three dialects, printed as JSON.
COMPILE_THREE = """
import ibis
table = ibis.table({"rep": "string", "amount": "decimal(18, 2)"}, name="deals")
expr = table.group_by("rep").aggregate(total=table.amount.sum(), n=table.count())
print(json.dumps({d: ibis.to_sql(expr, dialect=d) for d in ("duckdb", "postgres",
                                                            "clickhouse")}))
"""


def run(code: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC_DIR), env.get("PYTHONPATH", ""))
                                        if p)
    done = subprocess.run([sys.executable, "-c", "import json, sys\n" + code],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_compiling_for_duckdb_imports_no_other_dialect() -> None:
    found = run("""
from saleskpi.engine.ibis_dialects import dialect_module
compiler = dialect_module("duckdb").compiler
dialects = sorted(m for m in sys.modules if m.startswith("sqlglot.dialects."))
compilers = sorted(m for m in sys.modules if m.startswith("ibis.backends.sql.compilers."))
print(json.dumps({"compiler": type(compiler).__name__, "dialects": dialects,
                  "compilers": compilers}))
""")
    assert found["compiler"] == "DuckDBCompiler"
    # Without the shortcut: 17 of sqlglot's dialects and 26 modules of Ibis's compilers.
    assert found["dialects"] == ["sqlglot.dialects.dialect", "sqlglot.dialects.duckdb"]
    ours = {f"ibis.backends.sql.compilers.{m}" for m in ("_compat", "base", "duckdb")}
    assert "ibis.backends.sql.compilers.duckdb" in found["compilers"]
    assert set(found["compilers"]) <= ours, found["compilers"]


def test_ibis_duckdb_backend_on_the_store_imports_no_other_dialect() -> None:
    found = run("""
import duckdb
from saleskpi.store.ibis_duckdb import ibis_on
backend = ibis_on(duckdb.connect())
backend.raw_sql("CREATE TABLE t (a INTEGER)")
columns = list(backend.table("t").schema().names)
print(json.dumps({"columns": columns, "bigquery": "sqlglot.dialects.bigquery" in sys.modules}))
""")
    assert found == {"columns": ["a"], "bigquery": False}


def test_the_rest_of_the_package_is_there_when_asked_and_compiles_the_same() -> None:
    """After one dialect alone, every name of the package still answers (its __init__
    runs then), and each dialect's SQL is what Ibis gives without the shortcut."""
    plain = run(COMPILE_THREE)
    entered = run("""
from saleskpi.engine.ibis_dialects import dialect_module
dialect_module("duckdb")
import ibis.backends.sql.compilers as sc
assert type(sc.postgres.compiler).__name__ == "PostgresCompiler"
assert "sqlglot.dialects.bigquery" not in sys.modules  # a dialect's module: still alone
from ibis.backends.sql.compilers import BigQueryCompiler, DuckDBCompiler
assert "AthenaCompiler" in sc.__all__ and "sqlglot.dialects.bigquery" in sys.modules
""" + COMPILE_THREE)
    assert entered == plain
    assert "SUM" in str(plain["postgres"]).upper()


def test_threads_asking_the_rest_of_the_package_at_once_all_get_it() -> None:
    """The server compiles on several threads: one runs the package's __init__, the
    others wait for it rather than find it half made (an ImportError)."""
    found = run("""
import threading
from saleskpi.engine.ibis_dialects import dialect_module
dialect_module("duckdb")
start, got, failed = threading.Barrier(8), [], []
def ask():
    start.wait()
    try:
        from ibis.backends.sql.compilers import PostgresCompiler, TrinoCompiler
        got.append((PostgresCompiler.__name__, TrinoCompiler.__name__))
    except Exception as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=ask) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"got": sorted(set(got)), "answers": len(got), "failed": failed}))
""")
    assert found == {"got": [["PostgresCompiler", "TrinoCompiler"]], "answers": 8,
                     "failed": []}
