"""Writes through a real ``herd serve`` over SQLite and PostgreSQL: submit, cancel (a real
worker's running task stopped), retry, reset, bad specs and bodies; the event stream; the read
commands with ``--server`` (docs/api.md)."""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.service.remote import chart as served_chart
from herd.service.views import plot
from tests.httpserver import Server, call, running, store_for

SPEC = """\
name: queued
tasks:
  - name: first
    cmd: sleep 60
  - name: second
    needs: [first]
    cmd: "true"
"""

BAD = """\
name: bad
tasks:
  - name: a
    cmd: "true"
  - name: b
    needs: [nowhere]
    cmd: "true"
"""


def token(store: str, workdir: Path, *args: str) -> str:
    """A new token, as ``herd token create`` prints it (on its last line)."""
    import contextlib
    import io

    from herd.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["token", "create", "--store", store, "-C", str(workdir), *args]) == 0
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, Path]]:
    """A server (no public reads) over an empty store, its store and working directory."""
    workdir = tmp_path_factory.mktemp("site")
    with contextlib.ExitStack() as stack:
        store = store_for(request, workdir, stack)
        yield stack.enter_context(running(store, workdir)), store, workdir


def test_submit_cancel_retry_and_reset(site: tuple[Server, str, Path]) -> None:
    server, store, workdir = site
    submit, read = (
        token(store, workdir, "--scope", "submit"),
        token(store, workdir, "--scope", "read"),
    )
    made = call(
        "POST", server.api + "/workflows?filename=queued.yaml", token=submit, body=SPEC.encode()
    )
    assert made.status == 201, made.body
    assert made.body["workflow"] == "queued" and made.body["queued"] == 2
    status = call("GET", server.api + "/status?workflow=queued", token=read).body
    assert status["counts"]["ready"] == 1 and status["counts"]["waiting"] == 1
    # a real worker claims the first task; the cancel takes its lease and the worker stops it
    worker = subprocess.Popen(
        [sys.executable, "-m", "herd.cli", "worker", "--store", store, "-C", str(workdir)]  # noqa: RUF005
        + ["--lease", "1.5", "--idle-exit", "3", "--cpus", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _await_state(server, read, "first", "running")
        cancelled = call("POST", server.api + "/workflows/queued/cancel", token=submit)
        assert cancelled.status == 200, cancelled.body
        assert sorted(cancelled.body["tasks"]) == ["first", "second"]
        out, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, out
    attempts = call("GET", server.api + "/workflows/queued/tasks/first/attempts", token=read)
    (attempt,) = attempts.body["items"]
    assert attempt["state"] == "cancelled" and attempt["kill"] == "interrupted"
    assert attempt["end"] - attempt["start"] < 20  # stopped, not run for its 60 s
    runs = call("GET", server.api + "/workflows/queued/runs", token=read).body["items"]
    assert runs[-1]["status"] == "interrupted"
    again = call("POST", server.api + "/workflows/queued/retry", token=submit)
    assert again.status == 200 and again.body["queued"] == 2, again.body
    reset = call(
        "POST", server.api + "/workflows/queued/reset", token=submit, json_body={"tasks": ["sec.*"]}
    )
    assert reset.status == 200 and reset.body["tasks"] == ["second"]
    call("POST", server.api + "/workflows/queued/cancel", token=submit)


def _await_state(server: Server, tok: str, task: str, state: str) -> None:
    """Follow the event stream until ``task`` reaches ``state`` (at most 30 s)."""
    url = server.api + "/events?workflow=queued&timeout=30"
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {tok}"})
    current = call("GET", server.api + f"/workflows/queued/tasks/{task}", token=tok).body
    if current["state"] == state:
        return
    with urllib.request.urlopen(request, timeout=35) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        event = ""
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "tasks":
                data = json.loads(line[6:])
                if any(t["name"] == task and t["state"] == state for t in data["tasks"]):
                    return
    raise AssertionError(f"{task} never became {state}")


def test_a_spec_with_errors_is_refused_with_where(
    site: tuple[Server, str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, store, workdir = site
    submit = token(store, workdir, "--scope", "submit")
    answer = call(
        "POST", server.api + "/workflows?filename=bad.yaml", token=submit, body=BAD.encode()
    )
    assert answer.status == 422, answer.body
    error = answer.error
    assert error["code"] == "invalid_spec" and error["file"] == "bad.yaml"
    assert error["task"] == "b" and error["field"] == "needs"
    (workdir / "bad.yaml").write_text(BAD)
    monkeypatch.chdir(workdir)
    code, _, err = cli(capsys, "validate", "bad.yaml")
    assert code == 2 and err.strip() == f"herd: error: {error['message']}"
    garbage = call("POST", server.api + "/workflows", token=submit, body=b"tasks: [unclosed")
    assert garbage.status == 422 and garbage.error["code"] == "invalid_spec"
    malformed = call(
        "POST",
        server.api + "/workflows/queued/reset",
        token=submit,
        body=b'{"tasks": [',
        headers={"Content-Type": "application/json"},
    )
    assert malformed.status == 422 and malformed.error["code"] == "invalid_request"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``herd ARGS`` in this process (the server it talks to is a real one): exit code, out, err."""
    from herd.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_read_commands_work_through_the_server(
    site: tuple[Server, str, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, store, workdir = site
    read = token(store, workdir, "--scope", "read")
    for command in (["status"], ["stats"], ["analyze"], ["analyze", "--json", "-a"]):
        here = cli(capsys, *command, "-w", "queued", "--store", store)
        there = cli(capsys, *command, "-w", "queued", "--server", server.url, "--token", read)
        assert there == here
    monkeypatch.setenv("HERD_TOKEN", read)
    code, out, _ = cli(capsys, "status", "--json", "-w", "queued", "--server", server.url)
    remote = json.loads(out)
    code, out, _ = cli(capsys, "status", "--json", "-w", "queued", "--store", store)
    local = json.loads(out)
    assert remote.pop("now") <= local.pop("now") and remote == local
    monkeypatch.delenv("HERD_TOKEN")
    code, _, err = cli(capsys, "status", "--server", server.url)
    assert code == 2 and "needs a token" in err
    code, _, err = cli(capsys, "status", "--server", "http://127.0.0.1:9", "--token", read)
    assert code == 3 and "cannot reach herd serve" in err
    code, _, err = cli(capsys, "stats", "-w", "nope", "--server", server.url, "--token", read)
    assert code == 2 and "no workflow 'nope'" in err
    # herd plot draws what the server's chart view holds: the same chart as from the store
    here = plot(workdir, "queued", None, None, store=store)
    assert served_chart(server.url, read, "queued", None) == here
    drawn = workdir / "there.html"
    plotted = ["plot", "-w", "queued", "-o", str(drawn), "--server", server.url, "--token", read]
    code, out, err = cli(capsys, *plotted)
    assert code == 0 and f"wrote {drawn}" in out, err
    assert f"<title>{here[0].title}</title>" in drawn.read_text()
    # herd why plans on the server, with the spec it keeps
    code, out, err = cli(capsys, "why", "second", "-w", "queued", "--server", server.url, "--json")
    assert code == 2 and "needs a token" in err
    monkeypatch.setenv("HERD_TOKEN", read)
    code, out, err = cli(capsys, "why", "second", "-w", "queued", "--server", server.url, "--json")
    assert code == 0, err
    steps = json.loads(out)
    assert steps[0]["task"] == "second" and steps[0]["run"] is True
    code, _, err = cli(capsys, "why", "nope", "-w", "queued", "--server", server.url)
    assert code == 2 and "no task 'nope'" in err


def test_every_format_is_submitted_through_the_api_and_listed_in_pages(
    site: tuple[Server, str, Path], shared_data: Path
) -> None:
    """Each format as its users have it (gzip too), named as ``herd submit`` of the same file
    names it (O2DPG's after its file); then the list of workflows, paged, oldest first."""
    server, store, workdir = site
    submit, read = (
        token(store, workdir, "--scope", "submit"),
        token(store, workdir, "--scope", "read"),
    )
    dampe = Path(__file__).parents[1] / "data" / "dampe" / "production.xml"
    cases = [
        ((shared_data / "pegasus" / "diamond.yml").read_bytes(), "wf.yml", "pegasus", "diamond"),
        (
            (shared_data / "wfinstances" / "blast-chameleon-small-001.json.gz").read_bytes(),
            "blast.json.gz",
            "wfformat",
            "makeflow-blast-small",
        ),
        (dampe.read_bytes(), "production.xml", "dampe", "electron-mc"),
        (
            (shared_data / "o2dpg" / "o2dpg_pp_3tf.json").read_bytes(),
            "workflow.json",
            "o2dpg",
            "workflow",
        ),
        (gzip.compress(SPEC.replace("queued", "zipped").encode()), "z.yaml.gz", "native", "zipped"),
    ]
    for body, filename, kind, name in cases:
        made = call("POST", f"{server.api}/workflows?filename={filename}", token=submit, body=body)
        assert made.status == 201, (filename, made.body)
        assert made.body["workflow"] == name and made.body["queued"] > 0, made.body
        record = call("GET", f"{server.api}/workflows/{name}", token=read).body
        assert record["format"] == kind and record["source"].endswith(f"/{filename}"), record
    listed, url = [], f"{server.api}/workflows?limit=2"
    for _ in range(10):
        page = call("GET", url, token=read).body
        assert len(page["items"]) <= 2
        listed += [w["name"] for w in page["items"]]
        if page["next"] is None:
            break
        url = f"{server.api}/workflows?limit=2&cursor={page['next']}"
    names = [name for *_, name in cases]
    assert listed[-len(names) :] == names and len(listed) == len(set(listed)), listed
