"""The worker protocol's transactions, written once for every SQL store.

:class:`~herd.store.base.Store` documents ``submit``, ``claim``, ``heartbeat``, ``finish``,
``release`` and ``reap``; a store implements each as one transaction that calls the function of the
same name here (the claim: :mod:`herd.store.queue_claim`) with a :class:`Tx`: its named queries (``queries.sql`` of its dialect, with the
same names and parameters) and its way of applying a batch of changes. The functions hold the
logic — which ready tasks fit, the lease fence, unmet-needs counters, retries after a lost
attempt — so that SQLite and PostgreSQL cannot drift apart.

Round trips: a write whose result is not read goes through :meth:`Tx.send` (or
:meth:`Tx.apply`), which PostgreSQL queues in its pipeline and sends with the next read or the
commit. A claim reads once (the worker and the window of ready rows; a workflow's pools only
when a task takes from them) and a finish once (the leases of the whole batch, locked in key
order), whatever the batch's size; the rest is statements for many rows at a time
(``executemany``; on PostgreSQL one statement for the batch, ``postgres_statements.MANY``). Only a final failure reads more (the tasks needing it, level by level).

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

from herd.core.model import Kill, TaskState
from herd.store.base import (
    AttemptFinished,
    Change,
    TaskChanged,
)
from herd.store.queued import Lost, Outcome, QueuedTask, encode_spec
from herd.store.rows import decode, encode_map

encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


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

    def send(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute the named query once per row of values; its results are not read (a store may
        send it later, in order, with the next :meth:`run` or the commit)."""
        ...

    def apply(self, changes: Sequence[Change]) -> None:
        """Apply a batch as :meth:`Store.write` does, inside this transaction (sent as
        :meth:`send` sends; a change that matches no row fails the transaction)."""
        ...

    def notify(self) -> None:
        """Wake the workers waiting for work once the transaction commits (a store whose
        workers poll does nothing)."""
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
    tx.send("drop_queue", [{"workflow_id": workflow_id}])
    children: dict[str, list[str]] = {}
    for task in tasks:
        for need in task.needs:
            children.setdefault(need, []).append(task.name)
    queued, marked = [], []
    for task in tasks:
        state = TaskState.READY if not task.needs else TaskState.WAITING
        queued.append(
            {
                "workflow_id": workflow_id,
                "task": task.name,
                "run_id": run_id,
                "state": state.value,
                "seq": task.seq,
                "unmet": len(task.needs),
                "resources": encode(dict(task.resources)),
                "timeout": task.timeout,
                "duration": task.duration,
                "children": encode(children.get(task.name, [])),
                "spec": encode_spec(task),
            }
        )
        if task.name not in running:
            marked.append(_marked(workflow_id, task.name, state, now, task.reason))
    tx.send("enqueue", queued)
    tx.send("mark_task", marked)
    semaphores = {f"semaphore:{t.semaphore}": 1.0 for t in tasks if t.semaphore is not None}
    limits = {**pools, **semaphores}
    tx.send(
        "set_pool",
        [{"workflow_id": workflow_id, "name": k, "capacity": v} for k, v in limits.items()],
    )
    _end_runs_when_done(tx, [run_id], now)
    tx.notify()


def _marked(
    workflow_id: int,
    task: str,
    state: TaskState,
    now: float,
    reason: str,
    cancelled_by: str | None = None,
) -> dict[str, Any]:
    """The values of ``mark_task``: the task's state in ``tasks`` (``cancelled_by``: the failed
    task that cancelled it)."""
    return {
        "workflow_id": workflow_id,
        "task": task,
        "state": state.value,
        "time": now,
        "reason": reason,
        "cancelled_by": cancelled_by,
    }


# --- pools (a claim takes from them, a finish or a take-back gives back) -------------------------


def pool_demand(semaphore: str | None, resources: Mapping[str, float]) -> dict[str, float]:
    """What a task takes of the workflow's named pools: every resource besides the machine's
    own, and its semaphore as a pool of one (a pool the workflow does not limit is unbounded)."""
    held = {k: v for k, v in resources.items() if k not in ("cpu", "mem", "gpu") and v}
    if semaphore is not None:
        held[f"semaphore:{semaphore}"] = 1.0
    return held


def use_pools(tx: Tx, demands: Sequence[tuple[int, Mapping[str, float]]], sign: float) -> None:
    """Take (``sign`` 1) or give back (-1) the pool units of tasks, in (workflow, pool) order:
    locks never cross (PostgreSQL)."""
    rows = sorted((wid, name, amount) for wid, held in demands for name, amount in held.items())
    if rows:
        tx.send(
            "use_pool",
            [{"workflow_id": w, "name": n, "amount": sign * a} for w, n, a in rows],
        )


# --- finish -----------------------------------------------------------------------------------


class _Lease:
    """The queue row of a task, as a finish, release or reap sees it: of its spec only what they
    use (decoding the whole spec cost a finish as much as the claim's decoding did)."""

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.workflow_id, self.task = int(row[0]), str(row[1])
        state, self.worker_id, self.number, self.tries, self.recoveries, self.run_id = row[2:8]
        self.state = TaskState(state)
        self.children: list[str] = decode(row[8])
        self.resources: dict[str, float] = decode(row[9])
        self.timeout: float | None = row[10]
        self.semaphore: str | None = row[11]
        self.retries = int(row[12])
        #: what a success records of the spec (``TaskChanged``)
        self.fingerprint, self.cmd_digest, self.env_digest = row[13:16]

    @functools.cached_property
    def pools(self) -> tuple[int, dict[str, float]]:
        """What the attempt holds of its workflow's pools."""
        return self.workflow_id, pool_demand(self.semaphore, self.resources)

    def holds(self, worker_id: int, number: int) -> bool:
        return (
            self.state is TaskState.RUNNING
            and self.worker_id == worker_id
            and self.number == number
        )


def _leases(tx: Tx, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], _Lease]:
    """The queue rows of tasks, in one read (PostgreSQL locks them, in key order: a finish and
    a reap of the same attempt happen one after the other)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = tx.run("leases_of", {"keys": encode(wanted)}).fetchall()
    leases = [_Lease(row) for row in rows]
    return {(lease.workflow_id, lease.task): lease for lease in leases}


# --- one task at a time (herd.store.served cancels a workflow's tasks with them) ---------------


def _lease(tx: Tx, workflow_id: int, task: str) -> _Lease | None:
    return _leases(tx, [(workflow_id, task)]).get((workflow_id, task))


def _mark(
    tx: Tx,
    workflow_id: int,
    task: str,
    state: TaskState,
    now: float,
    reason: str,
    cancelled_by: str | None = None,
) -> None:
    tx.send("mark_task", [_marked(workflow_id, task, state, now, reason, cancelled_by)])


def _release_pools(tx: Tx, workflow_id: int, lease: _Lease) -> None:
    use_pools(tx, [(workflow_id, lease.pools[1])], -1.0)


def finish(
    tx: Tx,
    worker_id: int,
    outcomes: Sequence[Outcome],
    now: float,
    runs: set[int] | None = None,
    later: list[Change] | None = None,
) -> list[bool]:
    """Record each outcome still under the worker's lease (see ``Store.finish``); keep the others
    as stale reports, unless they were recorded already (a retried request). Given ``runs``, the
    submissions of the recorded attempts go there, for the caller to end (:func:`end_runs`);
    given ``later``, the successes' changes of ``tasks`` too, for the caller to apply with its
    own (a worker's turn: one statement for the finished and the claimed tasks' rows)."""
    leases = _leases(tx, [(o.attempt.workflow_id, o.attempt.task) for o in outcomes])
    held: list[tuple[_Lease, Outcome]] = []
    accepted: list[bool] = []
    for o in outcomes:
        a = o.attempt
        lease = leases.get((a.workflow_id, a.task))
        if lease is not None and lease.holds(worker_id, a.number):
            held.append((lease, o))
            accepted.append(True)
        else:
            accepted.append(_recorded(tx, o) or _stale(tx, worker_id, o, now))
    if not held:
        return accepted
    # the attempt's outcome and its process in one update of its row (the lease held: the claim
    # that gave it inserted the row)
    tx.send("attempt_ended", [_ended(o) for _, o in held])
    tails: list[dict[str, Any]] = []
    shipped: list[dict[str, Any]] = []
    changes: list[Change] = []
    for _, o in held:
        a = o.attempt
        key = {"workflow_id": a.workflow_id, "task": a.task, "number": a.number}
        if o.log_tail:
            tails.append({**key, "tail": o.log_tail})
        if o.shipped is not None:
            log = o.shipped
            shipped.append(
                {**key, "stdout": log.stdout, "stderr": log.stderr, "truncated": log.truncated}
            )
        changes.extend(o.changes)
    tx.send("insert_failure_log", tails)
    tx.send("insert_shipped_log", shipped)
    if changes:
        tx.apply(changes)
    use_pools(tx, [lease.pools for lease, _ in held], -1.0)
    _succeeded(tx, [(lease, o) for lease, o in held if o.then is TaskState.SUCCEEDED], later)
    wake = False  # whether other workers may find work this finish made claimable
    for lease, o in held:
        a = o.attempt
        wake = wake or bool(lease.children) or bool(lease.pools[1])
        if o.then is TaskState.READY:
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
            wake = True
        elif o.then is not TaskState.SUCCEEDED:
            _failed(tx, a.workflow_id, a.task, lease, now, o.reason, a.exit_code)
    if runs is None:
        _end_runs_when_done(tx, [lease.run_id for lease, _ in held], now)
    else:
        runs.update(lease.run_id for lease, _ in held)
    if wake:  # (idle workers see a finished workflow within RECHECK without a wake-up)
        tx.notify()
    return accepted


def _ended(o: Outcome) -> dict[str, Any]:
    """The values of ``attempt_ended``."""
    a = o.attempt
    return {
        "workflow_id": a.workflow_id,
        "task": a.task,
        "number": a.number,
        "started": o.started,
        "pid": o.pid,
        "end": a.end,
        "state": a.state.value,
        "exit_code": a.exit_code,
        "signal": a.signal,
        "kill_reason": a.kill_reason,
        "kill": a.kill,
        "utime": a.utime,
        "stime": a.stime,
        "max_rss": a.max_rss,
        "peak_mem": a.peak_mem,
        "mean_cpu": a.mean_cpu,
        "inputs": encode_map(a.inputs) if a.inputs else None,
        "outputs": encode_map(a.outputs) if a.outputs else None,
    }


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
    tx.send(
        "insert_stale_report",
        [
            {
                "workflow_id": a.workflow_id,
                "task": a.task,
                "number": a.number,
                "worker_id": worker_id,
                "reported": now,
                "state": o.then.value,
                "exit_code": a.exit_code,
            }
        ],
    )
    return False


def _succeeded(
    tx: Tx, done: Sequence[tuple[_Lease, Outcome]], later: list[Change] | None = None
) -> None:
    """The tasks succeeded: their dependents' unmet needs go down (ready at none). Their rows of
    ``tasks`` change now, or go to ``later`` (no statement of the turn reads them before)."""
    if not done:
        return
    tx.send(
        "queue_ended",
        [
            {"workflow_id": lease.workflow_id, "task": lease.task, "state": "succeeded"}
            for lease, _ in done
        ],
    )
    changes: list[Change] = []
    for lease, o in done:
        a = o.attempt
        changes.append(
            TaskChanged(
                a.workflow_id,
                a.task,
                TaskState.SUCCEEDED,
                a.end,
                reason="",
                exit_code=0,
                fingerprint=lease.fingerprint,
                cmd_digest=lease.cmd_digest,
                env_digest=lease.env_digest,
                inputs=a.inputs,
            )
        )
    if later is None:
        tx.apply(changes)
    else:
        later.extend(changes)
    # in key order (locks never cross); a child of two tasks of the batch is counted down twice
    children = sorted(
        (lease.workflow_id, child, o.attempt.end) for lease, o in done for child in lease.children
    )
    if children:
        tx.send("unlock_child", [{"workflow_id": w, "task": c} for w, c, _ in children])
        tx.send(
            "mark_ready",
            [{"workflow_id": w, "task": c, "time": end} for w, c, end in children],
        )


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
    tx.send(
        "queue_again",
        [
            {
                "workflow_id": workflow_id,
                "task": task,
                "not_before": not_before,
                "resources": encode(dict(resources)),
                "timeout": timeout,
                "recovered": int(recovered),
                "uncounted": int(uncounted),
            }
        ],
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
    tx.send("queue_ended", [{"workflow_id": workflow_id, "task": task, "state": "failed"}])
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
            cancelled = _marked(workflow_id, child, TaskState.CANCELLED, now, reason, failed)
            tx.send("mark_task", [cancelled])
            stack.extend(json.loads(row[0]))


def end_run_if_done(tx: Tx, run_id: int, now: float) -> None:
    """End the submission's run once none of its tasks is waiting, ready or running."""
    _end_runs_when_done(tx, [run_id], now)


def end_runs(tx: Tx, runs: Iterable[int], claimed: Iterable[int], now: float) -> None:
    """After a finish and a claim in one transaction: end the finished attempts' ``runs`` once
    done, but for those of the ``claimed`` tasks (running, so not done: a worker's turn then
    reads no queue to know it)."""
    _end_runs_when_done(tx, set(runs) - set(claimed), now)


def _end_runs_when_done(tx: Tx, run_ids: Iterable[int], now: float) -> None:
    """End each submission's run once none of its tasks is waiting, ready or running (failed
    when one of them did not succeed)."""
    tx.send("end_run_when_done", [{"run_id": r, "ended": now} for r in sorted(set(run_ids))])


def queue_counts(tx: Tx, workflows: Sequence[int] | None) -> dict[TaskState, int]:
    values = {"all_workflows": workflows is None, "workflows": encode(list(workflows or ()))}
    return {TaskState(state): int(n) for state, n in tx.run("queue_counts", values).fetchall()}


# --- heartbeats, release, reap ----------------------------------------------------------------


def heartbeat(tx: Tx, worker_id: int, now: float, lease: float) -> set[tuple[int, str, int]]:
    tx.send("renew_leases", [{"worker_id": worker_id, "lease_until": now + lease}])
    tx.send("worker_seen", [{"worker_id": worker_id, "now": now}])
    rows = tx.run("held_by", {"worker_id": worker_id}).fetchall()
    return {(int(w), str(t), int(n)) for w, t, n in rows}


def release(
    tx: Tx, worker_id: int, attempts: Sequence[tuple[int, str, int]], now: float, reason: str
) -> list[Lost]:
    """Give back attempts the worker stopped: cancelled, the task ready at once, try uncounted."""
    leases = _leases(tx, [(workflow_id, task) for workflow_id, task, _ in attempts])
    lost: list[Lost] = []
    for workflow_id, task, number in attempts:
        lease = leases.get((workflow_id, task))
        if lease is None or not lease.holds(worker_id, number):
            continue
        stopped = TaskState.CANCELLED
        _take_back(tx, lease, now, stopped, Kill.INTERRUPTED, reason)
        lost.append(Lost(workflow_id, task, number, worker_id, TaskState.READY))
    if lost:
        tx.notify()
    return lost


def reap(tx: Tx, now: float) -> list[Lost]:
    """Take back every expired lease (see ``Store.reap``)."""
    expired = tx.run("expired_leases", {"now": now}).fetchall()
    leases = _leases(tx, [(workflow_id, task) for workflow_id, task, _, _ in expired])
    lost: list[Lost] = []
    for workflow_id, task, number, worker_id in expired:
        lease = leases[(workflow_id, task)]
        reason = f"lost: worker {worker_id} stopped renewing its lease"
        then = _take_back(tx, lease, now, TaskState.FAILED, Kill.LOST, reason)
        lost.append(Lost(workflow_id, task, number, worker_id, then))
    _end_runs_when_done(tx, [leases[(w, t)].run_id for w, t, _, _ in expired], now)
    tx.send("lose_workers", [{"now": now}])
    if lost:
        tx.notify()
    return lost


def _take_back(
    tx: Tx,
    lease: _Lease,
    now: float,
    recorded: TaskState,
    kill: Kill,
    reason: str,
) -> TaskState:
    """End the lease's attempt as ``recorded``; the task is ready again, or failed when the
    attempt counted (lost, not released) and its retries are spent."""
    workflow_id, task = lease.workflow_id, lease.task
    ended = AttemptFinished(
        workflow_id, task, lease.number, now, recorded, kill_reason=reason, kill=kill
    )
    tx.apply([ended])
    use_pools(tx, [lease.pools], -1.0)
    counted = recorded is not TaskState.CANCELLED
    if counted and lease.tries - lease.recoveries > lease.retries:
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
