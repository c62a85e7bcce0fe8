"""A serial bash script of a workflow (``herd script``, O2DPG's ``--produce-script``).

Tasks appear in dependency order, each in a subshell with its own directory and variables, so the
script runs the same production without herd: useful for debugging one machine's environment or for
a batch system that takes one script.

Each command runs as herd runs it, by ``/bin/sh -c 'CMD'`` (quoted whole, so that its comments,
``&``, line breaks and quotes reach the shell intact; an argv list as its words quoted).
Variables whose names bash cannot ``export`` are passed with ``env``. Names (workflow, tasks) appear
only in comments, quoted; herd refuses control characters in them, so none can end a comment line.
The script stops at the first task that fails (``set -e``); inside a task, the command runs on
after a failing line, as under herd.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping

from herd.core.graph import Graph
from herd.core.model import Task

_SH = "/bin/sh"
#: a variable name bash can ``export``
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def serial_script(graph: Graph, selected: Collection[int] | None = None) -> str:
    """The bash text running ``selected`` tasks (all when None) one after another."""
    wf = graph.workflow
    lines = [
        "#!/usr/bin/env bash",
        f"# workflow {shlex.quote(wf.name)}: tasks in dependency order, produced by `herd script`",
        "set -e",
    ]
    exported, passed = _env(wf.env)
    lines += exported
    if wf.init:
        lines += [
            "# init (runs once first)",
            f"( {_env_prefix(passed)}{_SH} -c {shlex.quote(wf.init)} )",
        ]
    for i in graph.order:
        if selected is None or i in selected:
            lines += _task_block(graph, i, passed)
    return "\n".join(lines) + "\n"


def _task_block(graph: Graph, i: int, workflow_env: list[str]) -> list[str]:
    task = graph.tasks[i]
    needs = ", ".join(shlex.quote(graph.name(p)) for p in graph.parents(i))
    head = f"# --- task {shlex.quote(task.name)}" + (f" (after {needs})" if needs else "")
    cwd = shlex.quote(task.cwd) if task.cwd else "."
    exported, passed = _env(task.env)
    return [
        head,
        "(",
        f"  mkdir -p -- {cwd} && cd -- {cwd}",
        *(f"  {line}" for line in exported),
        f"  {_env_prefix(workflow_env + passed)}{_SH} -c {shlex.quote(task_command(task))}",
        ")",
    ]


def task_command(task: Task) -> str:
    """The task's command line with its redirections, as a shell runs it. The brace closes on
    its own line, so that a trailing comment or ``&`` in the command stays what it was."""
    cmd = task.cmd if isinstance(task.cmd, str) else shlex.join(task.cmd)
    pairs = (("<", task.stdin), (">", task.stdout), ("2>", task.stderr))
    redirects = " ".join(f"{op} {shlex.quote(path)}" for op, path in pairs if path)
    return f"{{ {cmd}\n}} {redirects}" if redirects else cmd


def _env(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(``export`` lines, ``NAME=value`` words for ``env``): bash exports only identifiers."""
    exported = [
        f"export {k}={shlex.quote(str(v))}" for k, v in env.items() if _IDENTIFIER.fullmatch(k)
    ]
    passed = [shlex.quote(f"{k}={v}") for k, v in env.items() if not _IDENTIFIER.fullmatch(k)]
    return exported, passed


def _env_prefix(passed: list[str]) -> str:
    return f"env {' '.join(passed)} " if passed else ""
