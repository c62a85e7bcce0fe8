"""What runs tasks, seen from the runner: the :class:`Executor` protocol and the events it returns.

The runner hands an executor :class:`Launch` requests and turns the events of its ``wait``
(:class:`Exited`, :class:`Sampled`, :class:`Interrupted`) into scheduler events. Two executors
implement it: :class:`~herd.exec.executor.LocalExecutor` (processes on this machine) and
:class:`~herd.launch.slurm.executor.SlurmExecutor` (each task a Slurm job).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from herd.core.model import EMPTY, Kill
from herd.core.records import record

#: how the runner names an attempt: (task name, attempt number)
AttemptKey = tuple[str, int]


@record
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
    #: gives one file; None is /dev/null. A ``str`` costs the runner less than a ``Path`` (it
    #: makes two per launch, and only passes them on)
    stdout: str | Path | None = None
    stderr: str | Path | None = None
    #: read from this file; None is /dev/null
    stdin: str | Path | None = None
    #: seconds of wall time before the watchdog terminates the tree; None: no limit
    timeout: float | None = None
    #: bytes of tree rss; the tree is killed above ``mem_limit * mem_ratio``; None: no limit
    mem_limit: int | None = None
    mem_ratio: float = 1.0
    #: what the scheduler granted (cores, MB, GPUs, pools): a batch system's request
    resources: Mapping[str, float] = EMPTY


@record
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
