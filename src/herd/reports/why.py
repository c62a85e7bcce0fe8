"""``herd why TASK``: why a task runs (or not), followed up the chain of causes.

A task that runs because ``upstream X reran`` is explained by X's own reason, and so on until a
task that runs for a reason of its own (its input changed, it is new, it failed before): that is
the root cause a user wants to see.
"""

from __future__ import annotations

from dataclasses import dataclass

from herd.core.graph import Graph
from herd.errors import UsageError
from herd.plan.planner import Plan, Why


@dataclass(frozen=True, slots=True)
class Step:
    task: str
    run: bool
    reason: str


def explain(graph: Graph, plan: Plan, task: str) -> list[Step]:
    """The reason of ``task``, then of each upstream task that caused it, root cause last."""
    i = graph.index.get(task)
    if i is None:
        raise UsageError(f"no task '{task}' in workflow '{graph.workflow.name}': see `herd list`")
    if i not in plan.verdicts:
        return [Step(task, False, "not selected (outside the targets of this run)")]
    chain: list[Step] = []
    seen: set[int] = set()
    while i not in seen:
        seen.add(i)
        verdict = plan.verdicts[i]
        chain.append(Step(graph.name(i), verdict.run, verdict.reason))
        if verdict.why is not Why.UPSTREAM:
            break
        i = verdict.cause
    return chain


def render(chain: list[Step]) -> str:
    first, *causes = chain
    verb = "runs" if first.run else "is skipped"
    lines = [f"{first.task} {verb}: {first.reason}"]
    lines += [f"  because {s.task} runs: {s.reason}" for s in causes]
    return "\n".join(lines)
