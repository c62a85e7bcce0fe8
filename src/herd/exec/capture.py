"""Task output through pipes, into log files created at the first byte.

Creating a file is a metadata operation, and metadata is what shared and journalled file systems do
slowly, and more so on Lustre or NFS (figures: docs/performance.md, "Figures behind the design").
Most short tasks print nothing, so herd hands each task a pipe instead of a file and creates the log
file only when the first byte arrives. A silent task costs two ``pipe2`` calls, no file.

The executor reads the pipes only while it sleeps in its epoll wait, so a pipe joins the epoll set
when herd is about to sleep (:meth:`Capture.watch`), not when it is made: a short task that ends
before herd sleeps is drained once at its reaping and never enters the set, which saves two
``epoll_ctl`` calls per pipe. :meth:`Capture.read` moves what is there into the file;
:meth:`Capture.finish` drains what is left when the task's process has been reaped and closes
everything. A task whose stdout and stderr go to the same path gets one pipe for both, so their
order is kept.
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_CHUNK = 1 << 16
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


@dataclass(slots=True)
class _Sink:
    """One pipe's read end and the file it fills (opened at the first byte)."""

    path: str | Path
    fd: int = -1
    #: why the file could not be written ("" while it could): the task fails with it
    error: str = field(default="")

    def write(self, data: bytes) -> None:
        if self.error:
            return  # the rest of the output is drained and dropped: the task must not block
        try:
            if self.fd < 0:
                self.fd = _open(self.path)
            os.write(self.fd, data)
        except OSError as exc:  # a full disk, a read-only log folder: the task fails with it
            self.error = f"cannot write its log {self.path}: {exc.strerror or exc}"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open(path: str | Path) -> int:
    try:
        return os.open(path, _WRITE, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, _WRITE, 0o666)


class Capture:
    """The pipes of every running task, by read-end file descriptor."""

    def __init__(self, poll: select.epoll) -> None:
        self._poll = poll
        self._sinks: dict[int, _Sink] = {}
        #: read ends not in the epoll set yet (:meth:`watch` adds them)
        self._unwatched: set[int] = set()
        #: file -> why it could not be written, from its pipe's close until the task's finish
        self._errors: dict[str | Path, str] = {}

    def pipe(self, path: str | Path) -> tuple[int, int]:
        """(read end, write end) of a new pipe feeding ``path``; the caller closes the write end
        once the child has it."""
        r, w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(r, False)
        self._sinks[r] = _Sink(path)
        self._unwatched.add(r)
        return r, w

    def watch(self) -> None:
        """Put the pipes made since the last call into the epoll set: herd is about to sleep, and
        what they carry must wake it."""
        for fd in self._unwatched:
            self._poll.register(fd, select.EPOLLIN)
        self._unwatched.clear()

    def read(self, fd: int) -> None:
        """Move what the pipe holds into its file; close it at end of file."""
        sink = self._sinks.get(fd)
        if sink is None:
            return
        while True:
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                return
            if not data:
                self._close(fd)
                return
            sink.write(data)

    def finish(self, fds: list[int], paths: Iterable[str | Path | None]) -> str:
        """The task is over: drain and close its pipes (leftover writers were killed); return
        why its output could not all be written to ``paths``, its files ("" when it was)."""
        for fd in fds:
            self.read(fd)
            if fd in self._sinks:
                self._close(fd)
        errors = [self._errors.pop(path, "") for path in paths if path is not None]
        return next(filter(None, errors), "")

    def close(self) -> None:
        for fd in list(self._sinks):
            self._close(fd)

    def _close(self, fd: int) -> None:
        sink = self._sinks.pop(fd)
        if fd in self._unwatched:
            self._unwatched.discard(fd)
        else:
            # out of the epoll set first: closing does not take it out while another process
            # still holds the pipe (a task spawned meanwhile keeps a copy until its exec closes
            # it, after herd's posix_spawn returned), and that stale entry, reporting EPOLLHUP
            # under this fd number, would wake every epoll wait at once until then: herd spun,
            # starving the task
            self._poll.unregister(fd)
        os.close(fd)
        sink.close()
        if sink.error:
            self._errors[sink.path] = sink.error
