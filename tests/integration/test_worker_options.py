"""``herd worker``'s limits and stops, through the command on both stores: ``--max-tasks``,
``--end-time`` (claims only tasks expected to end before it), ``--idle-exit``, its own
``--gpus`` and ``--limit`` pools, and ``-n 4``; tasks log their own starts and ends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from herd.core.model import TaskState
from herd.store.base import Store

from .helpers import herd, worker, write_spec

LOG = "events.log"


def work(store: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return herd("worker", "--store", store, "--mem", "4000", *args, cwd=cwd, timeout=120)


def submit(store: str, spec: Path) -> None:
    done = herd("submit", str(spec), "--store", store, cwd=spec.parent)
    assert done.returncode == 0, done.stderr


def logged(cmd: str) -> str:
    return f'echo "start $HERD_TASK $(date +%s.%N)" >> {LOG}; {cmd}; echo "end $HERD_TASK $(date +%s.%N)" >> {LOG}'


def overlap(root: Path) -> int:
    """The most tasks that ran at once, from the tasks' own start and end lines."""
    events = []
    for line in (root / LOG).read_text().splitlines():
        kind, _, at = line.split()
        events.append((float(at), 1 if kind == "start" else -1))
    most = now = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        now += step
        most = max(most, now)
    return most


def states(store: Store) -> dict[str, TaskState]:
    rec = store.workflow("wf")
    assert rec is not None
    return {name: r.state for name, r in store.task_records(rec.id).items()}


def test_max_tasks_stops_after_starting_that_many(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    submit(store_url, write_spec(tmp_path, [{"name": f"t{i}", "cmd": "true"} for i in range(5)]))
    done = work(store_url, tmp_path, "--cpus", "1", "--max-tasks", "2")
    assert done.returncode == 0, done.stderr
    assert "started --max-tasks 2" in done.stdout
    assert shared.queue_counts() == {TaskState.READY: 3, TaskState.SUCCEEDED: 2}


def test_end_time_claims_only_what_ends_before_it(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    tasks = [
        {"name": "short", "cmd": "true", "duration": 1},
        {"name": "long", "cmd": "true", "duration": 3600},
    ]
    submit(store_url, write_spec(tmp_path, tasks))
    t0 = time.monotonic()
    # +8: the worker may take seconds to start on a loaded machine (with +2 it once began past
    # the short task's last start, at load 14)
    done = work(store_url, tmp_path, "--cpus", "2", "--end-time", "+8")
    assert done.returncode == 0, done.stderr
    assert "reached --end-time" in done.stdout
    assert 7.5 < time.monotonic() - t0 < 30
    rec = shared.workflow("wf")
    assert rec is not None
    assert shared.queue_states(rec.id, ["short", "long"]) == {
        "short": TaskState.SUCCEEDED,
        "long": TaskState.READY,
    }


def test_idle_exit_stops_a_worker_with_nothing_to_do(tmp_path: Path, store_url: str) -> None:
    t0 = time.monotonic()
    done = work(store_url, tmp_path, "--idle-exit", "1")
    assert done.returncode == 0, done.stderr
    assert "idle for --idle-exit 1 s" in done.stdout
    assert time.monotonic() - t0 < 15


def test_a_workers_own_gpus_and_pools_bound_what_runs_at_once(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    gpu = [
        {"name": f"g{i}", "cmd": logged("sleep 0.3"), "resources": {"cpu": 0.1, "gpu": 1}}
        for i in range(4)
    ]
    tape = [
        {"name": f"t{i}", "cmd": logged("sleep 0.3"), "resources": {"cpu": 0.1, "tape": 1}}
        for i in range(4)
    ]
    submit(store_url, write_spec(tmp_path, gpu))
    assert work(store_url, tmp_path, "--cpus", "4", "--gpus", "1").returncode == 0
    assert overlap(tmp_path) == 1  # one GPU: one at a time
    (tmp_path / LOG).unlink()
    submit(store_url, write_spec(tmp_path, tape, name="tapes", limits={"tape": 4}))
    done = work(store_url, tmp_path, "--cpus", "4", "--limit", "tape=2")
    assert done.returncode == 0, done.stderr
    assert overlap(tmp_path) == 2  # the workflow allows 4, this worker 2
    assert set(states(shared).values()) == {TaskState.SUCCEEDED}


def test_n_4_starts_four_workers_that_share_the_work(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    tasks = [{"name": f"t{i}", "cmd": logged("sleep 0.5")} for i in range(8)]
    submit(store_url, write_spec(tmp_path, tasks))
    done = work(store_url, tmp_path, "-n", "4", "--cpus", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the workflows it serves are finished") == 4
    assert [dict(w.resources)["cpu"] for w in shared.workers()] == [1.0] * 4
    assert len({w.pid for w in shared.workers()}) == 4
    assert overlap(tmp_path) >= 2  # (all 4 at once, unless the machine is loaded)
    assert set(states(shared).values()) == {TaskState.SUCCEEDED}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_worker_waits_without_spinning_and_wakes_on_a_submit(
    tmp_path: Path, store_url: str
) -> None:
    """PostgreSQL: LISTEN/NOTIFY; SQLite: the file's data version, read from shared memory."""
    w = worker(store_url, tmp_path, "--cpus", "1", "--idle-exit", "60")
    try:
        time.sleep(2)  # started and idle: nothing to await
        before = _cpu_seconds(w.pid)
        time.sleep(3)  # idle: the CPU it burns meanwhile is what is measured
        idle = _cpu_seconds(w.pid) - before
        assert idle < 0.5, f"an idle worker used {idle:.2f} s of CPU in 3 s"
        spec = write_spec(tmp_path, [{"name": "a", "cmd": logged("true")}])
        submit(store_url, spec)
        submitted = time.time()
        deadline = time.monotonic() + 30
        while not (tmp_path / LOG).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        started = float((tmp_path / LOG).read_text().split()[2])
        assert started - submitted < 1.5, f"woke {started - submitted:.2f} s after the submit"
    finally:
        w.send_signal(signal.SIGTERM)
        w.communicate(timeout=30)


def test_workers_start_the_critical_path_first(tmp_path: Path, store_url: str) -> None:
    """``herd submit`` orders the queue as the scheduler would: the chain with the longest known
    duration first, though declared last."""
    tasks = [
        {"name": "side", "cmd": logged("true"), "duration": 1},
        {"name": "head", "cmd": logged("true"), "duration": 5},
        {"name": "tail", "cmd": logged("true"), "duration": 5, "needs": ["head"]},
    ]
    submit(store_url, write_spec(tmp_path, tasks))
    assert work(store_url, tmp_path, "--cpus", "1").returncode == 0
    lines = (tmp_path / LOG).read_text().splitlines()
    starts = [line.split()[1] for line in lines if line.startswith("start")]
    assert starts[0] == "head" and sorted(starts) == ["head", "side", "tail"]
