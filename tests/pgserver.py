"""A real PostgreSQL server for the tests, found or started (never mocked, never skipped).

In order: the server ``HERD_TEST_POSTGRES`` names (a URL whose database herd's tests may create
databases from, e.g. ``postgresql://postgres@db.example:5432/postgres``); else the one answering
on ``127.0.0.1:5432`` as user ``postgres``; else a throwaway cluster started from the PostgreSQL
binaries in a temporary folder, as the dedicated user ``herdtest`` when running as root (``initdb``
refuses root), after installing Debian's ``postgresql`` package when root and it is missing.
If none can be had, :func:`server` fails with how to provide one.

Each test session creates one uniquely named database and drops it at the end; each test gets a
schema of its own in it (``search_path`` in the URL), so tests never see each other's tables.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW = (
    "herd's PostgreSQL tests need a server: set HERD_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB "
    "(a user that may CREATE DATABASE), run one on 127.0.0.1:5432 with trust auth for user "
    "postgres, or install PostgreSQL's binaries (apt-get install postgresql) so the tests can "
    "start a throwaway cluster"
)
_USER = "herdtest"


class NoServer(Exception):
    """No PostgreSQL server could be found or started."""


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def with_database(url: str, database: str, **query: str) -> str:
    """``url`` naming ``database``, with ``query`` parameters (values URL-quoted)."""
    parts = urlsplit(url)
    params = "&".join(f"{key}={quote(value, safe='')}" for key, value in query.items())
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", params, ""))


@contextlib.contextmanager
def server() -> Iterator[str]:
    """The URL of a server's maintenance database, for the length of the block."""
    given = os.environ.get("HERD_TEST_POSTGRES")
    if given:
        if not answers(given):
            raise NoServer(f"HERD_TEST_POSTGRES={given} does not answer. {HOW}")
        yield given
    elif answers(LOCAL):
        yield LOCAL
    else:
        with throwaway_cluster() as cluster:
            yield cluster.url


@contextlib.contextmanager
def session_database(admin_url: str) -> Iterator[str]:
    """A new, uniquely named database on the server of ``admin_url``; dropped afterwards."""
    name = f"herd_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_schema(database_url: str) -> Iterator[str]:
    """A new empty schema in the database, as the URL's ``search_path``; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    parts = urlsplit(database_url)
    try:
        yield with_database(database_url, parts.path.lstrip("/"), options=f"-csearch_path={name}")
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


# --- a throwaway cluster ---------------------------------------------------------------------


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _install() -> Path:
    if os.geteuid() != 0:
        raise NoServer(f"no server answers and PostgreSQL's binaries are not installed. {HOW}")
    for args in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "postgresql"]):
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise NoServer(f"`{' '.join(args)}` failed: {done.stderr.strip()[-300:]}. {HOW}")
    found = _binaries()
    if found is None:
        raise NoServer(f"installed postgresql but found no initdb. {HOW}")
    return found


def _as_user(args: list[str]) -> list[str]:
    """``args`` run as the dedicated user when root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return args
    if subprocess.run(["id", _USER], capture_output=True, check=False).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", _USER], check=True)
    return ["runuser", "-u", _USER, "--", *args]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """A throwaway PostgreSQL cluster of the tests' own (one they may stop and restart)."""

    url: str
    pg_ctl: list[str]

    def restart(self) -> None:
        """Stop the server at once (as a crash would) and start it again on the same port."""
        _check(_as_user([*self.pg_ctl, "-m", "immediate", "restart"]))


@contextlib.contextmanager
def throwaway_cluster(password: str | None = None) -> Iterator[Cluster]:
    """A new cluster in a temporary folder, on a free port; removed afterwards. With
    ``password``, TCP connections must give it (scram-sha-256), and the URL does."""
    bin_dir = _binaries() or _install()
    folder = Path(tempfile.mkdtemp(prefix="herd-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        folder.chmod(0o755)
        _as_user(["true"])  # creates the user
        shutil.chown(folder, _USER)
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        if password is not None:
            (folder / "pw").write_text(password + "\n")
            if os.geteuid() == 0:
                shutil.chown(folder / "pw", _USER)
            initdb += ["--auth-host=scram-sha-256", f"--pwfile={folder / 'pw'}"]
        _check(_as_user(initdb))
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w"]
        _check(_as_user([*pg_ctl, "-o", options, "start"]))
        try:
            user = "postgres" if password is None else f"postgres:{quote(password, safe='')}"
            yield Cluster(f"postgresql://{user}@127.0.0.1:{port}/postgres", pg_ctl)
        finally:
            _as_user_run([*pg_ctl, "-m", "immediate", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NoServer(f"`{' '.join(args)}` failed: {done.stderr.strip()[-300:]}. {HOW}")


def _as_user_run(args: list[str]) -> None:
    subprocess.run(_as_user(args), capture_output=True, check=False)
