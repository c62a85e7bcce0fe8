"""The workflow DAG as data for a drawing (the dashboard's graph view): every task with its state
and *stage*, and the edges as pairs of task indices.

A stage is the task's name without its trailing number (``tpcdigi_12`` → ``tpcdigi``, as ``herd
plot`` groups bars): the instances of one step across timeframes or sweep points. A big DAG is
drawn by stage (one node per stage, its edges the union of its tasks' edges) and a stage opens
into its tasks on demand; ``stages`` gives each stage's counts by state for that.

The edges come from the workflow's spec (what the planner sees, file dependencies included);
when the spec cannot be read any more (moved, or a workflow built in Python), the tasks come from
the store alone, without edges, and ``problem`` says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from herd.core.graph import Graph
from herd.core.model import TaskState
from herd.reports.plot import stem
from herd.store.base import TaskRecord, WorkflowRecord


@dataclass(frozen=True, slots=True)
class Node:
    """One task: its place in the drawing and the state the store last saw."""

    name: str
    stage: str
    state: TaskState
    labels: tuple[str, ...] = ()
    attempts: int = 0
    exit_code: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Dag:
    """The nodes in declaration order and the edges ``(parent, child)`` as indices into them."""

    workflow: str
    source: str | None
    nodes: tuple[Node, ...]
    edges: tuple[tuple[int, int], ...]
    #: why there are no edges (the spec could not be read), empty when they are known
    problem: str = ""
    #: tasks per stage and state, stages in order of first appearance
    stages: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "source": self.source,
            "problem": self.problem,
            "nodes": [
                {
                    "name": n.name,
                    "stage": n.stage,
                    "state": n.state.value,
                    "labels": list(n.labels),
                    "attempts": n.attempts,
                    "exit_code": n.exit_code,
                    "reason": n.reason,
                }
                for n in self.nodes
            ],
            "edges": [list(e) for e in self.edges],
            "stages": [{"name": s, "counts": dict(c)} for s, c in self.stages.items()],
        }


def dag(
    workflow: WorkflowRecord, records: Mapping[str, TaskRecord], graph: Graph | None, problem: str
) -> Dag:
    """The drawing data of ``workflow``: its tasks from ``graph`` (the spec's, with edges) or,
    when that is None, from ``records`` alone (``problem`` says why)."""
    if graph is None:
        nodes = tuple(_node(name, (), records.get(name)) for name in records)
        return Dag(workflow.name, workflow.source, nodes, (), problem, _stages(nodes))
    nodes = tuple(_node(t.name, t.labels, records.get(t.name)) for t in graph.tasks)
    edges = tuple((p, c) for p in range(len(graph)) for c in graph.children(p))
    return Dag(workflow.name, workflow.source, nodes, edges, "", _stages(nodes))


def _node(name: str, labels: tuple[str, ...], record: TaskRecord | None) -> Node:
    if record is None:  # in the spec, not in the store yet (the spec changed since it was added)
        return Node(name, stem(name), TaskState.WAITING, labels)
    return Node(
        name,
        stem(name),
        record.state,
        labels,
        record.attempts,
        record.exit_code,
        record.reason,
    )


def _stages(nodes: tuple[Node, ...]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for n in nodes:
        counts = out.setdefault(n.stage, {})
        counts[n.state.value] = counts.get(n.state.value, 0) + 1
    return out
