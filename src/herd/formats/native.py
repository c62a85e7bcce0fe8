"""The native herd spec (YAML or JSON): strict loading and canonical writing.

:func:`load_data` turns the parsed document into a :class:`~herd.core.model.Workflow`; every problem is
a :class:`~herd.errors.SpecError` naming the file, the task and the field (unknown fields get a
"did you mean" hint). The steps, each one pass over the task list:

1. check that every task is a mapping with a name, and lay ``defaults`` under it (``resources``
   and ``env`` merge key by key, other fields are replaced when the task sets them);
2. expand parameter sweeps (:mod:`herd.formats.sweep`) when any task has ``foreach``;
3. validate and coerce each task (:class:`TaskParser`), sharing identical resource, env and label
   values between tasks.

Graph checks (cycles, unknown needs, duplicate names, limits) belong to :mod:`herd.core.graph`.

:func:`dump_data` writes the canonical form: fields equal to their default are left out, and
``load_data(dump_data(wf), src)`` gives back ``wf`` (with ``source=src``, ``format="native"``).
The full reference is ``docs/spec.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from herd.core.model import EMPTY, FrozenDict, Recovery, SpecFormat, Task, Workflow
from herd.formats.common import (
    Parser,
    as_amounts,
    as_env,
    as_float,
    as_int,
    as_names,
    as_str,
    cached_mapping,
    cached_names,
    check_keys,
    describe,
    fail,
    freeze,
    thaw,
)
from herd.formats.sweep import expand, has_sweeps

WORKFLOW_FIELDS = frozenset({"name", "env", "init", "limits", "defaults", "tasks", "meta"})
TASK_FIELDS = frozenset(
    {
        "name", "cmd", "needs", "inputs", "outputs", "resources", "labels", "cwd", "env",
        "timeout", "retries", "backoff", "semaphore", "priority", "timeframe", "duration",
        "done_marker", "stdin", "stdout", "stderr", "recover", "meta", "foreach", "mode",
    }
)  # fmt: skip
#: task fields ``defaults`` may set
DEFAULT_FIELDS = TASK_FIELDS - {"name", "foreach", "mode"}
#: ``defaults`` fields merged key by key with the task's own
MERGED_FIELDS = ("resources", "env")
RECOVER_FIELDS = frozenset({"mem_factor", "time_factor", "attempts"})
OUTPUT_FIELDS = frozenset({"path", "temp"})

# Fast paths of TaskParser.task: well-typed values of the common scalar fields, taken without a
# call to the field's parser. Each test is at least as strict as the parser, so that anything else
# (a number written as a string, a blank string, a boolean, a negative duration...) reaches the
# parser, which coerces it or raises its usual error.
#: fields kept as written when they are a string with something other than whitespace
_TEXT_FIELDS = frozenset(
    {"name", "cmd", "cwd", "semaphore", "done_marker", "stdin", "stdout", "stderr"}
)
#: fields kept as written when they are an integer
_INT_FIELDS = frozenset({"priority", "timeframe"})
#: fields taking a finite, non-negative integer or float as a float
_AMOUNT_FIELDS = frozenset({"duration", "backoff"})
_INF = float("inf")
# TaskParser.task fills a list in Task's field order and makes the task of it in one step
#: spec field -> position in a Task (``recover`` fills ``recovery``)
_SLOT = {name: i for i, name in enumerate(Task._fields)} | {
    "recover": Task._fields.index("recovery")
}
#: every field's default (None for name and cmd, which have none)
_DEFAULTS: tuple[Any, ...] = tuple(Task._field_defaults.get(name) for name in Task._fields)
_CMD, _OUTPUTS, _TEMP = (Task._fields.index(name) for name in ("cmd", "outputs", "temp"))


def load_data(data: Any, source: str) -> Workflow:
    """The workflow described by a parsed native document (``source`` names it in errors)."""
    if type(data) is not dict:
        fail(f"expected a mapping with name and tasks, got {describe(data)}", source, None, None)
    check_keys(data, WORKFLOW_FIELDS, source, None)
    name = as_str(_required(data, "name", source), source, None, "name")
    parser = TaskParser(source)
    tasks = _raw_tasks(data, parser)
    return Workflow(
        name=name,
        tasks=tuple(map(parser.task, tasks)),
        env=_optional(data, "env", as_env, source),
        init=_optional(data, "init", as_str, source, None),
        source=source,
        format=SpecFormat.NATIVE,
        limits=_optional(data, "limits", as_amounts, source),
        meta=_optional(data, "meta", _meta, source),
    )


def _required(data: Mapping[str, Any], key: str, source: str) -> Any:
    if data.get(key) is None:
        fail(f"'{key}' is required", source, None, key, f"add {key}: at the top of the file")
    return data[key]


def _optional(
    data: Mapping[str, Any], key: str, parse: Parser[Any], source: str, default: Any = EMPTY
) -> Any:
    value = data.get(key)
    return default if value is None else parse(value, source, None, key)


def _raw_tasks(data: Mapping[str, Any], parser: TaskParser) -> list[Any]:
    """The task mappings, with defaults laid under them and sweeps expanded."""
    source = parser.file
    tasks = _required(data, "tasks", source)
    if type(tasks) is not list:
        fail(f"expected a list of tasks, got {describe(tasks)}", source, None, "tasks")
    defaults = parser.defaults(data.get("defaults"))
    for i, raw in enumerate(tasks):
        if type(raw) is not dict:
            fail(f"expected a mapping, got {describe(raw)}", source, f"#{i + 1}", None)
        name = raw.get("name")
        if type(name) is not str or not name:
            problem = "'name' is required" if name is None else "must be a non-empty string"
            fail(problem, source, f"#{i + 1}", "name", "every task needs a unique name")
    if defaults:
        tasks = [_with_defaults(defaults, raw) for raw in tasks]
    return expand(tasks, source) if has_sweeps(tasks) else tasks


def _with_defaults(defaults: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    merged = {**defaults, **raw}
    for key in MERGED_FIELDS:
        if type(raw.get(key)) is dict and type(defaults.get(key)) is dict:
            merged[key] = {**defaults[key], **raw[key]}
    return merged


def _meta(value: Any, file: str, task: str | None, field: str) -> Any:
    if type(value) is FrozenDict:  # made by a sweep, already frozen
        return value
    if type(value) is not dict:
        fail(f"expected a mapping, got {describe(value)}", file, task, field)
    return freeze(value) if value else EMPTY


class TaskParser:
    """Validates and coerces task mappings of one file into :class:`Task` objects."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.fields: dict[str, Parser[Any]] = {
            "name": _name,
            "cmd": _cmd,
            "needs": as_names,
            "inputs": as_names,
            "outputs": _outputs,
            "resources": cached_mapping(as_amounts),
            "labels": cached_names(),
            "cwd": as_str,
            "env": cached_mapping(as_env),
            "timeout": _timeout,
            "retries": as_int,
            "backoff": as_float,
            "semaphore": as_str,
            "priority": _any_int,
            "timeframe": _any_int,
            "duration": as_float,
            "done_marker": as_str,
            "stdin": as_str,
            "stdout": as_str,
            "stderr": as_str,
            "recover": _recover,
            "meta": _meta,
            "mode": _stray,
            "foreach": _stray,
        }

    def defaults(self, raw: Any) -> dict[str, Any]:
        """Check the ``defaults`` mapping once, so that its errors name it rather than a task."""
        if raw is None:
            return {}
        if type(raw) is not dict:
            fail(
                f"expected a mapping of task fields, got {describe(raw)}",
                self.file,
                None,
                "defaults",
            )
        check_keys(raw, DEFAULT_FIELDS, self.file, None, prefix="defaults.")
        for key, value in raw.items():
            if value is not None:
                self.fields[key](value, self.file, None, f"defaults.{key}")
        return raw

    def task(self, raw: dict[str, Any]) -> Task:
        """One validated task.

        Common fields holding a value of the expected type take a fast path (see
        :data:`_TEXT_FIELDS` and its neighbours); every other value goes through its parser.
        """
        file, name = self.file, raw.get("name")
        if type(name) is not str or not name:
            fail(f"expected a string, got {describe(name)}", file, None, "name")
        if not raw.keys() <= TASK_FIELDS:
            check_keys(raw, TASK_FIELDS, file, name)
        fields, slot = self.fields, _SLOT
        values = list(_DEFAULTS)
        for key, value in raw.items():
            kind = type(value)
            if kind is str:
                if key in _TEXT_FIELDS and value and not value.isspace():
                    values[slot[key]] = value
                    continue
            elif kind is int or kind is float:
                if kind is int and key in _INT_FIELDS:
                    values[slot[key]] = value
                    continue
                if key in _AMOUNT_FIELDS and 0 <= value < _INF:
                    values[slot[key]] = float(value)
                    continue
            elif value is None:
                continue
            values[slot[key]] = fields[key](value, file, name, key)
        if values[_CMD] is None:
            fail("'cmd' is required", file, name, "cmd", "give a shell string or an argv list")
        if raw.get("outputs") is not None:
            values[_OUTPUTS], values[_TEMP] = values[_OUTPUTS]
        return Task._make(values)


# -- field parsers: (value, file, task, field) -> typed value ----------------------------------


def _name(value: Any, file: str, task: str | None, field: str) -> str:
    return value  # type: ignore[no-any-return]  # checked by TaskParser.task


def _cmd(value: Any, file: str, task: str | None, field: str) -> str | tuple[str, ...]:
    if type(value) is str:
        if value.strip():
            return value
        fail("must not be empty", file, task, field, "give a shell string or an argv list")
    if type(value) is list and value:
        for item in value:
            if type(item) not in (str, int, float):
                fail(f"argv items must be strings, found {describe(item)}", file, task, field)
        return tuple(map(str, value))
    fail(
        f"expected a shell string or a non-empty argv list, got {describe(value)}",
        file,
        task,
        field,
    )


def _outputs(
    value: Any, file: str, task: str | None, field: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if type(value) is not list:
        return as_names(value, file, task, field), ()
    paths: list[str] = []
    temp: list[str] = []
    for item in value:
        if type(item) is dict:
            check_keys(item, OUTPUT_FIELDS, file, task, prefix="outputs.")
            path = as_str(item.get("path"), file, task, "outputs.path")
            flag = item.get("temp", False)
            if type(flag) is not bool:
                fail(f"expected true or false, got {describe(flag)}", file, task, "outputs.temp")
            if flag:
                temp.append(path)
        elif type(item) is str and item:
            path = item
        else:
            fail(f"expected a path or {{path, temp}}, found {describe(item)}", file, task, field)
        paths.append(path)
    return tuple(paths), tuple(temp)


def _timeout(value: Any, file: str, task: str | None, field: str) -> float:
    seconds = as_float(value, file, task, field)
    if seconds <= 0:
        fail("must be more than 0 seconds", file, task, field, "remove it for no time limit")
    return seconds


def _any_int(value: Any, file: str, task: str | None, field: str) -> int:
    return as_int(value, file, task, field, None)


def _recover(value: Any, file: str, task: str | None, field: str) -> Recovery:
    if type(value) is not dict:
        fail(
            f"expected a mapping like {{mem_factor: 1.5}}, got {describe(value)}", file, task, field
        )
    check_keys(value, RECOVER_FIELDS, file, task, prefix=f"{field}.")
    kwargs: dict[str, Any] = {}
    for key in ("mem_factor", "time_factor"):
        if value.get(key) is not None:
            kwargs[key] = as_float(value[key], file, task, f"{field}.{key}", 1.0)
    if value.get("attempts") is not None:
        kwargs["attempts"] = as_int(value["attempts"], file, task, f"{field}.attempts")
    return Recovery(**kwargs)


def _stray(value: Any, file: str, task: str | None, field: str) -> None:
    fail(f"'{field}' belongs to a sweep", file, task, field, "add foreach: or remove mode:")


# -- writing ------------------------------------------------------------------------------------

_DEFAULT_TASK = Task(name="-", cmd="-")
#: scalar task fields written when they differ from the default, in this order
_SCALARS = (
    "cwd", "timeout", "retries", "backoff", "semaphore", "priority", "timeframe", "duration",
    "done_marker", "stdin", "stdout", "stderr",
)  # fmt: skip


def dump_data(workflow: Workflow) -> dict[str, Any]:
    """The canonical native document of ``workflow``: defaults left out, ready for JSON/YAML."""
    out: dict[str, Any] = {"name": workflow.name}
    if workflow.env:
        out["env"] = dict(workflow.env)
    if workflow.init is not None:
        out["init"] = workflow.init
    if workflow.limits:
        out["limits"] = _numbers(workflow.limits)
    if workflow.meta:
        out["meta"] = thaw(workflow.meta)
    out["tasks"] = [dump_task(task) for task in workflow.tasks]
    return out


def dump_task(task: Task) -> dict[str, Any]:
    """One task as a native mapping."""
    out: dict[str, Any] = {"name": task.name}
    out["cmd"] = task.cmd if isinstance(task.cmd, str) else list(task.cmd)
    if task.needs:
        out["needs"] = list(task.needs)
    if task.inputs:
        out["inputs"] = list(task.inputs)
    if task.outputs:
        temp = set(task.temp)
        out["outputs"] = [{"path": p, "temp": True} if p in temp else p for p in task.outputs]
    if task.resources:
        out["resources"] = _numbers(task.resources)
    if task.labels:
        out["labels"] = list(task.labels)
    if task.env:
        out["env"] = dict(task.env)
    for key in _SCALARS:
        value = getattr(task, key)
        if value != getattr(_DEFAULT_TASK, key):
            out[key] = _number(value) if type(value) is float else value
    if task.recovery is not None:
        out["recover"] = _recovery(task.recovery)
    if task.meta:
        out["meta"] = thaw(task.meta)
    return out


def _recovery(recovery: Recovery) -> dict[str, Any]:
    default = Recovery()
    return {
        key: _number(getattr(recovery, key))
        for key in ("mem_factor", "time_factor", "attempts")
        if getattr(recovery, key) != getattr(default, key)
    }


def _number(value: float) -> int | float:
    """Integral floats as ints (``cpu: 1`` rather than ``cpu: 1.0``); the loader makes them floats."""
    if type(value) is float and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def _numbers(values: Mapping[str, float]) -> dict[str, int | float]:
    return {key: _number(value) for key, value in values.items()}
