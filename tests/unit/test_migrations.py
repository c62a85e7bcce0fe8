"""schema.sql is the truth; the numbered migrations must lead to it. Also the SQL file loader."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.errors import StoreError
from herd.store.queries import (
    MIGRATIONS,
    QUERIES,
    SCHEMA,
    SCHEMA_VERSION,
    Migration,
    parse_migrations,
    parse_queries,
)
from herd.store.sqlite import migrate

Schema = dict[str, object]


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(tmp_path / "herd.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    yield conn
    conn.close()


def _normal(sql: str | None) -> str:
    """SQL without comments and with single spaces, to compare statements written differently."""
    text = re.sub(r"--[^\n]*", "", sql or "")
    return re.sub(r"\s+", " ", text).strip()


def schema_of(conn: sqlite3.Connection) -> Schema:
    """Everything that makes up a schema, in a form that does not depend on how it was written.

    Tables are compared by their columns, keys and indexes (``ALTER TABLE`` rewrites a table's SQL
    text); indexes, views and triggers by their normalised SQL.
    """
    schema: Schema = {"user_version": conn.execute("PRAGMA user_version").fetchone()[0]}
    objects = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    for kind, name, sql in objects:
        if kind == "table":
            schema[f"table {name}"] = _table(conn, name)
        else:
            schema[f"{kind} {name}"] = _normal(sql)
    return schema


def _table(conn: sqlite3.Connection, name: str) -> object:
    indexes = {
        row[1]: (row[2], row[3], row[4], conn.execute(f"PRAGMA index_xinfo({row[1]})").fetchall())
        for row in conn.execute(f"PRAGMA index_list({name})")
    }
    return (
        conn.execute(f"PRAGMA table_list({name})").fetchall(),  # strict, without rowid
        conn.execute(f"PRAGMA table_xinfo({name})").fetchall(),
        conn.execute(f"PRAGMA foreign_key_list({name})").fetchall(),
        indexes,
    )


def from_migrations(conn: sqlite3.Connection, migrations: tuple[Migration, ...]) -> None:
    for migration in migrations:
        conn.executescript(migration.sql)
        conn.execute(f"PRAGMA user_version = {migration.version}")


def test_migrations_give_the_schema(tmp_path: Path) -> None:
    fresh = sqlite3.connect(tmp_path / "fresh.db", isolation_level=None)
    migrate(fresh, tmp_path / "fresh.db")  # an empty database gets schema.sql
    migrated = sqlite3.connect(tmp_path / "migrated.db", isolation_level=None)
    from_migrations(migrated, MIGRATIONS)
    try:
        assert schema_of(migrated) == schema_of(fresh)
        assert len(schema_of(fresh)) > 10  # every table and index, not an empty comparison
    finally:
        fresh.close()
        migrated.close()


def test_schema_version_is_the_last_migration() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == MIGRATIONS[-1].version


def test_migrate_applies_the_missing_steps_and_keeps_data(conn: sqlite3.Connection) -> None:
    from_migrations(conn, MIGRATIONS)
    conn.execute(
        "INSERT INTO workflows (id, name, format, created, updated, task_count)"
        " VALUES (1, 'w', 'native', 1.0, 1.0, 0)"
    )
    step = Migration(
        SCHEMA_VERSION + 1, "add_notes", "ALTER TABLE workflows ADD COLUMN notes TEXT;"
    )
    migrate(conn, Path("herd.db"), migrations=(*MIGRATIONS, step))
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    assert conn.execute("SELECT name, notes FROM workflows").fetchall() == [("w", None)]


def test_failed_migration_leaves_the_database_as_it_was(conn: sqlite3.Connection) -> None:
    from_migrations(conn, MIGRATIONS)
    before = schema_of(conn)
    step = Migration(
        SCHEMA_VERSION + 1,
        "broken",
        "CREATE TABLE extra (x INTEGER);\nALTER TABLE no_such_table ADD COLUMN y TEXT;",
    )
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, Path("herd.db"), migrations=(*MIGRATIONS, step))
    assert not conn.in_transaction
    assert schema_of(conn) == before


def test_migrate_does_nothing_at_the_current_version(conn: sqlite3.Connection) -> None:
    migrate(conn, Path("herd.db"))
    before = schema_of(conn)
    migrate(conn, Path("herd.db"))
    assert schema_of(conn) == before


def test_newer_database_is_refused(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade herd"):
        migrate(conn, Path("herd.db"))


def test_every_query_compiles_against_the_schema(conn: sqlite3.Connection) -> None:
    migrate(conn, Path("herd.db"))
    for query in QUERIES.values():
        conn.execute(f"EXPLAIN {query.sql}", (None,) * len(query.params))


# --- the loader ----------------------------------------------------------------------------------


def test_queries_are_split_at_their_names() -> None:
    queries = parse_queries("-- one --\nSELECT 1;\n\n-- two --\n-- a comment\nSELECT 2;\n")
    assert {name: q.sql for name, q in queries.items()} == {
        "one": "SELECT 1;",
        "two": "-- a comment\nSELECT 2;",
    }


def test_named_parameters_become_numbered() -> None:
    (query,) = parse_queries(
        "-- q --\n"
        "-- note: :not_a_param\n"
        "SELECT ':literal', \":quoted\" FROM t WHERE a = :a AND b = :b OR a = :a;"
    ).values()
    assert query.params == ("a", "b")
    assert query.sql.endswith("WHERE a = ?1 AND b = ?2 OR a = ?1;")
    assert "':literal'" in query.sql and '":quoted"' in query.sql and ":not_a_param" in query.sql
    assert query.args({"b": 2, "a": 1, "unused": 3}) == (1, 2)


def test_query_arguments_from_an_object() -> None:
    (query,) = parse_queries("-- q --\nSELECT :real, :imag;").values()
    assert query.args_of(3 + 4j) == (3.0, 4.0)
    assert query.args_of(3 + 4j, imag=0) == (3.0, 0)


def test_a_query_name_may_not_repeat() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        parse_queries("-- q --\nSELECT 1;\n-- q --\nSELECT 2;")


def test_migrations_are_numbered_without_gaps() -> None:
    assert [m.version for m in parse_migrations({"0002_b.sql": "", "0001_a.sql": ""})] == [1, 2]
    with pytest.raises(ValueError, match="expected number 0002"):
        parse_migrations({"0001_a.sql": "", "0003_c.sql": ""})
    with pytest.raises(ValueError, match="NNNN_description"):
        parse_migrations({"1_a.sql": ""})


def test_schema_is_read_from_the_package() -> None:
    assert "CREATE TABLE tasks" in SCHEMA
    assert MIGRATIONS[0].name == "initial"


def test_a_table_rebuild_does_not_cascade(conn: sqlite3.Connection) -> None:
    from_migrations(conn, MIGRATIONS)
    conn.execute(
        "INSERT INTO workflows (id, name, format, created, updated, task_count)"
        " VALUES (1, 'w', 'native', 1.0, 1.0, 1)"
    )
    conn.execute(
        "INSERT INTO tasks (workflow_id, name, state, updated, cmd) VALUES (1, 'a', 'waiting', 1.0, 'true')"
    )
    # SQLite's procedure to change a table in ways ALTER TABLE cannot: copy, drop, rename
    create = re.search(r"CREATE TABLE workflows \(.*?\) STRICT;", SCHEMA, re.DOTALL)
    assert create is not None
    rebuild = Migration(
        SCHEMA_VERSION + 1,
        "rebuild_workflows",
        create[0].replace("workflows", "new_workflows")
        + "\nINSERT INTO new_workflows SELECT * FROM workflows;"
        + "\nDROP TABLE workflows;"
        + "\nALTER TABLE new_workflows RENAME TO workflows;",
    )
    migrate(conn, Path("herd.db"), migrations=(*MIGRATIONS, rebuild))
    assert conn.execute("SELECT name FROM tasks").fetchall() == [("a",)]
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)


def test_a_migration_that_breaks_references_is_rolled_back(conn: sqlite3.Connection) -> None:
    from_migrations(conn, MIGRATIONS)
    conn.execute(
        "INSERT INTO workflows (id, name, format, created, updated, task_count)"
        " VALUES (1, 'w', 'native', 1.0, 1.0, 1)"
    )
    conn.execute(
        "INSERT INTO tasks (workflow_id, name, state, updated, cmd) VALUES (1, 'a', 'waiting', 1.0, 'true')"
    )
    bad = Migration(SCHEMA_VERSION + 1, "lose_workflows", "DELETE FROM workflows;")
    with pytest.raises(StoreError, match="would break 1 references"):
        migrate(conn, Path("herd.db"), migrations=(*MIGRATIONS, bad))
    assert conn.execute("SELECT count(*) FROM workflows").fetchone() == (1,)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_scripts_are_split_into_statements(conn: sqlite3.Connection) -> None:
    script = (
        "-- two tables; one line\n"
        "CREATE TABLE a (x TEXT DEFAULT ';'); CREATE TABLE b (y);\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); END;\n"
        "-- the end\n"
    )
    step = Migration(SCHEMA_VERSION + 1, "split", script)
    from_migrations(conn, MIGRATIONS)
    migrate(conn, Path("herd.db"), migrations=(*MIGRATIONS, step))
    conn.execute("INSERT INTO a DEFAULT VALUES")
    assert conn.execute("SELECT x, (SELECT y FROM b) FROM a").fetchall() == [(";", 1)]
