"""How a worker's attempt ended, as it reports it (:class:`~herd.store.queued.Outcome`): the
failure policy's decision, the tail of a failure's output, the shipped logs."""

from __future__ import annotations

import time
from pathlib import Path

from herd.core.model import TaskState
from herd.core.scheduler import after_failure
from herd.exec.base import Exited
from herd.run.attempts import read_end
from herd.store.base import AttemptFinished, Change
from herd.store.queued import Claimed, Outcome, ShippedLog

#: bytes of a failed attempt's stderr (then stdout) kept in the store
TAIL = 4096
#: bytes of each of stdout and stderr shipped with a finish (``--ship-logs``): the last ones
SHIP_MAX = 1 << 20


def failure(
    c: Claimed,
    ev: Exited,
    finished: AttemptFinished,
    detail: str,
    changes: list[Change],
    mem_cap: float,
) -> Outcome:
    """A failed attempt's outcome: retried (with back-off, or recovered with more memory or
    time) or failed for good, by the scheduler's policy."""
    task = c.task
    again = after_failure(
        retries=task.retries,
        backoff=task.backoff,
        recovery=task.recovery,
        tries=c.tries,
        recoveries=c.recoveries,
        kill=ev.kill,
        resources=c.resources,
        timeout=c.timeout,
        now=time.time(),
        mem_cap=mem_cap,
    )
    out, err = c.task.log_paths(c.number)
    tail = _tail((Path(err), Path(out)))
    if again is None:
        return Outcome(
            finished, ev.pid, ev.start, TaskState.FAILED, detail, log_tail=tail, changes=changes
        )
    return Outcome(
        finished,
        ev.pid,
        ev.start,
        TaskState.READY,
        detail,
        not_before=again.at,
        resources=again.resources,
        timeout=again.timeout,
        recovered=again.recovered,
        log_tail=tail,
        changes=changes,
    )


def shipped(c: Claimed) -> ShippedLog:
    """The attempt's output to send with its finish (the end of each, when long)."""
    out, err = c.task.log_paths(c.number)
    stdout, cut_out = read_end(Path(out), SHIP_MAX)
    stderr, cut_err = read_end(Path(err), SHIP_MAX)
    return ShippedLog(stdout, stderr, cut_out or cut_err)


def _tail(paths: tuple[Path, Path]) -> str:
    """The end of a failed attempt's stderr, else of its stdout (reports read it from any
    host)."""
    for path in paths:
        text, _ = read_end(path, TAIL)
        if text:
            return text
    return ""
