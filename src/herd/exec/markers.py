"""Done markers (O2DPG's ``<name>.log_done``): made in the run loop while that is cheap, by a
helper thread once the file system makes them slowly.

The promise to O2DPG users: once a task succeeded, its marker exists before herd reports it done
(records the success in the store or shows it). The runner hands each turn's markers over
(:meth:`Markers.create`) and calls :meth:`Markers.flush` before each commit that records those
successes and before it reports them; a marker that cannot be created fails the run at that flush.

Creating a file is a metadata operation, nearly all of it in the kernel: one ``mknod``, 7-25 µs on
a local disk, so :meth:`Markers.create` makes the markers at once, in the loop. A thread would
cost more than that: each time the loop releases the GIL (every system call) while the thread
waits for it, the two hand it over, 45 µs a time on this project's 2-core machine, several times
a task (docs/performance.md, issue 18). Where a create is slow (a network file system; or ext4
without a journal, which skips every inode deleted in the last 30 s to 5 min, 0.2-0.8 ms a create
here after a few thousand deletions), the loop would wait on each: once the markers made in the
loop took more than :data:`SLOW` each (the median of recent turns), the next go to one helper
thread, which makes them while the loop starts the next tasks (the GIL released in the system
call); :meth:`Markers.flush` then makes what the thread has not taken yet itself and waits for
the rest.

``kill -9`` between a marker and the commit leaves a marker without its record: the next run
counts the marker as done, as O2DPG would. The other order (a record without its marker) never
happens.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from herd.errors import ExecutionError

__all__ = ["Markers", "touch"]

#: seconds a marker may take to create in the loop: the median over the last ``_JUDGED`` turns of
#: each turn's wall time per marker (wall time: a network file system waits without using CPU; a
#: median: a loaded machine preempts the loop in some turns); slower, they go to the thread
SLOW = 0.0002
_JUDGED = 16


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
    """Creates done markers, in the loop or by a helper thread; see the module docstring.

    State, guarded by ``_cond``: ``_todo`` (paths handed over, not yet taken by the thread),
    ``_handed`` and ``_made`` (counts of paths handed over and created or failed), ``_error`` (the
    first failure), ``_closing``. ``threaded``: every marker goes to the thread from the start."""

    def __init__(self, *, threaded: bool = False) -> None:
        self._threaded = threaded
        #: seconds per marker of the last turns that made them in the loop
        self._times: deque[float] = deque(maxlen=_JUDGED)
        self._cond = threading.Condition()
        self._todo: list[str | Path] = []
        self._handed = self._made = 0
        self._error: ExecutionError | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    def create(self, paths: list[str]) -> None:
        """Create the markers ``paths`` now, or hand them to the thread (started at the first
        call) once creating them in the loop is slow; a failure is raised by :meth:`flush`."""
        if not paths:
            return
        if not self._threaded:  # (no thread yet: nothing to lock against)
            begun = time.perf_counter()
            error = _make(paths)
            times = self._times
            times.append((time.perf_counter() - begun) / len(paths))
            self._handed += len(paths)
            self._made += len(paths)
            self._error = self._error or error
            self._threaded = len(times) == _JUDGED and sorted(times)[_JUDGED // 2] > SLOW
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
            if self._error is not None:
                raise self._error
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

    def _finished(self, paths: Sequence[str | Path], error: ExecutionError | None) -> None:
        with self._cond:
            self._made += len(paths)
            self._error = self._error or error
            self._cond.notify_all()


def _make(paths: Sequence[str | Path]) -> ExecutionError | None:
    """Create every marker of ``paths``; the first failure, which does not stop the others."""
    error = None
    for path in paths:
        try:
            touch(path)
        except ExecutionError as exc:
            error = error or exc
    return error
