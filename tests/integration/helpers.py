"""Helpers shared by the integration tests: write a spec, run it for real, read the store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herd.core.model import Limits, TaskState
from herd.formats import load
from herd.run.local import RunOptions, RunResult, run_workflow
from herd.run.progress import QuietReporter
from herd.store import open_store
from herd.store.workdir import Workdir


def write_spec(root: Path, tasks: list[dict[str, Any]], name: str = "wf", **top: Any) -> Path:
    path = root / f"{name}.json"
    path.write_text(json.dumps({"name": name, "tasks": tasks, **top}))
    return path


def run(spec: Path, workdir: Path, **kw: Any) -> RunResult:
    kw.setdefault("limits", Limits({"cpu": 2, "mem": 8000}))
    options = RunOptions(workdir=workdir, grace=1.0, **kw)
    return run_workflow(load(spec), options, QuietReporter(io.StringIO()))


def states(workdir: Path, name: str = "wf") -> dict[str, TaskState]:
    store = open_store(Workdir(workdir).db_path)
    try:
        wf = store.workflow(name)
        assert wf is not None
        return {n: r.state for n, r in store.task_records(wf.id).items()}
    finally:
        store.close()


def attempts(workdir: Path, name: str = "wf") -> dict[str, int]:
    store = open_store(Workdir(workdir).db_path)
    try:
        wf = store.workflow(name)
        assert wf is not None
        out: dict[str, int] = {}
        for a in store.attempts(wf.id):
            out[a.task] = out.get(a.task, 0) + 1
        return out
    finally:
        store.close()


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for something another process does (not a fixed sleep: returns as soon as it holds)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def herd_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "herd.cli", *args]


def herd(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``herd ARGS`` run to its end in ``cwd``."""
    return subprocess.run(herd_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout)


def worker(store: str, cwd: Path, *args: str) -> subprocess.Popen[str]:
    """A ``herd worker`` on ``store``, started (4 GB of memory unless ``args`` say)."""
    argv = herd_cmd("worker", "--store", store, "--mem", "4000", *args)
    return subprocess.Popen(
        argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def processes_with_token_of(herd_pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if f"HERD_TASK_TOKEN={herd_pid}:".encode() in env and alive(int(entry)):
            found.append(int(entry))
    return found


#: task rows as a herd from before the ``cancelled_by`` column wrote them (name, state, reason):
#: the failure that cancelled a task is only in the words of its reason
LEGACY_CANCELLED = [
    ("a", "failed", "exit 1"),
    ("b", "cancelled", "needs 'a', which failed"),
    ("c", "cancelled", "not started: 'a' failed (--keep-going runs the rest)"),
    ("d", "cancelled", "not started: the run is stopping"),
]
