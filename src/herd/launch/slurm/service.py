"""``herd slurm submit`` and ``herd slurm status``: workers in Slurm allocations.

``submit`` puts the workflow into the store (``herd submit``), then sbatches allocations of
workers for the tasks that are *ready* (every need done), one per resource class
(``allocations.py`` sizes them). Tasks of later stages are not ready yet: holding nodes for
them would leave those nodes idle. With ``watch``, herd stays and adds an allocation for a
class as soon as it has ready tasks and no allocation pending or running (a stage became ready,
or an allocation ended, was cancelled or lost its node), until every task has ended; without
it, running ``herd slurm submit`` again does the same once.

``status`` joins herd's view with Slurm's: each allocation (``squeue``) with its state, nodes and
time left, and the workers it started (the map file every allocation appends to) as the store
knows them (state, tasks held, last heartbeat).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from herd.core.graph import Graph, build
from herd.core.model import STANDARD_RESOURCES, Limits, TaskState, Workflow
from herd.errors import BatchError, UsageError
from herd.launch.slurm import client
from herd.launch.slurm.allocations import (
    Allocation,
    Demand,
    NodeShape,
    Sizing,
    Target,
    classes,
    job_prefix,
    sbatch_options,
    script,
    size,
)
from herd.launch.slurm.client import JobInfo
from herd.run.submit import RunOptions
from herd.store.base import Store
from herd.store.queued import WorkerRecord
from herd.store.workdir import safe_name

logger = logging.getLogger(__name__)

_DONE = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})
_BUSY = frozenset(
    {
        TaskState.RUNNING,
        TaskState.SUCCEEDED,
        TaskState.SKIPPED,
        TaskState.FAILED,
        TaskState.CANCELLED,
    }
)


@dataclass(frozen=True, slots=True)
class SlurmSubmit:
    """What ``herd slurm submit`` was asked."""

    store: str
    workdir: Path
    sizing: Sizing = field(default_factory=Sizing)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    gres: str | None = None
    extra: tuple[str, ...] = ()
    #: the partition's node; None: asked of Slurm (sinfo)
    node: NodeShape | None = None
    idle_exit: float = 60.0
    #: keep adding allocations as stages become ready, until the workflow ends
    watch: bool = False
    #: seconds between two looks at the store while watching
    poll: float = 5.0


@dataclass(frozen=True, slots=True)
class Planned:
    """One allocation: its sizing, its batch script, and its Slurm job id once submitted."""

    allocation: Allocation
    text: str
    job_id: int | None = None


def allocation_folder(workdir: Path, workflow: str) -> Path:
    return workdir.resolve() / ".herd" / "slurm" / safe_name(workflow) / "allocations"


def _options(workflow: Workflow, request: SlurmSubmit) -> RunOptions:
    """How the workflow is planned: Slurm's nodes are the limits, the spec's own pools hold."""
    free = {r: float("inf") for r in STANDARD_RESOURCES}
    return RunOptions(workdir=request.workdir, limits=Limits({**free, **workflow.limits}))


def plan_scripts(
    workflow: Workflow, demands: Sequence[Demand], request: SlurmSubmit, node: NodeShape
) -> list[Planned]:
    """The allocations ``demands`` need, with their scripts (nothing submitted)."""
    folder = allocation_folder(request.workdir, workflow.name)
    target = Target(
        store=request.store,
        workflow=workflow.name,
        workdir=str(request.workdir.resolve()),
        herd=(sys.executable, "-m", "herd.cli"),
        folder=str(folder),
        idle_exit=request.idle_exit,
    )
    flags = [
        *(
            f"--{k}={v}"
            for k, v in (
                ("partition", request.partition),
                ("account", request.account),
                ("qos", request.qos),
            )
            if v
        ),
        *request.extra,
    ]
    out = []
    for alloc in size(demands, node, request.sizing):
        options = sbatch_options(alloc, target, flags, request.gres)
        out.append(Planned(alloc, script(alloc, target, options)))
    return out


def ready_demands(
    graph: Graph, states: dict[str, TaskState], durations: dict[str, float]
) -> list[Demand]:
    """Tasks whose needs are all done and that nobody runs or has finished."""
    out = []
    for i, task in enumerate(graph.tasks):
        state = states.get(task.name)
        if state in _BUSY:
            continue
        if all(states.get(graph.name(p)) in _DONE for p in graph.parents(i)):
            known = task.duration if task.duration is not None else durations.get(task.name)
            out.append(Demand(task.name, task.demand, known))
    return out


def node_shape(partition: str | None) -> NodeShape:
    """The smallest node of the partition, as ``sinfo`` reports it."""
    return NodeShape(*client.node_shape(partition))


def submit_stage(
    workflow: Workflow,
    graph: Graph,
    store: Store,
    workflow_id: int,
    request: SlurmSubmit,
    node: NodeShape,
) -> list[Planned]:
    """sbatch an allocation for every class with ready tasks and no live allocation."""
    states = {name: rec.state for name, rec in store.task_records(workflow_id).items()}
    demands = ready_demands(graph, states, store.durations(workflow_id))
    live = client.live_job_names(job_prefix(workflow.name))
    wanted = [
        d
        for k, members in classes(demands).items()
        if f"{job_prefix(workflow.name)}{k.label}" not in live
        for d in members
    ]
    planned = plan_scripts(workflow, wanted, request, node)
    folder = allocation_folder(request.workdir, workflow.name)
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for p in planned:
        path = folder / f"{p.allocation.klass.label}.sbatch"
        path.write_text(p.text)
        done.append(Planned(p.allocation, p.text, client.sbatch(path)))
    return done


def finished(graph: Graph, store: Store, workflow_id: int) -> bool:
    records = store.task_records(workflow_id)
    return all((rec := records.get(t.name)) is not None and rec.state.finished for t in graph.tasks)


def slurm_submit(
    workflow: Workflow,
    request: SlurmSubmit,
    store: Store,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> list[Planned]:
    """Submit ``workflow`` to ``store`` and its ready stage to Slurm (see the module docstring)."""
    from herd.run.enqueue import submit_workflow

    client.require("sbatch", "squeue", "sinfo")
    client.ping()
    node = request.node or node_shape(request.partition)
    graph = build(workflow)
    submitted = submit_workflow(workflow, _options(workflow, request), store, graph)
    say(
        f"submitted '{workflow.name}' to the store: {submitted.queued} to run, "
        f"{submitted.skipped} done before"
    )
    planned: list[Planned] = []
    while True:
        try:
            stage = submit_stage(workflow, graph, store, submitted.workflow_id, request, node)
        except BatchError as exc:
            raise BatchError(
                f"{exc} (the workflow is in the store: fix the allocation and run "
                "`herd slurm submit` again)"
            ) from None
        for p in stage:
            a = p.allocation
            say(
                f"allocation {p.job_id}: {a.klass.label}, {a.tasks} ready task(s), "
                f"{a.nodes} node(s) x {a.minutes} min"
            )
            planned.append(p)
        if not request.watch or finished(graph, store, submitted.workflow_id):
            return planned
        sleep(request.poll)


def dry_run(
    workflow: Workflow, request: SlurmSubmit, store: Store | None
) -> tuple[list[Planned], int]:
    """The scripts ``submit`` would sbatch now, and how many tasks wait for a later stage."""
    from herd.run.submit import prepare

    graph = build(workflow)
    prepared = prepare(workflow, _options(workflow, request), store, graph)
    todo = set(prepared.plan.todo)
    states = {
        t.name: TaskState.READY if i in todo else TaskState.SKIPPED
        for i, t in enumerate(graph.tasks)
    }
    durations: dict[str, float] = {}
    if store is not None and (rec := store.workflow(workflow.name)) is not None:
        durations = store.durations(rec.id)
    demands = ready_demands(graph, states, durations)
    if not demands:
        raise UsageError(f"nothing to run in '{workflow.name}': every task is done")
    node = request.node or node_shape(request.partition)
    return plan_scripts(workflow, demands, request, node), len(todo) - len(demands)


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRow:
    node: str
    host: str
    pid: int
    #: the store's view; None when the worker never reached the store
    record: WorkerRecord | None


@dataclass(frozen=True, slots=True)
class AllocationRow:
    job: JobInfo
    workers: list[WorkerRow]


def slurm_status(workflow: str, workdir: Path, store: Store | None) -> list[AllocationRow]:
    """herd's allocations for ``workflow`` (Slurm's view) with their workers (the store's)."""
    known = {(w.host, w.pid): w for w in store.workers()} if store is not None else {}
    started: dict[int, list[WorkerRow]] = {}
    mapping = allocation_folder(workdir, workflow) / "workers"
    lines = mapping.read_text().splitlines() if mapping.exists() else []
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit() and parts[3].isdigit():
            job, node, host, pid = int(parts[0]), parts[1], parts[2], int(parts[3])
            started.setdefault(job, []).append(WorkerRow(node, host, pid, known.get((host, pid))))
    return [
        AllocationRow(job, started.get(job.job_id, []))
        for job in client.jobs_named(job_prefix(workflow))
    ]
