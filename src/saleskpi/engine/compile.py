"""Measures to SQL: one aggregate query per (view, time column), compiled once per shape.

Compiling an Ibis expression costs milliseconds to tenths of a second; a web
page asks the same shape again and again with other dates and filters. So the
SQL of a shape is compiled once with named parameters (``saleskpi.engine.build``)
and kept: in memory for the process, and in files of the workspace
(``CompiledSqlFiles``) for the next process, which then runs it without importing
Ibis at all. This module does not import Ibis.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from saleskpi.domain.files import keep_newest, private_dir, replace_private
from saleskpi.engine.context import ViewContext
from saleskpi.engine.shape import AS_OF_TABLE, Compiled, FunnelShape, Shape, measure_column

__all__ = ["AS_OF_TABLE", "Compiled", "CompiledSqlFiles", "FunnelShape", "Shape", "SqlCache",
           "StoredSql", "compile_shape", "measure_column"]
CacheKey = tuple[Shape | FunnelShape, str, str, str, bool]


class SqlCache:
    """Compiled SQL per shape, least recently used first out; files behind it if given."""

    def __init__(self, size: int = 256) -> None:
        self._items: OrderedDict[CacheKey, Compiled] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.file_hits = 0  # misses that the workspace's files answered

    def get(self, ctx: ViewContext, shape: Shape | FunnelShape, dialect: str,
            stored: StoredSql | None = None) -> Compiled:
        # The SQL also depends on what the views know: the reporting currency is a
        # literal in it, and reps from several sources add a join. Same shape, other
        # workspace, other SQL.
        key: CacheKey = (shape, dialect, ctx.currency, ctx.zone, ctx.several_sources)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        from_file = stored.get(key) if stored is not None else None
        compiled = from_file or compile_shape(ctx, shape, dialect)
        if from_file is None and stored is not None:
            stored.put(key, compiled)
        with self._lock:
            self.misses += 1
            self.file_hits += from_file is not None
            self._items[key] = compiled
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return compiled


def compile_shape(ctx: ViewContext, shape: Shape | FunnelShape, dialect: str) -> Compiled:
    # Ibis: only when something is compiled
    if isinstance(shape, FunnelShape):
        from saleskpi.engine.funnel_build import to_sql as funnel_sql

        return funnel_sql(ctx, shape, dialect)
    if shape.rollup is not None:
        from saleskpi.engine import rollup_read

        if rollup_read.can_read(shape, dialect):  # no Ibis to import for it
            return rollup_read.to_sql(ctx, shape)
        from saleskpi.engine.rollup_build import to_sql as rollup_sql

        return rollup_sql(ctx, shape, dialect)
    from saleskpi.engine.build import to_sql

    return to_sql(ctx, shape, dialect)


# -- the workspace's compiled SQL, one file per shape ------------------------------------
FORMAT = 1
KEPT_FILES = 2000  # beyond this, the oldest written go
# What else the SQL text depends on: the code that builds it and the libraries that
# render it. Files written by another version of any of them are not read.
LIBRARIES = ("ibis-framework", "sqlglot", "duckdb")
_SOURCES = ("engine", "domain/schema.py", "domain/conditions.py", "domain/query.py",
            "catalog/spec.py")


@cache
def code_fingerprint() -> str:
    """The versions of the libraries and of this package's query-building code."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256(f"format {FORMAT}".encode())
    for library in LIBRARIES:
        try:
            digest.update(f"{library} {version(library)}".encode())
        except PackageNotFoundError:
            digest.update(f"{library} -".encode())
    root = Path(__file__).resolve().parents[1]
    for source in _SOURCES:
        path = root / source
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(root).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def key_text(key: CacheKey) -> str:
    """A cache key as stable text: the same on every run and in every process."""
    shape, dialect, currency, zone, several_sources = key
    shape_data: dict[str, Any] = {f.name: getattr(shape, f.name) for f in fields(shape)}
    if isinstance(shape, Shape):
        shape_data["measures"] = [m.model_dump(mode="json") for m in shape.measures]
    return json.dumps({"kind": type(shape).__name__, "shape": shape_data, "dialect": dialect,
                       "currency": currency,
                       "zone": zone, "several_sources": several_sources},
                      sort_keys=True, ensure_ascii=False)


class CompiledSqlFiles:
    """Compiled SQL kept in a folder of the workspace, a small JSON file per key.

    The files of one code version live in a subfolder named by its fingerprint, so
    an upgrade starts afresh (and removes the old subfolders when it first writes).
    A file is written whole under another name and renamed into place: a reader
    sees it whole or not at all. Any problem reading or writing (a read-only
    workspace, a damaged file) only means compiling again.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @cached_property
    def current(self) -> Path:
        """This code version's subfolder (worked out on the first miss of the memory cache)."""
        return self.folder / code_fingerprint()[:32]

    def get(self, digest: str) -> Compiled | None:
        try:
            entry = json.loads((self.current / f"{digest}.json").read_text(encoding="utf-8"))
            return Compiled(str(entry["sql"]), tuple(entry["params"]), tuple(entry["columns"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, digest: str, compiled: Compiled) -> None:
        text = json.dumps({"sql": compiled.sql, "params": list(compiled.params),
                           "columns": list(compiled.columns)}, ensure_ascii=False)
        with contextlib.suppress(OSError):
            if not self.current.is_dir():
                self._start_afresh()
            replace_private(self.current / f"{digest}.json", text)
            keep_newest(self.current, "*.json", KEPT_FILES)

    def _start_afresh(self) -> None:
        """Create this version's subfolder; remove other versions'."""
        private_dir(self.current)
        for other in self.folder.iterdir():
            if other != self.current and other.is_dir():
                shutil.rmtree(other, ignore_errors=True)


@dataclass
class StoredSql:
    """One engine's view of the workspace's compiled SQL: keys include the database's schema.

    The schema (tables, columns, types) is asked of the database only when the
    memory cache misses: compiled SQL names every column it reads.
    """

    files: CompiledSqlFiles
    schema: Callable[[], str]
    _schema: str | None = None

    def digest(self, key: CacheKey) -> str:
        if self._schema is None:
            self._schema = self.schema()
        text = f"{key_text(key)}\n{self._schema}"
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: CacheKey) -> Compiled | None:
        return self.files.get(self.digest(key))

    def put(self, key: CacheKey, compiled: Compiled) -> None:
        self.files.put(self.digest(key), compiled)
