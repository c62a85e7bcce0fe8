"""The monitor: /proc parsing, tree accounting, the sampling schedule, orphan attribution.

The accounting and the schedule take ``now`` (and a fake ``/proc`` table) as arguments, so most of
these tests need no process; the rest read real processes started here.
"""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.exec.monitor import (
    CLK_TCK,
    TOKEN_VAR,
    Monitor,
    ProcStat,
    TreeAccount,
    descendants,
    is_alive,
    open_children,
    own_children,
    parse_stat,
    read_stat,
    read_token,
    scan,
    token_within,
)


def proc(pid: int, ppid: int = 1, *, cpu: float = 0.0, rss: int = 0, **kw: object) -> ProcStat:
    """A fake process; ``cpu`` in seconds."""
    fields: dict[str, object] = {"pgid": pid, "sid": pid, "state": "S", "start": pid * 7}
    fields.update(kw)
    return ProcStat(pid=pid, ppid=ppid, cpu=round(cpu * CLK_TCK), rss=rss, **fields)  # type: ignore[arg-type]


def await_exit(pid: int, within: float = 10.0) -> None:
    """Block until ``pid`` has exited (a pidfd becomes readable), without polling."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], within)
        assert ready, f"pid {pid} still runs after {within} s"
    finally:
        os.close(fd)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``sh`` with two ``sleep`` children, returned once both children have started."""
    fifo = tmp_path / "ready"
    os.mkfifo(fifo)
    script = f"sleep 30 & sleep 30 & echo ready > {fifo}; wait"
    with subprocess.Popen(["/bin/sh", "-c", script], start_new_session=True) as p:
        with open(fifo) as f:  # blocks until the shell has forked both sleeps
            assert f.read() == "ready\n"
        yield p
        os.killpg(p.pid, 9)


# -- /proc -------------------------------------------------------------------------------------


def test_parse_stat_survives_spaces_and_parentheses_in_the_name() -> None:
    line = (
        b"42 (a) b (c)) R 7 42 40 0 -1 0 0 0 0 0 150 50 3 4 20 0 1 0 999 0 25 18446744073709551615"
    )
    stat = parse_stat(42, line)
    assert (stat.pid, stat.ppid, stat.pgid, stat.sid, stat.state) == (42, 7, 42, 40, "R")
    assert (stat.cpu, stat.start, stat.rss) == (200, 999, 25 * os.sysconf("SC_PAGE_SIZE"))


def test_read_stat_of_this_process() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None
    assert stat.ppid == os.getppid() and stat.alive and stat.rss > 1_000_000


def test_a_zombie_is_not_alive_and_a_reaped_process_is_gone() -> None:
    with subprocess.Popen(["true"]) as p:
        await_exit(p.pid)
        stat = read_stat(p.pid)
        assert stat is not None and stat.state == "Z"
        assert not is_alive(p.pid)
    assert read_stat(p.pid) is None
    assert not is_alive(p.pid)


def test_scan_and_descendants_see_a_real_tree(tree: subprocess.Popen[bytes]) -> None:
    table = scan()
    assert os.getpid() in table
    below = descendants(table, tree.pid)
    assert len(below) == 2
    assert all(table[p].pgid == tree.pid for p in below)
    assert {tree.pid, *below} <= set(descendants(table, os.getpid()))


def test_own_children_lists_a_child(tree: subprocess.Popen[bytes]) -> None:
    assert tree.pid in own_children()


def test_own_children_reads_a_kept_file_again() -> None:
    fd = open_children()
    assert fd is not None
    try:
        child = subprocess.Popen(["sleep", "30"])
        assert child.pid in own_children(fd)
        child.kill()
        child.wait()
        assert child.pid not in own_children(fd), "the file is read again, not its first contents"
    finally:
        os.close(fd)


def test_read_token_reads_the_environment_of_another_process() -> None:
    env = {**os.environ, TOKEN_VAR: "12:3/45:6"}
    script = "echo ready; read line"  # answers once past exec: the environment is in place
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE}
    with subprocess.Popen(["/bin/sh", "-c", script], env=env, **pipes) as p:  # type: ignore[call-overload]
        assert p.stdout.readline() == b"ready\n"
        assert read_token(p.pid) == "12:3/45:6"
    assert read_token(p.pid) is None
    assert read_token(os.getpid()) == os.environ.get(TOKEN_VAR)


@pytest.mark.parametrize(
    ("token", "owner", "within"),
    [
        ("5:1", "5:1", True),
        ("5:1/9:2", "5:1", True),
        ("5:12", "5:1", False),
        ("5:2", "5:1", False),
        (None, "5:1", False),
    ],
)
def test_token_within(token: str | None, owner: str, within: bool) -> None:
    assert token_within(token, owner) is within


# -- accounting --------------------------------------------------------------------------------


def test_cpu_is_cores_since_the_previous_sample() -> None:
    account = TreeAccount(start=0.0)
    assert account.update(1.0, [proc(10, cpu=1.0)]).cpu == pytest.approx(1.0)
    usage = account.update(2.0, [proc(10, cpu=1.5), proc(11, 10, cpu=0.5)])
    assert usage.cpu == pytest.approx(1.0)
    assert usage.cpu_seconds == pytest.approx(2.0)


def test_a_process_that_left_keeps_its_cpu_time() -> None:
    account = TreeAccount(start=0.0)
    account.update(1.0, [proc(10, cpu=0.5), proc(11, 10, cpu=0.5)])
    usage = account.update(2.0, [proc(10, cpu=1.0)])  # 11 exited
    assert usage.cpu_seconds == pytest.approx(1.5)
    assert usage.cpu == pytest.approx(0.5)
    assert account.cpu_seconds == pytest.approx(1.5)


def test_a_reused_pid_is_a_new_process() -> None:
    account = TreeAccount(start=0.0)
    account.update(1.0, [proc(10, cpu=1.0), proc(11, 10, cpu=1.0)])
    usage = account.update(2.0, [proc(10, cpu=1.0), proc(11, 10, cpu=0.25, start=12345)])
    assert usage.cpu_seconds == pytest.approx(2.25)


def test_zombies_count_for_cpu_only_and_peak_is_the_largest_rss() -> None:
    account = TreeAccount(start=0.0)
    account.update(1.0, [proc(10, rss=300), proc(11, 10, rss=700)])
    usage = account.update(2.0, [proc(10, rss=200), proc(11, 10, cpu=1.0, rss=0, state="Z")])
    assert (usage.rss, usage.processes, usage.pids) == (200, 1, (10,))
    assert usage.cpu == pytest.approx(1.0)
    assert account.peak == 1000


# -- schedule and trees ------------------------------------------------------------------------


class FakeProc:
    """A fake /proc table and environment tokens for a Monitor."""

    def __init__(self, *procs: ProcStat, tokens: dict[int, str] | None = None) -> None:
        self.table = {p.pid: p for p in procs}
        self.tokens = tokens or {}
        self.token_reads: list[int] = []

    def scan(self) -> dict[int, ProcStat]:
        return dict(self.table)

    def token(self, pid: int) -> str | None:
        self.token_reads.append(pid)
        return self.tokens.get(pid)

    def monitor(self, **kw: object) -> Monitor:
        return Monitor(scanner=self.scan, tokens=self.token, own_pid=1, **kw)  # type: ignore[arg-type]


def test_first_sample_at_0_2_s_then_the_interval_doubles_up_to_the_cap() -> None:
    fake = FakeProc(proc(10))
    mon = fake.monitor(cap=5.0)
    mon.watch(10, "1:1", now=100.0)
    assert mon.sample(100.1) == []
    times = []
    for _ in range(7):
        due = mon.next_due()
        assert due is not None
        times.append(round(due - 100.0, 6))
        assert [pid for pid, _ in mon.sample(due)] == [10]
    assert times == [0.2, 0.6, 1.4, 3.0, 6.2, 11.2, 16.2]


def test_forgotten_tasks_are_not_sampled() -> None:
    fake = FakeProc(proc(10), proc(20))
    mon = fake.monitor()
    mon.watch(10, "1:1", now=0.0)
    mon.watch(20, "1:2", now=0.0)
    account = mon.forget(10)
    assert account is not None and mon.forget(10) is None
    assert [pid for pid, _ in mon.sample(0.2)] == [20]
    mon.forget(20)
    assert mon.next_due() is None


def test_samples_due_close_together_share_a_pass() -> None:
    fake = FakeProc(proc(10), proc(20))
    mon = fake.monitor()
    mon.watch(10, "1:1", now=0.0)
    mon.watch(20, "1:2", now=0.03)
    assert sorted(pid for pid, _ in mon.sample(0.2)) == [10, 20]


def test_a_slow_scan_spaces_out_the_next_pass() -> None:
    clock = iter([0.0, 0.1])  # the scan takes 0.1 s
    fake = FakeProc(proc(10))
    mon = fake.monitor(timer=lambda: next(clock))
    mon.watch(10, "1:1", now=0.0)
    mon.watch(20, "1:2", now=0.1)
    mon.sample(0.2)
    assert mon.next_due() == pytest.approx(0.2 + 4 * 0.1)
    assert mon.sample(0.5) == []


def test_a_tree_holds_descendants_and_attributed_orphans_only() -> None:
    fake = FakeProc(
        proc(10, 1),  # the task, a child of herd (pid 1 here)
        proc(11, 10, rss=1),  # its child
        proc(12, 11, rss=2),  # its grandchild
        proc(20, 1, sid=10, pgid=20, rss=4),  # an orphan still in the task's session
        proc(30, 1, rss=8),  # a daemon that left the session: its token says whose it is
        proc(31, 30, rss=16),  # the daemon's child
        proc(40, 1, rss=32),  # a nested herd's task under our task
        proc(50, 1, rss=64),  # another task's daemon
        proc(60, 1, rss=128),  # a child of herd that is no task's
        proc(70, 1),  # the other task
        tokens={30: "1:1", 40: "1:1/99:4", 50: "1:2", 31: "1:1"},
    )
    mon = fake.monitor()
    mon.watch(10, "1:1", now=0.0)
    mon.watch(70, "1:2", now=0.0)
    usage = dict(mon.sample(0.2))
    assert sorted(usage[10].pids) == [10, 11, 12, 20, 30, 31, 40]
    assert usage[10].rss == 1 + 2 + 4 + 8 + 16 + 32
    assert sorted(usage[70].pids) == [50, 70]
    fake.token_reads.clear()
    mon.sample(mon.next_due() or 0.0)
    assert sorted(fake.token_reads) == [20, 60], "found tokens are cached, missing ones re-read"


def test_real_tree_is_sampled_whole(tree: subprocess.Popen[bytes]) -> None:
    mon = Monitor(own_pid=os.getpid())
    mon.watch(tree.pid, "none", now=0.0)
    [(pid, usage)] = mon.sample(0.2)
    assert pid == tree.pid
    assert usage.processes == 3
    assert usage.rss > 500_000
