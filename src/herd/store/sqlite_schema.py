"""Opening an SQLite store's file: the connection's settings, the schema and its migrations.

A connection runs in WAL mode with ``synchronous=NORMAL``, a busy timeout and foreign keys on.
``PRAGMA user_version`` is the number of the last migration applied: a new database is created
from ``schema.sql``; an older one is brought up to date by ``migrations/NNNN_*.sql`` when opened
for writing (:func:`migrate`, one transaction); a newer one, written by a later herd, is refused
with a message saying which herd to use.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

from herd.errors import NoStateError, StoreError
from herd.store.queries import MIGRATIONS, SCHEMA, Migration

logger = logging.getLogger(__name__)


#: the WAL file is truncated to this size after a checkpoint (a million-task add grows it a lot)
_WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _null(value: None) -> None:
    """None's adapter: what sqlite3 binds as NULL anyway, found at once (see :func:`connect`)."""
    return None


def connect(path: Path, *, readonly: bool, timeout: float) -> sqlite3.Connection:
    # sqlite3 binds int, float and str directly, and looks anything else up among its adapters:
    # without one for None it also asks the object and the protocol to adapt themselves, which
    # costs ~0.9 us per NULL parameter (a run binds ~17 per task; ~0.3 us with this adapter)
    sqlite3.register_adapter(type(None), _null)
    if readonly and not path.is_file():
        raise NoStateError(
            f"no herd database at {path}: run `herd run` in this working directory first"
        )
    target = f"file:{quote(str(path.absolute()))}?mode=ro" if readonly else str(path)
    try:
        conn = sqlite3.connect(
            target, uri=readonly, timeout=timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"could not open {path}: {exc}; {advice(exc)}") from exc
    try:
        _configure(conn, readonly=readonly, timeout=timeout)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"could not open {path}: {exc}; {advice(exc)}") from exc
    return conn


def _configure(conn: sqlite3.Connection, *, readonly: bool, timeout: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    if readonly:
        return
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        logger.warning("SQLite refused WAL mode (journal_mode=%s): readers may block the run", mode)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}")


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    *,
    migrations: Sequence[Migration] = MIGRATIONS,
    schema: str = SCHEMA,
) -> None:
    """Bring the database behind ``conn`` to the last of ``migrations``.

    An empty database gets ``schema`` directly. Runs in one transaction, so a failed migration
    leaves the database as it was; a database from a newer herd, or not from herd, is refused.
    Foreign keys are off meanwhile, as SQLite's table-rebuild procedure requires (a ``DROP TABLE``
    would otherwise cascade), and checked before the commit.
    """
    latest = migrations[-1].version
    if _user_version(conn) == latest:
        return
    (foreign_keys,) = conn.execute("PRAGMA foreign_keys").fetchone()
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction: set it before
    try:
        _migrate_in_transaction(conn, path, migrations, schema)
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(foreign_keys)}")


def _migrate_in_transaction(
    conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration], schema: str
) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = _user_version(conn)  # another process may have migrated since the first look
        if version != migrations[-1].version:
            _upgrade(conn, path, version, migrations, schema)
            _check_foreign_keys(conn, path)
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise


def _check_foreign_keys(conn: sqlite3.Connection, path: Path) -> None:
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise StoreError(
            f"migrating {path} would break {len(broken)} references (first: {broken[0]}); "
            "the database is unchanged: this is a bug in herd, please report it"
        )


def _upgrade(
    conn: sqlite3.Connection,
    path: Path,
    version: int,
    migrations: Sequence[Migration],
    schema: str,
) -> None:
    latest = migrations[-1].version
    _refuse_newer(path, version, latest)
    if version == 0:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError(
                f"{path} is an SQLite database but not herd's (it has tables and no herd schema "
                "version): move it aside and herd will create its own"
            )
        _run_script(conn, schema)
    else:
        for migration in migrations[version:]:
            logger.info("%s: migrating to schema %04d_%s", path, migration.version, migration.name)
            _run_script(conn, migration.sql)
    conn.execute(f"PRAGMA user_version = {latest}")


def check_version(conn: sqlite3.Connection, path: Path) -> None:
    version, latest = _user_version(conn), MIGRATIONS[-1].version
    _refuse_newer(path, version, latest)
    if version < latest:
        raise StoreError(
            f"{path} has schema version {version}, this herd needs {latest}: run any writing "
            "herd command (such as `herd run`) once to upgrade it"
        )


def _refuse_newer(path: Path, version: int, latest: int) -> None:
    if version > latest:
        raise StoreError(
            f"{path} was written by a newer herd (schema version {version}; this herd knows up to "
            f"{latest}): upgrade herd to use this working directory"
        )


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute ``script`` statement by statement, inside the caller's transaction.

    (``executescript`` would commit the open transaction first.)
    """
    for statement in _statements(script):
        conn.execute(statement)


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``, split at the semicolons that end one (not those in strings,
    comments or trigger bodies)."""
    start = 0
    for match in re.finditer(";", script):
        if sqlite3.complete_statement(script[start : match.end()]):
            yield script[start : match.end()].strip()
            start = match.end()
    rest = [
        ln for ln in script[start:].splitlines() if ln.strip() and not ln.lstrip().startswith("--")
    ]
    if rest:
        raise ValueError(f"SQL script ends in an incomplete statement: {rest[0]!r}...")


def advice(exc: BaseException) -> str:
    """What the user can do about ``exc``."""
    if isinstance(exc, sqlite3.IntegrityError | LookupError):
        return (
            "the change names a task, attempt or run the store does not know, or repeats one: "
            "this is a bug in herd, please report it"
        )
    if isinstance(exc, TypeError | ValueError):
        return "user data and events must be JSON-serialisable (strings, numbers, lists, dicts)"
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return "another process is writing to it: wait for it to finish and try again"
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return (
            "the file is damaged or not a herd database: move it aside and herd will start a new "
            "one (forgetting what ran before)"
        )
    if code == sqlite3.SQLITE_READONLY:
        return "check that the file and its folder are writable"
    return "check that the folder exists and is writable, and that the disk is not full"
