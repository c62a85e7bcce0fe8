"""``herd run --dry-run``: what a run would do and why, one line (or JSON row) per selected task."""

from __future__ import annotations

from typing import Any

from herd.core.bulk import gc_paused
from herd.core.graph import Graph
from herd.core.model import Workflow
from herd.plan.planner import Plan


def _shown(graph: Graph, plan: Plan) -> list[int]:
    """The selected tasks in dependency order (task ids only: nothing for the garbage collector)."""
    verdicts = plan.verdicts
    return [i for i in graph.order if i in verdicts]


def to_json(workflow: Workflow, graph: Graph, plan: Plan) -> dict[str, Any]:
    tasks, verdicts = graph.tasks, plan.verdicts
    with gc_paused():
        rows = [
            {"task": tasks[i].name, "run": verdicts[i].run, "reason": verdicts[i].reason}
            for i in _shown(graph, plan)
        ]
    return {"workflow": workflow.name, "tasks": rows}


def render_text(graph: Graph, plan: Plan) -> str:
    """``run  TASK  reason`` or ``skip  TASK  reason``, one line each, as one string."""
    tasks, verdicts = graph.tasks, plan.verdicts
    shown = _shown(graph, plan)
    width = max((len(tasks[i].name) for i in shown), default=4)
    return "".join(
        f"{'run ' if (v := verdicts[i]).run else 'skip'}  {tasks[i].name:<{width}}  {v.reason}\n"
        for i in shown
    )


def summary(workflow: Workflow, plan: Plan) -> str:
    todo = len(plan.todo)
    up_to_date = len(plan.verdicts) - todo
    return (
        f"herd: dry run of '{workflow.name}': {todo} to run, {up_to_date} up to date,"
        " nothing started"
    )
