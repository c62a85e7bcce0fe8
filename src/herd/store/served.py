"""What ``herd serve`` adds to a store, written once for every SQL store (as
:mod:`herd.store.queue` is): bearer tokens, the labels of tasks, their counts by state and the
change mark (:mod:`herd.store.watched`), and cancelling what is left of a submitted workflow.

:class:`Served` is a mixin: a store gets these methods by inheriting it and providing
``_served(doing, work)``, which runs ``work`` with a :class:`~herd.store.queue.Tx` in one
transaction, and ``_fetch`` (as for :class:`~herd.store.leftovers.WorkerLeftovers`), which reads
without taking the write lock (a token is checked on every request). The contract is
documented on :class:`herd.store.base.Store`.

Table ``tokens``: one row per token; only the SHA-256 digest of its secret is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from herd.core.model import Kill, RunStatus, Scope, TaskState
from herd.store.base import AttemptFinished, TokenRecord
from herd.store.queue import Tx, _lease, _mark, _release_pools

_T = TypeVar("_T")


def _token(row: tuple[Any, ...]) -> TokenRecord:
    id_, digest, scope, workflow, note, created, expires, revoked = row
    return TokenRecord(int(id_), digest, Scope(scope), workflow, note, created, expires, revoked)


def _json_list(value: Any) -> list[str]:
    """A JSON array column, read as text on both stores."""
    return list(json.loads(value))


class Served:
    """The methods of :mod:`herd.store.served`, for a store that provides ``_served``."""

    def _served(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        """``work`` in one write transaction of the store."""
        raise NotImplementedError

    def _fetch(self, rows: Callable[[Any], _T], name: str, key: Mapping[str, Any]) -> _T:
        """What ``rows`` makes of the cursor of the named query (a read, no write lock)."""
        raise NotImplementedError

    def add_token(
        self,
        *,
        digest: str,
        scope: Scope,
        workflow: str | None,
        note: str,
        now: float,
        expires: float | None,
    ) -> int:
        values = {
            "digest": digest,
            "scope": scope.value,
            "workflow": workflow,
            "note": note,
            "now": now,
            "expires": expires,
        }
        return self._served(
            "record a token", lambda tx: int(tx.run("insert_token", values).fetchone()[0])
        )

    def token(self, token_id: int) -> TokenRecord | None:
        def first(cursor: Any) -> TokenRecord | None:
            row = cursor.fetchone()
            return None if row is None else _token(row)

        return self._fetch(first, "token_by_id", {"token_id": token_id})

    def tokens(self) -> list[TokenRecord]:
        return self._fetch(lambda c: [_token(r) for r in c.fetchall()], "all_tokens", {})

    def revoke_token(self, token_id: int, *, now: float) -> bool:
        values = {"token_id": token_id, "now": now}
        return self._served(
            f"revoke token {token_id}", lambda tx: tx.run("revoke_token", values).rowcount > 0
        )

    def task_labels(self, workflow_id: int) -> dict[str, tuple[str, ...]]:
        return self._fetch(
            lambda c: {name: tuple(_json_list(labels)) for name, labels in c.fetchall()},
            "task_labels",
            {"workflow_id": workflow_id},
        )

    def task_counts(self, workflow_id: int) -> dict[TaskState, int]:
        return self._fetch(
            lambda c: {TaskState(state): int(n) for state, n in c.fetchall()},
            "task_counts",
            {"workflow_id": workflow_id},
        )

    def change_mark(self) -> int:
        return self._fetch(lambda c: int(c.fetchone()[0]), "change_mark", {})

    def cancel(self, workflow_id: int, *, now: float, reason: str) -> list[str]:
        return self._served(
            f"cancel workflow {workflow_id}", lambda tx: _cancel(tx, workflow_id, now, reason)
        )


def _cancel(tx: Tx, workflow_id: int, now: float, reason: str) -> list[str]:
    """Every queued task of the workflow still to run or running: cancelled (a running attempt
    is ended as cancelled, its lease gone: its worker's next heartbeat stops the process, and
    its finish is refused); the submission's run ends ``interrupted``."""
    rows = tx.run("queue_open_of_workflow", {"workflow_id": workflow_id}).fetchall()
    runs = set()
    for task, state, run_id in rows:
        runs.add(run_id)
        if state == TaskState.RUNNING.value:
            lease = _lease(tx, workflow_id, task)
            assert lease is not None
            stopped = AttemptFinished(
                workflow_id,
                task,
                lease.number,
                now,
                TaskState.CANCELLED,
                kill_reason=reason,
                kill=Kill.INTERRUPTED,
            )
            tx.apply([stopped])
            _release_pools(tx, workflow_id, lease)
        tx.run("queue_ended", {"workflow_id": workflow_id, "task": task, "state": "cancelled"})
        _mark(tx, workflow_id, task, TaskState.CANCELLED, now, reason)
    for run_id in sorted(runs):
        values = {"run_id": run_id, "ended": now, "status": RunStatus.INTERRUPTED}
        tx.run("end_open_run", values)
    return [task for task, _, _ in rows]
