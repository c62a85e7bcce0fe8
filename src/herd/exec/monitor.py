"""Resource sampling of running task trees, read straight from ``/proc``.

This is herd's one way of reading processes (the executor's leftovers and liveness checks use it
too): one scan of ``/proc`` per pass serves every task, which a per-process library call cannot
match at thousands of processes, so herd does not depend on psutil.

What a task's tree is
---------------------
A task's tree is its main process and every descendant of it, plus the *orphans* that belong to
it: processes that lost their parent and were reparented to herd (herd is a child subreaper, see
``exec/signals.py``) and that carry the task's token in their environment (``HERD_TASK_TOKEN``, set
by the executor on every task and inherited by everything the task starts), or whose session or
process group is the task's. A daemon that clears its environment *and* leaves the task's session
cannot be attributed to any task.

One scan per pass
-----------------
A pass reads ``/proc/*/stat`` once (pid, ppid, group, session, state, utime+stime, start time,
rss) and cuts every due task's tree out of that one table, so the cost of a pass grows with the
number of processes on the machine, not with tasks times processes. To keep sampling cheap on a busy
machine, the next pass never starts sooner than ``RATE`` times the last pass's duration after it
(a 20 ms scan allows at most one pass every 80 ms); due samples simply wait for it.

Sampling schedule
-----------------
The first sample of a task is taken ``first`` seconds (0.2) after it starts, then the interval
doubles up to ``cap`` (5 s): 0.2, 0.6, 1.4, 3.0, 6.2, 11.2, ... A trivial task exits before its
first sample and costs nothing. Samples due within ``SLACK`` of each other share a pass.

What a sample holds (:class:`Usage`)
------------------------------------
``rss`` is the sum of the live processes' resident sets (bytes; shared pages count once per
process, as ``ps`` shows them), ``processes`` the number of live processes, ``cpu`` the cores used
since the previous sample. CPU time is the sum of utime+stime over the tree; a process that left
the tree keeps its last known time in the sum, so the total never goes down when children exit
(:class:`TreeAccount`). Zombies count for CPU, not for rss or the process count.

State collections
-----------------
``Monitor._watched``  root pid -> :class:`_Watch` (token, interval, :class:`TreeAccount`)
``Monitor._due``      heap of (when, serial, root pid); stale entries are skipped lazily
``Monitor._tokens``   (pid, start) -> token of herd's orphan children, refreshed every pass
"""

from __future__ import annotations

import heapq
import itertools
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

#: the environment variable naming the task a process belongs to (``pid:serial[/pid:serial]``)
TOKEN_VAR = "HERD_TASK_TOKEN"

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

#: samples due within this many seconds of each other are taken in the same pass
SLACK = 0.05
#: the next pass waits at least this many times the last pass's duration
RATE = 4.0


@dataclass(frozen=True, slots=True)
class ProcStat:
    """One line of ``/proc/PID/stat``, in the units herd uses."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    #: ``R``, ``S``, ``D``, ``Z``, ...
    state: str
    #: start time after boot, in clock ticks: with the pid, identifies a process across pid reuse
    start: int
    #: utime + stime, in clock ticks
    cpu: int
    #: resident set, bytes
    rss: int

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


@dataclass(frozen=True, slots=True)
class Usage:
    """One sample of a task's tree."""

    rss: int
    #: cores used since the previous sample (or since the start, for the first)
    cpu: float
    processes: int
    #: CPU seconds used by the tree since the start
    cpu_seconds: float
    #: the live processes of the tree
    pids: tuple[int, ...]


def parse_stat(pid: int, data: bytes) -> ProcStat:
    """Parse ``/proc/PID/stat``; the command name may hold spaces and parentheses."""
    fields = data[data.rindex(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        state=fields[0].decode(),
        start=int(fields[19]),
        cpu=int(fields[11]) + int(fields[12]),
        rss=int(fields[21]) * PAGE_SIZE,
    )


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or None when it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return parse_stat(pid, f.read())
    except (OSError, ValueError, IndexError):
        return None


def is_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie is dead. (``kill -0`` cannot tell a zombie apart.)"""
    stat = read_stat(pid)
    return stat is not None and stat.alive


def scan() -> dict[int, ProcStat]:
    """Every process on the machine (this pid namespace), by pid."""
    table: dict[int, ProcStat] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = read_stat(int(name))
            if stat is not None:
                table[stat.pid] = stat
    return table


def own_children(fd: int | None = None) -> list[int]:
    """Children of this process's main thread, from one small file (needs CONFIG_PROC_CHILDREN);
    ``fd``: that file kept open (:func:`open_children`), read again from its start, which saves
    a path lookup per call.

    Tasks are spawned by the main thread and orphans are reparented to it, so this lists both.
    """
    if fd is not None:
        size = 1 << 16
        while len(data := os.pread(fd, size, 0)) == size:  # (over 9,000 children)
            size *= 16
        return [int(p) for p in data.split()]
    opened = open_children()
    if opened is None:
        pid = os.getpid()
        return [p.pid for p in scan().values() if p.ppid == pid]
    try:
        return own_children(opened)
    finally:
        os.close(opened)


def open_children() -> int | None:
    """The file :func:`own_children` reads, opened; None where the kernel has none."""
    pid = os.getpid()
    try:
        return os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def read_token(pid: int) -> str | None:
    """The task token in the process's environment (as it was at exec), if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            data = f.read()
    except OSError:
        return None
    prefix = TOKEN_VAR.encode() + b"="
    for item in data.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def token_within(token: str | None, owner: str) -> bool:
    """Whether ``token`` was set by the task ``owner`` or by a herd running inside it."""
    return token is not None and (token == owner or token.startswith(owner + "/"))


def children_index(table: Mapping[int, ProcStat]) -> dict[int, list[int]]:
    """ppid -> child pids."""
    index: dict[int, list[int]] = {}
    for stat in table.values():
        index.setdefault(stat.ppid, []).append(stat.pid)
    return index


def subtree(children: Mapping[int, Sequence[int]], seeds: Iterable[int]) -> list[int]:
    """The seeds and all their descendants, each once."""
    seen: set[int] = set()
    order: list[int] = []
    stack = list(seeds)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen.add(pid)
            order.append(pid)
            stack.extend(children.get(pid, ()))
    return order


def descendants(table: Mapping[int, ProcStat], root: int) -> list[int]:
    """Every process below ``root`` (not ``root`` itself)."""
    return subtree(children_index(table), [root])[1:]


class TreeAccount:
    """CPU and memory bookkeeping of one task's tree across samples."""

    __slots__ = ("_gone", "_last", "_prev_time", "_prev_total", "peak")

    def __init__(self, start: float) -> None:
        #: (pid, start) -> last known cpu ticks of every process in the previous sample
        self._last: dict[tuple[int, int], int] = {}
        self._gone = 0
        self._prev_total = 0
        self._prev_time = start
        #: largest rss seen, bytes
        self.peak = 0

    @property
    def cpu_seconds(self) -> float:
        return self._prev_total / CLK_TCK

    def update(self, now: float, procs: Iterable[ProcStat]) -> Usage:
        """Account one snapshot of the tree taken at ``now``."""
        procs = list(procs)
        current = {(p.pid, p.start): p.cpu for p in procs}
        self._gone += sum(t for k, t in self._last.items() if k not in current)
        self._last = current
        total = self._gone + sum(current.values())
        elapsed = now - self._prev_time
        cores = (total - self._prev_total) / CLK_TCK / elapsed if elapsed > 0 else 0.0
        self._prev_total, self._prev_time = total, now
        live = [p for p in procs if p.alive]
        rss = sum(p.rss for p in live)
        self.peak = max(self.peak, rss)
        return Usage(rss, max(cores, 0.0), len(live), total / CLK_TCK, tuple(p.pid for p in live))


class _Watch:
    __slots__ = ("account", "interval", "serial", "token")

    def __init__(self, serial: int, token: str, account: TreeAccount, interval: float) -> None:
        self.serial, self.token, self.account, self.interval = serial, token, account, interval


class Monitor:
    """Samples watched task trees on an adaptive schedule; ``now`` is always passed in."""

    def __init__(
        self,
        *,
        first: float = 0.2,
        cap: float = 5.0,
        scanner: Callable[[], dict[int, ProcStat]] = scan,
        tokens: Callable[[int], str | None] = read_token,
        own_pid: int | None = None,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.first, self.cap = first, cap
        self._scan, self._read_token, self._timer = scanner, tokens, timer
        self._own_pid = os.getpid() if own_pid is None else own_pid
        self._watched: dict[int, _Watch] = {}
        self._due: list[tuple[float, int, int]] = []
        self._tokens: dict[tuple[int, int], str] = {}
        self._serials = itertools.count()
        self._not_before = float("-inf")

    def watch(self, pid: int, token: str, now: float) -> None:
        """Start sampling the tree rooted at ``pid``, first at ``now + first``."""
        watch = _Watch(next(self._serials), token, TreeAccount(now), self.first)
        self._watched[pid] = watch
        heapq.heappush(self._due, (now + self.first, watch.serial, pid))

    def forget(self, pid: int) -> TreeAccount | None:
        """Stop sampling ``pid``; its account (peak, CPU seconds) or None if it was not watched."""
        watch = self._watched.pop(pid, None)
        return None if watch is None else watch.account

    def next_due(self) -> float | None:
        """When the next pass should run, or None when nothing is watched."""
        while self._due and not self._current(self._due[0]):
            heapq.heappop(self._due)
        if not self._due:
            return None
        return max(self._due[0][0], self._not_before)

    def sample(self, now: float) -> list[tuple[int, Usage]]:
        """Take every sample due by ``now`` in one pass over ``/proc``; (root pid, usage) each."""
        if now < self._not_before:
            return []
        due = self._pop_due(now + SLACK)
        if not due:
            return []
        began = self._timer()
        table = self._scan()
        trees = self._trees(table, due)
        results = [(pid, self._watched[pid].account.update(now, trees[pid])) for pid in due]
        for pid in due:
            self._reschedule(pid, now)
        self._not_before = now + RATE * (self._timer() - began)
        return results

    def _current(self, entry: tuple[float, int, int]) -> bool:
        watch = self._watched.get(entry[2])
        return watch is not None and watch.serial == entry[1]

    def _pop_due(self, until: float) -> list[int]:
        due: list[int] = []
        while self._due and self._due[0][0] <= until:
            entry = heapq.heappop(self._due)
            if self._current(entry):
                due.append(entry[2])
        return due

    def _reschedule(self, pid: int, now: float) -> None:
        watch = self._watched[pid]
        watch.interval = min(watch.interval * 2, self.cap)
        heapq.heappush(self._due, (now + watch.interval, watch.serial, pid))

    def _trees(
        self, table: Mapping[int, ProcStat], roots: Sequence[int]
    ) -> dict[int, list[ProcStat]]:
        children = children_index(table)
        orphans = list(self._orphans(table, children))
        trees: dict[int, list[ProcStat]] = {}
        for root in roots:
            token = self._watched[root].token
            seeds = [root]
            seeds += [o.pid for o, tok in orphans if _attributed(o, tok, root, token)]
            trees[root] = [table[p] for p in subtree(children, seeds) if p in table]
        return trees

    def _orphans(
        self, table: Mapping[int, ProcStat], children: Mapping[int, Sequence[int]]
    ) -> Iterator[tuple[ProcStat, str | None]]:
        """herd's children that are not watched roots, with their tokens (cached per process)."""
        tokens: dict[tuple[int, int], str] = {}
        for pid in children.get(self._own_pid, ()):
            stat = table[pid]
            if pid in self._watched or not stat.alive:
                continue
            key = (pid, stat.start)
            # no token is not cached: a process in the middle of exec shows an empty environment
            token = self._tokens.get(key) or self._read_token(pid)
            if token is not None:
                tokens[key] = token
            yield stat, token
        self._tokens = tokens


def _attributed(orphan: ProcStat, token: str | None, root: int, owner: str) -> bool:
    return orphan.sid == root or orphan.pgid == root or token_within(token, owner)
