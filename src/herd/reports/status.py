"""``herd status``: where every task of a workflow stands, from the store alone."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from herd.core.model import RunStatus, SpecFormat, TaskState
from herd.errors import UsageError
from herd.reports.analyze import cancel_cause
from herd.store.base import (
    RunRecord,
    Store,
    TaskRecord,
    WorkflowRecord,
)
from herd.store.queued import Lost, WorkerRecord
from herd.store.workdir import process_alive


@dataclass(frozen=True, slots=True)
class Status:
    workflow: WorkflowRecord
    tasks: list[TaskRecord]
    last_run: RunRecord | None
    #: the last run is on record as running, but its herd process is gone (killed, host rebooted)
    interrupted: bool = False
    #: every worker the store knows (``herd worker``), oldest first
    workers: list[WorkerRecord] = field(default_factory=list)
    #: when the status was read (epoch seconds): heartbeats are shown as ages
    now: float = 0.0
    #: attempts of silent workers taken back before this status was read (``herd status`` reaps)
    reaped: list[Lost] = field(default_factory=list)
    #: silent workers whose leases could not be reaped from here (a read-only store), and why
    unreaped: str = ""

    def silent(self) -> list[WorkerRecord]:
        """The workers that stopped renewing their leases: their attempts are to be reaped."""
        return [w for w in self.workers if w.silent(self.now)]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in TaskState}
        for t in self.tasks:
            out[t.state.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        """What ``herd status --json`` prints (and the HTTP API's ``/status`` answers)."""
        return {
            "workflow": self.workflow.name,
            "id": self.workflow.id,
            "source": self.workflow.source,
            "format": self.workflow.format.value,
            "created": self.workflow.created,
            "task_count": self.workflow.tasks,
            "now": self.now,
            "counts": self.counts(),
            "last_run": asdict(self.last_run) if self.last_run else None,
            "interrupted": self.interrupted,
            "workers": [asdict(w) for w in self.workers],
            "reaped": [{**asdict(x), "then": x.then.value} for x in self.reaped],
            "unreaped": self.unreaped,
            "tasks": [task_json(t) for t in self.tasks],
        }


def task_json(t: TaskRecord) -> dict[str, Any]:
    """A task as ``herd status --json`` prints it (and the API's live events send it)."""
    return {
        "name": t.name,
        "state": t.state.value,
        "attempts": t.attempts,
        "exit_code": t.exit_code,
        "reason": t.reason,
        "cancelled_by": cancel_cause(t),
        "updated": t.updated,
    }


def from_json(data: Mapping[str, Any]) -> Status:
    """The :class:`Status` whose :meth:`Status.to_json` is ``data`` (``herd status --server``:
    the server's answer rendered as a local one)."""
    workflow = WorkflowRecord(
        data["id"],
        data["workflow"],
        data["source"],
        SpecFormat(data["format"]),
        data["created"],
        data["task_count"],
    )
    run = data["last_run"]
    last = (
        RunRecord(**{**run, "status": RunStatus(run["status"]), "argv": tuple(run.get("argv", ()))})
        if run
        else None
    )
    tasks = [
        TaskRecord(
            t["name"],
            TaskState(t["state"]),
            t["attempts"],
            reason=t["reason"],
            exit_code=t["exit_code"],
            updated=t["updated"],
            cancelled_by=t.get("cancelled_by"),
        )
        for t in data["tasks"]
    ]
    workers = [WorkerRecord(**w) for w in data["workers"]]
    reaped = [Lost(**{**x, "then": TaskState(x["then"])}) for x in data.get("reaped", ())]
    return Status(
        workflow,
        tasks,
        last,
        data["interrupted"],
        workers,
        data["now"],
        reaped,
        data.get("unreaped", ""),
    )


def pick_workflow(store: Store, name: str | None, where: str = "this directory") -> WorkflowRecord:
    """The workflow called ``name``, or the only one in the store (``where``: the store's name
    in messages: its URL, file or working directory)."""
    known = store.workflows()
    if name is not None:
        rec = store.workflow(name)
        if rec is None:
            names = ", ".join(w.name for w in known) or "none"
            raise UsageError(f"no workflow '{name}' in {where} (known: {names})")
        return rec
    if not known:
        raise UsageError(f"herd has not run anything in {where} yet: run `herd run FILE` first")
    if len(known) > 1:
        names = ", ".join(w.name for w in known)
        raise UsageError(f"{where} holds several workflows ({names}): name one with --workflow")
    return known[0]


def status(store: Store, name: str | None = None, *, now: float | None = None) -> Status:
    wf = pick_workflow(store, name)
    records = store.task_records(wf.id)
    runs = store.runs(wf.id)
    last = runs[-1] if runs else None
    # a submitted workflow's run is served by workers, not by the herd that submitted it
    gone = last is not None and _gone(last) and not _queued(store, wf.id)
    workers = store.workers()
    return Status(wf, list(records.values()), last, gone, workers, now or time.time())


def _queued(store: Store, workflow_id: int) -> bool:
    counts = store.queue_counts([workflow_id])
    return any(counts.get(s) for s in (TaskState.WAITING, TaskState.READY, TaskState.RUNNING))


def _gone(run: RunRecord) -> bool:
    """A run on record as running whose herd, on this host, no longer runs (another host's
    herd cannot be seen from here: it is taken as running)."""
    return (
        run.status is RunStatus.RUNNING
        and run.host == socket.gethostname()
        and not process_alive(run.pid, run.started)
    )


def render(st: Status, *, all_tasks: bool = False) -> str:
    """A table: counts, the last run, and the tasks that need attention (all with all_tasks)."""
    counts = "  ".join(f"{n} {s}" for s, n in st.counts().items() if n)
    lines = [f"workflow {st.workflow.name} ({st.workflow.tasks} tasks): {counts}"]
    if st.last_run:
        r = st.last_run
        if st.interrupted:
            lines.append(
                f"last run #{r.id}: interrupted: herd pid {r.pid} is not running (on {r.host} by "
                f"{r.user}); its running tasks did not finish: `herd run` runs them again"
            )
        else:
            lines.append(f"last run #{r.id}: {r.status} on {r.host} by {r.user} (pid {r.pid})")
    lines.extend(_worker_lines(st))
    lines.extend(_reaped_lines(st))
    show = [
        t for t in st.tasks if all_tasks or t.state not in (TaskState.SUCCEEDED, TaskState.SKIPPED)
    ]
    if show:
        width = max(len(t.name) for t in show)
        lines.append(f"{'task':<{width}}  {'state':<9}  tries  detail")
        for t in show:
            lines.append(f"{t.name:<{width}}  {t.state.value:<9}  {t.attempts:>5}  {t.reason}")
    return "\n".join(lines)


def _reaped_lines(st: Status) -> list[str]:
    """The attempts this status took back from silent workers, or why it could not."""
    lines = [
        f"reaped {x.task} attempt {x.number} of silent worker {x.worker_id}: {x.then.value}"
        for x in st.reaped
    ]
    if st.unreaped:
        lines.append(st.unreaped)
    return lines


def _worker_lines(st: Status) -> list[str]:
    """Workers still at it (active, draining, or lost with tasks taken back)."""
    lines = []
    for w in st.workers:
        if w.state == "stopped":
            continue
        offers = " ".join(f"{k}={v:g}" for k, v in sorted(w.resources.items()))
        ago = f", last heartbeat {max(st.now - w.heartbeat, 0):.0f} s ago" if st.now else ""
        lines.append(
            f"worker {w.id} on {w.host} (pid {w.pid}): {w.state}, held {w.held}, {offers}{ago}"
        )
    return lines
