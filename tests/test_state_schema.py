"""A new state database is made from the models, not by running every migration:
both ways must give the same schema, down to each index and default.

Read with plain sqlite3 (PRAGMAs), not with SQLAlchemy's reflection of the models.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config

from saleskpi.store.state import HEAD, MIGRATIONS, engine_for

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

