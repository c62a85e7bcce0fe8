"""The worker protocol's transactions, written once for every SQL store.

:class:`~herd.store.base.Store` documents ``submit``, ``claim``, ``heartbeat``, ``finish``,
``release`` and ``reap``; a store implements each as one transaction that calls the function of the
same name here with a :class:`Tx`: its named queries (``queries.sql`` of its dialect, with the
same names and parameters) and its way of applying a batch of changes. The functions hold the
logic — which ready tasks fit, the lease fence, unmet-needs counters, retries after a lost
attempt — so that SQLite and PostgreSQL cannot drift apart.

Tables: ``queue`` (one row per task to run of a submitted workflow: state, ``unmet``, ``seq``,
lease), ``pools`` (named limits across workers, with what is in use), ``workers``,
``failure_logs``; the task's state is mirrored in ``tasks`` in the same transaction, so every
report reads one table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from herd.core.model import Kill, RunStatus, TaskState
from herd.store.base import (
    AttemptFinished,
    AttemptRecord,
    AttemptStarted,
    Change,
    TaskChanged,
)
from herd.store.queued import Claimed, Lost, Outcome, QueuedTask, decode_spec, encode_spec

_EPS = 1e-9
#: how many ready rows a claim looks at beyond what it may take (tasks that do not fit are skipped)
SCAN = 16
#: the widest window of ready rows a claim looks at when none of the first ones fits
MAX_SCAN = 4096
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """One open transaction of a store."""

    def run(self, name: str, values: Mapping[str, Any]) -> Cursor:
        """Execute the named query with ``values`` (extra keys ignored)."""
        ...

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply a batch as :meth:`Store.write` does, inside this transaction."""
        ...


# --- submit -----------------------------------------------------------------------------------


def submit(
    tx: Tx,
    workflow_id: int,
    run_id: int,
    tasks: Sequence[QueuedTask],
    pools: Mapping[str, float],
    now: float,
) -> None:
    """Replace the queue of ``workflow_id`` with ``tasks`` (see ``Store.submit``)."""
    running = {row[0] for row in tx.run("queue_running", {"workflow_id": workflow_id}).fetchall()}
    tx.run("drop_queue", {"workflow_id": workflow_id})
    children: dict[str, list[str]] = {}
    for task in tasks:
        for need in task.needs:
            children.setdefault(need, []).append(task.name)
    for task in tasks:
        state = TaskState.READY if not task.needs else TaskState.WAITING
        tx.run(
            "enqueue",
            {
                "workflow_id": workflow_id,
                "task": task.name,
                "run_id": run_id,
                "state": state.value,
                "seq": task.seq,
                "unmet": len(task.needs),
                "resources": _encode(dict(task.resources)),
                "timeout": task.timeout,
                "duration": task.duration,
                "children": _encode(children.get(task.name, [])),
                "spec": encode_spec(task),
            },
        )
        if task.name not in running:
            _mark(tx, workflow_id, task.name, state, now, task.reason)
    semaphores = {f"semaphore:{t.semaphore}": 1.0 for t in tasks if t.semaphore is not None}
    for name, capacity in {**pools, **semaphores}.items():
        tx.run("set_pool", {"workflow_id": workflow_id, "name": name, "capacity": capacity})
    if not tasks:
        end_run_if_done(tx, run_id, now)


def _mark(
    tx: Tx,
    workflow_id: int,
    task: str,
    state: TaskState,
    now: float,
    reason: str,
    cancelled_by: str | None = None,
) -> None:
    values = {"workflow_id": workflow_id, "task": task, "state": state.value, "time": now}
    tx.run("mark_task", {**values, "reason": reason, "cancelled_by": cancelled_by})


# --- claim ------------------------------------------------------------------------------------


def claim(
    tx: Tx,
    worker_id: int,
    free: Mapping[str, float],
    *,
    now: float,
    lease: float,
    workflows: Sequence[int] | None,
    limit: int | None,
    ends_before: float | None,
    capacity: Mapping[str, float] | None = None,
) -> list[Claimed]:
    """Take ready tasks by ``seq`` that fit ``free`` and the pools (see ``Store.claim``)."""
    worker = tx.run("worker_by_id", {"worker_id": worker_id}).fetchone()
    if worker is None:
        raise LookupError(f"no worker {worker_id}")
    host, user, pid, _ = worker
    most = limit if limit is not None else 1 << 30
    # a window of the queue's head: what the free cores could take, a little more (PostgreSQL
    # locks every row it returns, FOR UPDATE SKIP LOCKED); when nothing in it fits (big tasks
    # first), a wider one, so that smaller tasks behind still start
    scan = min(most, int(max(free.get("cpu", 1.0), 1.0)) * 2) + SCAN
    values = {
        "now": now,
        "all_workflows": workflows is None,
        "workflows": _encode(list(workflows or ())),
    }
    while True:
        rows = tx.run("claim_candidates", {**values, "scan": scan}).fetchall()
        pick = _Pick(free, capacity, now, ends_before, most)
        taken = [pick.claimed(tx, row) for row in rows if pick.fits(tx, row)]
        if taken or len(rows) < scan or scan >= MAX_SCAN:
            break
        scan *= 8
    who = (host, user, pid)
    started: list[Change] = []
    changed: list[Change] = []
    for c, held in taken:
        attempt, change = _hold(tx, worker_id, c, held, now + lease, who, now)
        started.append(attempt)
        changed.append(change)
    tx.apply(started + changed)  # (a store applies runs of one kind of change at once)
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

    def fits(self, tx: Tx, row: tuple[Any, ...]) -> bool:
        if self.count >= self.most:
            return False
        wid, duration, res_json, spec = row[0], row[7], row[5], row[8]
        ends = self.ends_before
        if ends is not None and duration is not None and self.now + duration > ends:
            return False
        resources: dict[str, float] = json.loads(res_json)
        if self.whole is not None and resources.get("cpu", 0.0) > self.whole:
            resources["cpu"] = self.whole  # cores are elastic: it runs on all the worker has
        if not _fits(resources, self.left):
            return False
        task = decode_spec(spec)  # only for a task that fits: a claim looks at many rows
        held = _pool_demand(task, resources)
        wf_pools = self.pools.get(wid)
        if wf_pools is None:
            wf_pools = self.pools[wid] = _pools(tx, wid)
        if not _fits(held, wf_pools):
            return False
        _take(self.left, resources)
        _take(wf_pools, held)
        self.count += 1
        self._chosen = (resources, task, held)
        return True

    def claimed(self, tx: Tx, row: tuple[Any, ...]) -> tuple[Claimed, dict[str, float]]:
        assert self._chosen is not None
        resources, task, held = self._chosen
        wid, _, run_id, tries, recoveries, _, timeout, _, _, attempts, wf = row
        c = Claimed(wid, run_id, wf, attempts + 1, tries + 1, recoveries, resources, timeout, task)
        return c, held


def _pools(tx: Tx, workflow_id: int) -> dict[str, float]:
    rows = tx.run("pools_of_workflow", {"workflow_id": workflow_id}).fetchall()
    return {name: float(free) for name, free in rows}


def _pool_demand(task: QueuedTask, resources: Mapping[str, float]) -> dict[str, float]:
    """What the task takes of the workflow's named pools: every resource besides the machine's
    own, and its semaphore as a pool of one (a pool the workflow does not limit is unbounded)."""
    held = {k: v for k, v in resources.items() if k not in ("cpu", "mem", "gpu") and v}
    if task.semaphore is not None:
        held[f"semaphore:{task.semaphore}"] = 1.0
    return held


def _fits(demand: Mapping[str, float], free: Mapping[str, float]) -> bool:
    return all(d <= free.get(k, float("inf")) + _EPS for k, d in demand.items() if d)


def _take(free: dict[str, float], demand: Mapping[str, float]) -> None:
    for k, d in demand.items():
        if k in free:
            free[k] -= d


def _hold(
    tx: Tx,
    worker_id: int,
    c: Claimed,
    held: Mapping[str, float],
    lease_until: float,
    who: tuple[str, str, int],
    now: float,
) -> tuple[AttemptStarted, TaskChanged]:
    """Take the task's row; the attempt and task changes to apply."""
    key = {"workflow_id": c.workflow_id, "task": c.task.name}
    tx.run(
        "take_task", {**key, "number": c.number, "worker_id": worker_id, "lease_until": lease_until}
    )
    for name, amount in sorted(held.items()):  # in name order: locks never cross (PostgreSQL)
        tx.run("use_pool", {"workflow_id": c.workflow_id, "name": name, "amount": amount})
    host, user, pid = who
    reason = c.task.reason if c.tries == 1 else f"retry {c.tries - 1}"
    stdout, stderr = c.task.log_paths(c.number)
    attempt = AttemptRecord(
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
    change = TaskChanged(c.workflow_id, c.task.name, TaskState.RUNNING, now, attempts=c.number)
    return AttemptStarted(attempt), change


# --- finish -----------------------------------------------------------------------------------


class _Lease:
    """The queue row of a task, as a finish, release or reap sees it."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        state, self.worker_id, self.number, self.tries, self.recoveries, self.run_id = row[:6]
        self.state = TaskState(state)
        self.children: list[str] = json.loads(row[6])
        self.spec_json: str = row[7]
        self.resources: dict[str, float] = json.loads(row[8])
        self.timeout: float | None = row[9]

    @functools.cached_property
    def spec(self) -> QueuedTask:
        return decode_spec(self.spec_json)

    def holds(self, worker_id: int, number: int) -> bool:
        return (
            self.state is TaskState.RUNNING
            and self.worker_id == worker_id
            and self.number == number
        )


def _lease(tx: Tx, workflow_id: int, task: str) -> _Lease | None:
    row = tx.run("lease_of", {"workflow_id": workflow_id, "task": task}).fetchone()
    return None if row is None else _Lease(row)


def finish(tx: Tx, worker_id: int, outcomes: Sequence[Outcome], now: float) -> list[bool]:
    """Record each outcome still under the worker's lease (see ``Store.finish``); keep the others
    as stale reports, unless they were recorded already (a retried request)."""
    held: list[tuple[_Lease, Outcome]] = []
    accepted: list[bool] = []
    for o in outcomes:
        a = o.attempt
        lease = _lease(tx, a.workflow_id, a.task)
        if lease is not None and lease.holds(worker_id, a.number):
            held.append((lease, o))
            accepted.append(True)
        else:
            accepted.append(_recorded(tx, o) or _stale(tx, worker_id, o, now))
    tx.apply([o.attempt for _, o in held])  # (at once: a store applies runs of one kind together)
    for lease, o in held:
        _finish_one(tx, lease, o, now)
    for run_id in {lease.run_id for lease, _ in held}:
        end_run_if_done(tx, run_id, now)
    return accepted


def _finish_one(tx: Tx, lease: _Lease, o: Outcome, now: float) -> None:
    a = o.attempt
    key = {"workflow_id": a.workflow_id, "task": a.task, "number": a.number}
    tx.run("attempt_began", {**key, "started": o.started, "pid": o.pid})
    if o.log_tail:
        tx.run("insert_failure_log", {**key, "tail": o.log_tail})
    if o.shipped is not None:
        log = o.shipped
        tx.run(
            "insert_shipped_log",
            {**key, "stdout": log.stdout, "stderr": log.stderr, "truncated": log.truncated},
        )
    tx.apply(list(o.changes))
    _release_pools(tx, a.workflow_id, lease)
    if o.then is TaskState.SUCCEEDED:
        _succeeded(tx, a, lease)
    elif o.then is TaskState.READY:
        resources, timeout = lease.resources, lease.timeout
        if o.recovered:
            resources, timeout = dict(o.resources or resources), o.timeout
        _again(
            tx,
            a.workflow_id,
            a.task,
            now,
            o.not_before,
            resources,
            timeout,
            recovered=o.recovered,
            uncounted=False,
            reason=o.reason,
            exit_code=a.exit_code,
        )
    else:
        _failed(tx, a.workflow_id, a.task, lease, now, o.reason, a.exit_code)


def _recorded(tx: Tx, o: Outcome) -> bool:
    """Whether this very report was recorded already: the attempt ended by a finish (not taken
    back) with the process and start it reports. A worker whose request timed out after the
    store committed sends it again."""
    a = o.attempt
    key = {"workflow_id": a.workflow_id, "task": a.task, "number": a.number}
    row = tx.run("attempt_report", key).fetchone()
    if row is None:
        return False
    ended, pid, started, kill = row
    same = pid == o.pid and abs(started - o.started) < 1e-6
    return ended is not None and same and kill != Kill.LOST.value


def _stale(tx: Tx, worker_id: int, o: Outcome, now: float) -> bool:
    """Keep a refused report (see :class:`~herd.store.queued.StaleReport`); always False."""
    a = o.attempt
    tx.run(
        "insert_stale_report",
        {
            "workflow_id": a.workflow_id,
            "task": a.task,
            "number": a.number,
            "worker_id": worker_id,
            "reported": now,
            "state": o.then.value,
            "exit_code": a.exit_code,
        },
    )
    return False


def _release_pools(tx: Tx, workflow_id: int, lease: _Lease) -> None:
    for name, amount in sorted(_pool_demand(lease.spec, lease.resources).items()):
        tx.run("use_pool", {"workflow_id": workflow_id, "name": name, "amount": -amount})


def _succeeded(tx: Tx, a: AttemptFinished, lease: _Lease) -> None:
    spec = lease.spec
    tx.run("queue_ended", {"workflow_id": a.workflow_id, "task": a.task, "state": "succeeded"})
    tx.apply(
        [
            TaskChanged(
                a.workflow_id,
                a.task,
                TaskState.SUCCEEDED,
                a.end,
                reason="",
                exit_code=0,
                fingerprint=spec.fingerprint,
                cmd_digest=spec.cmd_digest,
                env_digest=spec.env_digest,
                inputs=a.inputs,
            )
        ]
    )
    for child in lease.children:
        row = tx.run("unlock_child", {"workflow_id": a.workflow_id, "task": child}).fetchone()
        if row is not None and row[0] == TaskState.READY.value:
            _mark(tx, a.workflow_id, child, TaskState.READY, a.end, "")


def _again(
    tx: Tx,
    workflow_id: int,
    task: str,
    now: float,
    not_before: float,
    resources: Mapping[str, float],
    timeout: float | None,
    *,
    recovered: bool,
    uncounted: bool,
    reason: str,
    exit_code: int | None,
) -> None:
    """The task is ready again (a retry after ``not_before``, a recovery, a lost attempt)."""
    tx.run(
        "queue_again",
        {
            "workflow_id": workflow_id,
            "task": task,
            "not_before": not_before,
            "resources": _encode(dict(resources)),
            "timeout": timeout,
            "recovered": int(recovered),
            "uncounted": int(uncounted),
        },
    )
    state = TaskState.RETRYING if not_before > now else TaskState.READY
    tx.apply([TaskChanged(workflow_id, task, state, now, reason=reason, exit_code=exit_code)])


def _failed(
    tx: Tx,
    workflow_id: int,
    task: str,
    lease: _Lease,
    now: float,
    reason: str,
    exit_code: int | None,
) -> None:
    tx.run("queue_ended", {"workflow_id": workflow_id, "task": task, "state": "failed"})
    tx.apply(
        [TaskChanged(workflow_id, task, TaskState.FAILED, now, reason=reason, exit_code=exit_code)]
    )
    _cancel_descendants(tx, workflow_id, task, lease.children, now)


def _cancel_descendants(
    tx: Tx, workflow_id: int, failed: str, children: Iterable[str], now: float
) -> None:
    reason = f"needs '{failed}', which failed"
    stack = list(children)
    while stack:
        child = stack.pop()
        row = tx.run("cancel_child", {"workflow_id": workflow_id, "task": child}).fetchone()
        if row is not None:
            _mark(tx, workflow_id, child, TaskState.CANCELLED, now, reason, failed)
            stack.extend(json.loads(row[0]))


def end_run_if_done(tx: Tx, run_id: int, now: float) -> None:
    """End the submission's run once none of its tasks is waiting, ready or running."""
    if tx.run("run_has_open_tasks", {"run_id": run_id}).fetchone() is not None:
        return
    (unsucceeded,) = tx.run("run_unsucceeded", {"run_id": run_id}).fetchone()
    status = RunStatus.FAILED if unsucceeded else RunStatus.SUCCEEDED
    tx.run("end_open_run", {"run_id": run_id, "ended": now, "status": status})


def queue_counts(tx: Tx, workflows: Sequence[int] | None) -> dict[TaskState, int]:
    values = {"all_workflows": workflows is None, "workflows": _encode(list(workflows or ()))}
    return {TaskState(state): int(n) for state, n in tx.run("queue_counts", values).fetchall()}


# --- heartbeats, release, reap ----------------------------------------------------------------


def heartbeat(tx: Tx, worker_id: int, now: float, lease: float) -> set[tuple[int, str, int]]:
    tx.run("renew_leases", {"worker_id": worker_id, "lease_until": now + lease})
    tx.run("worker_seen", {"worker_id": worker_id, "now": now})
    rows = tx.run("held_by", {"worker_id": worker_id}).fetchall()
    return {(int(w), str(t), int(n)) for w, t, n in rows}


def release(
    tx: Tx, worker_id: int, attempts: Sequence[tuple[int, str, int]], now: float, reason: str
) -> list[Lost]:
    """Give back attempts the worker stopped: cancelled, the task ready at once, try uncounted."""
    lost: list[Lost] = []
    for workflow_id, task, number in attempts:
        lease = _lease(tx, workflow_id, task)
        if lease is None or not lease.holds(worker_id, number):
            continue
        stopped = TaskState.CANCELLED
        _take_back(tx, workflow_id, task, lease, now, stopped, Kill.INTERRUPTED, reason)
        lost.append(Lost(workflow_id, task, number, worker_id, TaskState.READY))
    return lost


def reap(tx: Tx, now: float) -> list[Lost]:
    """Take back every expired lease (see ``Store.reap``)."""
    lost: list[Lost] = []
    for workflow_id, task, number, worker_id in tx.run("expired_leases", {"now": now}).fetchall():
        lease = _lease(tx, workflow_id, task)
        assert lease is not None
        reason = f"lost: worker {worker_id} stopped renewing its lease"
        then = _take_back(tx, workflow_id, task, lease, now, TaskState.FAILED, Kill.LOST, reason)
        lost.append(Lost(workflow_id, task, number, worker_id, then))
        end_run_if_done(tx, lease.run_id, now)
    tx.run("lose_workers", {"now": now})
    return lost


def _take_back(
    tx: Tx,
    workflow_id: int,
    task: str,
    lease: _Lease,
    now: float,
    recorded: TaskState,
    kill: Kill,
    reason: str,
) -> TaskState:
    """End the lease's attempt as ``recorded``; the task is ready again, or failed when the
    attempt counted (lost, not released) and its retries are spent."""
    ended = AttemptFinished(
        workflow_id, task, lease.number, now, recorded, kill_reason=reason, kill=kill
    )
    tx.apply([ended])
    _release_pools(tx, workflow_id, lease)
    counted = recorded is not TaskState.CANCELLED
    spec = lease.spec
    if counted and lease.tries - lease.recoveries > spec.retries:
        _failed(tx, workflow_id, task, lease, now, reason, None)
        return TaskState.FAILED
    _again(
        tx,
        workflow_id,
        task,
        now,
        now,
        lease.resources,
        lease.timeout,
        recovered=False,
        uncounted=not counted,
        reason=reason,
        exit_code=None,
    )
    return TaskState.READY
