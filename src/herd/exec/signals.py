"""herd's process-wide signal plumbing while an executor is open: the wakeup socket, the child
subreaper flag and the peek at exited children.

SIGCHLD, SIGINT, SIGTERM and SIGHUP get Python handlers that do nothing; ``signal.set_wakeup_fd``
writes each signal number to a non-blocking socketpair that the executor's ``wait`` selects on
(:class:`Wakeup`), so an exit is noticed at once and nothing polls. :func:`set_subreaper` makes
herd the parent of what its tasks orphan; :func:`next_zombie` peeks at an exited child without
reaping it.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
from types import FrameType

from herd.errors import HerdError

logger = logging.getLogger(__name__)

#: prctl options (linux/prctl.h)


_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


#: signals that stop a run (every task's tree stopped, the state recorded, exit 128+N)
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Wakeup:
    """Signal handlers that do nothing but make ``set_wakeup_fd`` write to a socketpair."""

    SIGNALS = (signal.SIGCHLD, *STOPPING)
    #: the signals that stop herd
    STOPS = STOPPING

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
        #: what ``wait`` blocks on: the socket, and the pipes others register (``select.epoll``
        #: directly: the ``selectors`` layer costs more than the system calls, per task)
        self.poll = select.epoll()
        self._fd = self._recv.fileno()
        self.poll.register(self._fd, select.EPOLLIN)

    def wait(self, timeout: float | None) -> list[int]:
        """Block until a signal or task output arrives; the output fds that are readable."""
        ready = self.poll.poll(-1 if timeout is None else timeout)
        own = self._fd
        return [fd for fd, _ in ready if fd != own]

    def drain(self) -> list[int]:
        """The signal numbers that arrived since the last drain."""
        received = b""
        while True:
            try:
                chunk = self._recv.recv(4096)
            except BlockingIOError:
                return list(received)
            received += chunk
            if len(chunk) < 4096:  # the socket is empty (or closed): no failed recv to raise
                return list(received)

    def close(self) -> None:
        for signum, handler in self._old.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._old_fd)
        self.poll.close()
        self._recv.close()
        self._send.close()


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The signal was written to the wakeup fd; ``wait`` acts on it."""


def set_subreaper(on: bool) -> bool | None:
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


def next_zombie() -> int | None:
    """The pid of a child that has exited, left unreaped (WNOWAIT), or None."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return None if info is None else info.si_pid
