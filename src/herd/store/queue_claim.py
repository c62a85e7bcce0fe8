"""The claim of the worker protocol (see :mod:`herd.store.queue`): ready tasks by ``seq`` that
fit the worker's free resources and the workflow's named pools, moved to running with a lease.

One read whatever the batch (the worker and a window of the queue's head, PostgreSQL locking it
``FOR UPDATE SKIP LOCKED``; a workflow's pools only when a task takes from them); the writes are
one statement per kind for the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from herd.core.model import TaskState
from herd.store.base import AttemptRecord, AttemptStarted, Change, TaskChanged
from herd.store.queue import Tx, encode, pool_demand, use_pools
from herd.store.queued import Claimed, QueuedTask, decode_spec
from herd.store.rows import decode

_EPS = 1e-9
#: how many ready rows a claim looks at beyond what it may take (tasks that do not fit are skipped)
SCAN = 16
#: the widest window of ready rows a claim looks at when none of the first ones fits
MAX_SCAN = 4096


def claim(
    tx: Tx,
    worker_id: int,
    free: Mapping[str, float],
    *,
    now: float,
    lease: float,
    workflows: Sequence[int] | None = None,
    limit: int | None = None,
    ends_before: float | None = None,
    capacity: Mapping[str, float] | None = None,
    known: dict[int, tuple[str, str, int]] | None = None,
    later: list[Change] | None = None,
) -> list[Claimed]:
    """Take ready tasks by ``seq`` that fit ``free`` and the pools (see ``Store.claim``).
    ``known`` keeps who each worker is (host, user, pid) across claims: one read less a turn.
    ``later``: changes of ``tasks`` a finish left to apply, applied (and emptied) with the
    claim's own when it takes a task (one statement for both)."""
    # who the worker is (host, user, pid: never change) is read once, with the window below
    who = known.get(worker_id) if known is not None else None
    pending = None if who is not None else tx.run("worker_by_id", {"worker_id": worker_id})
    most = limit if limit is not None else 1 << 30
    # a window of the queue's head: what the free cores could take, a little more (PostgreSQL
    # locks every row it returns, FOR UPDATE SKIP LOCKED); when nothing in it fits (big tasks
    # first), a wider one, so that smaller tasks behind still start
    scan = min(most, int(max(free.get("cpu", 1.0), 1.0)) * 2) + SCAN
    values = {
        "now": now,
        "all_workflows": workflows is None,
        "workflows": encode(list(workflows or ())),
    }
    rows = tx.run("claim_candidates", {**values, "scan": scan}).fetchall()
    if pending is not None:
        worker = pending.fetchone()
        if worker is None:
            raise LookupError(f"no worker {worker_id}")
        who = (worker[0], worker[1], int(worker[2]))
        if known is not None:
            known[worker_id] = who
    assert who is not None
    while True:
        pick = _Pick(free, capacity, now, ends_before, most)
        taken = [pick.claimed(row) for row in rows if pick.fits(tx, row)]
        if taken or len(rows) < scan or scan >= MAX_SCAN:
            break
        scan *= 8
        rows = tx.run("claim_candidates", {**values, "scan": scan}).fetchall()
    if not taken:
        return []
    lease_until = now + lease
    tx.send(
        "take_task",
        [
            {
                "workflow_id": c.workflow_id,
                "task": c.task.name,
                "number": c.number,
                "worker_id": worker_id,
                "lease_until": lease_until,
            }
            for c, _ in taken
        ],
    )
    use_pools(tx, [(c.workflow_id, held) for c, held in taken], 1.0)
    started = [_attempt(c, who, now) for c, _ in taken]
    changed = [
        TaskChanged(c.workflow_id, c.task.name, TaskState.RUNNING, now, attempts=c.number)
        for c, _ in taken
    ]
    # (a store applies runs of one kind of change at once)
    tx.apply([*started, *(later or ()), *changed])
    if later:
        later.clear()
    return [c for c, _ in taken]


class _Pick:
    """Chooses, row by row in claim order, the ready tasks that fit what is free."""

    def __init__(
        self,
        free: Mapping[str, float],
        capacity: Mapping[str, float] | None,
        now: float,
        ends_before: float | None,
        most: int,
    ) -> None:
        self.left = dict(free)
        self.whole = capacity.get("cpu") if capacity else None
        self.now, self.ends_before, self.most = now, ends_before, most
        self.pools: dict[int, dict[str, float]] = {}
        self.count = 0
        self._chosen: tuple[dict[str, float], QueuedTask, dict[str, float]] | None = None
        self._demands: dict[str, dict[str, float]] = {}

    def fits(self, tx: Tx, row: tuple[Any, ...]) -> bool:
        if self.count >= self.most:
            return False
        wid, duration, res_json, spec = row[0], row[7], row[5], row[8]
        ends = self.ends_before
        if ends is not None and duration is not None and self.now + duration > ends:
            return False
        resources = self._demands.get(res_json)
        if resources is None:  # (most tasks of a workflow ask the same: decoded once a claim)
            resources = self._demands[res_json] = self._demand(res_json)
        if not _fits(resources, self.left):
            return False
        resources = dict(resources)
        task = decode_spec(spec)  # only for a task that fits: a claim looks at many rows
        held = pool_demand(task.semaphore, resources)
        if held:  # (the pools are read, and locked, only by a claim that takes from them)
            wf_pools = self.pools.get(wid)
            if wf_pools is None:
                wf_pools = self.pools[wid] = _pools(tx, wid)
            if not _fits(held, wf_pools):
                return False
            _take(wf_pools, held)
        _take(self.left, resources)
        self.count += 1
        self._chosen = (resources, task, held)
        return True

    def _demand(self, res_json: str) -> dict[str, float]:
        resources: dict[str, float] = decode(res_json)
        if self.whole is not None and resources.get("cpu", 0.0) > self.whole:
            resources["cpu"] = self.whole  # cores are elastic: it runs on all the worker has
        return resources

    def claimed(self, row: tuple[Any, ...]) -> tuple[Claimed, dict[str, float]]:
        assert self._chosen is not None
        resources, task, held = self._chosen
        wid, _, run_id, tries, recoveries, _, timeout, _, _, attempts, wf = row
        c = Claimed(wid, run_id, wf, attempts + 1, tries + 1, recoveries, resources, timeout, task)
        return c, held


def _pools(tx: Tx, workflow_id: int) -> dict[str, float]:
    rows = tx.run("pools_of_workflow", {"workflow_id": workflow_id}).fetchall()
    return {name: float(free) for name, free in rows}


def _fits(demand: Mapping[str, float], free: Mapping[str, float]) -> bool:
    return all(d <= free.get(k, float("inf")) + _EPS for k, d in demand.items() if d)


def _take(free: dict[str, float], demand: Mapping[str, float]) -> None:
    for k, d in demand.items():
        if k in free:
            free[k] -= d


def _attempt(c: Claimed, who: tuple[str, str, int], now: float) -> AttemptStarted:
    host, user, pid = who
    reason = c.task.reason if c.tries == 1 else f"retry {c.tries - 1}"
    stdout, stderr = c.task.log_paths(c.number)
    return AttemptStarted(
        AttemptRecord(
            c.workflow_id,
            c.run_id,
            c.task.name,
            c.number,
            host,
            user,
            pid,
            now,
            c.task.expanded,
            c.task.env_digest,
            c.task.fingerprint,
            reason,
            cwd=c.task.cwd,
            stdout_path=stdout,
            stderr_path=stderr,
            resources=c.resources,
        )
    )
