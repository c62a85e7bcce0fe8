"""Stopping processes: a task's whole tree, and what a herd that died (``kill -9``) left running.

A task runs in its own process group whose id is its pid: :func:`signal_tree` signals the group
and the process. Every process a task starts carries its ``HERD_TASK_TOKEN``
(``herdpid:serial``): :func:`stop_leftovers` finds the processes of a dead herd by it.
"""

from __future__ import annotations

import contextlib
import os
import signal

from herd.exec import monitor


def signal_tree(pid: int, signum: int) -> None:
    """Signal a task's process group (id = its pid) and the process itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
    signal_pid(pid, signum)


def signal_pid(pid: int, signum: int) -> None:
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
