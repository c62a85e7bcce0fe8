"""The HTTP API against a real ``herd serve`` (uvicorn in a subprocess on a loopback port), over
SQLite and over PostgreSQL: reads, the one error shape, bad input (docs/api.md)."""

from __future__ import annotations

import contextlib
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.httpserver import START_TIMEOUT, Server, call, free_port, running, store_for
from tests.integration.test_workers import herd

SPEC = """\
name: served
tasks:
  - name: make_{i}
    foreach: {i: "1:3"}
    labels: [making]
    cmd: echo made {i} > out_{i}.txt
    outputs: ["out_{i}.txt"]
  - name: broken
    labels: [checking]
    needs: [make_1]
    cmd: echo about to fail >&2; exit 3
  - name: after
    needs: [broken]
    cmd: "true"
"""


def ran(store: str, workdir: Path) -> None:
    """The spec above run to its end (one task fails, one is cancelled) into ``store``."""
    (workdir / "served.yaml").write_text(SPEC)
    spec = str(workdir / "served.yaml")
    done = herd("run", spec, "--store", store, "-k", "--cpu-limit", "2", cwd=workdir)
    assert done.returncode == 1, done.stderr


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server over a store holding the finished spec above, shared by the module's tests
    (they only read, or are refused)."""
    workdir = tmp_path_factory.mktemp("served")
    with contextlib.ExitStack() as stack:
        store = store_for(request, workdir, stack)
        ran(store, workdir)
        yield stack.enter_context(running(store, workdir, "--public-read", "--max-body", "0.01"))


def test_reads_show_what_the_cli_shows(served: Server) -> None:
    listed = call("GET", served.api + "/workflows")
    assert listed.status == 200 and listed.body["next"] is None
    (wf,) = listed.body["items"]
    assert wf["name"] == "served" and wf["tasks"] == 5
    assert wf["counts"]["succeeded"] == 3 and wf["counts"]["failed"] == 1
    assert wf["counts"]["cancelled"] == 1 and wf["progress"] == pytest.approx(3 / 5)
    status = call("GET", served.api + "/status").body
    assert status["counts"] == wf["counts"] and len(status["tasks"]) == 5
    failed = call("GET", served.api + "/workflows/served/tasks?state=failed").body["items"]
    assert [t["name"] for t in failed] == ["broken"] and failed[0]["exit_code"] == 3
    assert failed[0]["labels"] == ["checking"]
    by_label = call("GET", served.api + "/workflows/served/tasks?label=making").body["items"]
    assert sorted(t["name"] for t in by_label) == ["make_1", "make_2", "make_3"]
    by_name = call("GET", served.api + "/workflows/served/tasks?match=e_[13]$").body["items"]
    assert [t["name"] for t in by_name] == ["make_1", "make_3"]  # found in the name
    both = "/workflows/served/tasks?state=succeeded&state=failed&match=^(make_2|broken)"
    assert [t["name"] for t in call("GET", served.api + both).body["items"]] == ["broken", "make_2"]
    log = call("GET", served.api + "/workflows/served/tasks/broken/log").body
    assert log["attempt"] == 1 and log["lines"] == ["about to fail"]
    attempts = call("GET", served.api + "/workflows/served/tasks/broken/attempts").body["items"]
    assert [a["exit_code"] for a in attempts] == [3]
    provenance = call("GET", served.api + "/workflows/served/tasks/make_1/provenance").body
    printed = herd("provenance", "make_1", "--store", served.store, cwd=served.log.parent)
    assert printed.returncode == 0, printed.stderr
    assert provenance == json.loads(printed.stdout)  # what `herd provenance` prints
    (made,) = provenance
    assert made["cmd"] == "echo made 1 > out_1.txt" and list(made["outputs"]) == ["out_1.txt"]
    stats = call("GET", served.api + "/workflows/served/stats").body
    assert stats["failed"] == 1 and stats["succeeded"] == 3
    analysis = call("GET", served.api + "/workflows/served/analyze").body
    assert [f["task"] for f in analysis["failures"]] == ["broken"]
    runs = call("GET", served.api + "/workflows/served/runs").body["items"]
    assert [r["status"] for r in runs] == ["failed"]


def test_tasks_are_paged_with_an_opaque_cursor(served: Server) -> None:
    seen, url = [], served.api + "/workflows/served/tasks?limit=2"
    for _ in range(5):
        page = call("GET", url).body
        seen += [t["name"] for t in page["items"]]
        if page["next"] is None:
            break
        url = served.api + f"/workflows/served/tasks?limit=2&cursor={page['next']}"
    assert seen == ["after", "broken", "make_1", "make_2", "make_3"]
    bad = call("GET", served.api + "/workflows/served/tasks?cursor=zzzz")
    assert bad.status == 400 and bad.error["field"] == "cursor"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nowhere", 404, "not_found"),
        ("GET", "/workflows/nope", 404, "not_found"),
        ("GET", "/workflows/served/tasks/nope", 404, "not_found"),
        ("GET", "/workflows/served/tasks/broken/log?attempt=9", 404, "not_found"),
        ("GET", "/workflows/served/tasks/nope/provenance", 404, "not_found"),
        ("GET", "/workflows/served/why/nope", 404, "not_found"),
        ("GET", "/workflows/nope/graph", 404, "not_found"),
        ("GET", "/workflows/served/chart?run=99", 404, "not_found"),
        ("DELETE", "/workflows", 405, "method_not_allowed"),
        ("GET", "/workflows?limit=0", 422, "invalid_request"),
        ("GET", "/workflows/served/tasks?match=(", 400, "bad_request"),
        ("POST", "/workflows", 401, "unauthorized"),
    ],
)
def test_every_failure_has_the_one_error_shape(
    served: Server, method: str, path: str, status: int, code: str
) -> None:
    answer = call(method, served.api + path)
    assert answer.status == status, answer.body
    assert answer.error["code"] == code
    assert "Traceback" not in answer.error["message"]


def test_an_oversized_body_is_refused_with_413(served: Server) -> None:
    answer = call("POST", served.api + "/workflows", body=b"x" * 20_000)
    assert answer.status == 413 and answer.error["code"] == "too_large"
    assert "--max-body" in answer.error["message"]


def test_an_oversized_chunked_body_is_refused_with_413(tmp_path: Path) -> None:
    """No ``Content-Length`` to judge by: refused once the bytes read pass the limit."""
    store = str(tmp_path / "h.db")
    made = herd("token", "create", "--scope", "submit", "--store", store, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    with running(store, tmp_path, "--max-body", "0.01") as server:
        parts = urlsplit(server.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
        try:
            conn.putrequest("POST", "/api/v1/workflows")
            conn.putheader("Authorization", f"Bearer {secret}")
            conn.putheader("Content-Type", "application/yaml")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            chunk = b"# " + b"x" * 4000 + b"\n"
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for _ in range(5):  # 20 kB, twice the limit
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                conn.send(b"0\r\n\r\n")
            answer = conn.getresponse()
            body = json.loads(answer.read())
        finally:
            conn.close()
    assert answer.status == 413 and body["error"]["code"] == "too_large"
    assert "--max-body" in body["error"]["message"]


def test_the_server_listens_on_this_host_only_unless_told(tmp_path: Path) -> None:
    """Without a host in ``--bind`` (and by default, 127.0.0.1:8080) only this host's clients
    reach it: the kernel's table of listening sockets says so."""
    from herd.cli import parser

    assert parser().parse_args(["serve"]).bind == ("127.0.0.1", 8080)
    port = free_port()
    argv = [sys.executable, "-m", "herd.cli", "serve", "--store", str(tmp_path / "s.db")]
    with subprocess.Popen(
        [*argv, "--bind", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not (found := _listening(port)) and time.monotonic() < deadline:
                assert process.poll() is None, "herd serve exited"
                time.sleep(0.05)
        finally:
            process.terminate()
    assert found == ["0100007F"]  # 127.0.0.1, and no other address


def _listening(port: int) -> list[str]:
    """The local addresses with a socket listening on ``port`` (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.append(address)
    return found
