"""What workers leave beside the queue, read the same way by every SQL store: the log tail of a
failed attempt, the whole output a worker shipped with a finish (``--ship-logs``), and the
finishes refused because their lease had been taken back (stale reports); and the queue states
of named tasks (a worker removes a temp file once every reader of it succeeded).

:class:`WorkerLeftovers` holds these reads of the :class:`~herd.store.base.Store` protocol
once; a store supplies :meth:`~WorkerLeftovers._fetch`, its way to run a named query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from herd.core.model import TaskState
from herd.store.queued import ShippedLog, StaleReport
from herd.store.rows import failure_tail, shipped_log, stale_reports

T = TypeVar("T")


class WorkerLeftovers:
    """The reads of what workers left, and of queue states (see the module docstring)."""

    def _fetch(self, rows: Callable[[Any], T], name: str, key: Mapping[str, Any]) -> T:
        """What ``rows`` makes of the cursor of the named query run with ``key``."""
        raise NotImplementedError

    def failure_log(self, workflow_id: int, task: str, number: int) -> str | None:
        return self._fetch(failure_tail, "failure_log", _attempt(workflow_id, task, number))

    def shipped_log(self, workflow_id: int, task: str, number: int) -> ShippedLog | None:
        return self._fetch(shipped_log, "shipped_log", _attempt(workflow_id, task, number))

    def stale_reports(self, workflow_id: int) -> list[StaleReport]:
        return self._fetch(stale_reports, "stale_reports", {"workflow_id": workflow_id})

    def queue_states(self, workflow_id: int, tasks: Sequence[str]) -> dict[str, TaskState]:
        key = {"workflow_id": workflow_id, "tasks": json.dumps(list(tasks))}
        return self._fetch(_states, "queue_states", key)


def _states(cursor: Any) -> dict[str, TaskState]:
    return {str(task): TaskState(state) for task, state in cursor.fetchall()}


def _attempt(workflow_id: int, task: str, number: int) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "task": task, "number": number}
