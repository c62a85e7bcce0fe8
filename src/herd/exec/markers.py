"""Done markers (O2DPG's ``<name>.log_done``): made in the run loop while that is cheap, by a
helper thread once the file system makes them slowly.

The promise to O2DPG users: once a task succeeded, its marker exists before herd reports it done
(records the success in the store or shows it). The runner hands each turn's markers over
(:meth:`Markers.create`) and calls :meth:`Markers.flush` before each commit that records those
successes and before it reports them; a marker that cannot be created fails the run at that flush.

A marker means only "this task succeeded": its name is all there is to it. So a run makes its
markers as hard links to one empty, unnamed file of its own per file system (:class:`_Links`:
``O_TMPFILE`` in the folder of the first marker there, linked under each marker's name): a
directory entry, with no inode to allocate. That costs what a create costs on a healthy file
system (14 µs here), spends one inode on all of a run's markers (inode quotas), and stays 14 µs
where allocating an inode is slow: ext4 without a journal skips every inode deleted in the last
30 s to 5 min, which made a create take 0.1-0.9 ms on this project's guest after a few thousand
deletions (docs/performance.md, session 14). The markers of a run therefore share their times
and show the number of markers as their link count. Where no link can be made (another mount
of the file system, one without ``O_TMPFILE`` or hard links, no ``/proc``), a marker is an empty
file of its own (``mknod``), as before; a file at its link limit (65,000 on ext4) is replaced by
a new one.

Either way it is one metadata operation, nearly all of it in the kernel, so :meth:`Markers.create`
makes the markers at once, in the loop. A thread would cost more than that: each time the loop
releases the GIL (every system call) while the thread waits for it, the two hand it over, 45 µs
a time on this project's 2-core machine, several times a task (docs/performance.md, issue 18).
Where making one is slow anyway (a network file system, where a link is a server round trip like
a create), the loop would wait on each: once the markers made in the loop took more than
:data:`SLOW` each (the median of recent turns), the next go to one helper thread, which makes them
while the loop starts the next tasks (the GIL released in the system call); :meth:`Markers.flush`
then makes what the thread has not taken yet itself and waits for the rest.

``kill -9`` between a marker and the commit leaves a marker without its record: the next run
counts the marker as done, as O2DPG would. The other order (a record without its marker) never
happens.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
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


def touch(path: str | Path, links: _Links | None = None) -> None:
    """Create marker ``path`` (and its parent directories) empty, or update its times if it
    exists; ExecutionError naming it if it cannot be made. ``links``: make it a hard link of
    theirs where they can (see the module docstring)."""
    try:
        _create(path, links)
    except OSError as exc:
        raise ExecutionError(f"cannot write done marker {path}: {exc}") from exc


def _create(path: str | Path, links: _Links | None = None) -> None:
    # mknod makes a regular file in one system call, with no file descriptor to close
    try:
        if links is None or not links.make(path):
            os.mknod(path, 0o666 | stat.S_IFREG)
    except FileExistsError:
        os.utime(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _create(path, links)


#: why a template cannot be made in a folder: its file system cannot make unnamed files
_NO_TMPFILE = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL})
#: why a link cannot be made where a file could: another file system, no hard links there, the
#: template's link limit, or a template nobody may link to (``fs.protected_hardlinks``)
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK})


class _Links:
    """Markers as hard links to one empty, unnamed file per file system (see the module
    docstring). ``_templates``: a file system's ``st_dev`` to the descriptor of its template
    (``O_TMPFILE``, made in the folder of its first marker), -1 where links are not made;
    ``_current``: the (device, descriptor) that made the last link; ``_retired``: descriptors
    of templates replaced (full, or gone), left open until :meth:`close` so that a thread still
    linking from one cannot reach a file opened later under its number. Threads may share one:
    templates change under ``_lock``."""

    def __init__(self) -> None:
        self._templates: dict[int, int] = {}
        self._current: tuple[int, int] | None = None
        self._retired: list[int] = []
        self._lock = threading.Lock()

    def make(self, path: str | Path) -> bool:
        """Link marker ``path`` to its file system's template; False when that cannot be done
        (the caller makes a file). FileExistsError if ``path`` exists, FileNotFoundError if its
        folder does not."""
        current = self._current or self._template(path, None)
        for _ in range(3):  # another file system, then a template that is full or gone
            if current is None:
                return False
            try:
                # linkat(AT_SYMLINK_FOLLOW) through /proc, which a plain link() does not follow;
                # a dir fd makes Python call linkat (it is ignored: the path is absolute)
                fd = current[1]
                os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=fd, follow_symlinks=True)
                return True
            except FileExistsError:
                raise
            except FileNotFoundError:
                if not os.path.isdir(os.path.dirname(path) or "."):
                    raise
                current = self._template(path, current, renew=True)  # its markers were removed
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    return False  # (a file may still be made; if not, mknod says why)
                current = self._template(path, current, renew=exc.errno == errno.EMLINK)
        return False

    def _template(
        self, path: str | Path, failed: tuple[int, int] | None, *, renew: bool = False
    ) -> tuple[int, int] | None:
        """The template for ``path``'s file system, made at its first use; None where links are
        not made. ``failed``: the template a link just failed with. When it is that file
        system's, a new one replaces it if ``renew`` (full, or gone), else links stop there."""
        folder = os.path.dirname(path) or "."
        try:
            device = os.stat(folder).st_dev
        except FileNotFoundError:
            raise
        except OSError:
            return None
        with self._lock:
            fd = self._templates.get(device)
            if failed is not None and failed[0] == device and fd == failed[1]:
                self._retired.append(self._templates.pop(device))
                fd = None if renew else -1
            if fd is None:
                fd = _unnamed(folder)
                if fd is None:
                    return None
            self._templates[device] = fd
        if fd < 0:
            return None
        self._current = (device, fd)
        return self._current

    def close(self) -> None:
        """Close the templates (the markers linked to them stay)."""
        with self._lock:
            for fd in [*self._templates.values(), *self._retired]:
                if fd >= 0:
                    os.close(fd)
            self._templates.clear()
            self._retired.clear()
            self._current = None


def _unnamed(folder: str) -> int | None:
    """A descriptor of a new empty, unnamed file in ``folder`` (``O_TMPFILE``); -1 where its file
    system makes none, None where this folder cannot have one (one herd may not write, say)."""
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        return -1 if exc.errno in _NO_TMPFILE else None


def _links() -> _Links | None:
    """Links where the kernel offers ``O_TMPFILE`` and ``/proc/self/fd`` to link them from."""
    if sys.platform != "linux" or not hasattr(os, "O_TMPFILE"):
        return None
    return _Links() if os.path.isdir("/proc/self/fd") else None


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
        self._links = _links()

    def create(self, paths: list[str]) -> None:
        """Create the markers ``paths`` now, or hand them to the thread (started at the first
        call) once creating them in the loop is slow; a failure is raised by :meth:`flush`."""
        if not paths:
            return
        if not self._threaded:  # (no thread yet: nothing to lock against)
            begun = time.perf_counter()
            error = _make(paths, self._links)
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
            self._finished(paths, _make(paths, self._links))
        with self._cond:
            self._cond.wait_for(lambda: self._made == self._handed)
            if self._error is not None:
                raise self._error

    def close(self) -> None:
        """Stop the thread once it has created what it was handed (errors are dropped); the
        markers stay."""
        if self._thread is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            self._thread.join()
            self._thread = None
        if self._links is not None:
            self._links.close()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._todo or self._closing)
                paths, self._todo = self._todo, []
                if not paths:
                    return
            self._finished(paths, _make(paths, self._links))

    def _finished(self, paths: Sequence[str | Path], error: ExecutionError | None) -> None:
        with self._cond:
            self._made += len(paths)
            self._error = self._error or error
            self._cond.notify_all()


def _make(paths: Sequence[str | Path], links: _Links | None) -> ExecutionError | None:
    """Create every marker of ``paths``; the first failure, which does not stop the others."""
    error = None
    for path in paths:
        try:
            touch(path, links)
        except ExecutionError as exc:
            error = error or exc
    return error
