"""ALICE O2DPG ``workflow.json``, read as the O2DPG generator writes it.

The document is ``{"stages": [...], "meta": {...}}``; each stage has ``name, cmd, needs,
resources{cpu, mem, relative_cpu}, timeframe, labels, cwd`` and optionally ``env, semaphore,
retry_count``. The mapping onto herd (see ``docs/spec.md`` for the table):

- the stage ``__global_init_task__`` is not a task: its ``env`` becomes :attr:`Workflow.env`
  (values made strings) and its ``cmd`` :attr:`Workflow.init`; needs on it are dropped;
- ``cpu`` and ``mem`` may be strings and become floats (cpu 0 is legal: such a task takes no
  core); ``relative_cpu``, when not null, and any stage key herd does not know (e.g.
  ``alternative_alienv_package``) are kept in :attr:`Task.meta`;
- ``timeframe`` -1 means "not part of a timeframe" (``None``); ``retry_count`` is ``retries``;
- every task is done when ``<cwd>/<name>.log_done`` exists (O2's taskwrapper writes it on
  success), so ``done_marker`` is ``<name>.log_done`` (relative to the task's cwd); a name
  holding ``/`` is %-encoded there, as in log names, so that no marker lands outside its cwd;
- the workflow is named after the file stem; the document's ``meta`` is :attr:`Workflow.meta`.

Difference from the O2DPG runner: the runner sets a global-init variable only when the runner's
own environment lacks it, while herd's workflow env wins over the environment herd runs in.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from herd.core.model import EMPTY, FrozenDict, SpecFormat, Task, Workflow
from herd.formats.common import (
    as_amounts,
    as_env,
    as_float,
    as_int,
    as_names,
    as_str,
    cached_mapping,
    cached_names,
    describe,
    fail,
    freeze,
)

GLOBAL_INIT = "__global_init_task__"
#: stage keys that map onto task fields; any other key is kept in ``Task.meta``
KNOWN = frozenset(
    {
        "name",
        "cmd",
        "needs",
        "resources",
        "timeframe",
        "labels",
        "cwd",
        "env",
        "semaphore",
        "retry_count",
    }
)


def load_data(data: Any, source: str) -> Workflow:
    """The workflow of a parsed O2DPG ``workflow.json`` document."""
    if type(data) is not dict or type(data.get("stages")) is not list:
        fail(
            f"expected a mapping with a list of stages, got {describe(data)}",
            source,
            None,
            "stages",
        )
    stages: list[Any] = data["stages"]
    for i, stage in enumerate(stages):
        if type(stage) is not dict:
            fail(f"expected a mapping, got {describe(stage)}", source, f"#{i + 1}", None)
    init = [s for s in stages if s.get("name") == GLOBAL_INIT]
    reader = _StageReader(source)
    meta = data.get("meta")
    return Workflow(
        name=PurePath(source).stem or "workflow",
        tasks=tuple(reader.task(s) for s in stages if s.get("name") != GLOBAL_INIT),
        env=as_env(init[0].get("env") or {}, source, GLOBAL_INIT, "env") if init else EMPTY,
        init=_init_cmd(init[0], source) if init else None,
        source=source,
        format=SpecFormat.O2DPG,
        meta=freeze(meta) if type(meta) is dict and meta else EMPTY,
    )


def _init_cmd(stage: Mapping[str, Any], source: str) -> str | None:
    cmd = stage.get("cmd")
    if cmd is None or (type(cmd) is str and not cmd.strip()):
        return None
    return as_str(cmd, source, GLOBAL_INIT, "cmd")


class _StageReader:
    """Turns stages into tasks, sharing identical resources, env and labels between them."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.resources = cached_mapping(_resources)
        self.env = cached_mapping(as_env)
        self.labels = cached_names()

    def task(self, stage: dict[str, Any]) -> Task:
        file = self.file
        name = as_str(stage.get("name"), file, None, "name")
        resources = stage.get("resources") or {}
        if type(resources) is not dict:
            fail(f"expected a mapping, got {describe(resources)}", file, name, "resources")
        retries = stage.get("retry_count")
        return Task(
            name=name,
            cmd=self._cmd(stage, name),
            needs=tuple(
                n
                for n in as_names(stage.get("needs") or [], file, name, "needs")
                if n != GLOBAL_INIT
            ),
            resources=self.resources(resources, file, name, "resources"),
            labels=self.labels(stage.get("labels") or [], file, name, "labels"),
            cwd=self._optional_str(stage, "cwd", name),
            env=self.env(stage.get("env") or {}, file, name, "env"),
            retries=0 if retries is None else as_int(retries, file, name, "retry_count"),
            semaphore=self._optional_str(stage, "semaphore", name),
            timeframe=_timeframe(stage.get("timeframe"), file, name),
            done_marker=f"{name}.log_done" if "/" not in name else _encoded_marker(name),
            meta=_extras(stage, resources, file),
        )

    def _cmd(self, stage: Mapping[str, Any], name: str) -> str:
        cmd = stage.get("cmd")
        if type(cmd) is not str or not cmd.strip():
            fail(f"expected a shell command, got {describe(cmd)}", self.file, name, "cmd")
        return cmd

    def _optional_str(self, stage: Mapping[str, Any], key: str, name: str) -> str | None:
        value = stage.get(key)
        return None if value is None or value == "" else as_str(value, self.file, name, key)


def _encoded_marker(name: str) -> str:
    """The marker of a name holding ``/``, %-encoded: inside the task's cwd, whatever the name."""
    from herd.store.workdir import safe_name

    return f"{safe_name(name)}.log_done"


def _resources(value: Any, file: str, task: str | None, field: str) -> Mapping[str, float]:
    """``cpu`` and ``mem`` (and any other numeric pool); ``relative_cpu`` goes to meta."""
    amounts = {k: v for k, v in value.items() if k != "relative_cpu" and v is not None}
    return as_amounts(amounts, file, task, field)


def _timeframe(value: Any, file: str, name: str) -> int | None:
    if value is None:
        return None
    number = as_int(value, file, name, "timeframe", None)
    return None if number < 0 else number


def _extras(stage: Mapping[str, Any], resources: Mapping[str, Any], file: str) -> Mapping[str, Any]:
    """``relative_cpu`` when set and unknown stage keys, kept for round trips and display."""
    if stage.keys() <= KNOWN and resources.get("relative_cpu") is None:
        return EMPTY
    extras = {k: freeze(v) for k, v in stage.items() if k not in KNOWN}
    relative = resources.get("relative_cpu")
    if relative is not None:
        extras["relative_cpu"] = as_float(
            relative, file, stage.get("name"), "resources.relative_cpu"
        )
    return FrozenDict(extras)
