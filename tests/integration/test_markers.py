"""Done markers: made in the loop, or by a helper thread where creating them is slow, yet always on
disk before herd records or reports a success."""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import json
import os
import re
import stat
import tempfile
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


def _inodes(paths: list[Path]) -> list[tuple[int, int]]:
    return [(p.stat().st_dev, p.stat().st_ino) for p in paths]


def _made(paths: list[Path], *, threaded: bool = False) -> list[tuple[int, int]]:
    """The (device, inode) of each of ``paths``, made as the markers of one run."""
    with contextlib.closing(Markers(threaded=threaded)) as markers:
        markers.create([str(p) for p in paths])
        markers.flush()
    return _inodes(paths)


@pytest.mark.parametrize("threaded", [False, True], ids=["in the loop", "threaded"])
def test_a_runs_markers_are_hard_links_to_one_empty_file(tmp_path: Path, threaded: bool) -> None:
    """One inode for all of a run's markers, in any folder of a file system: an empty regular
    file of the user's, unnamed but for the markers (it goes when they do)."""
    paths = [tmp_path / f"t{i}.log_done" for i in range(30)] + [tmp_path / "tf2" / "x.log_done"]
    inodes = _made(paths, threaded=threaded)
    assert set(inodes) == {inodes[0]}
    info = paths[0].stat()
    assert (info.st_nlink, info.st_size, info.st_uid) == (len(paths), 0, os.getuid())
    assert stat.S_ISREG(info.st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in paths[:-1]] + ["tf2"]
    )  # nothing else in the folder


def test_markers_on_another_file_system_link_to_a_file_there(tmp_path: Path) -> None:
    """Each file system gets its own file to link to (/dev/shm: tmpfs, not the disk tmp_path is
    on), made at its first marker."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        assert os.stat(other).st_dev != tmp_path.stat().st_dev, "needs /dev/shm apart from /tmp"
        here = [tmp_path / f"a{i}.log_done" for i in range(3)]
        there = [Path(other) / f"b{i}.log_done" for i in range(3)]
        with contextlib.closing(Markers()) as markers:
            markers.create([str(p) for p in [here[0], there[0], here[1], there[1]]])
            markers.create([str(p) for p in [here[2], there[2]]])
            markers.flush()
        assert len(set(_inodes(here))) == len(set(_inodes(there))) == 1
        assert _inodes(here)[0] != _inodes(there)[0]


def test_markers_made_after_every_earlier_one_was_removed_link_to_a_new_file(
    tmp_path: Path,
) -> None:
    """Once the last name of the file is gone (a user cleaned up mid-run), no link to it can be
    made again: the next marker starts a new one."""
    first = [tmp_path / f"a{i}.log_done" for i in range(3)]
    later = [tmp_path / f"b{i}.log_done" for i in range(3)]
    with contextlib.closing(Markers()) as markers:
        markers.create([str(p) for p in first])
        for p in first:
            p.unlink()
        markers.create([str(p) for p in later])
        markers.flush()
    assert len(set(_inodes(later))) == 1
    assert later[0].stat().st_nlink == len(later)


def test_a_file_at_the_link_limit_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ext4 allows 65,000 links to a file; the marker past the limit links to a new one (the
    limit stood in for by a link that fails with EMLINK once)."""
    link, calls = os.link, []

    def limited(*args: object, **kwargs: object) -> None:
        calls.append(args)
        if len(calls) == 3:
            raise OSError(errno.EMLINK, "Too many links")
        link(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(herd.exec.markers.os, "link", limited)
    paths = [tmp_path / f"t{i}.log_done" for i in range(5)]
    inodes = _made(paths)
    assert inodes[0] == inodes[1] and inodes[2] == inodes[3] == inodes[4] != inodes[0]


def test_a_link_refused_for_any_other_reason_leaves_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A security module refusing the link through /proc (its EACCES stood in for) costs the
    marker its link, not the run."""

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(herd.exec.markers.os, "link", refused)
    paths = [tmp_path / f"t{i}.log_done" for i in range(3)]
    assert len(set(_made(paths))) == 3


def test_where_no_unnamed_file_can_be_made_each_marker_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without O_TMPFILE (NFS before 4.2, FUSE) gets plain empty files, as
    before (its EOPNOTSUPP stood in for)."""

    real_open = os.open

    def unsupported(path: str, flags: int, mode: int = 0o777) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, mode)

    monkeypatch.setattr(herd.exec.markers.os, "open", unsupported)
    paths = [tmp_path / f"t{i}.log_done" for i in range(3)]
    assert len(set(_made(paths))) == 3
    assert all(p.stat().st_nlink == 1 for p in paths)


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
    markers = list(tmp_path.rglob("*.log_done"))
    assert {m.stat().st_ino for m in markers} == {markers[0].stat().st_ino}  # links of one file
    assert markers[0].stat().st_nlink == len(stages)


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

    def logged_make(paths: list[str | Path], links: object) -> ExecutionError | None:
        log.extend(("marker", Path(p).name.removesuffix(".log_done")) for p in paths)
        return make(paths, links)  # type: ignore[arg-type]

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
