"""Submitting a workflow: validate it, plan it against the store, and record the plan there.

This is what every run does before any task starts, in two steps with one seam between them:

- :func:`prepare` validates the workflow, checks it against the limits, stats its input files,
  reads what the store remembers of its tasks and plans (:mod:`herd.plan.planner`): which
  selected tasks run and why, which are skipped. It writes nothing.
- :func:`record` writes the workflow and that plan into the store: the workflow's tasks
  (``Store.add_workflow``) and every selected task the plan skips. After it, the store alone says
  what is left to do.

``herd run`` (:func:`herd.run.local.run_workflow`) calls both under the working directory's lock,
then drives the scheduler; ``herd submit`` (:mod:`herd.run.enqueue`) calls both, then queues the
tasks to run for workers. A submission that only plans into a shared store,
for workers to claim (``herd submit``), is the same two calls without the driver
(:func:`herd.service.runs.submit`); marking the tasks to run ready for workers belongs in
:func:`record`, beside the skips.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from herd.core.bulk import gc_paused
from herd.core.graph import Graph, build, check_limits, input_files, select
from herd.core.model import Limits, TaskState, Workflow
from herd.core.scheduler import Policy
from herd.exec.base import Executor
from herd.exec.executor import LocalExecutor
from herd.plan.files import Files
from herd.plan.planner import Plan, PlanRequest, make_plan
from herd.store.base import Store, TaskChanged, TaskRecord


def local_executor(workflow: Workflow, workdir: Path) -> Executor:
    """The default executor: processes on this machine."""
    return LocalExecutor()


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything ``herd run`` can be told, besides the workflow."""

    workdir: Path = Path(".")
    limits: Limits = field(default_factory=Limits)
    keep_going: bool = False
    targets: tuple[str, ...] = ()
    target_labels: tuple[str, ...] = ()
    rerun_from: tuple[str, ...] = ()
    force: tuple[str, ...] = ()
    checksum: bool = False
    policy: Policy = Policy.CRITICAL_PATH
    #: seconds between SIGTERM and SIGKILL when stopping a task
    grace: float = 5.0
    #: the watchdog kills a task whose memory exceeds its declared ``mem`` times this; 0: never
    mem_kill_ratio: float = 2.0
    argv: tuple[str, ...] = ()
    #: makes the run's executor from the workflow and the working directory
    executor: Callable[[Workflow, Path], Executor] = local_executor
    #: ``--store``: a ``postgresql://`` URL or an SQLite file; None: ``$HERD_STORE``, else
    #: the working directory's ``.herd/herd.db``
    store: str | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated workflow and its plan against the store."""

    graph: Graph
    plan: Plan
    records: dict[str, TaskRecord]
    selected: frozenset[int]


def prepare(
    workflow: Workflow, options: RunOptions, store: Store | None, graph: Graph | None = None
) -> Prepared:
    """Validate, check limits, read the store and plan. ``store`` None: nothing ran before;
    ``graph``: the workflow's, already built (:mod:`herd.formats.built`)."""
    with gc_paused():  # a million tasks: arrays, records and verdicts, no cycles (herd.core.bulk)
        return _prepare(workflow, options, store, graph)


def _prepare(
    workflow: Workflow, options: RunOptions, store: Store | None, graph: Graph | None
) -> Prepared:
    if graph is None or graph.workflow is not workflow:
        graph = build(workflow)
    check_limits(graph, options.limits)
    selected = frozenset(select(graph, options.targets, options.target_labels))
    files = Files(options.workdir, checksum=options.checksum).snapshot()
    files.stat_all(input_files(graph, selected))  # (a million: in a child, while the store is read)
    records: dict[str, TaskRecord] = {}
    if store is not None:
        rec = store.workflow(workflow.name)
        if rec is not None:
            records = store.task_records(rec.id)
    request = PlanRequest(selected, options.force, options.rerun_from)
    plan = make_plan(graph, records, files, request)
    return Prepared(graph, plan, records, selected)


def record(store: Store, workflow: Workflow, prepared: Prepared) -> int:
    """Write ``workflow`` and the skips of its plan into ``store`` (one transaction for the
    skips); return the workflow's id in the store."""
    workflow_id = store.add_workflow(workflow)
    now = time.time()
    tasks, records = prepared.graph.tasks, prepared.records
    skips: list[TaskChanged] = []
    for i, v in prepared.plan.verdicts.items():
        if v.run:
            continue
        name = tasks[i].name
        rec = records.get(name)
        if rec is None or rec.state is not TaskState.SUCCEEDED:
            skips.append(TaskChanged(workflow_id, name, TaskState.SKIPPED, now, reason=v.reason))
    if skips:
        store.write(skips)
    return workflow_id
