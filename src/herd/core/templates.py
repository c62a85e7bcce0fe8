"""A campaign's template as data: decoded YAML / JSON in (:func:`parse`), the stored JSON out
(:func:`data`). Pure; the rules themselves are in :mod:`herd.core.campaign`.

The form (docs/campaigns.md)::

    name: ecal
    env: {KEY: value}                   # for every task
    tasks:
      - name: reco                      # one instance per run
        cmd: ecal-reco --run {run}
        jobs: 4                         # optional: 4 parallel jobs per run ({job}: 1..4)
        resources: {cpu: 2, mem: 4000}  # retries, timeout, env, cwd as in herd's own format
      - name: calib
        group_by: fill                  # one instance per fill
        complete: next                  # or size (with group_size: N), or explicit
        needs: [reco]
        cmd: ecal-calib --fill {fill} --runs {runs}
      - name: plots
        run_types: [collisions]         # or when: {field: value or [values]}
        needs: [reco]
        cmd: ecal-plots --run {run}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from herd.core.campaign import Completion, Scalar, Template, TemplateTask, check
from herd.errors import SpecError

_KEYS = frozenset(
    {
        "name",
        "cmd",
        "needs",
        "run_types",
        "when",
        "group_by",
        "complete",
        "group_size",
        "jobs",
        "resources",
        "retries",
        "timeout",
        "env",
        "cwd",
    }
)


def parse(data: Any, file: str | None = None) -> Template:
    """The template ``data`` describes; a :class:`SpecError` naming file, task and field."""
    try:
        if not isinstance(data, Mapping):
            raise SpecError("a template is a mapping with 'name' and 'tasks'")
        unknown = sorted(set(data) - {"name", "tasks", "env"})
        if unknown:
            raise SpecError("unknown key (known: name, tasks, env)", field=str(unknown[0]))
        tasks = data.get("tasks")
        if not isinstance(tasks, list) or not tasks:
            raise SpecError("give a list of tasks", field="tasks")
        template = Template(
            _text(data.get("name", "campaign"), "name"),
            tuple(_task(t, i) for i, t in enumerate(tasks)),
            _env(data.get("env", {}), None),
        )
        check(template)
        return template
    except SpecError as exc:
        if file is None or exc.file:
            raise
        raise SpecError(exc.problem, file=file, task=exc.task, field=exc.field) from None


def _task(raw: Any, index: int) -> TemplateTask:
    if not isinstance(raw, Mapping):
        raise SpecError(f"task {index + 1} is not a mapping", field="tasks")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"task {index + 1} has no name", field="name")
    try:
        unknown = sorted(set(raw) - _KEYS)
        if unknown:
            raise SpecError(f"unknown key (known: {', '.join(sorted(_KEYS))})", field=unknown[0])
        return _fields(name, raw)
    except SpecError as exc:
        raise SpecError(exc.problem, task=name, field=exc.field) from None


def _fields(name: str, raw: Mapping[str, Any]) -> TemplateTask:
    group_by = raw.get("group_by")
    if group_by is not None:
        group_by = _text(group_by, "group_by")
    size = raw.get("group_size")
    if size is not None:
        size = _count(size, "group_size")
    complete = raw.get("complete", "size" if size is not None else "next")
    try:
        completion = Completion(complete)
    except ValueError:
        raise SpecError("one of next, size, explicit", field="complete") from None
    run_types = raw.get("run_types")
    if run_types is not None:
        run_types = tuple(_text(v, "run_types") for v in _list(run_types, "run_types"))
    timeout = raw.get("timeout")
    return TemplateTask(
        name,
        _text(raw.get("cmd"), "cmd"),
        tuple(_text(v, "needs") for v in _list(raw.get("needs", []), "needs")),
        run_types,
        _when(raw.get("when", {})),
        group_by,
        completion,
        size,
        _count(raw.get("jobs", 1), "jobs"),
        _resources(raw.get("resources", {})),
        _count(raw.get("retries", 0), "retries", least=0),
        None if timeout is None else _number(timeout, "timeout"),
        _env(raw.get("env", {}), "env"),
        None if raw.get("cwd") is None else _text(raw["cwd"], "cwd"),
    )


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise SpecError("give a non-empty string", field=name)
    return value


def _list(value: Any, name: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise SpecError("give a list", field=name)
    return value


def _count(value: Any, name: str, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SpecError(f"give a whole number of at least {least}", field=name)
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError("give a number", field=name)
    if not math.isfinite(value) or value <= 0:
        raise SpecError("give a positive number", field=name)
    return float(value)


def _when(value: Any) -> dict[str, tuple[Scalar, ...]]:
    if not isinstance(value, Mapping):
        raise SpecError("give a mapping of run fields to a value or a list of values", field="when")
    out: dict[str, tuple[Scalar, ...]] = {}
    for k, v in value.items():
        values = v if isinstance(v, list) else [v]
        if not all(isinstance(x, str | int | float | bool) for x in values):
            raise SpecError(f"'{k}': give strings, numbers or booleans", field="when")
        out[str(k)] = tuple(values)
    return out


def _resources(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise SpecError("give a mapping of resource names to amounts", field="resources")
    out = {"cpu": 1.0}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise SpecError(f"'{k}': give an amount of 0 or more", field="resources")
        out[str(k)] = float(v)
    return out


def _env(value: Any, name: str | None) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(v, str | int | float) for v in value.values()
    ):
        raise SpecError("give a mapping of names to strings", field=name or "env")
    return {str(k): str(v) for k, v in value.items()}


def data(template: Template) -> dict[str, Any]:
    """``template`` as the data :func:`parse` reads back (what the store keeps)."""
    return {
        "name": template.name,
        "env": dict(template.env),
        "tasks": [_task_data(t) for t in template.tasks],
    }


def _task_data(t: TemplateTask) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "cmd": t.cmd, "needs": list(t.needs)}
    if t.run_types is not None:
        out["run_types"] = list(t.run_types)
    if t.when:
        out["when"] = {k: list(v) for k, v in t.when.items()}
    if t.group_by is not None:
        out["group_by"] = t.group_by
        out["complete"] = t.complete.value
    if t.group_size is not None:
        out["group_size"] = t.group_size
    out.update(jobs=t.jobs, resources=dict(t.resources), retries=t.retries, env=dict(t.env))
    if t.timeout is not None:
        out["timeout"] = t.timeout
    if t.cwd is not None:
        out["cwd"] = t.cwd
    return out
