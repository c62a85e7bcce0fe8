"""What workers leave beside the queue, read the same way by every SQL store: the log tail of a
failed attempt, the whole output a worker shipped with a finish (``--ship-logs``), and the
finishes refused because their lease had been taken back (stale reports).

:class:`WorkerLeftovers` holds the three reads of the :class:`~herd.store.base.Store` protocol
once; a store supplies :meth:`~WorkerLeftovers._fetch`, its way to run a named query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from herd.store.queued import ShippedLog, StaleReport
from herd.store.rows import failure_tail, shipped_log, stale_reports

T = TypeVar("T")


class WorkerLeftovers:
    """The reads of what workers left (see the module docstring)."""

    def _fetch(self, rows: Callable[[Any], T], name: str, key: Mapping[str, Any]) -> T:
        """What ``rows`` makes of the cursor of the named query run with ``key``."""
        raise NotImplementedError

    def failure_log(self, workflow_id: int, task: str, number: int) -> str | None:
        return self._fetch(failure_tail, "failure_log", _attempt(workflow_id, task, number))

    def shipped_log(self, workflow_id: int, task: str, number: int) -> ShippedLog | None:
        return self._fetch(shipped_log, "shipped_log", _attempt(workflow_id, task, number))

    def stale_reports(self, workflow_id: int) -> list[StaleReport]:
        return self._fetch(stale_reports, "stale_reports", {"workflow_id": workflow_id})


def _attempt(workflow_id: int, task: str, number: int) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "task": task, "number": number}
