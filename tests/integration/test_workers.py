"""``herd submit`` and several ``herd worker`` processes on one store: real processes, a real
store file (and PostgreSQL where its fixture is available), tasks that log their own starts and
ends so that the checks do not trust herd's own records alone."""

from __future__ import annotations

import itertools
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import TaskState
from herd.exec.monitor import is_alive
from herd.formats import load
from herd.store import open_store
from herd.store.base import Store
from herd.store.queued import ShippedLog

from .helpers import herd, wait_for, worker, write_spec

HERD = [sys.executable, "-m", "herd.cli"]
LOG = "events.log"
#: the task writes its own start and end lines (date +%s.%N: no Python start-up per task)
STAMP = '"$HERD_TASK $HERD_ATTEMPT $(date +%s.%N) $$"'


def finish(*workers: subprocess.Popen[str], timeout: float = 60) -> list[str]:
    outs = []
    for w in workers:
        out, err = w.communicate(timeout=timeout)
        assert w.returncode == 0, err
        outs.append(out)
    return outs


def logged(cmd: str, fail_below: int = 0) -> str:
    """A command that logs its start and end (``ok`` or ``fail``) to :data:`LOG`, running
    ``cmd`` between; it fails while its attempt number is below ``fail_below``."""
    fail = (
        f'[ "$HERD_ATTEMPT" -lt {fail_below} ] && {{ echo end {STAMP} fail >> {LOG}; exit 1; }}; '
        if fail_below
        else ""
    )
    return f"echo start {STAMP} >> {LOG}; {cmd}; {fail}echo end {STAMP} ok >> {LOG}"


@dataclass
class Interval:
    task: str
    attempt: int
    start: float
    pid: int
    end: float | None = None
    ok: bool = False


def intervals(root: Path) -> dict[tuple[str, int], Interval]:
    out: dict[tuple[str, int], Interval] = {}
    for line in (root / LOG).read_text().splitlines():
        kind, task, attempt, at, pid, *rest = line.split()
        key = (task, int(attempt))
        if kind == "start":
            out[key] = Interval(task, int(attempt), float(at), int(pid))
        else:
            out[key].end, out[key].ok = float(at), rest == ["ok"]
    return out


def workflow_id(store: Store, name: str = "wf") -> int:
    rec = store.workflow(name)
    assert rec is not None
    return rec.id


def chain_spec(root: Path, n: int = 12, **top: Any) -> Path:
    """``n`` producers, ``n`` consumers each needing two producers, and a final merge."""
    tasks: list[dict[str, Any]] = [
        {"name": f"p{i}", "cmd": logged(f"echo {i} > p{i}.txt"), "outputs": [f"p{i}.txt"]}
        for i in range(n)
    ]
    tasks += [
        {
            "name": f"c{i}",
            "cmd": logged(f"cat p{i}.txt p{(i + 1) % n}.txt > c{i}.txt"),
            "needs": [f"p{i}", f"p{(i + 1) % n}"],
            "outputs": [f"c{i}.txt"],
        }
        for i in range(n)
    ]
    tasks.append(
        {
            "name": "merge",
            "cmd": logged("cat c*.txt > all.txt"),
            "needs": [f"c{i}" for i in range(n)],
        }
    )
    return write_spec(root, tasks, **top)


def test_three_workers_run_every_task_once(tmp_path: Path, store_url: str, shared: Store) -> None:
    spec = chain_spec(tmp_path)
    done = herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "25 to run" in done.stdout
    outs = finish(*(worker(store_url, tmp_path, "--cpus", "2") for _ in range(3)))
    assert all("the workflows it serves are finished" in out for out in outs)
    wid = workflow_id(shared)
    assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}
    assert len(shared.attempts(wid)) == 25
    assert sorted(iv.task for iv in intervals(tmp_path).values() if iv.ok) == sorted(
        shared.task_records(wid)
    )
    assert shared.runs(wid)[-1].status == "succeeded"
    assert (tmp_path / "all.txt").read_text().count("\n") == 24


def test_resubmitting_a_changed_spec_reruns_only_what_changed(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = chain_spec(tmp_path, n=4)
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    finish(worker(store_url, tmp_path, "--idle-exit", "5"))
    data = json.loads(spec.read_text())
    data["tasks"][1]["cmd"] = logged("echo changed > p1.txt")
    spec.write_text(json.dumps(data))
    again = herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    assert "4 to run, 5 up to date" in again.stdout, again.stdout  # p1, c0, c1, merge
    finish(worker(store_url, tmp_path, "--idle-exit", "5"))
    wid = workflow_id(shared)
    reran = sorted(a.task for a in shared.attempts(wid) if a.number == 2)
    assert reran == ["c0", "c1", "merge", "p1"]
    assert "changed" in (tmp_path / "all.txt").read_text()


def test_a_sigkilled_workers_task_runs_again_elsewhere_within_lease_and_2s(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    lease = 2.0
    spec = write_spec(tmp_path, [{"name": "long", "cmd": logged("sleep 30"), "retries": 1}])
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    first = worker(store_url, tmp_path, "--lease", str(lease))
    wid = workflow_id(shared)
    wait_for(lambda: any(a.state is TaskState.RUNNING for a in shared.attempts(wid)))
    second = worker(store_url, tmp_path, "--lease", str(lease), "--drain", "0.5")
    wait_for(lambda: len(shared.workers()) == 2)
    first.kill()
    killed = time.time()
    first.communicate()
    wait_for(lambda: len(shared.attempts(wid)) == 2)
    lost, rerun = shared.attempts(wid)
    elapsed = rerun.start - killed
    print(f"\nSIGKILLed worker's task claimed again after {elapsed:.2f} s (lease {lease:g} s)")
    assert elapsed <= lease + 2.0
    assert lost.kill_reason.startswith("lost") and lost.state is TaskState.FAILED
    wait_for(lambda: (tmp_path / LOG).read_text().count("start") == 2)
    second.send_signal(signal.SIGTERM)  # drains: the 30 s task is stopped and released
    out, _ = second.communicate(timeout=60)
    assert "1 released" in out
    # the first attempt's process was stopped before the task was claimed again
    first_run = intervals(tmp_path)[("long", 1)]
    assert not is_alive(first_run.pid)


def test_sigterm_drains_running_tasks_then_releases_them(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    tasks = [
        {"name": "quick", "cmd": logged("sleep 0.3")},
        {"name": "slow", "cmd": logged("sleep 30")},
    ]
    spec = write_spec(tmp_path, tasks)
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    w = worker(store_url, tmp_path, "--drain", "1.5", "--cpus", "2")
    wid = workflow_id(shared)
    wait_for(lambda: (tmp_path / LOG).exists() and (tmp_path / LOG).read_text().count("start") == 2)
    w.send_signal(signal.SIGTERM)
    out, _ = w.communicate(timeout=30)
    assert "stopped (drained): 1 attempts (1 succeeded), 1 released" in out
    states = {name: rec.state for name, rec in shared.task_records(wid).items()}
    assert states == {"quick": TaskState.SUCCEEDED, "slow": TaskState.READY}
    (released,) = shared.attempts(wid, "slow")
    assert released.state is TaskState.CANCELLED and released.kill_reason.startswith("released")
    (rec,) = shared.workers()
    assert (rec.state, rec.held) == ("stopped", 0)


def test_two_submitters_and_workers_at_once(tmp_path: Path, store_url: str, shared: Store) -> None:
    specs = []
    for name in ("one", "two"):
        root = tmp_path / name
        root.mkdir()
        specs.append((root, chain_spec(root, n=6, name=name)))
    # started first, the workers wait for both workflows (and exit once both are finished)
    serve = ["--workflow", "one", "--workflow", "two"]
    workers = [worker(store_url, tmp_path, *serve) for _ in range(3)]
    submitters = [
        subprocess.Popen(
            [sys.executable, "-m", "herd.cli", "submit", str(spec), "--store", store_url],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for root, spec in specs
    ]
    for s in submitters:
        _, err = s.communicate(timeout=60)
        assert s.returncode == 0, err
    finish(*workers)
    for root, _ in specs:
        name = root.name
        wid = workflow_id(shared, name)
        assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}
        assert len(shared.attempts(wid)) == 13
        assert all(iv.ok for iv in intervals(root).values())


def test_a_local_run_serves_a_submitted_workflow_beside_workers(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = chain_spec(tmp_path, n=8)
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    argv = [*HERD, "run", str(spec), "--store", store_url, "--cpu-limit", "1", "-q"]
    local = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )  # first: the queue is open when it looks
    wait_for(lambda: len(shared.workers()) == 1)  # the run registered itself as a worker
    w = worker(store_url, tmp_path, "--cpus", "1")
    _, err = local.communicate(timeout=120)
    finish(w)
    assert local.returncode == 0, err
    assert "this run serves its queue beside them" in err
    wid = workflow_id(shared)
    assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}
    assert len(shared.attempts(wid)) == 17  # each task once, by one or the other


def test_a_local_run_serving_a_queue_stops_on_ctrl_c_as_interrupted(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = write_spec(tmp_path, [{"name": "slow", "cmd": logged("sleep 30")}])
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    argv = [*HERD, "run", str(spec), "--store", store_url, "--cpu-limit", "1", "-q"]
    local = subprocess.Popen(
        argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: (tmp_path / LOG).exists() and "start" in (tmp_path / LOG).read_text())
    local.send_signal(signal.SIGINT)  # drains: the task would get --drain (20 s) to end
    # the second once the first is handled (two at once may arrive as one): stops it at once
    wait_for(lambda: [w.state for w in shared.workers()] == ["draining"])
    local.send_signal(signal.SIGINT)
    _, err = local.communicate(timeout=15)
    assert local.returncode == 128 + signal.SIGINT, err  # drained: interrupted, not failed
    (released,) = shared.attempts(workflow_id(shared), "slow")
    assert released.state is TaskState.CANCELLED


def test_n_starts_that_many_workers_sharing_the_resources(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = chain_spec(tmp_path, n=4)
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    (out,) = finish(worker(store_url, tmp_path, "-n", "2", "--cpus", "2"))
    assert out.count("the workflows it serves are finished") == 2
    assert [dict(w.resources)["cpu"] for w in shared.workers()] == [1.0, 1.0]
    wid = workflow_id(shared)
    assert {r.state for r in shared.task_records(wid).values()} == {TaskState.SUCCEEDED}


def test_ship_logs_keeps_each_attempts_output_in_the_store(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = write_spec(
        tmp_path,
        [
            {"name": "ok", "cmd": "echo out-ok; echo err-ok >&2"},
            {"name": "bad", "cmd": "echo out-bad; echo err-bad >&2; exit 4"},
            {"name": "quiet", "cmd": "echo not shipped", "needs": ["ok"]},
        ],
    )
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    w = worker(store_url, tmp_path, "--ship-logs", "--max-tasks", "2", "--cpus", "2")
    w.communicate(timeout=60)
    finish(worker(store_url, tmp_path, "--cpus", "1"))
    wid = workflow_id(shared)
    assert shared.shipped_log(wid, "ok", 1) == ShippedLog("out-ok\n", "err-ok\n", False)
    assert shared.shipped_log(wid, "bad", 1) == ShippedLog("out-bad\n", "err-bad\n", False)
    assert shared.failure_log(wid, "bad", 1) == "err-bad\n"
    assert shared.shipped_log(wid, "quiet", 1) is None  # its worker did not ship


def test_herd_status_shows_workers(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "sleep 30"}])
    herd("submit", str(spec), cwd=tmp_path)  # into the working directory's own store
    w = worker(str(tmp_path / ".herd" / "herd.db"), tmp_path, "--cpus", "3", "--drain", "0")
    try:
        wait_for(lambda: "held 1" in herd("status", cwd=tmp_path).stdout)
        shown = herd("status", cwd=tmp_path).stdout
        assert f"on {socket.gethostname()} (pid {w.pid}): active, held 1, cpu=3 " in shown
        assert re.search(r"mem=4000, last heartbeat \d+ s ago", shown), shown
        assert "interrupted" not in shown  # the submitting herd is gone: workers serve the run
    finally:
        w.send_signal(signal.SIGINT)
        w.communicate(timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("ahead", [(), ("--ahead", "1")], ids=["ahead-auto", "ahead-1"])
def test_random_dags_failures_and_killed_workers(
    tmp_path: Path, store_url: str, shared: Store, ahead: tuple[str, ...]
) -> None:
    """Every task succeeds exactly once or fails after its retries; no two live attempts of a
    task; the tape pool (2) is never exceeded — from the tasks' own logs. With ``--ahead 1``
    the killed workers also hold tasks claimed ahead (and the pool slots they take)."""
    rng = random.Random(14)
    n = 40
    tasks: list[dict[str, Any]] = []
    for i in range(n):
        needs = sorted({f"t{rng.randrange(i)}" for _ in range(rng.randrange(3))}) if i else []
        fail_below = rng.choice([0, 0, 0, 2, 3])
        task = {
            "name": f"t{i}",
            "needs": needs,
            "retries": rng.choice([0, 1, 2]),
            "backoff": 0.1,
            "cmd": logged(f"sleep {rng.uniform(0.05, 0.6):.2f}", fail_below),
        }
        if rng.random() < 0.3:
            task["resources"] = {"cpu": 1, "tape": 1}
        tasks.append(task)
    spec = write_spec(tmp_path, tasks, limits={"tape": 2})
    herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    wid = workflow_id(shared)
    # a live worker that cannot renew its lease in time loses its tasks, which may then run
    # twice at once (by design, and what this test would flag): a loaded machine (load 13+)
    # can stall a worker past 1 s; a killed worker's tasks come back after 3 s as well
    lease = "3"
    argv = ("--lease", lease, "--cpus", "2", *ahead)
    live = [worker(store_url, tmp_path, *argv) for _ in range(4)]
    for _ in range(3):  # kill a worker that holds a task, start another

        def holding() -> list[subprocess.Popen[str]]:
            held = {w.pid for w in shared.workers() if w.held and w.state == "active"}
            return [p for p in live if p.pid in held]

        wait_for(lambda: bool(holding()) or shared.runs(wid)[-1].status != "running")
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the middle of its tasks
        victims = holding()
        if not victims:
            break
        victim = rng.choice(victims)
        live.remove(victim)
        victim.kill()
        victim.communicate()
        live.append(worker(store_url, tmp_path, *argv))
    wait_for(lambda: shared.runs(wid)[-1].status != "running", timeout=90)
    finish(*live)
    records = shared.task_records(wid)
    attempts = shared.attempts(wid)
    by_task: dict[str, list[Any]] = defaultdict(list)
    for a in attempts:
        by_task[a.task].append(a)
    spans = intervals(tmp_path)
    for t in tasks:
        name, rec, mine = t["name"], records[t["name"]], by_task[t["name"]]
        oks = [a for a in mine if a.state is TaskState.SUCCEEDED]
        if rec.state is TaskState.SUCCEEDED:
            assert len(oks) == 1, name
            lost = {a.number for a in mine if a.kill_reason.startswith("lost")}
            logged_ok = {k[1] for k, iv in spans.items() if k[0] == name and iv.ok}
            assert logged_ok - lost == {oks[0].number}, name
        elif rec.state is TaskState.FAILED:
            assert not oks and len(mine) == t["retries"] + 1, name
        else:
            assert rec.state is TaskState.CANCELLED, (name, rec.state)
    lost = [a for a in attempts if a.kill_reason.startswith("lost")]
    print(f"\n{len(attempts)} attempts, {len(lost)} lost with their workers")
    assert lost, "no worker was killed holding a task: the test proved nothing"
    ended = {(a.task, a.number): a.end for a in attempts}
    _no_overlap(spans, ended)
    _pool_held(spans, ended, {t["name"] for t in tasks if "resources" in t}, capacity=2)


def _span(iv: Interval, ended: dict[tuple[str, int], float | None]) -> tuple[float, float]:
    """An attempt's life: its logged end, else (killed) when the store took it back."""
    end = iv.end if iv.end is not None else ended.get((iv.task, iv.attempt))
    assert end is not None, f"{iv.task} attempt {iv.attempt} never ended"
    return iv.start, end


def _no_overlap(spans: dict[tuple[str, int], Interval], ended: Any) -> None:
    lives: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for iv in spans.values():
        lives[iv.task].append(_span(iv, ended))
    for task, life in lives.items():
        life.sort()
        for (_, end), (start, _) in itertools.pairwise(life):
            assert start >= end, f"two live attempts of {task}"


def _pool_held(
    spans: dict[tuple[str, int], Interval], ended: Any, users: set[str], capacity: int
) -> None:
    edges = []
    for iv in spans.values():
        if iv.task in users:
            start, end = _span(iv, ended)
            edges += [(start, 1), (end, -1)]
    held = 0
    for _, delta in sorted(edges, key=lambda e: (e[0], e[1])):
        held += delta
        assert held <= capacity, "the tape pool was exceeded"


def test_a_worker_waits_for_a_workflow_not_submitted_yet(tmp_path: Path, store_url: str) -> None:
    w = worker(store_url, tmp_path, "--workflow", "later", "--idle-exit", "0.5")
    out, err = w.communicate(timeout=30)
    assert w.returncode == 0, err
    assert "not submitted yet: later" in err and "idle for --idle-exit 0.5 s" in out


def test_a_workflow_recorded_but_not_yet_queued_is_waited_for(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    """``herd submit`` records the workflow before it queues its tasks: a worker serving it and
    a finished workflow must not see it finished in between."""
    done = write_spec(tmp_path, [{"name": "a", "cmd": "true"}], name="done")
    herd("submit", str(done), "--store", store_url, cwd=tmp_path)
    finish(worker(store_url, tmp_path, "--workflow", "done"))
    later = write_spec(tmp_path, [{"name": "b", "cmd": logged("true")}], name="later")
    shared.add_workflow(load(later))  # what submit commits first
    w = worker(store_url, tmp_path, "--workflow", "done", "--workflow", "later")
    wait_for(lambda: len(shared.workers()) == 2)
    herd("submit", str(later), "--store", store_url, cwd=tmp_path)
    (out,) = finish(w)
    assert "the workflows it serves are finished" in out
    assert (tmp_path / LOG).read_text().count("end") == 1  # b ran


def test_submit_of_a_bad_spec_says_what_is_wrong(tmp_path: Path, store_url: str) -> None:
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true", "needs": ["ghost"]}])
    done = herd("submit", str(spec), "--store", store_url, cwd=tmp_path)
    assert done.returncode == 2 and "ghost" in done.stderr and "Traceback" not in done.stderr
    store = open_store(store_url)  # refused before anything was written
    try:
        assert store.workflows() == []
    finally:
        store.close()
