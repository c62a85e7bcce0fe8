"""``herd worker --server``: workers that reach only a real ``herd serve`` (uvicorn in a
subprocess on a loopback port), on an SQLite file and on PostgreSQL. Tasks log their own starts
and ends (``tests/integration/test_workers.py``), so "every task once" is checked against what
ran, not only against herd's records. Faults: the server restarted mid-run, a report that comes
after its lease was taken back."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx

from herd.core.model import TaskState
from herd.store import wire
from herd.store.base import AttemptFinished, Store
from herd.store.queued import Outcome
from herd.store.remote import RemoteQueue
from tests.httpserver import Server, call, free_port, running

from .helpers import wait_for, write_spec
from .test_workers import chain_spec, intervals, logged, workflow_id

HERD = [sys.executable, "-m", "herd.cli"]


def herd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HERD, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def token(store: str, cwd: Path, scope: str = "worker") -> str:
    """A new token of ``scope`` (``herd token create`` prints it on its last line)."""
    made = herd("token", "create", "--scope", scope, "--store", store, cwd=cwd)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def serving(store: str, cwd: Path, port: int) -> Iterator[Server]:
    """``herd serve`` on ``port`` until the block ends (a restart binds the same port again)."""
    with running(store, cwd, port=port) as server:
        yield server


def worker(server: Server, secret: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    argv = [*HERD, "worker", "--server", server.url, "--mem", "4000", *args]
    env = {**os.environ, "HERD_TOKEN": secret}
    env.pop("HERD_STORE", None)
    return subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(*workers: subprocess.Popen[str], timeout: float = 90) -> list[tuple[str, str]]:
    outs = []
    for w in workers:
        out, err = w.communicate(timeout=timeout)
        assert w.returncode == 0, err
        outs.append((out, err))
    return outs


def ran_once(root: Path) -> Counter[str]:
    """How many times each task ran to success, from the tasks' own log."""
    return Counter(iv.task for iv in intervals(root).values() if iv.ok)


def test_three_http_workers_run_every_task_once(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = chain_spec(tmp_path)
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        outs = finish(*(worker(server, secret, tmp_path, "--cpus", "2") for _ in range(3)))
    assert all("the workflows it serves are finished" in out for out, _ in outs), outs
    wid = workflow_id(shared)
    assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}
    assert len(shared.attempts(wid)) == 25
    assert ran_once(tmp_path) == Counter(list(shared.task_records(wid)))
    assert shared.runs(wid)[-1].status == "succeeded"
    assert {w.state for w in shared.workers()} == {"stopped"}
    assert len(shared.workers()) == 3


def test_a_server_restart_mid_run_loses_nothing_and_runs_nothing_twice(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    tasks = [{"name": f"t{i}", "cmd": logged("sleep 0.2")} for i in range(40)]
    spec = write_spec(tmp_path, tasks)
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    port = free_port()
    with serving(store_url, tmp_path, port) as server:
        workers = [worker(server, secret, tmp_path, "--cpus", "2") for _ in range(3)]
        wait_for(lambda: (tmp_path / "events.log").exists() and len(ran_once(tmp_path)) >= 8)
        server.process.kill()  # a crash, mid-run: nothing of the server's memory survives
        server.process.wait(10)
    time.sleep(2.0)  # workers find it gone and back off
    with serving(store_url, tmp_path, port):
        outs = finish(*workers)
    wid = workflow_id(shared)
    assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}
    assert ran_once(tmp_path) == Counter(f"t{i}" for i in range(40))  # once each, no more
    assert any("does not answer" in err for _, err in outs), outs
    assert any("answers again" in err for _, err in outs), outs


def test_a_report_after_the_lease_was_taken_back_is_refused_and_kept_stale(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    marker = tmp_path / "ended"
    spec = write_spec(tmp_path, [{"name": "a", "cmd": f"sleep 1; touch {marker}", "retries": 1}])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    port = free_port()
    with serving(store_url, tmp_path, port) as server:
        w = worker(server, secret, tmp_path, "--cpus", "1", "--idle-exit", "2", "--lease", "60")
        wait_for(lambda: shared.queue_counts().get(TaskState.RUNNING) == 1)
    # the server is gone; the task ends, and its worker cannot report it. Meanwhile another
    # participant finds the lease expired (here: its clock a minute ahead) and takes it back
    wait_for(marker.exists)
    (lost,) = shared.reap(now=time.time() + 120)
    assert (lost.task, lost.number, lost.then) == ("a", 1, TaskState.READY)
    with serving(store_url, tmp_path, port):
        ((_, err),) = finish(w)
    wid = workflow_id(shared)
    (stale,) = shared.stale_reports(wid)
    assert (stale.task, stale.number, stale.state, stale.exit_code) == (
        "a",
        1,
        TaskState.SUCCEEDED,
        0,
    )
    assert "taken back by the store" in err
    (first,) = shared.attempts(wid, "a")
    assert first.state is TaskState.FAILED and first.kill_reason.startswith("lost")
    # the report changed nothing: the task waits for its retry (due by the reaper's clock)
    assert shared.task_records(wid)["a"].state is TaskState.READY
    assert shared.queue_counts() == {TaskState.READY: 1}


def test_a_late_finish_is_answered_409_in_the_error_shape(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        queue = RemoteQueue(server.url, secret, retry_for=10)
        try:
            wid = queue.register_worker(
                host="h", pid=1, user="u", resources={"cpu": 1.0}, now=0, lease=1.0
            )
            (claimed,) = queue.claim(wid, {"cpu": 1.0}, now=0, lease=1.0)
            # the server reaps it once its one-second lease has passed without a heartbeat
            wait_for(lambda: shared.attempts(claimed.workflow_id, "a")[0].end is not None)
            body = {
                "outcomes": [
                    {
                        "attempt": {
                            "workflow_id": claimed.workflow_id,
                            "task": "a",
                            "number": claimed.number,
                            "end": time.time(),
                            "state": "succeeded",
                            "exit_code": 0,
                        },
                        "pid": 4242,
                        "started": time.time() - 1,
                        "then": "succeeded",
                    }
                ]
            }
            got = httpx.post(
                f"{server.api}/queue/workers/{wid}/finish",
                json=body,
                headers={"Authorization": f"Bearer {secret}"},
            )
        finally:
            queue.close()
    assert got.status_code == 409
    answer = got.json()
    assert set(answer) == {"error", "accepted", "claimed"} and answer["accepted"] == [False]
    assert answer["error"]["code"] == "stale" and answer["error"]["task"] == "a"
    assert "taken back" in answer["error"]["message"]
    (stale,) = shared.stale_reports(workflow_id(shared))
    assert (stale.task, stale.worker_id, stale.state) == ("a", wid, TaskState.SUCCEEDED)


def test_a_finish_claims_the_next_task_in_the_same_round_trip(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}, {"name": "b", "cmd": "true"}])
    assert herd("submit", str(spec), "--store", store, cwd=tmp_path).returncode == 0
    secret = token(store, tmp_path)
    with serving(store, tmp_path, free_port()) as server:
        queue = RemoteQueue(server.url, secret, retry_for=10)
        try:
            cpu = {"cpu": 1.0}
            w = queue.register_worker(host="h", pid=1, user="u", resources=cpu, now=0, lease=30)
            (a,) = queue.claim(w, cpu, now=0, lease=30)
            end = AttemptFinished(a.workflow_id, a.task.name, a.number, 2.0, TaskState.SUCCEEDED)
            done = Outcome(end, pid=5, started=1.0, then=TaskState.SUCCEEDED)
            accepted, (b,) = queue.finish_and_claim(w, [done], cpu, now=0, lease=30)
            assert accepted == [True] and b.task.name != a.task.name
            assert queue.finish(w, [done], now=0) == [True]  # sent again: the same answer
        finally:
            queue.close()


def test_a_finish_and_claim_sent_again_gets_its_first_answer(
    store_url: str, tmp_path: Path
) -> None:
    spec = write_spec(tmp_path, [{"name": n, "cmd": "true"} for n in "abc"])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        queue = RemoteQueue(server.url, secret, retry_for=10)
        try:
            cpu = {"cpu": 1.0}
            w = queue.register_worker(host="h", pid=1, user="u", resources=cpu, now=0, lease=30)
            (a,) = queue.claim(w, cpu, now=0, lease=30)
            end = AttemptFinished(a.workflow_id, a.task.name, a.number, 2.0, TaskState.SUCCEEDED)
            done = Outcome(end, pid=5, started=1.0, then=TaskState.SUCCEEDED)
            turn = wire.FinishIn([wire.outcome_in(done)], wire.ClaimIn(cpu, 30.0, request="t1"))
            answers = [
                httpx.post(
                    f"{server.api}/queue/workers/{w}/finish",
                    content=wire.encode(turn),
                    headers={"Authorization": f"Bearer {secret}"},
                ).json()
                for _ in range(2)
            ]
        finally:
            queue.close()
    assert answers[0] == answers[1]  # the answer was lost: the same task, not a second one
    assert answers[0]["accepted"] == [True] and len(answers[0]["claimed"]) == 1
    assert answers[0]["claimed"][0]["task"]["name"] != a.task.name


def test_worker_endpoints_want_a_worker_token(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    assert herd("submit", str(spec), "--store", store, cwd=tmp_path).returncode == 0
    reader, secret = token(store, tmp_path, "read"), token(store, tmp_path)
    body = {"host": "h", "pid": 1, "user": "u", "resources": {"cpu": 1}, "lease": 30}
    with serving(store, tmp_path, free_port()) as server:
        url = f"{server.api}/queue/workers"
        assert call("POST", url, json_body=body).error["code"] == "unauthorized"
        assert call("POST", url, token=reader, json_body=body).error["code"] == "forbidden"
        assert call("POST", url, token="nope", json_body=body).status == 401
        got = call("POST", url, token=secret, json_body=body)
        assert got.status == 200 and got.body["id"] >= 1
        bad = call("POST", url, token=secret, json_body={**body, "lease": "soon"})
        assert bad.status == 422 and "lease" in bad.error["message"]
        assert call("GET", f"{server.api}/workflows", token=secret).status == 403
        claim = {"free": {"cpu": 1}, "lease": 30}
        unknown = call("POST", f"{url}/999/claim", token=secret, json_body=claim)
        assert unknown.status == 404 and "register first" in unknown.error["message"]
        for route, sent in (
            ("heartbeat", {"lease": 30}),
            ("release", {"attempts": [], "reason": "draining"}),
            ("stop", {"state": "stopped"}),
        ):  # nothing registered as 999: nothing to renew, give back or stop
            answer = call("POST", f"{url}/999/{route}", token=secret, json_body=sent)
            assert answer.status == 404, (route, answer.body)
            assert (
                answer.error["code"] == "not_found" and "no worker 999" in answer.error["message"]
            )
        known = got.body["id"]
        beat = call("POST", f"{url}/{known}/heartbeat", token=secret, json_body={"lease": 30})
        assert beat.status == 200 and beat.body == {"held": []}


def test_a_wrong_token_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    assert herd("submit", str(spec), "--store", store, cwd=tmp_path).returncode == 0
    with serving(store, tmp_path, free_port()) as server:
        w = worker(server, "not-a-token", tmp_path, "--idle-exit", "1")
        out, err = w.communicate(timeout=60)
    assert w.returncode == 3, err
    assert "refused the token" in err and "Traceback" not in err
    assert "not-a-token" not in err + out + server.output()


def test_an_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    port = free_port()
    argv = [*HERD, "worker", "--server", f"http://127.0.0.1:{port}", "--retry-for", "2"]
    done = subprocess.run(
        argv,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HERD_TOKEN": "t"},
    )
    assert done.returncode == 3, done.stderr
    assert "did not answer" in done.stderr and "Traceback" not in done.stderr
    assert "does not answer" in done.stderr  # the first failure is said at once


def test_sigterm_drains_an_http_worker(tmp_path: Path, store_url: str, shared: Store) -> None:
    spec = write_spec(tmp_path, [{"name": "long", "cmd": "sleep 60"}])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        w = worker(server, secret, tmp_path, "--drain", "0.5")
        wait_for(lambda: shared.queue_counts().get(TaskState.RUNNING) == 1)
        w.send_signal(signal.SIGTERM)
        out, err = w.communicate(timeout=30)
        assert w.returncode == 0, err
        assert "drained" in out and "1 released" in out
        assert shared.queue_counts() == {TaskState.READY: 1}
        assert [x.state for x in shared.workers()] == ["stopped"]


def test_shipped_logs_are_served_where_the_files_are_not(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    tasks = [
        {"name": "ok", "cmd": "echo one; echo two; echo warn >&2"},
        {"name": "bad", "cmd": "echo partial; echo broken >&2; exit 2"},
    ]
    spec = write_spec(tmp_path, tasks)
    assert herd("submit", str(spec), "--store", store, cwd=tmp_path).returncode == 0
    secret, reader = token(store, tmp_path), token(store, tmp_path, "read")
    with serving(store, tmp_path, free_port()) as server:
        finish(worker(server, secret, tmp_path, "--ship-logs"))
        shutil.rmtree(tmp_path / ".herd" / "logs")  # as on a site that shares no disk with us

        def log(task: str, stream: str) -> list[str]:
            url = f"{server.api}/workflows/wf/tasks/{task}/log?stream={stream}"
            got = call("GET", url, token=reader)
            assert got.status == 200, got.body
            lines: list[str] = got.body["lines"]
            return lines

        assert log("ok", "stdout") == ["one", "two"]
        assert log("ok", "stderr") == ["warn"]
        assert log("bad", "stdout") == ["partial"]
        assert log("bad", "stderr") == ["broken"]
