"""Tasks a worker claims ahead (``--ahead``, or by their durations): held claimed while others
run, so the next starts at once; given back at once when the worker drains or reaches its
``--end-time``, never beyond ``--max-tasks``. On both stores; tasks log their own starts."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from herd.core.model import TaskState
from herd.store.base import Store

from .helpers import alive, herd, wait_for, worker, write_spec

LOG = "events.log"


def logged(cmd: str) -> str:
    return f'echo "start $HERD_TASK $HERD_ATTEMPT" >> {LOG}; {cmd}'


def starts(root: Path) -> list[tuple[str, int]]:
    """(task, attempt) of every start, from the tasks' own lines."""
    if not (root / LOG).exists():
        return []
    return [
        (t, int(n)) for _, t, n in (line.split() for line in (root / LOG).read_text().splitlines())
    ]


def submit(store: str, spec: Path) -> None:
    done = herd("submit", str(spec), "--store", store, cwd=spec.parent)
    assert done.returncode == 0, done.stderr


def wid(store: Store) -> int:
    rec = store.workflow("wf")
    assert rec is not None
    return rec.id


def stop(w: subprocess.Popen[str]) -> str:
    """Stop a worker at once (two signals: drain, then stop what runs); its output."""
    if w.poll() is None:
        w.send_signal(signal.SIGTERM)
        w.send_signal(signal.SIGTERM)
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    return out


def test_tasks_claimed_ahead_go_back_at_once_on_sigterm_and_another_worker_runs_them(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    submit(
        store_url,
        write_spec(tmp_path, [{"name": f"t{i}", "cmd": logged("sleep 60")} for i in range(4)]),
    )
    a = worker(store_url, tmp_path, "--cpus", "1", "--ahead", "2", "--drain", "60")
    b = None
    try:
        # one core: one task runs, two more are held claimed ahead
        wait_for(lambda: [w.held for w in shared.workers()] == [3] and len(starts(tmp_path)) == 1)
        a.send_signal(signal.SIGTERM)  # drains: the running task may go on for 60 s
        wait_for(lambda: shared.queue_counts([wid(shared)]).get(TaskState.READY) == 3)
        assert alive(a.pid)  # the held ones came back before the drain ended
        b = worker(store_url, tmp_path, "--cpus", "3", "--drain", "0")
        wait_for(lambda: len(starts(tmp_path)) == 4)
        assert alive(a.pid)
        ran = starts(tmp_path)
        assert sorted(t for t, _ in ran) == ["t0", "t1", "t2", "t3"]
        assert sorted(n for _, n in ran) == [1, 1, 2, 2]  # the two held ahead: a second attempt
        for name in (t for t, n in ran if n == 2):
            held, _ = shared.attempts(wid(shared), name)
            assert held.state is TaskState.CANCELLED and held.kill_reason.startswith("released")
    finally:
        outs = [stop(w) for w in (a, b) if w is not None]
    assert "3 released" in outs[0]  # the two held ahead, then the running one


def test_claiming_ahead_stays_within_max_tasks(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    submit(store_url, write_spec(tmp_path, [{"name": f"t{i}", "cmd": "true"} for i in range(5)]))
    w = worker(store_url, tmp_path, "--cpus", "1", "--ahead", "4", "--max-tasks", "2")
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    assert "started --max-tasks 2" in out
    assert shared.queue_counts() == {TaskState.READY: 3, TaskState.SUCCEEDED: 2}
    assert len(shared.attempts(wid(shared))) == 2  # nothing claimed beyond what it started


def test_tasks_claimed_ahead_go_back_at_the_end_time(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    submit(
        store_url,
        write_spec(tmp_path, [{"name": f"t{i}", "cmd": logged("sleep 4")} for i in range(3)]),
    )
    w = worker(store_url, tmp_path, "--cpus", "1", "--ahead", "2", "--end-time", "+3")
    out, err = w.communicate(timeout=60)
    assert w.returncode == 0, err
    assert "reached --end-time" in out
    assert starts(tmp_path) == [("t0", 1)]
    states = {name: r.state for name, r in shared.task_records(wid(shared)).items()}
    assert states == {"t0": TaskState.SUCCEEDED, "t1": TaskState.READY, "t2": TaskState.READY}
    for name in ("t1", "t2"):
        (held,) = shared.attempts(wid(shared), name)
        assert held.state is TaskState.CANCELLED and held.kill_reason.startswith("released")
