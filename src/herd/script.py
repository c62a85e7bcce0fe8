"""A serial bash script of a workflow (``herd script``, O2DPG's ``--produce-script``).

Tasks appear in dependency order, each in a subshell with its own directory and variables, so the
script runs the same production without herd: useful for debugging one machine's environment or for
a batch system that takes one script.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection

from herd.graph import Graph
from herd.model import Task


def serial_script(graph: Graph, selected: Collection[int] | None = None) -> str:
    """The bash text running ``selected`` tasks (all when None) one after another."""
    wf = graph.workflow
    lines = [
        "#!/usr/bin/env bash",
        f"# workflow '{wf.name}': tasks in dependency order, produced by `herd script`",
        "set -e",
    ]
    lines += [f"export {k}={shlex.quote(str(v))}" for k, v in wf.env.items()]
    if wf.init:
        lines += ["# init (runs once first)", wf.init]
    for i in graph.order:
        if selected is None or i in selected:
            lines += _task_block(graph, i)
    return "\n".join(lines) + "\n"


def _task_block(graph: Graph, i: int) -> list[str]:
    task = graph.tasks[i]
    needs = ", ".join(graph.name(p) for p in graph.parents(i))
    head = f"# --- {task.name}" + (f" (after {needs})" if needs else "")
    body = [f"export {k}={shlex.quote(str(v))}" for k, v in task.env.items()]
    body.append(task_command(task))
    cwd = shlex.quote(task.cwd) if task.cwd else "."
    inner = "; ".join(body)
    return [head, f"( mkdir -p {cwd} && cd {cwd} && {{ {inner}; }} )"]


def task_command(task: Task) -> str:
    """The task's command line with its redirections, as a shell runs it."""
    cmd = task.cmd if isinstance(task.cmd, str) else shlex.join(task.cmd)
    for flag, path in (("<", task.stdin), (">", task.stdout), ("2>", task.stderr)):
        if path:
            cmd = f"{{ {cmd}; }} {flag} {shlex.quote(path)}"
    return cmd
