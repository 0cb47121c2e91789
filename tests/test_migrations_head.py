"""The state database's migrations: the head the code skips Alembic at is Alembic's head."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from saleskpi.store.state import HEAD, MIGRATIONS, engine_for


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def test_head_is_the_newest_migration() -> None:
    assert ScriptDirectory.from_config(_config()).get_heads() == [HEAD]


def test_a_database_behind_head_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    engine_for.cache_clear()
    engine_for(f"sqlite:///{path}")
    # As an older saleskpi left it: the newest migration not applied yet.
    config = _config()
    with create_engine(f"sqlite:///{path}").begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0012")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0012",)]
        assert "alert_states" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    engine_for.cache_clear()
    engine_for(f"sqlite:///{path}")
    with sqlite3.connect(path) as con:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
    assert "alert_states" in tables
