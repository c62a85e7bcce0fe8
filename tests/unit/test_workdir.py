"""The .herd/ folder: its paths, and the lock that keeps one herd per working directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.errors import LockedError
from herd.store.workdir import Workdir, safe_name

#: takes the lock of the working directory argv[1], says so, and holds it until stdin closes
HOLDER = """
import sys
from herd.store.workdir import Workdir

with Workdir(sys.argv[1]).lock():
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``tmp_path``'s lock."""
    argv = [sys.executable, "-c", HOLDER, str(tmp_path)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "locked\n"
        yield proc
        if proc.poll() is None:
            proc.kill()


def test_paths(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    assert wd.state_dir == tmp_path / ".herd"
    assert wd.db_path == tmp_path / ".herd" / "herd.db"
    assert wd.lock_path == tmp_path / ".herd" / "lock"
    assert wd.logs_dir == tmp_path / ".herd" / "logs"
    assert wd.task_log_paths("sim", "reco_1", 2) == (
        tmp_path / ".herd" / "logs" / "sim" / "reco_1.2.out",
        tmp_path / ".herd" / "logs" / "sim" / "reco_1.2.err",
    )
    assert not wd.state_dir.exists()  # computing paths creates nothing


def test_make_logs_dir(tmp_path: Path) -> None:
    path = Workdir(tmp_path).make_logs_dir("sim")
    assert path.is_dir()
    assert Workdir(tmp_path).make_logs_dir("sim") == path


@pytest.mark.parametrize("name", ["a/b", "..", ".", "", "x" * 400, "tf 1;rm -rf", "é/ü", "a%2Fb"])
def test_safe_name_is_one_short_file_name(name: str) -> None:
    safe = safe_name(name)
    assert "/" not in safe and safe not in ("", ".", "..")
    assert len(safe.encode()) <= 200


def test_safe_names_of_distinct_names_differ() -> None:
    names = ["a/b", "a_b", "a%2Fb", "a b", "a+b", "", ".", "..", "x" * 300, "x" * 301]
    assert len({safe_name(n) for n in names}) == len(names)
    assert safe_name("tf1_sim-2.0") == "tf1_sim-2.0"  # ordinary names stay readable


def test_lock_writes_the_holder_and_clears_it_on_release(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    with wd.lock() as me:
        assert me.pid == os.getpid()
        assert wd.holder() == me
    assert wd.holder() is None
    with wd.lock():  # released: can be taken again
        pass


def test_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    first, second = Workdir(tmp_path), Workdir(tmp_path)
    with (
        first.lock(),
        pytest.raises(LockedError, match=f"kill {os.getpid()}"),
        second.lock(),
    ):
        pass


def test_lock_held_by_another_process_is_refused_at_once(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(LockedError) as caught, Workdir(tmp_path).lock():
        pass
    message = str(caught.value)
    assert f"pid {holder.pid}" in message
    assert "since" in message
    assert f"kill {holder.pid}" in message
    assert str(tmp_path) in message


def test_lock_of_a_killed_process_does_not_block(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    wd = Workdir(tmp_path)
    stale = wd.holder()
    assert stale is not None and stale.pid == holder.pid  # the file still names the dead process
    with wd.lock() as me:
        assert wd.holder() == me


def test_tasks_started_under_the_lock_do_not_inherit_it(tmp_path: Path) -> None:
    wd = Workdir(tmp_path)
    argv = [sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"]
    with wd.lock():
        task = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, close_fds=False
        )
    assert task.stdout is not None
    try:
        assert task.stdout.readline() == "up\n"  # it runs its own program now, not a fork of ours
        with wd.lock():  # the task outlives the run and still does not hold the lock
            assert task.poll() is None
    finally:
        task.communicate()
