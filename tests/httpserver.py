"""A real ``herd serve`` for the tests: uvicorn in a subprocess on a free loopback port, killed
afterwards (never an in-process test client: the tests meet what users meet).

:func:`running` starts one and yields a :class:`Server` (its base URL, the process, its log);
:func:`call` sends one request with the standard library and returns status, headers and the
decoded JSON (or the raw text); :func:`token` makes a token as a user does, with ``herd token
create`` — the tests of the API, the HTTP workers and the dashboard share them.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: seconds a server may take to answer its first request (on a loaded machine its first
#: OpenAPI document alone has taken 6 s)
START_TIMEOUT = 60.0


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]
    log: Path
    store: str = ""  # what it serves

    @property
    def api(self) -> str:
        return self.url + "/api/v1"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def store_for(request: Any, workdir: Path, stack: contextlib.ExitStack) -> str:
    """The store a test parametrized ``sqlite`` / ``postgres`` serves: a file in ``workdir``, or
    a schema of its own in the session's PostgreSQL database (dropped when ``stack`` closes)."""
    if request.param == "sqlite":
        return str(workdir / ".herd" / "herd.db")
    from tests import pgserver

    database = request.getfixturevalue("postgres_database")
    url: str = stack.enter_context(pgserver.fresh_schema(database))
    return url


def token(store: str, workdir: Path, scope: str, *args: str) -> str:
    """A new token of ``scope`` (``herd token create``, a subprocess, prints it on its last line)."""
    argv = [sys.executable, "-m", "herd.cli", "token", "create", "--scope", scope, *args]
    argv += ["--store", store, "-C", str(workdir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def running(
    store: str,
    workdir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
) -> Iterator[Server]:
    """``herd serve --store STORE -C WORKDIR ARGS`` on a free port (or ``port``: a server started
    again where clients know it), until the block ends (then SIGTERM, and SIGKILL if it has not
    stopped within 10 s)."""
    port = port or free_port()
    log = workdir / f"serve-{port}.log"
    argv = [sys.executable, "-m", "herd.cli", "serve", "--store", store, "-C", str(workdir)]
    argv += ["--bind", f"127.0.0.1:{port}", *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    server = Server(f"http://127.0.0.1:{port}", process, log, store)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"herd serve exited {server.process.returncode}:\n{server.output()}"
            )
        try:  # one request awaited to the deadline: a slow first answer is not given up on
            left = max(deadline - time.monotonic(), 0.1)
            with urllib.request.urlopen(server.api + "/openapi.json", timeout=left):
                return
        except OSError:  # not listening yet
            time.sleep(0.05)
    raise AssertionError(f"herd serve did not answer within {START_TIMEOUT} s:\n{server.output()}")


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any  # the decoded JSON, or the text when it is not JSON

    @property
    def error(self) -> dict[str, Any]:
        """The error of an answer in the API's one error shape (asserting that shape)."""
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.body
        error: dict[str, Any] = self.body["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str), error
        assert set(error) <= {"code", "message", "file", "task", "field"}, error
        return error


def call(
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: bytes | None = None,
    json_body: Any = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Answer:
    """One request; never raises for an HTTP status."""
    sent = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        sent.setdefault("Content-Type", "application/json")
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, got, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        status, got, raw = exc.code, dict(exc.headers), exc.read()
    try:
        decoded: Any = json.loads(raw)
    except ValueError:
        decoded = raw.decode(errors="replace")
    return Answer(status, got, decoded)
