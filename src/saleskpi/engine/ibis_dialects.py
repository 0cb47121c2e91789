"""Ibis's SQL compiler of one dialect, without importing the other nineteen.

``ibis.backends.sql.compilers`` imports, in its ``__init__``, the compilers of every
dialect Ibis knows and sqlglot's dialects with them: 0.23 s of the first question a
`saleskpi kpi` process compiles, where DuckDB's compiler alone takes 0.08 s (issue 12,
docs/benchmarks.md). So the package is entered without running its ``__init__``: the
one dialect's module is imported into it, and the ``__init__`` runs, whole and once, on
the first name asked of the package that is not such a module (a module ``__getattr__``,
PEP 562), as when Ibis's PostgreSQL backend asks for ``PostgresCompiler``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGE = "ibis.backends.sql.compilers"
_lock = threading.RLock()


def dialect_module(dialect: str) -> ModuleType:
    """``ibis.backends.sql.compilers.<dialect>`` (e.g. ``duckdb``), imported alone."""
    enter_package()
    return importlib.import_module(f"{PACKAGE}.{dialect}")


def enter_package() -> None:
    """Put the package in ``sys.modules`` with its ``__init__`` not yet run (unless it
    is there already)."""
    with _lock:
        if PACKAGE not in sys.modules:
            _enter()


def _enter() -> None:
    import ibis.backends.sql as parent

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        importlib.import_module(PACKAGE)  # another layout: import it as it is
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader
    ran = threading.Event()  # set as the __init__ starts; it has ended once _lock is free

    def rest_of_package(name: str) -> Any:
        # A dialect's module (``sc.duckdb`` in Ibis's backends) is imported alone; any
        # other name runs the __init__ in the package (the dialect modules already
        # imported are reused) and is answered from what it defined. Another thread
        # asking meanwhile waits for the __init__ to end; the __init__'s own imports,
        # asking in this thread, see the package as it stands, as any import would.
        if not name.startswith("_") and name.islower():
            with contextlib.suppress(ModuleNotFoundError):
                return importlib.import_module(f"{PACKAGE}.{name}")
        with _lock:
            if not ran.is_set():
                ran.set()
                loader.exec_module(package)
                package.__dict__.pop("__getattr__", None)
        if name in package.__dict__:
            return package.__dict__[name]
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    package.__getattr__ = rest_of_package  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package
    parent.compilers = package
