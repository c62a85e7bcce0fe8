"""File paths naming variables (``${SRCDIR}/in.txt``), resolved when a spec is loaded to run.

A task's command sees ``$VAR`` expanded by the shell at run time; its ``inputs``, ``outputs``,
``temp`` and ``done_marker`` are read by herd itself, to stamp inputs, to check outputs and to find
the edges between tasks. :func:`resolve_paths` expands the variables in them as the task's shell
would see them: the task's ``env``, over the workflow's ``env``, over herd's own environment. So an
input behind a variable is stamped like any other, and editing it is seen by the next run.

A variable set nowhere stays as written (the path is then never found), and one warning per
variable names it and the tasks using it. The values taken from herd's environment (None for
those set nowhere) are kept in ``Workflow.meta["environment"]`` so that a workflow kept between runs (:mod:`herd.formats.built`) is only
reused while they still hold.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from herd.core.model import Task, Workflow
from herd.formats.common import freeze, thaw

logger = logging.getLogger(__name__)

#: ``$NAME`` and ``${NAME}`` with a shell variable name (``$0``, ``$1`` are not variables)
_REF = re.compile(r"\$(?:\{([A-Za-z_]\w*)\}|([A-Za-z_]\w*))")
_FIELDS = ("inputs", "outputs", "temp")


@dataclass
class _Expander:
    """Expands the paths of one task as its shell would (values are not expanded again: herd
    passes ``env`` values to the task as written); remembers what came from herd's
    environment and what was found nowhere."""

    task: Mapping[str, str]
    workflow: Mapping[str, str]
    environ: Mapping[str, str]
    used: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)

    def expand(self, text: str) -> str:
        return _REF.sub(self._value, text)

    def _value(self, match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        for layer in (self.task, self.workflow):
            if name in layer:
                return layer[name]
        if name in self.environ:
            self.used[name] = self.environ[name]
            return self.environ[name]
        self.missing.add(name)
        return match.group(0)


def resolve_paths(workflow: Workflow, environ: Mapping[str, str]) -> Workflow:
    """``workflow`` with the variables in its tasks' file paths expanded (module docstring)."""
    missing: dict[str, dict[str, list[str]]] = {}  # variable -> field -> tasks
    used: dict[str, str] = {}
    tasks = list(workflow.tasks)
    for i, task in enumerate(tasks):
        if not _has_variables(task):
            continue
        expander = _Expander(task.env, workflow.env, environ)
        tasks[i] = _expanded(task, expander, missing)
        used.update(expander.used)
    if not used and not missing:
        return workflow
    meta = thaw(workflow.meta)
    lines = _warnings(workflow.source, missing)
    for line in lines:
        logger.warning("%s", line)  # an input herd cannot stamp: the user wants to know at once
    meta["warnings"] = [*meta.get("warnings", ()), *lines]
    # what herd's environment held (None: unset) decides whether a kept workflow still holds
    meta["environment"] = dict(sorted({**dict.fromkeys(missing), **used}.items()))
    return replace(workflow, tasks=tuple(tasks), meta=freeze(meta))


def _has_variables(task: Task) -> bool:
    return any("$" in p for p in (*task.inputs, *task.outputs, *task.temp)) or (
        task.done_marker is not None and "$" in task.done_marker
    )


def _expanded(task: Task, expander: _Expander, missing: dict[str, dict[str, list[str]]]) -> Task:
    changes: dict[str, Any] = {}
    for name in _FIELDS:
        paths: tuple[str, ...] = getattr(task, name)
        changes[name] = tuple(_one(p, name, task, expander, missing) for p in paths)
    if task.done_marker is not None:
        changes["done_marker"] = _one(task.done_marker, "done_marker", task, expander, missing)
    return task._replace(**changes)


def _one(
    path: str,
    name: str,
    task: Task,
    expander: _Expander,
    missing: dict[str, dict[str, list[str]]],
) -> str:
    expander.missing.clear()
    text = expander.expand(path)
    for variable in sorted(expander.missing):
        missing.setdefault(variable, {}).setdefault(name, []).append(task.name)
    return text


def _warnings(source: str | None, missing: dict[str, dict[str, list[str]]]) -> list[str]:
    lines = []
    for variable, fields in sorted(missing.items()):
        for name, tasks in fields.items():
            unique = list(dict.fromkeys(tasks))
            who = f"task '{unique[0]}'" if len(unique) == 1 else f"tasks '{unique[0]}'"
            if len(unique) > 1:
                who += f" and {len(unique) - 1} more"
            lines.append(
                f"{source or '<workflow>'}: {who}: field '{name}': ${{{variable}}} is set neither "
                f"in the spec's env nor in herd's environment: the path stays as written and "
                f"herd cannot stamp it (set {variable} before running herd)"
            )
    return lines
