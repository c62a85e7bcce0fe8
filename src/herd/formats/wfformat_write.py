"""Writing WfCommons WfFormat documents: a workflow as planned (:func:`dump_data`) or as a run
measured it (:func:`dump_run`).

:func:`dump_data` gives a WfFormat 1.5 document of the workflow (``execution`` holds the expected
durations and resources); :func:`dump_run` one whose ``execution`` section holds what real attempts
measured. ``parents`` are all edges, explicit and file-derived. Fields WfFormat has no place for
(env, cwd, timeout, retries, other resources, ...) go to a ``herd`` object on the task (the schema
permits extra properties), so that native → WfFormat → native gives the same workflow
(:mod:`herd.formats.wfformat` reads it back). Task names and paths outside WfFormat's id
character set cannot be written: :class:`~herd.errors.SpecError`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from herd.core.model import Task, TaskState, Workflow
from herd.errors import HerdError, SpecError
from herd.formats.common import thaw
from herd.formats.wfformat import (
    _EXECUTION_EXTRAS,
    _EXTENSION,
    _FILE_ID,
    _TASK_ID,
    SCHEMA_VERSION,
    _decode,
    _number,
    _Raw,
    _Reader,
    _size,
)
from herd.store.base import AttemptRecord


def dump_data(workflow: Workflow, *, executed_at: str | None = None) -> dict[str, Any]:
    """``workflow`` as a WfFormat 1.5 document: expected durations and resources, no measurements.

    ``executedAt`` (required by the schema) is ``executed_at`` or now; ``makespanInSeconds`` is
    the critical path of the expected durations.
    """
    from herd.core.graph import build, critical_path

    graph = build(workflow)
    durations = [t.duration or 0.0 for t in workflow.tasks]
    runs = [_planned(task) for task in workflow.tasks]
    return _document(workflow, graph, runs, critical_path(graph, durations), executed_at or _now())


def dump_run(
    workflow: Workflow,
    attempts: Sequence[AttemptRecord],
    *,
    name: str | None = None,
    makespan: float | None = None,
    executed_at: str | None = None,
    machines: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """A WfFormat 1.5 instance of a real run: the ``execution`` section from ``attempts``.

    Each task's last successful attempt (or its last attempt) gives ``runtimeInSeconds``
    (end - start), ``executedAt``, ``coreCount`` (its resources), ``avgCPU`` (mean cores x 100),
    ``memoryInBytes`` (peak memory of the process tree, else max RSS) and ``machines`` (its host).
    Tasks that never ran are in the specification only. ``machines`` describes the hosts (default:
    ``{"nodeName": host}`` for each); ``makespan`` defaults to the last end - the first start
    of all attempts.
    """
    from herd.core.graph import build

    chosen = _last_attempts(attempts)
    if not chosen:
        raise HerdError("no attempts to export: run the workflow first, then export its run")
    graph = build(workflow)
    runs = [_measured(t, chosen[t.name]) if t.name in chosen else None for t in workflow.tasks]
    first = min(a.start for a in attempts)
    last = max(a.end or a.start for a in attempts)
    hosts = machines or [{"nodeName": h} for h in dict.fromkeys(a.host for a in chosen.values())]
    doc = _document(
        workflow,
        graph,
        runs,
        makespan if makespan is not None else last - first,
        executed_at or _iso(first),
        sizes=_measured_sizes(chosen.values()),
    )
    doc["workflow"]["execution"]["machines"] = [dict(m) for m in hosts]
    if name:
        doc["name"] = name
    return doc


def _last_attempts(attempts: Sequence[AttemptRecord]) -> dict[str, AttemptRecord]:
    chosen: dict[str, AttemptRecord] = {}
    for attempt in sorted(attempts, key=lambda a: (a.number, a.start)):
        old = chosen.get(attempt.task)
        if (
            old is None
            or old.state is not TaskState.SUCCEEDED
            or attempt.state is TaskState.SUCCEEDED
        ):
            chosen[attempt.task] = attempt
    return chosen


def _planned(task: Task) -> dict[str, Any]:
    """The execution entry of a task that herd has not run: what it expects, and what an
    instance it was loaded from recorded (kept, so that WfFormat → herd → WfFormat keeps it)."""
    run: dict[str, Any] = {"id": task.name, "runtimeInSeconds": task.duration or 0.0}
    run.update(_resources(task.resources))
    if task.priority:
        run["priority"] = task.priority
    recorded = task.meta.get("wfformat", {})
    run.update({k: thaw(recorded[k]) for k in _EXECUTION_EXTRAS if k in recorded})
    return run


def _measured(task: Task, attempt: AttemptRecord) -> dict[str, Any]:
    runtime = max(0.0, (attempt.end or attempt.start) - attempt.start)
    run: dict[str, Any] = {
        "id": task.name,
        "runtimeInSeconds": runtime,
        "executedAt": _iso(attempt.start),
    }
    cores = _resources(attempt.resources or task.resources).get("coreCount")
    if cores is not None:
        run["coreCount"] = cores
    cpu = attempt.mean_cpu
    if cpu is None and runtime > 0 and attempt.utime is not None:
        cpu = (attempt.utime + (attempt.stime or 0.0)) / runtime
    if cpu is not None:
        run["avgCPU"] = round(cpu * 100.0, 4)
    memory = attempt.peak_mem or attempt.max_rss  # measured, never the requested memory
    if memory:
        run["memoryInBytes"] = memory
    if task.priority:
        run["priority"] = task.priority
    run["machines"] = [attempt.host] if attempt.host else []
    run["herd"] = {
        "attempt": attempt.number,
        "state": attempt.state.value,
        "exit_code": attempt.exit_code,
    }
    return run


def _resources(resources: Mapping[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resources.get("cpu", 0.0) >= 1:  # not written when absent: the model's default, 1
        out["coreCount"] = _number(float(resources["cpu"]))
    if "mem" in resources:
        out["memoryInBytes"] = round(resources["mem"] * 1e6)
    return out


def _measured_sizes(attempts: Any) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for attempt in attempts:
        for stamps in (attempt.inputs, attempt.outputs):
            sizes.update({path: stamp[0] for path, stamp in stamps.items()})
    return sizes


def _document(
    workflow: Workflow,
    graph: Any,
    runs: Sequence[dict[str, Any] | None],
    makespan: float,
    executed_at: str,
    sizes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    _check_ids(workflow)
    writer = _Writer(workflow, graph, dict(sizes or {}), measured=sizes is not None)
    tasks = [writer.spec_task(i, run) for i, run in enumerate(runs)]
    doc: dict[str, Any] = {
        "name": workflow.name,
        "description": f"herd workflow {workflow.name}",
        "createdAt": _now(),
        "schemaVersion": SCHEMA_VERSION,
        "runtimeSystem": {"name": "herd", "version": _herd_version()},
        "workflow": {
            "specification": {"tasks": tasks, "files": writer.files()},
            "execution": {
                "makespanInSeconds": makespan,
                "executedAt": executed_at,
                "tasks": [run for run in runs if run is not None],
            },
        },
    }
    extension = _workflow_extension(workflow)
    if extension:
        doc["herd"] = extension
    return doc


@dataclass
class _Writer:
    workflow: Workflow
    graph: Any
    sizes: dict[str, int]
    #: True for a run's instance, whose execution section (not the spec) gives durations and resources
    measured: bool = False
    seen: dict[str, int] = field(default_factory=dict)

    def spec_task(self, i: int, run: dict[str, Any] | None) -> dict[str, Any]:
        task = self.workflow.tasks[i]
        known = task.meta.get("wfformat", {})
        for path in (*task.inputs, *task.outputs):
            size = self.sizes.get(path, known.get("files", {}).get(path, 0))
            self.seen[path] = max(self.seen.get(path, 0), _size(size))
        entry: dict[str, Any] = {
            "name": known.get("name") or task.name,
            "id": task.name,
            "parents": _parents(task, [self.graph.name(j) for j in self.graph.parents(i)]),
            "children": [self.graph.name(j) for j in self.graph.children(i)],
            "inputFiles": list(task.inputs),
            "outputFiles": list(task.outputs),
        }
        command = _encode_command(task.cmd)
        if run is not None and command:
            run["command"] = command
        sizes = {p: self.seen[p] for p in (*task.inputs, *task.outputs)}
        extension = _task_extension(task, entry, sizes, self.measured)
        if extension:
            entry["herd"] = extension
        return entry

    def files(self) -> list[dict[str, Any]]:
        return [{"id": path, "sizeInBytes": size} for path, size in self.seen.items()]


def _parents(task: Task, edges: list[str]) -> list[str]:
    """Every parent, explicit ``needs`` first in their order, so that reading them back keeps it."""
    return list(dict.fromkeys([*task.needs, *edges]))


def _encode_command(cmd: str | tuple[str, ...]) -> dict[str, Any] | None:
    if isinstance(cmd, str):
        return {"program": cmd, "arguments": []} if cmd else None
    if cmd and cmd[0]:
        return {"program": cmd[0], "arguments": [a for a in cmd[1:] if a]}
    return None


def _task_extension(
    task: Task, entry: dict[str, Any], sizes: dict[str, Any], measured: bool
) -> dict[str, Any]:
    """What the standard fields lose, as native values (None: the field's default).

    In a run's instance the measured duration and resources stand: they are not overridden.
    """
    from herd.formats.native import dump_task

    raw = _Raw(
        id=entry["id"],
        name=entry["name"],
        parents=entry["parents"],
        children=[],
        inputs=entry["inputFiles"],
        outputs=entry["outputFiles"],
        execution={**_planned(task), "command": _encode_command(task.cmd)},
    )
    decoded = _decode(raw, [], _Reader("<dump>", None, sizes))
    native = dump_task(task)
    skip = ("duration", "resources") if measured else ()
    return {
        key: native.get(key)
        for key, attrs in _EXTENSION.items()
        if key not in skip and any(getattr(task, a) != getattr(decoded, a) for a in attrs)
    }


def _workflow_extension(workflow: Workflow) -> dict[str, Any]:
    meta = {k: v for k, v in workflow.meta.items() if k not in ("wfformat", "warnings")}
    found = {
        "env": dict(workflow.env),
        "init": workflow.init,
        "limits": dict(workflow.limits),
        "meta": thaw(meta),
    }
    return {k: v for k, v in found.items() if v}


def _check_ids(workflow: Workflow) -> None:
    for task in workflow.tasks:
        if not _TASK_ID.match(task.name):
            raise SpecError(
                "the name cannot be a WfFormat task id, which allows only letters, digits, "
                "'-', '_', '.' and '#': the task would be lost",
                file=workflow.source,
                task=task.name,
                field="name",
                hint="rename the task or keep the workflow in the native format",
            )
        for kind, paths in (("inputs", task.inputs), ("outputs", task.outputs)):
            for path in paths:
                if not _FILE_ID.match(path):
                    raise SpecError(
                        f"the path '{path}' cannot be a WfFormat file id, which allows only "
                        "letters, digits, '-', '_', '.', '/', ':' and '#': the file and the "
                        "dependency through it would be lost",
                        file=workflow.source,
                        task=task.name,
                        field=kind,
                        hint="rename the file or keep the workflow in the native format",
                    )


def _herd_version() -> str:
    from herd.version import __version__

    return __version__


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec="seconds")
