"""The local executor: the I/O edge that runs task processes on this machine.

The runner hands it :class:`Launch` requests and turns the events of :meth:`LocalExecutor.wait`
(:class:`Exited`, :class:`Sampled`, :class:`Interrupted`) into scheduler events. Nothing here
raises because a task misbehaves: a command that cannot start comes back as an :class:`Exited`
with exit code 127 (not found) or 126 (cannot be run) and the explanation in ``kill_reason`` and in
the task's stderr file.

Process model
-------------
- **Groups.** Every task runs in its own session and process group (``setsid``), whose id is the
  task's pid, so the whole tree is signalled with one ``killpg``. A shell string runs as
  ``/bin/sh -c CMD``, an argv tuple directly. A *plain* shell string (words of letters, digits
  and ``_./,:@%+=-``, the first not an assignment nor a shell builtin or keyword: ``sleep 10``,
  ``o2-sim -n 20 --seed=3``) is split on spaces and run directly too, as GNU make does: the
  shell would do exactly that, and skipping it saves an exec per task (a script without ``#!``
  still goes to the shell, which runs it). ``env`` is the whole environment, plus
  ``HERD_TASK_TOKEN`` (``herdpid:serial``, appended to an inherited token with ``/`` when herd
  itself runs inside a herd task), which marks every process the task starts.
- **Subreaper.** herd makes itself a child subreaper (``PR_SET_CHILD_SUBREAPER``): processes a task
  orphans (daemons, double forks, ``setsid``) are reparented to herd instead of init, so herd can
  find them (their token says which task they came from) and reap them.
- **No leftovers.** When a task's main process exits, the task is over: herd SIGKILLs what remains
  of its process group (while the main process is still an unreaped zombie, so the group id cannot
  have been reused) and every orphan carrying a token of a task that is no longer running.
  :meth:`LocalExecutor.shutdown` terminates every running tree, SIGKILLs it after a grace, then
  kills every remaining descendant of herd that carries one of herd's tokens.
- **Reaping.** SIGCHLD, SIGINT, SIGTERM and SIGHUP get Python handlers that do nothing; what matters is
  ``signal.set_wakeup_fd``, which writes each signal number to a non-blocking socketpair. ``wait``
  blocks in a ``selectors`` wait on that socket, with a timeout from the next timer, so an exit is
  noticed at once and nothing polls. On every wake-up, zombies are peeked with
  ``waitid(WNOWAIT)`` and reaped with ``wait4`` (rusage: utime, stime, max rss). herd reaps *every*
  child of its process while an executor is open; pids it did not start are reaped and ignored,
  so other code must not run ``subprocess`` in this process meanwhile (its ``wait`` would find
  the child gone and report exit code 0): start such commands as tasks.
- **Watchdog.** A task past its ``timeout`` gets SIGTERM on its group, then SIGKILL after
  ``grace`` seconds; :meth:`LocalExecutor.kill` does the same. A task whose tree rss goes over
  ``mem_limit * mem_ratio`` is SIGKILLed at once, without grace, as the kernel's OOM killer would.
- **Sampling.** ``monitor.py`` samples every task tree at 0.2 s after its start, then at doubling
  intervals up to 5 s, inline in ``wait`` (no threads); see its docstring.
- **Signals to herd.** SIGINT, SIGTERM and SIGHUP (the terminal or ssh session went away)
  become :class:`Interrupted` events instead of ``KeyboardInterrupt`` or death; the runner decides (usually: :meth:`LocalExecutor.shutdown`). Handlers,
  the wakeup fd and the subreaper flag are restored by :meth:`LocalExecutor.close`.

Only one executor may be open at a time, in the main thread (Python delivers signals there).

Limits: a daemon that clears its environment *and* leaves the task's session cannot be attributed
to its task, and outlives herd (only cgroups could catch it). ``ru_maxrss`` of a child includes
herd's own peak rss (the child runs on herd's memory until it execs), so :attr:`Exited.peak_mem`
trusts it only above that floor.

State collections
-----------------
``_tasks``    pid -> :class:`_Task` of every started, unreaped task
``_by_key``   launch key -> the same :class:`_Task`
``_timers``   heap of (when, tick, task serial, pid, :class:`_Action`); stale entries are skipped
``_pending``  events produced outside ``wait`` (cannot-start exits), returned by the next ``wait``
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import heapq
import itertools
import logging
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Protocol

from herd.core.model import EMPTY, Kill
from herd.errors import HerdError
from herd.exec import monitor
from herd.exec.capture import Capture
from herd.exec.monitor import TOKEN_VAR, Monitor, TreeAccount, Usage

logger = logging.getLogger(__name__)

__all__ = [
    "TOKEN_VAR",
    "AttemptKey",
    "Event",
    "Executor",
    "Exited",
    "Interrupted",
    "Launch",
    "LocalExecutor",
    "Sampled",
    "human_bytes",
]

_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
#: token serials are unique in the process, across executors
_SERIALS = itertools.count(1)


#: how the runner names an attempt: (task name, attempt number)
AttemptKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Launch:
    """One attempt to run, as the runner asks for it."""

    #: the attempt, e.g. ``("reco_1", 2)``; returned on its events
    key: AttemptKey
    #: a shell string (``/bin/sh -c``) or an argv tuple (run directly, looked up in env's PATH)
    cmd: str | tuple[str, ...]
    cwd: Path
    #: the complete environment of the process
    env: Mapping[str, str]
    #: output files, created with their parent directories (truncated) at the task's first byte
    #: (a silent task creates none, and leaves an older file as it is); the same path for both
    #: gives one file; None is /dev/null
    stdout: Path | None = None
    stderr: Path | None = None
    #: read from this file; None is /dev/null
    stdin: Path | None = None
    #: seconds of wall time before the watchdog terminates the tree; None: no limit
    timeout: float | None = None
    #: bytes of tree rss; the tree is killed above ``mem_limit * mem_ratio``; None: no limit
    mem_limit: int | None = None
    mem_ratio: float = 1.0
    #: what the scheduler granted (cores, MB, GPUs, pools): a batch system's request
    resources: Mapping[str, float] = EMPTY


@dataclass(frozen=True, slots=True)
class Exited:
    """A task's main process ended and was reaped; nothing of its tree is left running."""

    key: AttemptKey
    #: 0 when the process never started
    pid: int
    #: epoch seconds
    start: float
    end: float
    #: set when the process exited; ``signal`` is set instead when a signal killed it
    exit_code: int | None
    signal: int | None
    #: why herd stopped it ("timeout 12.0 s > 10.0 s limit", "memory 5.1 GB > 4.0 GB limit", "cancelled", "cannot start: ...");
    #: empty when it ended on its own
    kill_reason: str
    #: CPU seconds of the process and the descendants it waited for (rusage)
    utime: float
    stime: float
    #: ``ru_maxrss`` in bytes: the largest rss of one process of the tree. Linux counts the
    #: spawning herd's own peak rss in it (the child starts on herd's memory until it execs), so
    #: a value not above herd's peak at spawn time says nothing about the task.
    max_rss: int
    #: largest tree rss seen by samples, or ``max_rss`` when larger and above herd's own peak;
    #: None when neither measured anything (a short task, or one that never started)
    peak_mem: int | None
    #: mean cores used over the run; None when it never started
    mean_cpu: float | None
    #: why its output could not be written to its log files ("": it was, or it printed nothing)
    log_error: str = ""
    #: why it was ended from outside (None: it ended on its own, or never started)
    kill: Kill | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True, slots=True)
class Sampled:
    """A monitoring sample of a running task's whole tree."""

    key: AttemptKey
    #: epoch seconds
    time: float
    #: bytes
    rss: int
    #: cores used since the previous sample
    cpu: float
    processes: int


@dataclass(frozen=True, slots=True)
class Interrupted:
    """SIGINT or SIGTERM reached herd."""

    signum: int


Event = Exited | Sampled | Interrupted


class Executor(Protocol):
    """What the runner drives: :class:`LocalExecutor`, or ``slurm.executor.SlurmExecutor``."""

    def start(self, launch: Launch) -> int: ...
    def wait(self, deadline: float | None = None) -> list[Event]: ...
    def shutdown(self, grace: float | None = None, reason: str = "shutdown") -> list[Exited]: ...
    def close(self) -> None: ...


def human_bytes(n: float) -> str:
    """``5_100_000_000`` -> ``"5.1 GB"`` (decimal units, as memory limits are written)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class _Action(enum.Enum):
    TIMEOUT = "timeout"  # the task's time is up: SIGTERM, then ESCALATE after grace
    ESCALATE = "escalate"  # the grace is over: SIGKILL


class _Task:
    """A started, unreaped task (mutable bookkeeping at the I/O edge)."""

    __slots__ = (
        "herd_peak",
        "kill",
        "launch",
        "outputs",
        "pid",
        "reason",
        "serial",
        "start",
        "start_mono",
        "terminating",
        "timed_out",
        "token",
    )

    def __init__(
        self,
        launch: Launch,
        pid: int,
        serial: int,
        token: str,
        outputs: list[int],
    ) -> None:
        self.launch, self.serial, self.token = launch, serial, token
        #: read ends of the pipes carrying its stdout/stderr (see capture.py)
        self.outputs = outputs
        self.pid = pid
        #: herd's own peak rss when it spawned the task, bytes: the floor of the task's max_rss
        self.herd_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.start, self.start_mono = time.time(), time.monotonic()
        self.reason = ""
        #: why it was ended from outside, once it was (the typed fact beside ``reason``)
        self.kill: Kill | None = None
        self.timed_out = False
        self.terminating = False


class _CannotStart(Exception):
    def __init__(self, code: int, message: str, os_error: int = 0) -> None:
        super().__init__(message)
        #: the exit code to report, why, and the errno of the failed call (0: none)
        self.code, self.message, self.os_error = code, message, os_error


class LocalExecutor:
    """Runs task processes on this machine; see the module docstring for the process model."""

    _open = False

    def __init__(
        self, *, grace: float = 5.0, first_sample: float = 0.2, max_interval: float = 5.0
    ) -> None:
        if LocalExecutor._open:
            raise HerdError("a LocalExecutor is already open in this process: close it first")
        #: seconds between SIGTERM and SIGKILL
        self.grace = grace
        self._monitor = Monitor(first=first_sample, cap=max_interval)
        self._tasks: dict[int, _Task] = {}
        self._by_key: dict[AttemptKey, _Task] = {}
        self._timers: list[tuple[float, int, int, int, _Action]] = []
        self._ticks = itertools.count()
        self._pending: list[Event] = []
        self._prefix = f"{os.getpid()}:"
        self._wakeup = _Wakeup()
        self._capture = Capture(self._wakeup.selector)
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._subreaper = _set_subreaper(True)
        LocalExecutor._open = True
        self._closed = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def running(self) -> int:
        """Tasks started and not yet reaped."""
        return len(self._tasks)

    def start(self, launch: Launch) -> int:
        """Spawn one task; its pid, or 0 when it could not start (its Exited comes from wait)."""
        serial = next(_SERIALS)
        inherited = launch.env.get(TOKEN_VAR)
        token = f"{inherited}/{self._prefix}{serial}" if inherited else f"{self._prefix}{serial}"
        outputs: list[int] = []
        try:
            pid = self._spawn(launch, token, outputs)
        except _CannotStart as exc:
            self._capture.finish(outputs, (launch.stdout, launch.stderr))
            self._pending.append(_cannot_start(launch, exc))
            return 0
        task = _Task(launch, pid, serial, token, outputs)
        self._tasks[task.pid] = task
        self._by_key[launch.key] = task
        if launch.timeout is not None:
            self._push(task.start_mono + launch.timeout, task, _Action.TIMEOUT)
        self._monitor.watch(task.pid, token, task.start_mono)
        return task.pid

    def wait(self, deadline: float | None = None) -> list[Event]:
        """Events, waiting until there is at least one or ``deadline`` (monotonic) passes.

        Without a deadline and with no task running, returns at once (possibly nothing).
        """
        events, self._pending = self._pending, []
        while True:
            events += self._drain()
            events += self._reap()
            now = time.monotonic()
            self._fire_timers(now)
            events += self._sample(now)
            if events or (deadline is not None and now >= deadline):
                return events
            if deadline is None and not self._tasks:
                return events
            self._sleep(self._next_wake(deadline) - now)

    def kill(self, key: AttemptKey, reason: str = "cancelled") -> bool:
        """Terminate a task's tree: SIGTERM now, SIGKILL after the grace. False if not running."""
        task = self._by_key.get(key)
        if task is None:
            return False
        self._terminate(task, reason, time.monotonic())
        return True

    def shutdown(self, grace: float | None = None, reason: str = "shutdown") -> list[Exited]:
        """Stop every running tree (SIGTERM, SIGKILL after ``grace``), reap all, kill leftovers.

        Returns the Exited events not yet returned by ``wait``. A SIGINT/SIGTERM during the grace
        skips the rest of it; its Interrupted event is still returned by the next ``wait``.
        """
        grace = self.grace if grace is None else grace
        now = time.monotonic()
        for task in list(self._tasks.values()):
            self._terminate(task, reason, now, grace)
        exited = self._collect(now + grace + 10.0)
        self._kill_leftovers()
        if self._tasks:
            keys = [t.launch.key for t in self._tasks.values()]
            logger.warning("%d task(s) did not die after SIGKILL: %s", len(keys), keys)
        return exited

    def close(self) -> None:
        """Shut down what still runs and kill leftovers, then restore signal handlers, the wakeup
        fd and the subreaper flag."""
        if self._closed:
            return
        try:
            self.shutdown()
        finally:
            self._closed = True
            self._capture.close()
            self._wakeup.close()
            os.close(self._devnull)
            os.close(self._home)
            if self._subreaper is not None:
                _set_subreaper(self._subreaper)
            LocalExecutor._open = False

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- spawning -----------------------------------------------------------------------------

    def _spawn(self, launch: Launch, token: str, outputs: list[int]) -> int:
        argv = shell_argv(launch.cmd) if isinstance(launch.cmd, str) else list(launch.cmd)
        env = dict(launch.env)
        env[TOKEN_VAR] = token
        opened: list[int] = []
        try:
            stdout = self._output_pipe(launch.stdout, opened, outputs)
            same = launch.stderr == launch.stdout and launch.stdout is not None
            stderr = stdout if same else self._output_pipe(launch.stderr, opened, outputs)
            stdin = self._open_stdin(launch.stdin, opened)
            if not argv:
                raise _CannotStart(127, "the command is empty")
            try:
                return _spawn_process(argv, launch.cwd, env, stdin, stdout, stderr, self._home)
            except _CannotStart as exc:
                cmd = launch.cmd
                if exc.os_error != errno.ENOEXEC or not isinstance(cmd, str) or argv[0] == _SH:
                    raise
                # a plain command naming a script without a #! line: sh runs it as a script
                argv = [_SH, "-c", cmd]
                return _spawn_process(argv, launch.cwd, env, stdin, stdout, stderr, self._home)
        finally:
            for fd in opened:
                os.close(fd)

    def _open_stdin(self, path: Path | None, opened: list[int]) -> int:
        if path is None:
            return self._devnull
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise _CannotStart(127, f"stdin file {path} does not exist") from None
        except OSError as exc:
            raise _CannotStart(126, f"cannot read stdin file {path}: {exc.strerror}") from None
        opened.append(fd)
        return fd

    def _output_pipe(self, path: Path | None, opened: list[int], outputs: list[int]) -> int:
        """The write end for the child: a pipe whose file is created (truncated) at the first
        byte. An older file at ``path`` is the caller's to remove when it must not survive a task
        that prints nothing."""
        if path is None:
            return self._devnull
        r, w = self._capture.pipe(path)
        outputs.append(r)
        opened.append(w)
        return w

    # -- the wait loop ------------------------------------------------------------------------

    def _drain(self) -> list[Event]:
        return [
            Interrupted(s) for s in self._wakeup.drain() if s in _STOPPING
        ]

    def _reap(self) -> list[Event]:
        events: list[Event] = []
        reaped = False
        while (pid := _next_zombie()) is not None:
            task = self._tasks.get(pid)
            if task is not None:
                # the zombie still holds the group id: nothing can have reused it yet
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
            try:
                got, status, rusage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if got == 0:
                break
            reaped = True
            if task is not None:
                events.append(self._finish(task, status, rusage))
        if reaped:
            self._sweep_orphans()
        return events

    def _finish(self, task: _Task, status: int, rusage: resource.struct_rusage) -> Exited:
        end, end_mono = time.time(), time.monotonic()
        del self._tasks[task.pid]
        if self._by_key.get(task.launch.key) is task:
            del self._by_key[task.launch.key]
        log_error = self._capture.finish(task.outputs, (task.launch.stdout, task.launch.stderr))
        account = self._monitor.forget(task.pid)
        wall = end_mono - task.start_mono
        if task.timed_out and not task.reason:
            task.reason = _timeout_reason(wall, task.launch.timeout or 0.0)
            task.kill = Kill.TIMEOUT
        return _exited(task, status, rusage, end, wall, account, log_error)

    def _fire_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, serial, pid, action = heapq.heappop(self._timers)
            task = self._tasks.get(pid)
            if task is None or task.serial != serial:
                continue
            if action is _Action.ESCALATE:
                logger.info(
                    "SIGKILL %s (pid %d) after %.1f s grace", task.launch.key, pid, self.grace
                )
                _signal_tree(pid, signal.SIGKILL)
            elif not task.terminating:
                task.timed_out = True
                self._terminate(task, "", now)

    def _terminate(self, task: _Task, reason: str, now: float, grace: float | None = None) -> None:
        if task.terminating:
            return
        task.terminating = True
        if not task.reason and reason:
            task.reason, task.kill = reason, Kill.INTERRUPTED
        logger.info("SIGTERM %s (pid %d): %s", task.launch.key, task.pid, reason or "timeout")
        _signal_tree(task.pid, signal.SIGTERM)
        self._push(now + (self.grace if grace is None else grace), task, _Action.ESCALATE)

    def _push(self, when: float, task: _Task, action: _Action) -> None:
        heapq.heappush(self._timers, (when, next(self._ticks), task.serial, task.pid, action))

    def _sample(self, now: float) -> list[Event]:
        due = self._monitor.next_due()
        if due is None or due > now:
            return []
        events: list[Event] = []
        stamp = time.time()
        for pid, usage in self._monitor.sample(now):
            task = self._tasks[pid]
            if usage.processes:
                events.append(
                    Sampled(task.launch.key, stamp, usage.rss, usage.cpu, usage.processes)
                )
            self._check_memory(task, usage)
        return events

    def _check_memory(self, task: _Task, usage: Usage) -> None:
        limit = task.launch.mem_limit
        if limit is None or usage.rss <= limit * task.launch.mem_ratio or task.reason:
            return
        allowed = limit * task.launch.mem_ratio
        task.reason = f"memory {human_bytes(usage.rss)} > {human_bytes(allowed)} limit"
        task.kill = Kill.MEMORY
        if task.launch.mem_ratio != 1.0:
            task.reason += f" ({task.launch.mem_ratio:g} x {human_bytes(limit)})"
        task.terminating = True
        logger.info("SIGKILL %s (pid %d): %s", task.launch.key, task.pid, task.reason)
        _signal_tree(task.pid, signal.SIGKILL)
        for pid in usage.pids:
            _signal(pid, signal.SIGKILL)

    def _next_wake(self, deadline: float | None) -> float:
        wakes = [w for w in (deadline, self._monitor.next_due()) if w is not None]
        if self._timers:
            wakes.append(self._timers[0][0])
        return min(wakes, default=float("inf"))

    def _sleep(self, seconds: float) -> None:
        for fd in self._wakeup.wait(None if seconds == float("inf") else max(seconds, 0.0)):
            self._capture.read(fd)

    # -- cleaning up --------------------------------------------------------------------------

    def _collect(self, until: float) -> list[Exited]:
        """Wait for every running task to be reaped, at most until ``until``."""
        exited = [e for e in self._pending if isinstance(e, Exited)]
        interrupts = [e for e in self._pending if isinstance(e, Interrupted)]
        self._pending = []
        while self._tasks and time.monotonic() < until:
            for event in self.wait(deadline=until):
                if isinstance(event, Exited):
                    exited.append(event)
                elif isinstance(event, Interrupted):
                    interrupts.append(event)
                    for pid in self._tasks:
                        _signal_tree(pid, signal.SIGKILL)
        self._pending.extend(interrupts)
        return exited

    def _owned_by_running(self, token: str | None) -> bool:
        return any(monitor.token_within(token, t.token) for t in self._tasks.values())

    def _is_ours(self, token: str | None) -> bool:
        return token is not None and any(s.startswith(self._prefix) for s in token.split("/"))

    def _sweep_orphans(self) -> None:
        """SIGKILL orphans left by tasks that are over (reparented to herd, carrying our token)."""
        for pid in monitor.own_children():
            if pid in self._tasks:
                continue
            token = monitor.read_token(pid)
            if self._is_ours(token) and not self._owned_by_running(token):
                logger.info("killing pid %d left behind by a finished task (%s)", pid, token)
                _signal_tree(pid, signal.SIGKILL)

    def _kill_leftovers(self) -> None:
        """SIGKILL every descendant of herd that a task started, and reap them."""
        killed: list[int] = []
        for _ in range(3):
            table = monitor.scan()
            children = monitor.children_index(table)
            below = monitor.subtree(children, [os.getpid()])[1:]
            marked = [p for p in below if self._is_ours(monitor.read_token(p))]
            doomed = [p for p in monitor.subtree(children, marked) if table[p].alive]
            if not doomed:
                break
            for pid in doomed:
                _signal(pid, signal.SIGKILL)
            killed += doomed
            self._await_death(doomed, time.monotonic() + 2.0)
        self._reap()
        if killed:
            logger.info("killed %d process(es) left behind by tasks", len(killed))

    def _await_death(self, pids: list[int], until: float) -> None:
        while any(monitor.is_alive(p) for p in pids) and time.monotonic() < until:
            self._reap()
            self._sleep(0.01)


#: signals that stop a run (every task's tree stopped, the state recorded, exit 128+N)
_STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Wakeup:
    """Signal handlers that do nothing but make ``set_wakeup_fd`` write to a socketpair."""

    SIGNALS = (signal.SIGCHLD, *_STOPPING)
    #: the signals that stop herd
    STOPS = _STOPPING

    def __init__(self) -> None:
        self._recv, self._send = socket.socketpair()
        self._recv.setblocking(False)
        self._send.setblocking(False)
        try:
            self._old_fd = signal.set_wakeup_fd(self._send.fileno(), warn_on_full_buffer=False)
        except ValueError:
            self._recv.close()
            self._send.close()
            raise HerdError(
                "LocalExecutor must be created in the main thread: it handles SIGCHLD, SIGINT"
                " and SIGTERM, which Python delivers there"
            ) from None
        self._old = {s: signal.signal(s, _ignore) for s in self.SIGNALS}
        self.selector = selectors.DefaultSelector()
        self.selector.register(self._recv, selectors.EVENT_READ)

    def wait(self, timeout: float | None) -> list[int]:
        """Block until a signal or task output arrives; the output fds that are readable."""
        return [key.fd for key, _ in self.selector.select(timeout) if key.data is not None]

    def drain(self) -> list[int]:
        """The signal numbers that arrived since the last drain."""
        received = b""
        while True:
            try:
                chunk = self._recv.recv(4096)
            except BlockingIOError:
                return list(received)
            if not chunk:
                return list(received)
            received += chunk

    def close(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._old_fd)
        self.selector.close()
        self._recv.close()
        self._send.close()


#: shared with the Slurm executor, which waits on signals the same way
Wakeup = _Wakeup


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The signal was written to the wakeup fd; ``wait`` acts on it."""


def _set_subreaper(on: bool) -> bool | None:
    """Set PR_SET_CHILD_SUBREAPER; the previous value, or None where prctl is unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int(0)
        if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) != 0:
            return None
        if libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            return None
    except (OSError, AttributeError):
        logger.warning("cannot become a child subreaper: orphans of tasks will escape to init")
        return None
    return bool(previous.value)


#: signals Python ignores in herd; a task must start with their default action
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def _spawn_process(
    argv: list[str], cwd: Path, env: dict[str, str], stdin: int, stdout: int, stderr: int, home: int
) -> int:
    """Start ``argv`` in its own session with ``posix_spawn`` (a vfork-style clone: half the
    cost of ``subprocess.Popen`` in herd's process). ``posix_spawn`` has no working-directory
    argument before Python 3.13, so the executor, which only runs in the main thread, enters ``cwd``
    for the call and returns to ``home`` (a directory fd) right after."""
    program = _resolve(argv[0], env.get("PATH", os.defpath))
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    try:
        return os.posix_spawn(
            program,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0),
                (os.POSIX_SPAWN_DUP2, stdout, 1),
                (os.POSIX_SPAWN_DUP2, stderr, 2),
            ],
            setsid=True,
            setsigdef=_DEFAULT_SIGNALS,
        )
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    except ValueError as exc:  # an embedded NUL byte in the command or the environment
        raise _CannotStart(126, f"invalid command or environment: {exc}") from None
    finally:
        os.fchdir(home)


_SH = "/bin/sh"
#: a word the shell passes on unchanged: no quoting, expansion, globbing, redirection or operator
_PLAIN_WORD = re.compile(r"[\w./,:@%+=-]+", re.ASCII)
#: first words that must go to the shell: builtins that act on the shell or differ from the
#: program of the same name, keywords
_SHELL_WORDS = frozenset(
    {
        "!", ".", ":", "[", "alias", "bg", "break", "case", "cd", "command", "continue", "do", "done",
        "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "fc", "fg", "fi", "for",
        "getopts", "hash", "if", "in", "jobs", "kill", "local", "printf", "pwd", "read", "readonly",
        "return", "select", "set", "shift", "test", "then", "time", "times", "trap", "type", "ulimit",
        "umask", "unalias", "unset", "until", "wait", "while",
    }
)


def shell_argv(cmd: str) -> list[str]:
    """The argv that runs shell string ``cmd``: its words when it is a plain command (see the
    module docstring), else ``/bin/sh -c cmd``."""
    words = cmd.split(" ")
    if (
        all(_PLAIN_WORD.fullmatch(word) for word in words)
        and "=" not in words[0]
        and words[0] not in _SHELL_WORDS
    ):
        return words
    return [_SH, "-c", cmd]


_PROGRAMS: dict[tuple[str, str], str] = {}


def _resolve(program: str, path: str) -> str:
    """``program`` looked up in the task's PATH, as a shell would (found ones are cached); unchanged
    when it has a slash or is not found, so that the spawn reports it."""
    if "/" in program:
        return program
    found = _PROGRAMS.get((program, path))
    if found is None:
        found = shutil.which(program, path=path)
        if found is None:
            return program
        _PROGRAMS[(program, path)] = found
    return found

def _explain(exc: OSError, program: str, cwd: Path) -> _CannotStart:
    if exc.filename is not None and str(exc.filename) == str(cwd):
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            what = "does not exist" if exc.errno == errno.ENOENT else "is not a directory"
            return _CannotStart(127, f"cwd {cwd} {what}")
        return _CannotStart(126, f"cannot enter cwd {cwd}: {exc.strerror}")
    if exc.errno == errno.ENOENT:
        return _CannotStart(127, f"command {program!r} not found (check the command and PATH)")
    if exc.errno == errno.EACCES:
        return _CannotStart(126, f"command {program!r} is not executable (permission denied)")
    if exc.errno == errno.ENOEXEC:
        message = f"command {program!r} is not a program (exec format error)"
        return _CannotStart(126, message, errno.ENOEXEC)
    return _CannotStart(126, f"command {program!r}: {exc.strerror}")


def _cannot_start(launch: Launch, exc: _CannotStart) -> Exited:
    reason = f"cannot start: {exc.message}"
    logger.info("%s %s", launch.key, reason)
    if launch.stderr is not None:
        try:
            launch.stderr.parent.mkdir(parents=True, exist_ok=True)
            with open(launch.stderr, "a") as f:
                f.write(f"herd: {reason}\n")
        except OSError:
            pass  # the reason still reaches the runner in kill_reason
    now = time.time()
    return Exited(launch.key, 0, now, now, exc.code, None, reason, 0.0, 0.0, 0, None, None)


def _exited(
    task: _Task,
    status: int,
    rusage: resource.struct_rusage,
    end: float,
    wall: float,
    account: TreeAccount | None,
    log_error: str,
) -> Exited:
    code = os.waitstatus_to_exitcode(status)
    cpu = rusage.ru_utime + rusage.ru_stime
    sampled_cpu = account.cpu_seconds if account is not None else 0.0
    max_rss = rusage.ru_maxrss * 1024
    peak = max(max_rss if max_rss > task.herd_peak else 0, account.peak if account else 0)
    return Exited(
        key=task.launch.key,
        pid=task.pid,
        start=task.start,
        end=end,
        exit_code=code if code >= 0 else None,
        signal=-code if code < 0 else None,
        kill_reason=task.reason,
        utime=rusage.ru_utime,
        stime=rusage.ru_stime,
        max_rss=max_rss,
        peak_mem=peak or None,
        mean_cpu=max(cpu, sampled_cpu) / wall if wall > 0 else None,
        log_error=log_error,
        kill=task.kill or (Kill.CPU if code == -signal.SIGXCPU else None),
    )


def _timeout_reason(ran: float, limit: float) -> str:
    """``timeout 12.0 s > 10.0 s limit``, with enough digits to show ran > limit."""
    shown = f"{limit:.1f}" if round(limit, 1) == limit else f"{limit:g}"
    for digits in (1, 2, 3):
        if float(f"{ran:.{digits}f}") > limit:
            break
    return f"timeout {ran:.{digits}f} s > {shown} s limit"


def _next_zombie() -> int | None:
    """The pid of a child that has exited, left unreaped (WNOWAIT), or None."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return None if info is None else info.si_pid


def _signal_tree(pid: int, signum: int) -> None:
    """Signal a task's process group (id = its pid) and the process itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
    _signal(pid, signum)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def stop_leftovers(herd_pid: int) -> list[int]:
    """SIGKILL every process still running a task of herd process ``herd_pid``, which died without
    stopping them (``kill -9``). Called before a resumed run starts those tasks again, so that no
    task ever runs twice at once. Returns the pids killed."""
    if monitor.is_alive(herd_pid):
        return []  # not dead: the pid belongs to a live process, whatever it is
    prefix = f"{herd_pid}:"
    killed = []
    for pid, stat in monitor.scan().items():
        token = monitor.read_token(pid)
        if stat.state != "Z" and token is not None and token.split("/")[0].startswith(prefix):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed
