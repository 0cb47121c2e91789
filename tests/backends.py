"""The analytics backends tests run on: DuckDB (a file), PostgreSQL (a real server) and
ClickHouse: chdb (the ClickHouse engine in this process, a folder per store) and
``clickhouse_http`` (the same engine served over ClickHouse's HTTP interface by
``tests/fakes/clickhouse_http.py``, reached through ``clickhouse-connect`` as a real
server is: a database per store).

``conftest.py``'s ``backend`` fixture hands a test module one ``BackendChoice`` per
backend; a module's workspace takes ``choice.settings()`` into its settings.yaml, so
every service, CLI command and import of that workspace runs on that backend.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from saleskpi.domain.settings import Settings, save_workspace_settings
from tests.fakes.clickhouse_http import ClickHouseHttpServer
from tests.postgres_server import PostgresServer


@dataclass
class BackendChoice:
    name: str  # the backend setting: "duckdb", "postgres" or "clickhouse"
    server: PostgresServer | None = None
    folder: Path | None = None  # ClickHouse (chdb): where its stores' folders go
    http: ClickHouseHttpServer | None = None  # ClickHouse over HTTP: the server

    def settings(self) -> dict[str, str]:
        """Workspace settings for a store of its own: nothing for DuckDB (the workspace's
        file), a new empty database for PostgreSQL or ClickHouse over HTTP, a new folder
        for chdb."""
        if self.http is not None:
            return {"backend": "clickhouse",
                    "backend_url": self.http.create_database(f"store_{secrets.token_hex(4)}")}
        if self.folder is not None:
            store = self.folder / f"store_{secrets.token_hex(4)}"
            return {"backend": "clickhouse", "backend_url": f"chdb://{store.as_posix()}"}
        if self.server is None:
            return {}
        return {"backend": "postgres", "backend_url": self.server.create_database()}

    def copy_workspace(self, workspace: Path) -> None:
        """After ``workspace`` was copied from another: give it a copy of that one's
        database (a DuckDB workspace's file was copied with it)."""
        if self.folder is not None or self.http is not None:
            import pytest

            pytest.skip("copying a ClickHouse store is not done by these tests")
        if self.server is None:
            return
        settings = Settings(workspace=workspace)
        assert settings.backend_url is not None
        url = settings.backend_url.get_secret_value()
        source = urlsplit(url).path.lstrip("/")
        import psycopg

        with psycopg.connect(self.server.url(), autocommit=True) as con:
            # A template must have no sessions (saleskpi keeps one to read its version).
            con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", [source])
        save_workspace_settings(settings, backend_url=self.server.create_database(
            prefix=f"copy_{secrets.token_hex(2)}", template=source))


def facts_snapshot(workspace: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table of the workspace's analytics store, every row, in a stable order."""
    settings = Settings(workspace=workspace)
    if settings.backend == "duckdb":
        import duckdb

        con = duckdb.connect(str(settings.analytics_path), read_only=True)
        try:
            tables = [t for (t,) in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
                "ORDER BY table_name").fetchall()]
            return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall()
                    for t in tables}
        finally:
            con.close()
    if settings.backend == "clickhouse":
        from saleskpi.domain.schema import ENTITIES
        from saleskpi.store.backend import open_store

        with open_store(settings, read_only=True) as store:
            return {name: sorted(store.fetch(f'SELECT * FROM "{name}"'),
                                 key=lambda row: [(v is None, str(v)) for v in row])
                    for name in ENTITIES}
    import psycopg

    assert settings.backend_url is not None
    with psycopg.connect(settings.backend_url.get_secret_value()) as pg:
        tables = [t for (t,) in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema() ORDER BY table_name").fetchall()]
        found = {}
        for table in tables:
            rows = pg.execute(f'SELECT * FROM "{table}"').fetchall()
            found[table] = sorted(rows, key=lambda row: [(v is None, str(v)) for v in row])
        return found
