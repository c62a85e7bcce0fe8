"""Tokens and scopes against a real ``herd serve``: every write refused without a token, with a
token of another scope, an expired, revoked or forged one; reads need a token unless
``--public-read``; a worker token can neither submit nor reset; tokens never reach the log."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.core.model import Scope
from herd.store import open_store
from herd.store.base import TokenRecord
from tests.httpserver import Server, call, running
from tests.integration.test_server_writes import SPEC, token

#: what a path parameter is replaced with when the OpenAPI document's operations are walked
_PARAMS = {"name": "queued", "task": "first"}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, Path]]:
    workdir = tmp_path_factory.mktemp("guarded")
    store = str(workdir / ".herd" / "herd.db")
    with running(store, workdir) as server:
        admin = token(store, workdir, "--scope", "admin")
        made = call("POST", server.api + "/workflows", token=admin, body=SPEC.encode())
        assert made.status == 201, made.body
        yield server, store, workdir


def operations(server: Server, tok: str) -> list[tuple[str, str]]:
    """Every (method, path) of the OpenAPI document, path parameters filled in."""
    document = call("GET", server.api + "/openapi.json", token=tok).body
    out = []
    for path, methods in document["paths"].items():
        filled = re.sub(r"\{(\w+)\}", lambda m: _PARAMS.get(m[1], "1"), path)
        out += [(method.upper(), filled.removeprefix("/api/v1")) for method in methods]
    return out


def writes(server: Server, tok: str) -> list[tuple[str, str]]:
    found = [(m, p) for m, p in operations(server, tok) if m != "GET"]
    assert ("POST", "/workflows") in found and ("POST", "/workflows/queued/reset") in found
    return found


def _forged(tok: str) -> str:
    _, tid, secret = tok.split("_", 2)  # herd_ID_SECRET; the secret may hold "_" too
    return f"herd_{tid}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


def test_every_write_is_refused_without_the_right_token(guarded: tuple[Server, str, Path]) -> None:
    server, store, workdir = guarded
    read = token(store, workdir, "--scope", "read")
    submit = token(store, workdir, "--scope", "submit")
    revoked = token(store, workdir, "--scope", "admin")
    rid = revoked.split("_")[1]
    from herd.cli import main

    assert main(["token", "revoke", rid, "--store", store]) == 0
    expired = _expired_admin(store)
    for method, path in writes(server, read):
        url = server.api + path
        for tok, status in [
            (None, 401),
            (read, 403),
            (revoked, 401),
            (expired, 401),
            (_forged(submit), 401),
            ("not-a-token", 401),
        ]:
            answer = call(method, url, token=tok, json_body={})
            assert answer.status == status, (method, path, tok == read, answer.body)
            assert answer.error["code"] == ("unauthorized" if status == 401 else "forbidden")
    log = server.output()
    for secret in (read, submit, revoked, expired):
        assert secret not in log and secret.split("_", 2)[2] not in log


def _expired_admin(store: str) -> str:
    """An admin token that expired a minute ago (written as `herd token create` would)."""
    secret = "x" * 43
    opened = open_store(store)
    try:
        now = time.time()
        tid = opened.add_token(
            digest=hashlib.sha256(secret.encode()).hexdigest(),
            scope=Scope.ADMIN,
            workflow=None,
            note="expired",
            now=now - 120,
            expires=now - 60,
        )
    finally:
        opened.close()
    return f"herd_{tid}_{secret}"


def test_a_worker_token_can_neither_read_nor_submit_nor_reset(
    guarded: tuple[Server, str, Path],
) -> None:
    server, store, workdir = guarded
    worker = token(store, workdir, "--scope", "worker")
    refused = call("POST", server.api + "/workflows", token=worker, body=SPEC.encode())
    assert refused.status == 403 and "scope 'worker'" in refused.error["message"]
    reset = call(
        "POST", server.api + "/workflows/queued/reset", token=worker, json_body={"tasks": [".*"]}
    )
    assert reset.status == 403
    cancel = call("POST", server.api + "/workflows/queued/cancel", token=worker)
    assert cancel.status == 403
    assert call("GET", server.api + "/workflows", token=worker).status == 403


def test_reads_need_a_token_unless_public(guarded: tuple[Server, str, Path]) -> None:
    server, store, workdir = guarded
    read = token(store, workdir, "--scope", "read")
    for method, path in operations(server, read):
        if method == "GET" and not path.startswith(("/openapi", "/docs", "/events")):
            answer = call("GET", server.api + path)
            assert answer.status == 401, (path, answer.body)
    assert call("GET", server.api + "/workflows", token=read).status == 200
    stream = call("GET", server.api + "/events?timeout=1")  # (would end after 1 s if let in)
    assert stream.status == 401 and stream.error["code"] == "unauthorized"
    # a browser's EventSource cannot send a header: GETs take ?token=
    assert call("GET", server.api + f"/workflows?token={read}").status == 200
    assert call("POST", server.api + f"/workflows/queued/cancel?token={read}").status == 401


def test_a_token_for_one_workflow_acts_on_it_alone(guarded: tuple[Server, str, Path]) -> None:
    server, store, workdir = guarded
    mine = token(store, workdir, "--scope", "submit", "--workflow", "queued")
    other = token(store, workdir, "--scope", "submit", "--workflow", "other")
    assert [
        w["name"] for w in call("GET", server.api + "/workflows", token=mine).body["items"]
    ] == ["queued"]
    assert call("GET", server.api + "/workflows", token=other).body["items"] == []
    assert call("GET", server.api + "/workflows/queued", token=other).status == 403
    events = call("GET", server.api + "/events?workflow=queued&timeout=1", token=other)
    assert events.status == 403 and events.error["code"] == "forbidden"
    refused = call("POST", server.api + "/workflows", token=other, body=SPEC.encode())
    assert refused.status == 403 and "workflow 'other' only" in refused.error["message"]
    assert call("POST", server.api + "/workflows", token=mine, body=SPEC.encode()).status == 201


def test_a_token_made_with_expires_works_until_then(guarded: tuple[Server, str, Path]) -> None:
    server, store, workdir = guarded
    short = token(store, workdir, "--scope", "read", "--expires", "3s")
    record = _record(store, short)
    assert record.expires is not None and record.expires - record.created == pytest.approx(3)
    sent = time.time()
    answer = call("GET", server.api + "/workflows", token=short)
    assert sent < record.expires - 1, "the machine took over 2 s to make a token: try again"
    assert answer.status == 200, answer.body
    time.sleep(max(0.0, record.expires - time.time()) + 0.05)  # the clock is what is tested
    late = call("GET", server.api + "/workflows", token=short)
    assert late.status == 401 and "expired" in late.error["message"]


def test_the_store_keeps_a_digest_of_a_token_never_the_token(
    guarded: tuple[Server, str, Path],
) -> None:
    server, store, workdir = guarded
    made = token(store, workdir, "--scope", "read")
    secret = made.split("_", 2)[2]  # herd_ID_SECRET; the secret may hold "_" too
    assert _record(store, made).digest == hashlib.sha256(secret.encode()).hexdigest()
    assert call("GET", server.api + "/workflows", token=made).status == 200
    kept = b"".join(p.read_bytes() for p in Path(store).parent.glob(Path(store).name + "*"))
    assert secret.encode() not in kept  # the database file and its write-ahead log
    from herd.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["token", "list", "--json", "--store", store]) == 0
    assert secret not in out.getvalue() and "digest" not in out.getvalue()


def _record(store: str, made: str) -> TokenRecord:
    opened = open_store(store)
    try:
        found = opened.token(int(made.split("_")[1]))
    finally:
        opened.close()
    assert found is not None
    return found
