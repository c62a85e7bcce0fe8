"""What a long-lived reader of a store (``herd serve``'s status polls and event stream) asks
instead of reading every task record: part of :class:`herd.store.base.Store`, written once for
every SQL store in :mod:`herd.store.served`."""

from __future__ import annotations

from typing import Protocol

from herd.core.model import TaskState


class Watched(Protocol):
    """Cheap looks at a store that many clients poll."""

    def task_counts(self, workflow_id: int) -> dict[TaskState, int]:
        """How many of the workflow's current tasks are in each state (none: left out)."""
        ...

    def change_mark(self) -> int:
        """A number that moves whenever another connection commits a change (it may move for
        other reasons too: SQLite's data version, PostgreSQL's WAL position). Nothing moved it
        when it is the same as at the last look: a watcher need not read anything else."""
        ...
