"""Opening the workspace's analytics store on the backend its settings name.

``backend: duckdb`` (the default) is the file ``analytics.duckdb`` in the workspace;
``backend: postgres`` is the database at ``backend_url``. Everything above the
store opens it here, never by class, so that each command, page and sync runs on
the same backend.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from saleskpi.domain.backends import URL_SCHEMES, masked_url, without_secret
from saleskpi.domain.errors import InvalidQuery
from saleskpi.domain.i18n import _
from saleskpi.domain.settings import Settings
from saleskpi.store.analytics import AnalyticsStore, file_key, file_version
from saleskpi.store.facts import FactStore
from saleskpi.store.writer_gate import Waiting, written_elsewhere

EXAMPLE_URLS = {
    "postgres": "postgresql://saleskpi:PASSWORD@db.example.com:5432/sales",
    "clickhouse": "clickhouse://saleskpi:PASSWORD@ch.example.com:8123/sales",
}


class BackendNotReady(InvalidQuery):
    """The workspace names a backend saleskpi cannot use as configured."""

    default_code = "bad_backend"


def backend_url(settings: Settings) -> str:
    """The backend's URL (a secret: never print it; ``masked_url`` for messages)."""
    example = EXAMPLE_URLS.get(settings.backend, EXAMPLE_URLS["postgres"])
    if settings.backend_url is None:
        raise BackendNotReady(_(
            "the {backend} backend needs the database's URL: set SALESKPI_BACKEND_URL "
            "(or backend_url in .env or the workspace's settings.yaml), e.g. "
            "{example}", backend=settings.backend, example=example))
    url = settings.backend_url.get_secret_value()
    if urlsplit(url).scheme not in URL_SCHEMES.get(settings.backend, ()):
        raise BackendNotReady(_(
            "backend_url {url} is not a URL of the {backend} backend: give one like "
            "{example}, or set backend to the database it names",
            url=masked_url(url), backend=settings.backend, example=example))
    return url


def _postgres() -> Any:
    try:
        from saleskpi.store import postgres
    except ImportError:
        raise BackendNotReady(_(
            "the postgres backend needs the PostgreSQL driver: pip install "
            "'saleskpi[postgres]'")) from None
    return postgres


def _no_clickhouse_driver() -> BackendNotReady:
    return BackendNotReady(_(
        "the clickhouse backend needs its driver: pip install 'saleskpi[clickhouse]' "
        "(for a chdb:// URL: 'saleskpi[clickhouse-tests]')"))


def _clickhouse() -> Any:
    try:
        from saleskpi.store import clickhouse
    except ImportError:
        raise _no_clickhouse_driver() from None
    return clickhouse


def open_store(settings: Settings, *, read_only: bool = False, wait: float | None = None,
               join_writer: bool = False, waiting: Waiting | None = None) -> FactStore:
    """The workspace's store, for reading (``read_only``) or as its one writer.

    ``wait`` and ``join_writer``: as ``AnalyticsStore`` takes them (a PostgreSQL store
    needs no ``join_writer``: its readers never wait for a writer). A writer queues
    behind the others up to the ``write_wait_seconds`` setting; ``waiting`` hears that
    it waits (store/writer_gate.py).
    """
    if settings.backend == "duckdb":
        return AnalyticsStore(settings.analytics_path, read_only=read_only, wait=wait,
                              join_writer=join_writer,
                              queue_wait=settings.write_wait_seconds, waiting=waiting)
    if settings.backend == "postgres":
        store: FactStore = _postgres().PostgresStore(
            backend_url(settings), settings.analytics_path, read_only=read_only, wait=wait,
            queue_wait=settings.write_wait_seconds, waiting=waiting)
        return store
    if settings.backend == "clickhouse":
        try:
            found: FactStore = _clickhouse().ClickHouseStore(
                backend_url(settings), settings.analytics_path, read_only=read_only,
                wait=wait, queue_wait=settings.write_wait_seconds, waiting=waiting)
        except ImportError:  # clickhouse-connect or chdb, imported when connecting
            raise _no_clickhouse_driver() from None
        return found
    raise BackendNotReady(_(
        "the {backend} backend is not supported yet: use duckdb or postgres "
        "(docs/backends.md says what each needs)", backend=settings.backend))


def warm_reads(settings: Settings) -> contextlib.AbstractContextManager[None]:
    """The reads of this thread in the block keep the store's file open between them
    (DuckDB: ``store/warm_reads.py``); other backends keep their own connections."""
    if settings.backend == "duckdb":
        from saleskpi.store.warm_reads import warm_reads as keep_open

        return keep_open(settings.analytics_path)
    return contextlib.nullcontext()


def open_ahead(settings: Settings) -> Callable[[], None]:
    """Start opening the store to read while the command starts; returns what closes it
    (DuckDB: ``store/warm_reads.open_ahead``; other backends open nothing ahead)."""
    if settings.backend == "duckdb":
        from saleskpi.store.warm_reads import open_ahead as open_file_ahead

        return open_file_ahead(settings.analytics_path)
    return lambda: None


def writing_elsewhere(settings: Settings) -> bool:
    """Whether another process is writing the workspace's DuckDB file right now (its
    readers here wait for it); on PostgreSQL readers never wait: always False."""
    return settings.backend == "duckdb" and written_elsewhere(settings.analytics_path)


def data_key(settings: Settings) -> str | None:
    """The data's version as a file name, for what is kept in the workspace per version
    (``engine/store_facts.py``); None where the data lives on a server, which other
    clients change without touching the workspace."""
    if settings.backend == "duckdb":
        return file_key(settings.analytics_path)
    return None


def describe(settings: Settings) -> str:
    """Where the facts are, for people: the file, or the database's masked URL."""
    if settings.backend == "duckdb":
        return str(settings.analytics_path)
    if settings.backend_url is None:
        return settings.backend
    return masked_url(settings.backend_url.get_secret_value())


class _VersionReader:
    """One connection per PostgreSQL URL that reads the data version, shared by threads.

    Pages ask for the version of the data several times each (their caches are
    keyed by it): a connection per ask would cost more than the answer.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[str, Any] = {}

    def version(self, url: str) -> tuple[int, ...]:
        postgres = _postgres()
        with self._lock:
            for attempt in (1, 2):
                con = self._connections.get(url)
                try:
                    if con is None or con.closed:
                        con = self._connections[url] = postgres.connect(url)
                    rows = con.execute("SELECT value FROM saleskpi_meta WHERE key = "
                                       "'data_version'").fetchall()
                    return (int(rows[0][0]) if rows else 0,)
                except postgres.psycopg.errors.UndefinedTable:
                    return (0,)  # nothing stored yet
                except postgres.psycopg.OperationalError as exc:
                    self._connections.pop(url, None)
                    if attempt == 2:
                        raise postgres.StoreUnreachable(without_secret(str(exc), url)) from None
        return (0,)


_VERSIONS = _VersionReader()


def data_version(settings: Settings) -> tuple[int, ...]:
    """Changes whenever the workspace's facts do; cheap enough to ask on every page."""
    if settings.backend == "duckdb":
        return file_version(settings.analytics_path)
    if settings.backend == "postgres":
        return _VERSIONS.version(backend_url(settings))
    if settings.backend == "clickhouse":
        with open_store(settings, read_only=True) as store:
            return store.data_version()
    return (0,)
