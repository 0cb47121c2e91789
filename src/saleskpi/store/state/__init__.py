"""The transactional store: SQLite by default, migrated with Alembic."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from saleskpi.domain.files import private_dir, private_file
from saleskpi.domain.reports import ImportReport
from saleskpi.domain.settings import Settings
from saleskpi.store.state.models import ImportRun

MIGRATIONS = Path(__file__).parent.parent / "migrations"
# The newest migration (the chain is not in file-name order: 0008 -> 0013 -> 0012 -> 0011).
# A database already there is used without Alembic: importing it and reading the
# migration scripts cost about a quarter of a second of every command that writes.
# tests/test_migrations_head.py fails when a new migration is added and this is not.
HEAD = "0011"


@cache
def engine_for(url: str) -> Engine:
    """An engine on a migrated database (migrations run once per process)."""
    database = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    if database is not None:
        private_dir(database.parent)
    engine = create_engine(url)
    if _at_head(engine):
        return engine
    with _one_maker(database):
        # Another process may have made or migrated it while this one waited.
        if not _at_head(engine) and (database is None or not _made_at_head(engine)):
            from alembic import command
            from alembic.config import Config

            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
    if database is not None:
        private_file(database)  # password and token hashes: the owner's only
    return engine


@contextlib.contextmanager
def _one_maker(database: Path | None) -> Iterator[None]:
    """One process at a time makes or migrates the SQLite file: a server and a CLI
    opening a new workspace at once each made its tables, and one failed ("table
    import_runs already exists"). An exclusive ``flock`` on the file itself (SQLite
    locks with ``fcntl``, which ``flock`` does not touch); the kernel drops it if the
    process dies."""
    if database is None or sys.platform == "win32":
        yield
        return
    import fcntl

    handle = os.open(database, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _at_head(engine: Engine) -> bool:
    """Whether the database is migrated to ``HEAD`` already (a new one is not)."""
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False  # no alembic_version yet: a new database
    return [row[0] for row in rows] == [HEAD]


def _made_at_head(engine: Engine) -> bool:
    """A new database (no table yet) made as every migration up to ``HEAD`` would make
    it, without Alembic: the tables of every model, stamped ``HEAD``. A workspace's
    first command saves ~0.25 s (importing Alembic and running 13 migrations);
    tests/test_state_schema.py checks that both ways make the same schema."""
    import importlib
    import pkgutil

    from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, insert

    from saleskpi.store.state.models import Base

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")  # every model's table
    version = Table("alembic_version", MetaData(), Column("version_num", String(32)),
                    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))
    with engine.begin() as connection:
        if connection.exec_driver_sql(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'").scalar():
            return False  # made by an older saleskpi: migrated
        Base.metadata.create_all(connection)
        version.create(connection)
        connection.execute(insert(version).values(version_num=HEAD))
    return True


def record_import(settings: Settings, origin: str, report: ImportReport) -> None:
    with Session(engine_for(settings.state_url)) as session, session.begin():
        session.add(
            ImportRun(
                finished_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                origin=origin,
                source=report.source,
                ok=report.ok,
                report=report.to_dict(),
            )
        )


def recent_imports(settings: Settings, limit: int = 20) -> list[ImportRun]:
    with Session(engine_for(settings.state_url)) as session:
        rows = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(limit))
        return list(rows)
