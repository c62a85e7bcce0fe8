"""Done markers (O2DPG's ``<name>.log_done``), created by a helper thread off the run loop.

The promise to O2DPG users: once a task succeeded, its marker exists before herd reports it done
(records the success in the store or shows it). Creating a file is a metadata operation, nearly all
of it in the kernel (allocating an inode, ext4 first skips the recently deleted ones, which a busy
machine has many of): in the run loop, it costs as much as starting the next task (figures in
docs/performance.md). So the loop only hands the paths over (:meth:`Markers.create`, once per turn)
and goes on starting tasks, while one thread creates the files, the GIL released in the system
call; :meth:`Markers.flush` makes what the thread has not taken yet itself and waits for the rest,
and the runner calls it before each commit that records those successes and before it reports them.
A marker that cannot be created fails the run, as before, at that flush.

``kill -9`` between a marker and the commit leaves a marker without its record: the next run
counts the marker as done, as O2DPG would. The other order (a record without its marker) never
happens.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from herd.errors import ExecutionError

__all__ = ["Markers", "touch"]


def touch(path: str | Path) -> None:
    """Create marker ``path`` (and its parent directories) empty, or update its times if it
    exists; ExecutionError naming it if it cannot be made."""
    try:
        _create(path)
    except OSError as exc:
        raise ExecutionError(f"cannot write done marker {path}: {exc}") from exc


def _create(path: str | Path) -> None:
    # mknod makes a regular file in one system call, with no file descriptor to close
    try:
        os.mknod(path, 0o666 | stat.S_IFREG)
    except FileExistsError:
        os.utime(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _create(path)


class Markers:
    """A helper thread that creates done markers; see the module docstring.

    State, guarded by ``_cond``: ``_todo`` (paths handed over, not yet taken by the thread),
    ``_handed`` and ``_made`` (counts of paths handed over and created or failed), ``_error`` (the
    first failure), ``_closing``."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._todo: list[str | Path] = []
        self._handed = self._made = 0
        self._error: ExecutionError | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    def create(self, paths: list[str]) -> None:
        """Hand ``paths`` to the thread (started at the first call); returns at once."""
        if not paths:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="herd-markers", daemon=True)
            self._thread.start()
        with self._cond:
            self._todo += paths
            self._handed += len(paths)
            self._cond.notify()

    def flush(self) -> None:
        """Make sure every marker handed over exists; ExecutionError if one could not be made.

        What the thread has not taken yet is made here, at once: the thread may be waiting for
        the GIL, which ``posix_spawn`` holds while a child execs (long, on a loaded machine)."""
        if self._thread is None:
            return
        with self._cond:
            paths, self._todo = self._todo, []
        if paths:
            self._finished(paths, _make(paths))
        with self._cond:
            self._cond.wait_for(lambda: self._made == self._handed)
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Stop the thread once it has created what it was handed (errors are dropped)."""
        if self._thread is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self._thread = None

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._todo or self._closing)
                paths, self._todo = self._todo, []
                if not paths:
                    return
            self._finished(paths, _make(paths))

    def _finished(self, paths: list[str | Path], error: ExecutionError | None) -> None:
        with self._cond:
            self._made += len(paths)
            self._error = self._error or error
            self._cond.notify_all()


def _make(paths: list[str | Path]) -> ExecutionError | None:
    """Create every marker of ``paths``; the first failure, which does not stop the others."""
    error = None
    for path in paths:
        try:
            touch(path)
        except ExecutionError as exc:
            error = error or exc
    return error
