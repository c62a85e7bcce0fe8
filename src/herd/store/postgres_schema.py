"""Opening a PostgreSQL store: its schema and migrations, and what a driver error means.

Table ``herd_schema`` holds the number of the last migration applied. :func:`migrate` creates the
schema in an empty database (or ``search_path`` schema) and applies missing migrations, in one
transaction under an advisory lock (several hosts may start at once; readers see no schema or all
of it); a schema from a newer herd is refused, and so is a database that has a ``workflows`` table
but no herd schema. A psycopg error becomes one line with what to do (:func:`advice`): wrong
credentials, an unreachable server, a missing database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.types.string import TextLoader

from herd.errors import NoStateError, StoreError
from herd.store.queries import POSTGRES, Dialect

logger = logging.getLogger(__name__)

_Conn = psycopg.Connection[tuple[Any, ...]]
_QUERIES = POSTGRES.queries


#: any constant: the advisory lock that serialises migrations between hosts
_MIGRATION_LOCK = 0x68657264  # "herd"


def create_staging(conn: _Conn) -> None:
    """The session's temporary table that ``add_workflow`` copies task rows into."""
    conn.execute(_QUERIES["create_task_staging"].sql)


def migrate(conn: _Conn, where: str, dialect: Dialect = POSTGRES, *, create: bool = True) -> None:
    """Bring the schema behind ``conn`` to the last of the dialect's migrations.

    An empty database (or ``search_path`` schema) gets ``schema.sql``; without ``create`` it is
    refused instead (:class:`NoStateError`: nothing is made). The schema is created or migrated
    in one transaction, so readers see no herd schema or all of it, under an advisory lock that
    hosts starting together queue on: the transaction begins once the lock is held, so it sees
    what the host before committed (a transaction begun before the wait would look the tables up
    in the catalog entries it cached then, and create them a second time). A schema from a newer
    herd, or tables not from herd, are refused.
    """
    if _version(conn) == dialect.version:
        return
    conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
    try:
        with conn.transaction():
            _migrate_locked(conn, where, dialect, create)
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def _migrate_locked(conn: _Conn, where: str, dialect: Dialect, create: bool) -> None:
    version = _version(conn)  # another host may have migrated meanwhile
    _refuse_newer(where, version, dialect.version)
    if version == dialect.version:
        return
    if version == 0:
        if not create:
            raise NoStateError(f"{where} holds no herd state yet")
        _refuse_foreign(conn, where)
        conn.execute(dialect.schema)
        conn.execute("INSERT INTO herd_schema (version) VALUES (%s)", (dialect.version,))
        return
    for migration in dialect.migrations[version:]:
        logger.info("%s: migrating to schema %04d_%s", where, migration.version, migration.name)
        conn.execute(migration.sql)
    conn.execute("UPDATE herd_schema SET version = %s", (dialect.version,))


def _version(conn: _Conn) -> int:
    """The schema version behind ``conn``: 0 when there is no herd schema."""
    if conn.execute("SELECT to_regclass('herd_schema')").fetchone() == (None,):
        return 0
    row = conn.execute("SELECT max(version) FROM herd_schema").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def _refuse_foreign(conn: _Conn, where: str) -> None:
    if conn.execute("SELECT to_regclass('workflows')").fetchone() != (None,):
        raise StoreError(
            f"{where} has a table 'workflows' that is not herd's (no herd_schema table): give herd "
            "a database of its own, or a schema of its own with ?options=-csearch_path%3Dherd"
        )


def check_version(conn: _Conn, where: str, dialect: Dialect) -> None:
    version = _version(conn)
    _refuse_newer(where, version, dialect.version)
    if version == 0:
        raise NoStateError(
            f"{where} holds no herd state yet: run `herd run FILE --store URL` "
            "(or `herd submit`) against it first"
        )
    if version < dialect.version:
        raise StoreError(
            f"{where} has schema version {version}, this herd needs {dialect.version}: run any "
            "writing herd command (such as `herd run`) once to upgrade it"
        )


def _refuse_newer(where: str, version: int, latest: int) -> None:
    if version > latest:
        raise StoreError(
            f"{where} was written by a newer herd (schema version {version}; this herd knows up "
            f"to {latest}): upgrade herd on this host"
        )


#: deadlock detected, serialization failure: the server aborted the transaction, which may be
#: run again as it is
RETRY_AT_ONCE = frozenset({"40P01", "40001"})


def sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return cause.sqlstate if isinstance(cause, psycopg.Error) else None


def first_line(exc: BaseException) -> str:
    """The driver's message on one line (libpq's run over several, with tabs)."""
    return " ".join(str(exc).split())


#: what to do about an error with this SQLSTATE (or one of its class: the first two characters)
_ADVICE_BY_CODE: dict[str, str] = {
    "28": "check the user name and password in the URL (or ~/.pgpass, PGPASSWORD)",
    "3D": "create the database first (createdb NAME), or name an existing one in the URL",
    "42501": "grant the user the privileges docs/operations.md lists",
    "23": "the change names a task, attempt or run the store does not know, or repeats one: "
    "this is a bug in herd, please report it",
    "25006": "the store was opened read-only",
    "53": "the server is out of resources (disk, memory, connections): ask its administrator",
    "57P": "the server is shutting down or restarting: try again in a moment",
}


#: what to do about a connection error (libpq gives these no SQLSTATE), by a part of its text
_ADVICE_BY_TEXT: tuple[tuple[str, str], ...] = (
    ("password", "check the password in the URL (or ~/.pgpass, PGPASSWORD)"),
    ("role", "check the user name in the URL, or create the role (docs/operations.md)"),
    ("database", "create the database first (createdb NAME), or name an existing one in the URL"),
    ("invalid", "write the URL as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
    ("URI", "write the URL as postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"),
    ("resolve host", "check the host name in the URL"),
    ("refused", "check the host and port, and that the server runs (pg_isready -h HOST -p PORT)"),
    ("timeout", "check the host and port, and that no firewall drops the connection"),
)


def advice(exc: psycopg.Error) -> str:
    """What the user can do about ``exc``."""
    code = exc.sqlstate or ""
    for key in (code, code[:3], code[:2]):
        if key in _ADVICE_BY_CODE:
            return _ADVICE_BY_CODE[key]
    text = str(exc)
    for fragment, advice in _ADVICE_BY_TEXT:
        if fragment in text:
            return advice
    if isinstance(exc, psycopg.OperationalError):
        return "check that the server runs and is reachable; herd reconnects during a run"
    return "this may be a bug in herd: please report it with the command you ran"


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    return re.sub(r"^(\w+://[^:/@]*):[^@/]*@", r"\1:***@", url)


def connect(url: str, where: str, readonly: bool, timeout: float) -> _Conn:
    """A connection to ``url`` in autocommit mode (``where``: its name in messages)."""
    try:
        conn: _Conn = psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(timeout)), application_name="herd"
        )
    except psycopg.Error as exc:
        raise StoreError(f"could not connect to {where}: {first_line(exc)}; {advice(exc)}") from exc
    conn.adapters.register_loader("jsonb", TextLoader)  # decoded in rows.py, as SQLite's
    if readonly:
        conn.execute("SET default_transaction_read_only = on")
    return conn


@contextmanager
def errors(where: str, doing: str) -> Iterator[None]:
    """Turn driver errors into a :class:`StoreError` saying what failed, where and what to do."""
    try:
        yield
    except psycopg.Error as exc:
        raise StoreError(f"could not {doing} in {where}: {first_line(exc)}; {advice(exc)}") from exc
