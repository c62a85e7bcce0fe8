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
  blocks in an ``epoll`` wait on that socket, with a timeout from the next timer, so an exit is
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
import enum
import errno
import heapq
import itertools
import logging
import os
import resource
import signal
import time
from pathlib import Path
from types import TracebackType

from herd.core.model import Kill
from herd.errors import HerdError
from herd.exec import monitor
from herd.exec.base import (
    AttemptKey,
    Event,
    Executor,
    Exited,
    Interrupted,
    Launch,
    Sampled,
    human_bytes,
)
from herd.exec.capture import Capture
from herd.exec.leftovers import signal_pid, signal_tree, stop_leftovers
from herd.exec.monitor import TOKEN_VAR, Monitor, TreeAccount, Usage
from herd.exec.signals import STOPPING, Wakeup, next_zombie, set_subreaper
from herd.exec.spawn import SH, CannotStart, shell_argv, spawn_process

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
    "Wakeup",
    "human_bytes",
    "shell_argv",
    "stop_leftovers",
]

#: token serials are unique in the process, across executors
_SERIALS = itertools.count(1)


class _Action(enum.Enum):
    TIMEOUT = "timeout"  # the task's time is up: SIGTERM, then ESCALATE after grace
    ESCALATE = "escalate"  # the grace is over: SIGKILL


class _Task:
    """A started, unreaped task (mutable bookkeeping at the I/O edge)."""

    __slots__ = (
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
        self.start, self.start_mono = time.time(), time.monotonic()
        self.reason = ""
        #: why it was ended from outside, once it was (the typed fact beside ``reason``)
        self.kill: Kill | None = None
        self.timed_out = False
        self.terminating = False


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
        self._wakeup = Wakeup()
        self._capture = Capture(self._wakeup.poll)
        self._devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._home = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._subreaper = set_subreaper(True)
        #: herd's children file, read after each reaping (kept open: no path lookup per task)
        self._children = monitor.open_children()
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
        except CannotStart as exc:
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
            if self._children is not None:
                os.close(self._children)
            if self._subreaper is not None:
                set_subreaper(self._subreaper)
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
            out, err = launch.stdout, launch.stderr
            same = out is not None and err is not None and os.fspath(out) == os.fspath(err)
            stderr = stdout if same else self._output_pipe(launch.stderr, opened, outputs)
            stdin = self._open_stdin(launch.stdin, opened)
            if not argv:
                raise CannotStart(127, "the command is empty")
            try:
                return spawn_process(argv, launch.cwd, env, stdin, stdout, stderr, self._home)
            except CannotStart as exc:
                cmd = launch.cmd
                if exc.os_error != errno.ENOEXEC or not isinstance(cmd, str) or argv[0] == SH:
                    raise
                # a plain command naming a script without a #! line: sh runs it as a script
                argv = [SH, "-c", cmd]
                return spawn_process(argv, launch.cwd, env, stdin, stdout, stderr, self._home)
        finally:
            for fd in opened:
                os.close(fd)

    def _open_stdin(self, path: str | Path | None, opened: list[int]) -> int:
        if path is None:
            return self._devnull
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise CannotStart(127, f"stdin file {path} does not exist") from None
        except OSError as exc:
            raise CannotStart(126, f"cannot read stdin file {path}: {exc.strerror}") from None
        opened.append(fd)
        return fd

    def _output_pipe(self, path: str | Path | None, opened: list[int], outputs: list[int]) -> int:
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
        return [Interrupted(s) for s in self._wakeup.drain() if s in STOPPING]

    def _reap(self) -> list[Event]:
        events: list[Event] = []
        reaped = False
        herd_peak = -1
        while (pid := next_zombie()) is not None:
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
                if herd_peak < 0:  # herd's own peak rss, bytes: the floor of a task's max_rss
                    herd_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                events.append(self._finish(task, status, rusage, herd_peak))
        if reaped:
            self._sweep_orphans()
        return events

    def _finish(
        self, task: _Task, status: int, rusage: resource.struct_rusage, herd_peak: int
    ) -> Exited:
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
        return _exited(task, status, rusage, end, wall, account, log_error, herd_peak)

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
                signal_tree(pid, signal.SIGKILL)
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
        signal_tree(task.pid, signal.SIGTERM)
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
        signal_tree(task.pid, signal.SIGKILL)
        for pid in usage.pids:
            signal_pid(pid, signal.SIGKILL)

    def _next_wake(self, deadline: float | None) -> float:
        wakes = [w for w in (deadline, self._monitor.next_due()) if w is not None]
        if self._timers:
            wakes.append(self._timers[0][0])
        return min(wakes, default=float("inf"))

    def _sleep(self, seconds: float) -> None:
        self._capture.watch()
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
                        signal_tree(pid, signal.SIGKILL)
        self._pending.extend(interrupts)
        return exited

    def _owned_by_running(self, token: str | None) -> bool:
        return any(monitor.token_within(token, t.token) for t in self._tasks.values())

    def _is_ours(self, token: str | None) -> bool:
        return token is not None and any(s.startswith(self._prefix) for s in token.split("/"))

    def _sweep_orphans(self) -> None:
        """SIGKILL orphans left by tasks that are over (reparented to herd, carrying our token)."""
        for pid in monitor.own_children(self._children):
            if pid in self._tasks:
                continue
            token = monitor.read_token(pid)
            if self._is_ours(token) and not self._owned_by_running(token):
                logger.info("killing pid %d left behind by a finished task (%s)", pid, token)
                signal_tree(pid, signal.SIGKILL)

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
                signal_pid(pid, signal.SIGKILL)
            killed += doomed
            self._await_death(doomed, time.monotonic() + 2.0)
        self._reap()
        if killed:
            logger.info("killed %d process(es) left behind by tasks", len(killed))

    def _await_death(self, pids: list[int], until: float) -> None:
        while any(monitor.is_alive(p) for p in pids) and time.monotonic() < until:
            self._reap()
            self._sleep(0.01)


def _cannot_start(launch: Launch, exc: CannotStart) -> Exited:
    reason = f"cannot start: {exc.message}"
    logger.info("%s %s", launch.key, reason)
    if launch.stderr is not None:
        try:
            os.makedirs(os.path.dirname(launch.stderr), exist_ok=True)
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
    herd_peak: int,
) -> Exited:
    """The event of a reaped task. The ``ru_maxrss`` of a child counts herd's own rss (the child
    runs on herd's memory until it execs): it is trusted only above ``herd_peak``, herd's own peak
    when the task was reaped (at least what it was at the spawn)."""
    code = os.waitstatus_to_exitcode(status)
    cpu = rusage.ru_utime + rusage.ru_stime
    sampled_cpu = account.cpu_seconds if account is not None else 0.0
    max_rss = rusage.ru_maxrss * 1024
    peak = max(max_rss if max_rss > herd_peak else 0, account.peak if account else 0)
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
