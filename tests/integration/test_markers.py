"""Done markers: made in the loop, or by a helper thread where creating them is slow, yet always on
disk before herd records or reports a success."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import re
import threading
from pathlib import Path

import pytest

import herd.exec.markers
from herd.core.model import Limits, Task, TaskState
from herd.errors import ExecutionError
from herd.exec.base import Launch
from herd.exec.executor import LocalExecutor
from herd.exec.markers import Markers
from herd.formats import load
from herd.run.local import RunOptions, run_workflow
from herd.run.progress import QuietReporter
from tests.integration.helpers import states


@pytest.mark.parametrize("threaded", [False, True], ids=["in the loop", "threaded"])
def test_flush_returns_once_every_marker_exists(tmp_path: Path, threaded: bool) -> None:
    old = tmp_path / "old.log_done"
    old.touch()
    os.utime(old, (1, 1))
    paths = [tmp_path / "tf1" / f"t{i}.log_done" for i in range(50)] + [old]
    with contextlib.closing(Markers(threaded=threaded)) as markers:
        markers.create(paths[:25])
        markers.create(paths[25:])
        markers.flush()
        assert all(p.is_file() for p in paths)
    assert old.stat().st_mtime > 1  # an existing marker is touched, as O2DPG's runner does


@pytest.mark.parametrize("threaded", [False, True], ids=["in the loop", "threaded"])
def test_a_marker_that_cannot_be_made_fails_the_flush_naming_it(
    tmp_path: Path, threaded: bool
) -> None:
    (tmp_path / "file").write_text("not a directory")
    bad, good = tmp_path / "file" / "x.log_done", tmp_path / "y.log_done"
    with contextlib.closing(Markers(threaded=threaded)) as markers:
        markers.create([bad, good])
        with pytest.raises(ExecutionError, match=re.escape(f"cannot write done marker {bad}")):
            markers.flush()
    assert good.exists()


def test_markers_go_to_the_thread_once_the_loop_makes_them_slowly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fast creates stay in the loop (no thread); once they average more than SLOW each, the next
    go to the thread. Fast and slow file systems are stood in for by thresholds every create
    meets (an hour) and none can (zero): this machine's /tmp creates slowly at times."""
    threads = threading.active_count()
    with contextlib.closing(Markers()) as markers:
        monkeypatch.setattr(herd.exec.markers, "SLOW", 3600.0)
        for turn in range(20):
            markers.create([str(tmp_path / f"a{turn}-{i}.log_done") for i in range(3)])
        assert threading.active_count() == threads  # cheap: made in the loop
        monkeypatch.setattr(herd.exec.markers, "SLOW", 0.0)
        markers.create([str(tmp_path / f"b{i}.log_done") for i in range(3)])
        assert threading.active_count() == threads  # made in the loop, and judged slow
        markers.create([str(tmp_path / f"c{i}.log_done") for i in range(3)])
        assert threading.active_count() == threads + 1  # the thread took these
        markers.flush()
    assert len(list(tmp_path.glob("*.log_done"))) == 66


class _Checking(QuietReporter):
    """Checks, whenever herd reports a success, that its marker exists and the store has it."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(io.StringIO())
        self.workdir, self.seen = workdir, 0
        #: the most threads herd's process had while it reported
        self.threads = threading.active_count()

    def finished(self, task: Task, state: TaskState, seconds: float, detail: str) -> None:
        super().finished(task, state, seconds, detail)
        self.threads = max(self.threads, threading.active_count())
        if state is TaskState.SUCCEEDED:
            assert (self.workdir / task.cwd / f"{task.name}.log_done").exists(), task.name
            recorded = states(self.workdir, "workflow")[task.name]
            assert recorded is TaskState.SUCCEEDED, (task.name, recorded)
            self.seen += 1


@pytest.mark.parametrize("slow", [False, True], ids=["fast creates", "slow creates"])
def test_o2dpg_markers_exist_before_success_is_recorded_or_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    """Every success has its marker before it is recorded or shown; a dependent finds its
    predecessor's marker. Where creates are fast (stood in for by a threshold of an hour) herd
    makes them in its loop and starts no thread; where they are slow (a threshold of zero) the
    thread takes them over, with the same promise."""
    monkeypatch.setattr(herd.exec.markers, "SLOW", 0.0 if slow else 3600.0)

    def stage(name: str, cmd: str, needs: list[str], cwd: str) -> dict[str, object]:
        resources = {"cpu": 1, "mem": 100}
        return {"name": name, "cmd": cmd, "needs": needs, "resources": resources, "cwd": cwd}

    stages = [stage(f"t{i}", "true", [], "./") for i in range(60)]
    stages += [
        stage("sim", "true", [], "tf1"),
        stage("reco", "test -e sim.log_done", ["sim"], "tf1"),
    ]
    spec = tmp_path / "workflow.json"
    spec.write_text(json.dumps({"stages": stages}))
    reporter = _Checking(tmp_path)
    options = RunOptions(workdir=tmp_path, limits=Limits({"cpu": 2, "mem": 1000}))
    threads = threading.active_count()
    result = run_workflow(load(spec), options, reporter)
    assert result.status == "succeeded", result
    assert reporter.seen == len(stages)
    assert reporter.threads == (threads + 1 if slow else threads)


def test_a_run_whose_marker_cannot_be_made_stops_with_the_path(tmp_path: Path) -> None:
    (tmp_path / "blocked").write_text("a file where the marker's directory should be")
    task = {"name": "t", "cmd": "true", "done_marker": "blocked/t.done"}
    spec = tmp_path / "wf.json"
    spec.write_text(json.dumps({"name": "wf", "tasks": [task]}))
    options = RunOptions(workdir=tmp_path, limits=Limits({"cpu": 1}))
    with pytest.raises(
        ExecutionError,
        match=re.escape(f"cannot write done marker {tmp_path / 'blocked' / 't.done'}"),
    ):
        run_workflow(load(spec), options, QuietReporter(io.StringIO()))
    assert states(tmp_path).get("t") is not TaskState.SUCCEEDED


def test_a_marker_no_task_waits_for_is_made_after_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot: the task after one that nothing needs starts before that one's marker is made
    (its file creation does not delay the start); after a task that another needs, the marker
    comes first, whichever task starts next, and the dependent finds it."""
    log: list[tuple[str, str]] = []
    make = herd.exec.markers._make

    def logged_make(paths: list[str | Path]) -> ExecutionError | None:
        log.extend(("marker", Path(p).name.removesuffix(".log_done")) for p in paths)
        return make(paths)

    start = LocalExecutor.start

    def logged_start(self: LocalExecutor, launch: Launch) -> int:
        log.append(("start", launch.key[0]))
        return start(self, launch)

    monkeypatch.setattr(herd.exec.markers, "_make", logged_make)
    monkeypatch.setattr(LocalExecutor, "start", logged_start)
    stage = {"cmd": "true", "resources": {"cpu": 1, "mem": 100}, "cwd": "./"}
    stages = [{"name": f"t{i}", "needs": [], **stage} for i in range(5)]
    stages += [{"name": "sim", "needs": [], **stage}, {"name": "reco", "needs": ["sim"], **stage}]
    spec = tmp_path / "workflow.json"
    spec.write_text(json.dumps({"stages": stages}))
    options = RunOptions(workdir=tmp_path, limits=Limits({"cpu": 1, "mem": 1000}))
    result = run_workflow(load(spec), options, QuietReporter(io.StringIO()))
    assert result.status == "succeeded", result
    order = {event: n for n, event in enumerate(log)}
    names = [name for kind, name in log if kind == "start"]
    assert len(names) == len(stages), log
    for before, after in itertools.pairwise(names):
        if before == "sim":
            assert order[("marker", before)] < order[("start", after)], log
        else:
            assert order[("start", after)] < order[("marker", before)], log
    assert order[("marker", "sim")] < order[("start", "reco")], log
