"""The transactional store: SQLite by default, migrated with Alembic."""

from __future__ import annotations

import datetime as dt
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


def _at_head(engine: Engine) -> bool:
    """Whether the database is migrated to ``HEAD`` already (a new one is not)."""
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False  # no alembic_version yet: a new database
    return [row[0] for row in rows] == [HEAD]


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
