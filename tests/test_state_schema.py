"""A new state database is made from the models, not by running every migration:
both ways must give the same schema, down to each index and default.

Read with plain sqlite3 (PRAGMAs), not with SQLAlchemy's reflection of the models.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

from saleskpi.store.state import HEAD, MIGRATIONS, engine_for
from tests.conftest import SRC_DIR

Shape = dict[str, tuple[object, ...]]


def schema(path: Path) -> Shape:
    """Each table's columns (name, type, NOT NULL, default, key), indexes (name, unique,
    columns) and foreign keys; and the Alembic version."""
    con = sqlite3.connect(path)
    try:
        found: Shape = {}
        for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                    "AND name NOT LIKE 'sqlite_%' ORDER BY name"):
            columns = [tuple(r[1:]) for r in con.execute(f'PRAGMA table_info("{table}")')]
            indexes = sorted(
                (name, unique, tuple(c[2] for c in con.execute(f'PRAGMA index_info("{name}")')))
                for _seq, name, unique, *_rest in con.execute(f'PRAGMA index_list("{table}")'))
            keys = sorted(tuple(r[2:]) for r in con.execute(
                f'PRAGMA foreign_key_list("{table}")'))
            found[table] = (columns, indexes, keys)
        found["version"] = tuple(con.execute("SELECT version_num FROM alembic_version"))
        return found
    finally:
        con.close()


def migrated(path: Path) -> None:
    """Every migration run, as an older saleskpi's database was made."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    from sqlalchemy import create_engine

    with create_engine(f"sqlite:///{path}").begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def test_a_new_database_has_the_schema_every_migration_gives(tmp_path: Path) -> None:
    made, upgraded = tmp_path / "made.sqlite", tmp_path / "migrated.sqlite"
    engine_for.cache_clear()
    engine_for(f"sqlite:///{made}")
    migrated(upgraded)

    expected = schema(upgraded)
    assert expected["version"] == ((HEAD,),)
    assert len(expected) > 20  # every table of the product, not an empty file
    assert schema(made) == expected




MAKE = """
import sys
from saleskpi.store.state import engine_for
engine_for("sqlite:///" + sys.argv[1])
"""


def _maker(path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(SRC_DIR), os.environ.get("PYTHONPATH", "")) if p))
    return subprocess.Popen([sys.executable, "-c", MAKE, str(path)], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_a_process_waits_while_another_makes_the_new_database(tmp_path: Path) -> None:
    """A server, its scheduler and a CLI may each be the first to open the state database:
    each made its tables, and all but one failed ("table import_runs already exists";
    7 of 10 rounds of 4 processes did). They take turns on an exclusive lock of the
    file, held here as another maker would hold it."""
    path = tmp_path / "state.sqlite"
    held = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        maker = _maker(path)
        time.sleep(2)
        assert maker.poll() is None  # waiting for its turn, not making tables beside us
    finally:
        os.close(held)
    assert maker.communicate(timeout=120)[1] == "" and maker.returncode == 0
    assert schema(path)["version"] == ((HEAD,),)
    # Four at once all get it.
    again = tmp_path / "again" / "state.sqlite"
    again.parent.mkdir()
    started = [_maker(again) for _ in range(4)]
    assert [proc.communicate(timeout=120)[1] for proc in started] == [""] * 4
    assert [proc.returncode for proc in started] == [0] * 4
