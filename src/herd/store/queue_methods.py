"""The worker methods of :class:`~herd.store.base.Store`, written once for every SQL store.

Each method names what it does (for error messages) and hands :mod:`herd.store.queue` a
:class:`~herd.store.queue.Tx` through the store's own two hooks: :meth:`QueueMethods._queue`,
one write transaction (PostgreSQL runs it again on a new connection after a reconnect, so it
takes a callable), and :meth:`QueueMethods._look`, a read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from herd.core.model import TaskState
from herd.store import queue, queue_claim
from herd.store.base import Change
from herd.store.queue import Tx
from herd.store.queued import Claimed, Lost, Outcome, QueuedTask, WorkerRecord
from herd.store.rows import encode, worker_record

_T = TypeVar("_T")


class QueueMethods:
    """Mixed into a SQL store that implements :meth:`_queue` and :meth:`_look`."""

    def _queue(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        """``work`` in one write transaction; lookup and encoding errors become a
        :class:`~herd.errors.StoreError` saying what failed."""
        raise NotImplementedError

    def _look(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        """``work`` reading the store outside a write transaction."""
        raise NotImplementedError

    @functools.cached_property
    def _workers_known(self) -> dict[int, tuple[str, str, int]]:
        """Who each worker that claimed through this store is: host, user, pid (read once)."""
        return {}

    def _submitted(self) -> None:
        """After a submission committed (a store may refresh its planner's statistics)."""

    def submit(
        self,
        workflow_id: int,
        tasks: Sequence[QueuedTask],
        *,
        pools: Mapping[str, float],
        now: float,
        host: str,
        user: str,
        pid: int,
        argv: Sequence[str],
    ) -> int:
        run = {
            "workflow_id": workflow_id,
            "started": now,
            "host": host,
            "user": user,
            "pid": pid,
            "argv": encode(list(argv)),
            "limits": encode(dict(pools)),
        }
        closing = {"workflow_id": workflow_id, "time": now}

        def submit(tx: Tx) -> int:
            tx.send("interrupt_runs", [closing])
            (run_id,) = tx.run("insert_run", run).fetchone()
            queue.submit(tx, workflow_id, run_id, tasks, pools, now)
            return int(run_id)

        run_id = self._queue(f"submit {len(tasks)} tasks of workflow {workflow_id}", submit)
        self._submitted()
        return run_id

    def register_worker(
        self,
        *,
        host: str,
        pid: int,
        user: str,
        resources: Mapping[str, float],
        now: float,
        lease: float,
        token_id: int | None = None,
    ) -> int:
        values = {
            "host": host,
            "pid": pid,
            "user": user,
            "now": now,
            "lease": lease,
            "resources": encode(dict(resources)),
            "token_id": token_id,
        }
        return self._queue(
            f"register worker pid {pid} on {host}",
            lambda tx: int(tx.run("insert_worker", values).fetchone()[0]),
        )

    def claim(
        self,
        worker_id: int,
        free: Mapping[str, float],
        *,
        now: float,
        lease: float,
        workflows: Sequence[int] | None = None,
        limit: int | None = None,
        ends_before: float | None = None,
        capacity: Mapping[str, float] | None = None,
    ) -> list[Claimed]:
        return self._queue(
            f"claim tasks for worker {worker_id}",
            lambda tx: queue_claim.claim(
                tx,
                worker_id,
                free,
                now=now,
                lease=lease,
                workflows=workflows,
                limit=limit,
                ends_before=ends_before,
                capacity=capacity,
                known=self._workers_known,
            ),
        )

    def finish_and_claim(
        self, worker_id: int, outcomes: Sequence[Outcome], free: Mapping[str, float], **terms: Any
    ) -> tuple[list[bool], list[Claimed]]:
        now = terms["now"]

        def turn(tx: Tx) -> tuple[list[bool], list[Claimed]]:
            runs: set[int] = set()
            # the successes' rows of tasks change with the claimed tasks' rows: one statement
            later: list[Change] = []
            accepted = queue.finish(tx, worker_id, outcomes, now, runs, later)
            claimed = queue_claim.claim(
                tx, worker_id, free, known=self._workers_known, later=later, **terms
            )
            if later:  # (the claim took nothing)
                tx.apply(later)
            queue.end_runs(tx, runs, [c.run_id for c in claimed], now)
            return accepted, claimed

        return self._queue(
            f"finish {len(outcomes)} attempts of worker {worker_id} and claim more", turn
        )

    def heartbeat(self, worker_id: int, *, now: float, lease: float) -> set[tuple[int, str, int]]:
        return self._queue(
            f"renew the leases of worker {worker_id}",
            lambda tx: queue.heartbeat(tx, worker_id, now, lease),
        )

    def finish(self, worker_id: int, outcomes: Sequence[Outcome], *, now: float) -> list[bool]:
        return self._queue(
            f"finish {len(outcomes)} attempts of worker {worker_id}",
            lambda tx: queue.finish(tx, worker_id, outcomes, now),
        )

    def release(
        self, worker_id: int, attempts: Sequence[tuple[int, str, int]], *, now: float, reason: str
    ) -> list[Lost]:
        return self._queue(
            f"release {len(attempts)} attempts of worker {worker_id}",
            lambda tx: queue.release(tx, worker_id, attempts, now, reason),
        )

    def reap(self, *, now: float) -> list[Lost]:
        return self._queue("reap expired leases", lambda tx: queue.reap(tx, now))

    def stop_worker(self, worker_id: int, *, now: float, state: str = "stopped") -> None:
        def stop(tx: Tx) -> None:
            tx.send("set_worker_state", [{"worker_id": worker_id, "state": state, "now": now}])
            if state == "stopped":
                held = queue.heartbeat(tx, worker_id, now, 0.0)
                queue.release(tx, worker_id, sorted(held), now, "released: its worker stopped")

        self._queue(f"stop worker {worker_id}", stop)

    def workers(self) -> list[WorkerRecord]:
        return self._look(
            "read the workers",
            lambda tx: [worker_record(row) for row in tx.run("all_workers", {}).fetchall()],
        )

    def queue_counts(self, workflows: Sequence[int] | None = None) -> dict[TaskState, int]:
        return self._look("count the queued tasks", lambda tx: queue.queue_counts(tx, workflows))
