"""The workflow DAG in Graphviz DOT (``herd graph``), coloured by task state when known."""

from __future__ import annotations

import json
from collections.abc import Mapping

from herd.core.graph import Graph
from herd.core.model import TaskState

COLOURS: Mapping[TaskState, str] = {
    TaskState.WAITING: "#ffffff",
    TaskState.READY: "#fff3bf",
    TaskState.RUNNING: "#74c0fc",
    TaskState.RETRYING: "#ffc078",
    TaskState.SUCCEEDED: "#8ce99a",
    TaskState.SKIPPED: "#d3f9d8",
    TaskState.FAILED: "#ff8787",
    TaskState.CANCELLED: "#ced4da",
}


def to_dot(graph: Graph, states: Mapping[str, TaskState] | None = None) -> str:
    """DOT text; each node filled with the colour of its state (white when unknown)."""
    q = json.dumps  # DOT quoted strings share JSON's escaping for our purposes
    lines = [
        f"digraph {q(graph.workflow.name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff"];',
    ]
    for task in graph.tasks:
        attrs = []
        state = states.get(task.name) if states else None
        if state is not None:
            attrs.append(f"fillcolor={q(COLOURS[state])}")
            attrs.append(f"tooltip={q(state.value)}")
        lines.append(f"  {q(task.name)}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    for i in range(len(graph)):
        for c in graph.children(i):
            lines.append(f"  {q(graph.name(i))} -> {q(graph.name(c))};")
    if states:
        lines.append(_legend(states))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _legend(states: Mapping[str, TaskState]) -> str:
    used = sorted({s for s in states.values()}, key=lambda s: s.value)
    rows = "".join(f'<tr><td bgcolor="{COLOURS[s]}">{s.value}</td></tr>' for s in used)
    return f'  legend [shape=plaintext, style="", label=<<table border="0" cellborder="1">{rows}</table>>];'
