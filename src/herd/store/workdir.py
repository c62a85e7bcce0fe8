"""The working directory's ``.herd/`` folder: the state database, task logs and the run lock.

::

    <root>/.herd/
        herd.db                         the SQLite store (herd.store.sqlite)
        lock                            held by the herd process running here; holds its pid
        logs/<workflow>/<task>.<n>.out  stdout of attempt n of a task
        logs/<workflow>/<task>.<n>.err  stderr
        cache/<digest>.pickle           a big spec, loaded and validated (herd.formats.built)

One run at a time per working directory: :meth:`Workdir.lock` takes an exclusive ``flock`` on
``.herd/lock`` for the life of the run, and refuses at once, with :class:`~herd.errors.LockedError`,
when another process holds it. The kernel releases a ``flock`` when its holder dies, even by
``kill -9``, so a lock file left behind never blocks anyone: the file's content (pid, host, since)
is only there to tell the user who holds the lock. The descriptor is not inherited by the tasks herd
starts (Python opens files close-on-exec), so an orphaned task cannot keep the lock; only a child
that ``fork()``s without ``exec`` would (use the ``spawn`` or ``forkserver`` start method).
Read-only commands (``herd status``) take no lock.

Task and workflow names become file names with ``%``-escapes for anything but letters, digits and
``-_.+=@,`` (so two names never share a file), shortened with a digest when too long.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from herd.errors import LockedError

__all__ = ["LockHolder", "Workdir", "process_alive", "safe_name"]

STATE_DIR = ".herd"
DB_NAME = "herd.db"
LOCK_NAME = "lock"
LOGS_NAME = "logs"

_SAFE_CHARS = "-_.+=@,"
#: longest file-name stem herd writes (file systems allow 255 bytes; room left for ``.<n>.out``)
_MAX_STEM = 200
#: names quote() leaves as they are: its always-safe characters and _SAFE_CHARS
_PLAIN = re.compile(r"[A-Za-z0-9_.~+=@,-]+")


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a working directory's lock, as written in the lock file."""

    pid: int
    host: str
    since: float  # epoch seconds

    def describe(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on {self.host}, since {stamp}"


class Workdir:
    """The ``.herd/`` folder of the working directory ``root``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Workdir({str(self.root)!r})"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def db_path(self) -> Path:
        return self.state_dir / DB_NAME

    @property
    def lock_path(self) -> Path:
        return self.state_dir / LOCK_NAME

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / LOGS_NAME

    def create(self) -> Workdir:
        """Make ``.herd/`` when missing; return self."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self

    def workflow_logs_dir(self, workflow: str) -> Path:
        """``.herd/logs/<workflow>/`` (not created: see :meth:`make_logs_dir`)."""
        return self.logs_dir / safe_name(workflow)

    def make_logs_dir(self, workflow: str) -> Path:
        """Create ``.herd/logs/<workflow>/`` when missing and return it."""
        path = self.workflow_logs_dir(workflow)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def task_log_paths(self, workflow: str, task: str, attempt: int) -> tuple[Path, Path]:
        """The (stdout, stderr) files of attempt number ``attempt`` of ``task``."""
        stem = self.workflow_logs_dir(workflow) / f"{safe_name(task)}.{attempt}"
        return stem.with_name(stem.name + ".out"), stem.with_name(stem.name + ".err")

    @contextmanager
    def lock(self) -> Iterator[LockHolder]:
        """Hold the working directory for a run; raise :class:`LockedError` if another herd does.

        Yields the :class:`LockHolder` written into the lock file (this process).
        """
        self.create()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._acquire(fd)
            me = LockHolder(os.getpid(), socket.gethostname(), time.time())
            _write_holder(fd, me)
            try:
                yield me
            finally:
                os.ftruncate(fd, 0)  # while still locked: a later reader must not see our pid
        finally:
            os.close(fd)  # releases the flock

    def holder(self) -> LockHolder | None:
        """What the lock file says about its holder (it may be stale: only the flock is the lock)."""
        try:
            text = self.lock_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return _parse_holder(text)

    def _acquire(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(self._locked_message()) from None

    def _locked_message(self) -> str:
        holder = self.holder()
        where = f"{self.root} is in use by another herd process"
        if holder is None:
            return f"{where} (it is starting): wait for it to finish, then run again"
        return (
            f"{where} ({holder.describe()}): wait for it to finish or stop it with "
            f"`kill {holder.pid}`, then run again"
        )


def process_alive(pid: int, since: float) -> bool:
    """Whether process ``pid`` of this host runs and is the one that was running at ``since``
    (epoch seconds): a zombie is dead, and a pid reused by a process started later is not it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return False
    fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    state, start_ticks = fields[0], int(fields[19])
    started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    return state not in ("Z", "X") and started <= since + 2.0  # (btime is whole seconds)


def safe_name(name: str) -> str:
    """``name`` as one file name: ``%``-escaped, never ``.``/``..``, at most 200 bytes."""
    if _PLAIN.fullmatch(name) and len(name) <= _MAX_STEM and name.strip("."):
        return name  # (nearly every name: what quote() would return, at a tenth of its cost)
    escaped = quote(name, safe=_SAFE_CHARS)
    if escaped in ("", ".", ".."):
        escaped = escaped.replace(".", "%2E") or "%"  # quote() never makes a bare "%"
    if len(escaped) > _MAX_STEM:
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        escaped = f"{escaped[: _MAX_STEM - 17]}~{digest}"
    return escaped


def _write_holder(fd: int, holder: LockHolder) -> None:
    data = {"pid": holder.pid, "host": holder.host, "since": holder.since}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(data) + "\n").encode(), 0)


def _parse_holder(text: str) -> LockHolder | None:
    try:
        data = json.loads(text)
        return LockHolder(int(data["pid"]), str(data["host"]), float(data["since"]))
    except (ValueError, KeyError, TypeError):
        return None  # empty (released, or its holder is still writing it) or not ours
