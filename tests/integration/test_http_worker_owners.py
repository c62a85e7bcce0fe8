"""Worker ids bound to the token that registered them, against a real ``herd serve`` on SQLite
and on PostgreSQL: another worker token's claim, heartbeat, finish, release or stop is refused
with 403 and changes nothing; the owner and an admin token drive the worker; a database
worker (registered with no token) is driven over HTTP by an admin token alone; a token for one
workflow lists the workers of that workflow's tokens; a store from before the binding is
migrated in place, its workers bound to no token (docs/api.md, "Workers")."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from herd.core.model import Scope
from herd.errors import ForbiddenError
from herd.service.dispatch import Dispatcher
from herd.service.tokens import Grant
from herd.store import open_store, wire
from herd.store.base import Store
from herd.store.postgres import migrate
from herd.store.queries import MIGRATIONS, POSTGRES
from tests.httpserver import Answer, Server, call, running, token

from .helpers import herd, write_spec
from .test_postgres_store import _only

ME = {"host": "h", "pid": 1, "user": "u", "resources": {"cpu": 1}, "lease": 30}
CLAIM = {"free": {"cpu": 1}, "lease": 30}


def _token_id(made: str) -> int:
    """The id of a token (``herd_<id>_<secret>``), as ``herd token list`` shows it."""
    return int(made.split("_")[1])


def _register(server: Server, made: str) -> int:
    got = call("POST", f"{server.api}/queue/workers", token=made, json_body=ME)
    assert got.status == 200, got.body
    worker_id: int = got.body["id"]
    return worker_id


def _drive(server: Server, made: str, worker_id: int, attempt: dict[str, Any]) -> list[Answer]:
    """Every route of worker ``worker_id`` with token ``made``: claim, heartbeat, finish,
    release, stop (``attempt``: a claimed attempt, finished as a success)."""
    url = f"{server.api}/queue/workers/{worker_id}"
    ended = {**attempt, "end": 2.0, "state": "succeeded", "exit_code": 0}
    outcome = {"attempt": ended, "pid": 5, "started": 1.0, "then": "succeeded"}
    return [
        call("POST", f"{url}/{route}", token=made, json_body=body)
        for route, body in (
            ("claim", CLAIM),
            ("heartbeat", {"lease": 30}),
            ("finish", {"outcomes": [outcome]}),
            ("release", {"attempts": [attempt], "reason": "draining"}),
            ("stop", {"state": "draining"}),
        )
    ]


def _submit(tmp_path: Path, store_url: str, name: str = "wf", n: int = 2) -> None:
    spec = write_spec(tmp_path, [{"name": f"{name}_{i}", "cmd": "true"} for i in range(n)], name)
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0


def test_only_the_token_that_registered_a_worker_or_an_admin_drives_it(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    _submit(tmp_path, store_url)
    mine, theirs = token(store_url, tmp_path, "worker"), token(store_url, tmp_path, "worker")
    admin = token(store_url, tmp_path, "admin")
    with running(store_url, tmp_path) as server:
        worker_id = _register(server, mine)
        got = call(
            "POST", f"{server.api}/queue/workers/{worker_id}/claim", token=mine, json_body=CLAIM
        )
        assert got.status == 200, got.body
        (claimed,) = got.body["claimed"]
        attempt = {k: claimed[k] for k in ("workflow_id", "number")} | {
            "task": claimed["task"]["name"]
        }
        for answer in _drive(server, theirs, worker_id, attempt):
            assert answer.status == 403, answer.body
            assert answer.error["code"] == "forbidden"
            assert answer.error["message"] == (
                f"worker {worker_id} was registered by another token: a worker token drives "
                "only the workers it registered; register one of your own (POST "
                "/queue/workers) or use an admin token"
            )
        # refused before anything changed: the attempt is still the worker's, running
        beat = call(
            "POST",
            f"{server.api}/queue/workers/{worker_id}/heartbeat",
            token=mine,
            json_body={"lease": 30},
        )
        assert beat.status == 200 and beat.body == {"held": [attempt]}, beat.body
        assert [w.state for w in shared.workers()] == ["active"]
        assert [w.token_id for w in shared.workers()] == [_token_id(mine)]
        for made in (mine, admin):  # the owner, then an admin: each route answers 200
            answers = _drive(server, made, worker_id, attempt)
            assert [a.status for a in answers] == [200] * 5, [a.body for a in answers]
        assert answers[2].body["accepted"] == [True]
    (worker,) = shared.workers()
    assert worker.state == "draining"


def test_a_database_worker_is_driven_over_http_by_an_admin_token_alone(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    worker, admin = token(store_url, tmp_path, "worker"), token(store_url, tmp_path, "admin")
    database_worker = shared.register_worker(
        host="h", pid=2, user="u", resources={"cpu": 1.0}, now=0.0, lease=30.0
    )
    with running(store_url, tmp_path) as server:
        url = f"{server.api}/queue/workers/{database_worker}/heartbeat"
        refused = call("POST", url, token=worker, json_body={"lease": 30})
        assert refused.status == 403 and refused.error["code"] == "forbidden"
        assert refused.error["message"] == (
            f"worker {database_worker} was registered without a token (a database worker, "
            "`herd worker --store`): only an admin token may drive it over HTTP; register a "
            "worker of your own (POST /queue/workers)"
        )
        assert call("POST", url, token=admin, json_body={"lease": 30}).body == {"held": []}
        unknown = call(
            "POST",
            f"{server.api}/queue/workers/999/finish",
            token=worker,
            json_body={"outcomes": []},
        )
        assert unknown.status == 404 and "no worker 999" in unknown.error["message"]
    assert [w.token_id for w in shared.workers()] == [None]


def test_a_token_for_one_workflow_lists_the_workers_of_that_workflows_tokens(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    made = {
        name: token(store_url, tmp_path, "worker", *args)
        for name, args in (
            ("mine", ("--workflow", "mine")),
            ("mine_too", ("--workflow", "mine")),
            ("theirs", ("--workflow", "theirs")),
            ("every", ()),
        )
    }
    admin = token(store_url, tmp_path, "admin")
    shared.register_worker(host="h", pid=2, user="u", resources={}, now=0.0, lease=30.0)
    with running(store_url, tmp_path) as server:
        ids = {name: _register(server, secret) for name, secret in made.items()}

        def listed(secret: str) -> list[int]:
            got = call("GET", f"{server.api}/queue/workers", token=secret)
            assert got.status == 200, got.body
            return [w["id"] for w in got.body["workers"]]

        every = [w.id for w in shared.workers()]
        assert len(every) == 5
        assert listed(made["mine"]) == listed(made["mine_too"]) == [ids["mine"], ids["mine_too"]]
        assert listed(made["theirs"]) == [ids["theirs"]]
        assert listed(made["every"]) == listed(admin) == every
        owners = {
            w["id"]: w["token_id"]
            for w in call("GET", f"{server.api}/queue/workers", token=admin).body["workers"]
        }
        assert owners == {every[0]: None, **{ids[n]: _token_id(s) for n, s in made.items()}}
        read = call("GET", f"{server.api}/workers", token=admin).body["items"]
        assert {w["id"]: w["token_id"] for w in read} == owners  # the read API's list too


def _old_sqlite(path: Path) -> int:
    """An SQLite store at the schema before workers were bound to tokens, with one worker."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for migration in MIGRATIONS[:-1]:
            assert migration.name != "workers_token"
            conn.executescript(migration.sql)
            conn.execute(f"PRAGMA user_version = {migration.version}")
        return _old_worker(conn.execute)
    finally:
        conn.close()


def _old_postgres(url: str) -> int:
    """The PostgreSQL store at the schema before workers were bound to tokens, one worker."""
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "test", _only(POSTGRES, POSTGRES.version - 1))
        return _old_worker(lambda sql: conn.execute(sql.replace("?", "%s")))


def _old_worker(execute: Any) -> int:
    row = execute(
        "INSERT INTO workers (host, pid, username, started, heartbeat, state, lease)"
        " VALUES ('old', 3, 'u', 1.0, 1.0, 'active', 30.0) RETURNING id"
    ).fetchone()
    return int(row[0])


def test_a_store_from_before_the_binding_is_migrated_its_workers_bound_to_none(
    tmp_path: Path, store_url: str
) -> None:
    assert POSTGRES.migrations[-1].name == MIGRATIONS[-1].name == "workers_token"
    if store_url.startswith("postgresql"):
        old = _old_postgres(store_url)
    else:
        old = _old_sqlite(Path(store_url))
    worker, admin = token(store_url, tmp_path, "worker"), token(store_url, tmp_path, "admin")
    with running(store_url, tmp_path) as server:
        url = f"{server.api}/queue/workers"
        beat = {"lease": 30}
        assert call("POST", f"{url}/{old}/heartbeat", token=worker, json_body=beat).status == 403
        assert call("POST", f"{url}/{old}/heartbeat", token=admin, json_body=beat).status == 200
        new = _register(server, worker)
        assert call("POST", f"{url}/{new}/heartbeat", token=worker, json_body=beat).status == 200
    store = open_store(store_url)
    try:
        owners = {w.id: w.token_id for w in store.workers()}
    finally:
        store.close()
    assert owners == {old: None, new: _token_id(worker)}


def test_the_owner_check_costs_no_round_trip_once_the_owner_is_known(tmp_path: Path) -> None:
    """A worker's owner never changes: the server asks the store for it once (at registration
    here, or on the first request of a worker registered elsewhere), then each request borrows
    one connection, for its own transaction, as before the check."""
    location = tmp_path / "s.db"
    store = open_store(str(location))
    borrowed = []

    @contextlib.contextmanager
    def borrow() -> Iterator[Store]:
        borrowed.append(1)
        yield store

    owner, other = (
        Grant(
            store.add_token(
                digest=d, scope=Scope.WORKER, workflow=None, note="", now=0.0, expires=None
            ),
            Scope.WORKER,
        )
        for d in ("0" * 64, "1" * 64)
    )
    register = wire.Register("h", 1, "u", {"cpu": 1.0}, 30.0)
    first = Dispatcher(location, borrow)
    try:
        worker_id = first.register(register, owner)
        del borrowed[:]
        for _ in range(3):
            first.heartbeat(worker_id, 30.0, owner)
        assert len(borrowed) == 3
        with pytest.raises(ForbiddenError, match="registered by another token"):
            first.heartbeat(worker_id, 30.0, other)
        assert len(borrowed) == 3  # refused from what the server knows
    finally:
        first.close()
    again = Dispatcher(location, borrow)  # a restarted server: it has to ask once
    try:
        del borrowed[:]
        again.heartbeat(worker_id, 30.0, owner)
        again.heartbeat(worker_id, 30.0, owner)
        assert len(borrowed) == 3
    finally:
        again.close()
        store.close()
