"""The campaign transactions, written once for every SQL store (as :mod:`herd.store.queue` is).

:class:`CampaignMethods` implements :class:`~herd.store.campaigned.CampaignStore` for a store
that provides two hooks: ``_campaign_write(doing, work)`` (``work(tx)`` in one write
transaction) and ``_campaign_read(doing, work)``. Tables: ``campaigns``, ``campaign_runs``,
``campaign_groups``; instances are rows of ``tasks`` and ``queue`` of the campaign's workflow.

Adding an instance to a live queue: each of its needs is looked at (locked on PostgreSQL, so a
finish that reads the need's children waits, or is waited for): a need that succeeded is met;
one still to run counts in ``unmet`` and gets the instance among its children; one that failed
(or was cancelled) cancels the instance at once — it is among the need's children all the same,
so a rerun of the need puts it back.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from herd.core import campaign as cc
from herd.core.campaign import Group, Instance, Run, Template
from herd.core.model import TaskState
from herd.core.templates import data, parse
from herd.errors import UsageError
from herd.store import queue
from herd.store.campaigned import CampaignRecord, Injected, Origin, Requeued
from herd.store.queue import end_run_if_done
from herd.store.queued import QueuedTask, decode_spec, encode_spec
from herd.store.workdir import Workdir

_T = TypeVar("_T")
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ENDED = {TaskState.FAILED.value, TaskState.CANCELLED.value}


class CampaignTx(queue.Tx, Protocol):
    def notify(self) -> None:
        """Wake the workers waiting for work when the transaction commits (PostgreSQL)."""
        ...


Work = Callable[[CampaignTx], _T]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def record(row: Sequence[Any]) -> CampaignRecord:
    cid, name, wid, template, source, workdir, created, closed, runs = row
    return CampaignRecord(
        int(cid), name, int(wid), parse(_json(template)), source, workdir, created, closed, runs
    )


# --- create -----------------------------------------------------------------------------


def create(
    tx: CampaignTx, name: str, template: Template, source: str | None, workdir: str, now: float
) -> int:
    values = {"name": name, "source": source, "now": now}
    (wid,) = tx.run("insert_campaign_workflow", values).fetchone()
    values |= {"workflow_id": wid, "template": _encode(data(template)), "workdir": workdir}
    (cid,) = tx.run("insert_campaign", values).fetchone()
    return int(cid)


def runs_of(tx: CampaignTx, campaign_id: int) -> list[Run]:
    rows = tx.run("campaign_runs", {"campaign_id": campaign_id}).fetchall()
    return [Run(int(run), _json(fields)) for run, fields in rows]


def groups_of(tx: CampaignTx, campaign_id: int) -> list[Group]:
    rows = tx.run("campaign_groups", {"campaign_id": campaign_id}).fetchall()
    return [Group(task, json.loads(value), tuple(_json(runs))) for task, value, runs in rows]


# --- inject -----------------------------------------------------------------------------


def inject(
    tx: CampaignTx, rec: CampaignRecord, runs: Sequence[Run], origin: Origin, now: float
) -> Injected:
    """Record the new runs, queue their instances and those of the groups they complete."""
    _lock(tx, rec, refuse_closed=True)
    known = {r.run: r for r in runs_of(tx, rec.id)}
    new: dict[int, Run] = {}
    again: list[int] = []
    for r in runs:
        if r.run in known or r.run in new:
            again.append(r.run)
        else:
            new[r.run] = r
    for r in new.values():
        values = {"campaign_id": rec.id, "run": r.run, "fields": _encode(dict(r.fields))}
        tx.run("insert_campaign_run", {**values, "now": now})
    every = [*known.values(), *new.values()]
    closed = groups_of(tx, rec.id)
    keys = {(g.task, g.key) for g in closed}
    groups = cc.complete(rec.template, every, keys)
    late = _late(rec.template, new.values(), keys)
    made = _advance(tx, rec, list(new.values()), every, groups, origin, now)
    return Injected(tuple(new), tuple(again), tuple(groups), late, *made)


def close(
    tx: CampaignTx,
    rec: CampaignRecord,
    task: str | None,
    values: Sequence[str] | None,
    campaign: bool,
    origin: Origin,
    now: float,
) -> Injected:
    """Close groups by hand (and the campaign), queueing their instances."""
    _lock(tx, rec, refuse_closed=False)
    every = runs_of(tx, rec.id)
    keys = {(g.task, g.key) for g in groups_of(tx, rec.id)}
    groups = cc.closing(rec.template, every, keys, task, None if campaign else values)
    if campaign:
        tx.run("close_campaign", {"campaign_id": rec.id, "now": now})
    made = _advance(tx, rec, [], every, groups, origin, now)
    return Injected((), (), tuple(groups), (), *made)


def _lock(tx: CampaignTx, rec: CampaignRecord, *, refuse_closed: bool) -> None:
    row = tx.run("lock_campaign", {"campaign_id": rec.id}).fetchone()
    if row is None:
        raise UsageError(f"campaign '{rec.name}' was removed: see herd campaign list")
    if refuse_closed and row[0] is not None:
        raise UsageError(
            f"campaign '{rec.name}' is closed and takes no more runs: create another campaign"
        )


def _late(
    template: Template, runs: Iterable[Run], closed: set[tuple[str, str]]
) -> tuple[tuple[int, str], ...]:
    out = []
    for r in runs:
        for t in template.tasks:
            if t.group_by is None or not cc.applies(t, r):
                continue
            value = r.value(t.group_by)
            if value is not None and (t.name, cc.value_key(value)) in closed:
                out.append((r.run, t.name))
    return tuple(out)


def _advance(
    tx: CampaignTx,
    rec: CampaignRecord,
    new: Sequence[Run],
    every: Sequence[Run],
    groups: Sequence[Group],
    origin: Origin,
    now: float,
) -> tuple[int, int | None]:
    """Queue the instances of ``new`` runs and of ``groups`` (recorded closed) under a new run."""
    by_number = {r.run: r for r in every}
    instances = [i for r in new for i in cc.run_instances(rec.template, r, rec.name)]
    for g in cc.order(rec.template, groups):
        instances += cc.group_instances(rec.template, g, by_number, rec.name)
        values = {"campaign_id": rec.id, "task": g.task, "value": g.key, "now": now}
        tx.run("insert_campaign_group", {**values, "runs": _encode(list(g.runs))})
    if not instances:
        return 0, None
    run_id = _begin(tx, rec, origin, now)
    _enqueue(tx, rec, instances, run_id, now)
    tx.run("count_campaign_tasks", {"workflow_id": rec.workflow_id, "now": now})
    end_run_if_done(tx, run_id, now)  # (every instance cancelled at once: nothing to wait for)
    tx.notify()
    return len(instances), run_id


def _begin(tx: CampaignTx, rec: CampaignRecord, origin: Origin, now: float) -> int:
    run = {
        "workflow_id": rec.workflow_id,
        "started": now,
        "host": origin.host,
        "user": origin.user,
        "pid": origin.pid,
        "argv": _encode(list(origin.argv)),
        "limits": "{}",
    }
    (run_id,) = tx.run("insert_run", run).fetchone()
    return int(run_id)


def _enqueue(
    tx: CampaignTx, rec: CampaignRecord, instances: Sequence[Instance], run_id: int, now: float
) -> None:
    wid = rec.workflow_id
    (seq,) = tx.run("next_seq", {"workflow_id": wid}).fetchone()
    log_dir = str(Workdir(Path(rec.workdir)).workflow_logs_dir(rec.name))
    for offset, inst in enumerate(instances):
        task = _queued(rec, inst, int(seq) + offset, log_dir)
        values = {"workflow_id": wid, "name": task.name, "now": now, "cmd": inst.cmd}
        tx.run("campaign_task", {**values, "resources": _encode(dict(task.resources))})
        unmet, failed = 0, None
        for need in inst.needs:
            row = tx.run("queue_row", {"workflow_id": wid, "task": need}).fetchone()
            if row is None:
                continue
            state, children = row[0], _json(row[1])
            tx.run(
                "set_children",
                {"workflow_id": wid, "task": need, "children": _encode([*children, inst.name])},
            )
            if state in _ENDED:
                failed = failed or need
            elif state != TaskState.SUCCEEDED.value:
                unmet += 1
        _put(tx, wid, task, run_id, unmet, failed, now)


def _queued(rec: CampaignRecord, inst: Instance, seq: int, log_dir: str) -> QueuedTask:
    t = rec.template.task(inst.task)
    return QueuedTask(
        inst.name,
        inst.cmd,
        posixpath.join(rec.workdir, t.cwd) if t.cwd else rec.workdir,
        {**rec.template.env, **t.env},
        dict(t.resources),
        seq,
        needs=inst.needs,
        reason="new run" if inst.group is None else "group complete",
        retries=t.retries,
        timeout=t.timeout,
        log_dir=log_dir,
        expanded=inst.cmd,
    )


def _put(
    tx: CampaignTx,
    wid: int,
    task: QueuedTask,
    run_id: int,
    unmet: int,
    failed: str | None,
    now: float,
    *,
    again: bool = False,
) -> None:
    """Queue ``task`` (``again``: put its row back, tries reset): ready, waiting for ``unmet``
    needs, or cancelled at once when the need ``failed`` failed."""
    if failed is not None:
        state, reason = TaskState.CANCELLED, f"needs '{failed}', which failed"
    else:
        state = TaskState.READY if unmet == 0 else TaskState.WAITING
        reason = "rerun" if again else task.reason
    values = {
        "workflow_id": wid,
        "task": task.name,
        "run_id": run_id,
        "state": state.value,
        "unmet": unmet,
        "resources": _encode(dict(task.resources)),
        "timeout": task.timeout,
    }
    if again:
        tx.run("requeue_task", values)
    else:
        values |= {"seq": task.seq, "duration": None, "children": "[]"}
        tx.run("enqueue", {**values, "spec": encode_spec(task)})
    mark = {"workflow_id": wid, "task": task.name, "state": state.value, "time": now}
    tx.run("mark_task", {**mark, "reason": reason, "cancelled_by": failed})


# --- rerun and invalidate ---------------------------------------------------------------


def requeue(
    tx: CampaignTx, rec: CampaignRecord, seeds: Sequence[str], origin: Origin, now: float
) -> Requeued:
    """Put ``seeds`` and everything downstream back in the queue (see ``Store.requeue``)."""
    _lock(tx, rec, refuse_closed=False)
    wid = rec.workflow_id
    rows: dict[str, tuple[str, list[str], QueuedTask]] = {}
    stack = list(seeds)
    while stack:
        name = stack.pop()
        if name in rows:
            continue
        row = tx.run("queue_row", {"workflow_id": wid, "task": name}).fetchone()
        if row is None:
            continue
        rows[name] = (row[0], _json(row[1]), decode_spec(row[2]))
        stack.extend(rows[name][1])
    running = sorted(n for n, (state, _, _) in rows.items() if state == TaskState.RUNNING.value)
    again = sorted(set(rows) - set(running), key=lambda n: rows[n][2].seq)
    if not again:
        return Requeued((), tuple(running), (), None)
    run_id = _begin(tx, rec, origin, now)
    blocked = []
    for name in again:
        task = rows[name][2]
        unmet, failed = _needs_now(tx, wid, task.needs, set(again))
        _put(tx, wid, task, run_id, unmet, failed, now, again=True)
        if failed is not None:
            blocked.append(name)
    end_run_if_done(tx, run_id, now)
    tx.notify()
    return Requeued(tuple(again), tuple(running), tuple(blocked), run_id)


def _needs_now(
    tx: CampaignTx, wid: int, needs: Sequence[str], again: set[str]
) -> tuple[int, str | None]:
    """How many of ``needs`` are still to run, and one that failed for good (not rerun)."""
    unmet, failed = 0, None
    for need in needs:
        if need in again:
            unmet += 1
            continue
        row = tx.run("queue_row", {"workflow_id": wid, "task": need}).fetchone()
        if row is None or row[0] == TaskState.SUCCEEDED.value:
            continue
        if row[0] in _ENDED:
            failed = failed or need
        else:
            unmet += 1
    return unmet, failed


# --- the methods a store gets -----------------------------------------------------------


class CampaignMethods:
    """The :class:`~herd.store.campaigned.CampaignStore` methods over a store's two hooks."""

    def _campaign_write(self, doing: str, work: Work[_T]) -> _T:
        raise NotImplementedError

    def _campaign_read(self, doing: str, work: Work[_T]) -> _T:
        raise NotImplementedError

    def create_campaign(
        self, name: str, template: Template, *, source: str | None, workdir: str, now: float
    ) -> CampaignRecord:
        def work(tx: CampaignTx) -> CampaignRecord:
            create(tx, name, template, source, workdir, now)
            return record(tx.run("campaign_by_name", {"name": name}).fetchone())

        return self._campaign_write(f"create campaign '{name}'", work)

    def campaign(self, name: str) -> CampaignRecord | None:
        def work(tx: CampaignTx) -> CampaignRecord | None:
            row = tx.run("campaign_by_name", {"name": name}).fetchone()
            return None if row is None else record(row)

        return self._campaign_read(f"read campaign '{name}'", work)

    def campaigns(self) -> list[CampaignRecord]:
        return self._campaign_read(
            "read the campaigns",
            lambda tx: [record(row) for row in tx.run("all_campaigns", {}).fetchall()],
        )

    def campaign_runs(self, campaign_id: int) -> list[Run]:
        return self._campaign_read(
            f"read the runs of campaign {campaign_id}", lambda tx: runs_of(tx, campaign_id)
        )

    def campaign_groups(self, campaign_id: int) -> list[Group]:
        return self._campaign_read(
            f"read the groups of campaign {campaign_id}", lambda tx: groups_of(tx, campaign_id)
        )

    def add_runs(
        self, campaign_id: int, runs: Sequence[Run], *, now: float, origin: Origin
    ) -> Injected:
        rec = self._record(campaign_id)
        return self._campaign_write(
            f"add {len(runs)} runs to campaign '{rec.name}'",
            lambda tx: inject(tx, rec, runs, origin, now),
        )

    def close_groups(
        self,
        campaign_id: int,
        *,
        task: str | None,
        values: Sequence[str] | None,
        campaign: bool,
        now: float,
        origin: Origin,
    ) -> Injected:
        rec = self._record(campaign_id)
        return self._campaign_write(
            f"close groups of campaign '{rec.name}'",
            lambda tx: close(tx, rec, task, values, campaign, origin, now),
        )

    def requeue(
        self, campaign_id: int, tasks: Sequence[str], *, now: float, origin: Origin
    ) -> Requeued:
        rec = self._record(campaign_id)
        return self._campaign_write(
            f"rerun {len(tasks)} tasks of campaign '{rec.name}'",
            lambda tx: requeue(tx, rec, tasks, origin, now),
        )

    def open_campaigns(self, workflows: Sequence[int] | None = None) -> int:
        values: Mapping[str, Any] = {
            "all_workflows": workflows is None,
            "workflows": _encode(list(workflows or ())),
        }
        return self._campaign_read(
            "count the open campaigns",
            lambda tx: int(tx.run("open_campaigns", values).fetchone()[0]),
        )

    def _record(self, campaign_id: int) -> CampaignRecord:
        def work(tx: CampaignTx) -> CampaignRecord:
            row = tx.run("campaign_by_id", {"campaign_id": campaign_id}).fetchone()
            if row is None:
                raise UsageError(f"no campaign {campaign_id}: see herd campaign list")
            return record(row)

        return self._campaign_read(f"read campaign {campaign_id}", work)
