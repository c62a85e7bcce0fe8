"""``herd submit``: plan a workflow into the store's queue, for workers to run.

The spec is loaded, validated and planned once, here, exactly as ``herd run`` does it
(:func:`herd.run.submit.prepare` and :func:`~herd.run.submit.record`: fingerprints against earlier successes, so a changed spec reruns
only what changed). Then every task to run becomes a :class:`~herd.store.base.QueuedTask`
holding all a worker needs — command, absolute working directory, environment, resources,
policy, the digests to record on success — in the order the scheduler would start them
(:func:`herd.scheduler.order_keys`: user priority, then the critical path with the durations
known from the spec or earlier runs). Workers never read the spec.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path

from herd.core.graph import Graph
from herd.core.model import STANDARD_RESOURCES, Workflow
from herd.core.scheduler import order_keys
from herd.plan.clean import TempFiles
from herd.plan.commands import Commands
from herd.run.submit import Prepared, RunOptions, prepare, record
from herd.store.base import (
    Store,
)
from herd.store.queued import QueuedTask
from herd.store.workdir import Workdir


@dataclass(frozen=True, slots=True)
class Submitted:
    """What ``herd submit`` did: the workflow's id in the store, the run its attempts are
    recorded under, and how many tasks were queued and skipped."""

    workflow_id: int
    run_id: int
    queued: int
    skipped: int


def submit_workflow(
    workflow: Workflow, options: RunOptions, store: Store, graph: Graph | None = None
) -> Submitted:
    """Plan ``workflow`` against ``store`` and queue what must run (see the module docstring)."""
    options = replace(options, workdir=options.workdir.resolve())
    prepared = prepare(workflow, options, store, graph)
    wid = record(store, workflow, prepared)  # the workflow and its skips, as herd run records them
    now = time.time()
    tasks = queued_tasks(workflow, prepared, options, store.durations(wid))
    run_id = store.submit(
        wid,
        tasks,
        pools=_pools(workflow, options),
        now=now,
        host=socket.gethostname(),
        user=getpass.getuser(),
        pid=os.getpid(),
        argv=options.argv,
    )
    skipped = len(prepared.selected) - len(tasks)
    return Submitted(wid, run_id, len(tasks), skipped)


def _pools(workflow: Workflow, options: RunOptions) -> dict[str, float]:
    """The named limits that hold across all workers: the spec's own and ``--limit``."""
    named = {**workflow.limits, **options.limits.resources}
    return {k: float(v) for k, v in named.items() if k not in STANDARD_RESOURCES}


def queued_tasks(
    workflow: Workflow, prepared: Prepared, options: RunOptions, known: dict[str, float]
) -> list[QueuedTask]:
    """The tasks to run, as workers will run them, in claim order."""
    graph, todo = prepared.graph, prepared.plan.todo
    tasks = graph.tasks
    durations = [t.duration if t.duration is not None else known.get(t.name) for t in tasks]
    keys = order_keys(graph, set(todo), options.policy, durations)
    commands = Commands(workflow)
    log_dir = str(Workdir(options.workdir).workflow_logs_dir(workflow.name))
    temp = _temp_inputs(graph, todo, prepared.selected, options.workdir)
    out = []
    for seq, i in enumerate(sorted(todo, key=keys.__getitem__)):
        task, verdict = tasks[i], prepared.plan.verdicts[i]
        cwd = options.workdir / task.cwd if task.cwd else options.workdir
        out.append(
            QueuedTask(
                task.name,
                task.cmd,
                str(cwd),
                {**workflow.env, **task.env},
                task.demand,
                seq,
                needs=tuple(graph.name(p) for p in graph.parents(i) if p in todo),
                reason=verdict.reason,
                retries=task.retries,
                backoff=task.backoff,
                timeout=task.timeout,
                recovery=task.recovery,
                semaphore=task.semaphore,
                inputs=task.inputs,
                outputs=task.outputs,
                done_marker=task.done_marker,
                stdin=task.stdin,
                stdout=task.stdout,
                stderr=task.stderr,
                duration=durations[i],
                log_dir=log_dir,
                expanded=commands.expanded(task),
                fingerprint=verdict.fingerprint,
                cmd_digest=verdict.cmd_digest,
                env_digest=verdict.env_digest,
                temp_inputs=temp.get(i, {}),
            )
        )
    return out


def _temp_inputs(
    graph: Graph, todo: Collection[int], selected: Collection[int], workdir: Path
) -> dict[int, dict[str, tuple[str, ...]]]:
    """For each task to run that reads temp files herd removes: those files (absolute) and the
    tasks that read them, as :class:`~herd.plan.clean.TempFiles` decides for ``herd run``."""
    out: dict[int, dict[str, tuple[str, ...]]] = {}
    for key, readers in TempFiles(graph, todo, selected).readers().items():
        names = tuple(graph.name(i) for i in readers)
        for i in readers:
            out.setdefault(i, {})[str(workdir / key)] = names
    return out
