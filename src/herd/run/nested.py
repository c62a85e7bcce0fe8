"""Sub-workflows that join a running workflow (Pegasus ``pegasusWorkflow`` jobs).

A task whose ``meta["subworkflow"]`` names a workflow file, and whose name is listed in its
workflow's ``meta["nested"]``, is a *sub-workflow job*. It runs like any task (the Pegasus loader
gives it a command that checks the file is there), so the file may be written by an earlier task.
When it succeeds, ``herd run`` reads the file (any format herd reads) and the scheduler adds its
tasks to the run (:class:`herd.core.scheduler.AddTasks`), with the sub-workflow job as their group:

- the new tasks are named ``<job>/<task>`` and run in the same working directory, within the
  run's limits, their state in the same store;
- the job holds no resources while they run, and ends with them: succeeded when they all
  succeed, failed (cancelling what needs it) as soon as one fails;
- a sub-workflow job inside the sub-workflow is expanded the same way when it runs.

:func:`expand` is the pure part once the file is read: the tasks renamed and appended to the graph.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from herd.core.graph import Graph, extend
from herd.core.model import Task, Workflow, frozen_map
from herd.formats import Setup, load

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Expansion:
    """The graph with a sub-workflow's tasks appended, and what is new in it."""

    graph: Graph
    added: range
    #: the new tasks that are sub-workflow jobs themselves
    nested: tuple[str, ...]


def nested_jobs(workflow: Workflow) -> tuple[str, ...]:
    """The names of the sub-workflow jobs of ``workflow``."""
    return tuple(workflow.meta.get("nested", ()))


def expand(graph: Graph, i: int, workdir: Path) -> Expansion:
    """Read the sub-workflow of task ``i`` and append its tasks to ``graph``.

    Raises :class:`~herd.errors.HerdError` (the file's own error) when it cannot be read or
    its tasks do not fit the graph.
    """
    job = graph.tasks[i]
    path = workdir / (job.cwd or "") / str(job.meta["subworkflow"])
    planner = job.meta.get("planner") or {}
    setup = Setup(planner.get("conf"), dict(planner.get("defines") or {})) if planner else None
    sub = load(path, setup=setup)
    for line in sub.meta.get("warnings", ()):
        logger.warning("%s", line)
    if sub.hooks or sub.init:
        logger.warning("%s: the hooks and init of a sub-workflow are not run", path)
    prefix = job.name + "/"
    tasks = [_renamed(t, prefix, sub) for t in sub.tasks]
    bigger = extend(graph, tasks)
    nested = tuple(prefix + name for name in nested_jobs(sub))
    return Expansion(bigger, range(len(graph), len(bigger)), nested)


def _renamed(task: Task, prefix: str, sub: Workflow) -> Task:
    env = frozen_map({**sub.env, **task.env}) if sub.env else task.env
    return task._replace(
        name=prefix + task.name, needs=tuple(prefix + n for n in task.needs), env=env
    )
