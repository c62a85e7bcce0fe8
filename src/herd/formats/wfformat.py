"""WfCommons WfFormat instances (schema 1.4 to 1.6) ⇄ herd.

Reading (:func:`load_data`): a WfFormat task becomes a herd task named by its ``id``.
``parents`` (and the ``children`` lists of other tasks) become ``needs``; ``inputFiles`` and
``outputFiles`` (file ids) become ``inputs``/``outputs``; ``runtimeInSeconds`` → ``duration``,
``coreCount`` → ``cpu`` (absent: the model's default, 1), ``memoryInBytes`` → ``mem`` (MB, 10^6 bytes),
``priority`` → ``priority``. The task's ``name`` (its category) becomes a label, the file sizes and
other execution metrics go to ``task.meta["wfformat"]``. File ids that are absolute paths (Nextflow
instances) are read relative to the working directory, with one warning.

The command is, in this order: the ``command_template`` rendered for the task (see
:data:`TEMPLATE_FIELDS`; ``"replay"`` and ``"instant"`` name ready-made ones), the recorded
``command`` (``program`` plus ``arguments`` as argv; a program without arguments is a shell
script), or a placeholder that fails with a message asking for a template. With a template,
``Workflow.init`` creates every missing workflow input (a file no task writes) at its recorded size
(sparse), so that a WfInstance replays end to end: ``sleep {runtime} && {make_outputs}``.

Writing is :mod:`herd.formats.wfformat_write`.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from herd.core.model import SpecFormat, Task, Workflow, frozen_map
from herd.formats.common import as_amounts, as_env, as_float, as_str, describe, fail, freeze, thaw

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.5"
#: the names a command template may use, each replaced per task
TEMPLATE_FIELDS: dict[str, str] = {
    "id": "the task id (its herd name)",
    "name": "the WfFormat task name (its category)",
    "runtime": "the recorded runtime in seconds (a float: {runtime:.0f} rounds it)",
    "cores": "the core count (1 when not recorded)",
    "mem": "the memory in MB (0 when not recorded)",
    "inputs": "the input paths, shell-quoted, space-separated",
    "outputs": "the output paths, shell-quoted, space-separated",
    "make_outputs": "a shell command creating every output at its recorded size",
    "program": "the recorded program, shell-quoted",
    "arguments": "the recorded arguments, shell-quoted, space-separated",
    "command": "the recorded command line, shell-quoted",
}
#: ready-made templates, by name
TEMPLATES: dict[str, str] = {
    "replay": "sleep {runtime} && {make_outputs}",
    "instant": "{make_outputs}",
}
_TASK_ID = re.compile(r"^[0-9A-Za-z_.#-]+$")
_FILE_ID = re.compile(r"^[0-9A-Za-z_./:#-]+$")
_DEFAULT = Task(name="-", cmd="-")
#: native task keys kept in the ``herd`` extension when WfFormat cannot carry them exactly
_EXTENSION: dict[str, tuple[str, ...]] = {
    "cmd": ("cmd",), "needs": ("needs",), "inputs": ("inputs",), "outputs": ("outputs", "temp"),
    "resources": ("resources",), "labels": ("labels",), "cwd": ("cwd",), "env": ("env",),
    "timeout": ("timeout",), "retries": ("retries",), "backoff": ("backoff",),
    "semaphore": ("semaphore",), "priority": ("priority",), "timeframe": ("timeframe",),
    "duration": ("duration",), "done_marker": ("done_marker",), "stdin": ("stdin",),
    "stdout": ("stdout",), "stderr": ("stderr",), "recover": ("recovery",), "meta": ("meta",),
}  # fmt: skip
_INSTANCE_KEYS = ("schemaVersion", "description", "createdAt", "author", "runtimeSystem")
_RUN_KEYS = ("makespanInSeconds", "executedAt", "machines")
_EXECUTION_EXTRAS = (
    "executedAt", "avgCPU", "readBytes", "writtenBytes", "energyInKWh", "avgPowerInW", "machines",
)  # fmt: skip


# --- reading --------------------------------------------------------------------------------


def read_maybe_gzip(path: str | os.PathLike[str]) -> str:
    """The text of ``path``, gunzipped when it is compressed (``.json.gz`` instances)."""
    from herd.formats import read_text

    return read_text(os.fspath(path))


def looks_like(data: Any) -> bool:
    """Whether parsed JSON is a WfFormat instance (``schemaVersion`` and ``workflow``)."""
    return (
        isinstance(data, Mapping)
        and "schemaVersion" in data
        and isinstance(data.get("workflow"), Mapping)
    )


def load_file(path: str | os.PathLike[str], *, command_template: str | None = None) -> Workflow:
    """Load a WfFormat file (plain or gzipped JSON)."""
    from herd.formats import parse

    source = os.fspath(path)
    data = parse(read_maybe_gzip(source), source).data
    if not looks_like(data):
        fail("not a WfFormat instance (no schemaVersion and workflow)", source, None, None)
    return load_data(data, source, command_template)


def load_data(data: Any, source: str, command_template: str | None = None) -> Workflow:
    """Build a :class:`Workflow` from a parsed WfFormat instance.

    >>> doc = {"name": "w", "schemaVersion": "1.5", "workflow": {"specification": {"tasks": [
    ...     {"id": "a", "name": "a", "parents": [], "children": [], "outputFiles": ["x"]}]},
    ...     "execution": {"tasks": [{"id": "a", "runtimeInSeconds": 2.5}]}}}
    >>> task = load_data(doc, "w.json", "sleep {runtime} && {make_outputs}").tasks[0]
    >>> task.cmd, task.duration
    ('sleep 2.5 && truncate -s 0 x', 2.5)
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("workflow"), Mapping):
        fail("expected a WfFormat instance with a 'workflow' mapping", source, None, "workflow")
    reader = _Reader(source, _template(command_template, source))
    version = _version(data, reader)
    raws = _raw_15(data, reader) if version >= (1, 5) else _raw_14(data, reader)
    tasks = reader.tasks(raws)
    return _workflow(data, source, tasks, reader)


def _version(data: Mapping[str, Any], reader: _Reader) -> tuple[int, int]:
    text = str(data.get("schemaVersion", ""))
    match = re.match(r"^(\d+)\.(\d+)", text)
    version = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    workflow = data["workflow"]
    if "specification" in workflow and version < (1, 5):
        version = (1, 5)  # the layout decides: a 1.5 document with a stale version string
    elif "specification" not in workflow and version >= (1, 5):
        version = (1, 4)
    if not (1, 4) <= version <= (1, 6):
        reader.warn(f"schemaVersion {text!r} is not 1.4 to 1.6: read as {version[0]}.{version[1]}")
    return version


def _template(template: str | None, source: str) -> str | None:
    if template is None:
        return None
    template = TEMPLATES.get(template, template)
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        fail(f"invalid template: {exc}", source, None, "command_template", "write {{ for a brace")
    unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
    if unknown:
        fail(
            f"unknown template field {{{unknown[0]}}}",
            source,
            None,
            "command_template",
            "known fields: " + ", ".join("{" + n + "}" for n in TEMPLATE_FIELDS),
        )
    return template


@dataclass
class _Raw:
    """One task, the same whichever schema version it came from."""

    id: str
    name: str
    parents: list[str]
    children: list[str]
    inputs: list[str]
    outputs: list[str]
    execution: dict[str, Any]
    extension: Any = None


def _raw_15(data: Mapping[str, Any], reader: _Reader) -> list[_Raw]:
    spec = _mapping(data["workflow"].get("specification"), reader.source, "workflow.specification")
    execution = _mapping(
        data["workflow"].get("execution") or {}, reader.source, "workflow.execution"
    )
    for item in _maps(spec.get("files") or [], reader.source, "specification.files"):
        if isinstance(item.get("id"), str):
            reader.sizes[item["id"]] = item.get("sizeInBytes", 0)
    runs = {}
    for i, item in enumerate(_maps(execution.get("tasks") or [], reader.source, "execution.tasks")):
        runs[_id(item, reader.source, f"workflow.execution.tasks[{i}].id")] = item
    raws = []
    for i, item in enumerate(_maps(spec.get("tasks"), reader.source, "specification.tasks")):
        task_id = _id(item, reader.source, f"workflow.specification.tasks[{i}].id")
        raws.append(
            _Raw(
                id=task_id,
                name=str(item.get("name") or task_id),
                parents=_ids(item.get("parents"), reader.source, task_id, "parents"),
                children=_ids(item.get("children"), reader.source, task_id, "children"),
                inputs=_ids(item.get("inputFiles"), reader.source, task_id, "inputFiles"),
                outputs=_ids(item.get("outputFiles"), reader.source, task_id, "outputFiles"),
                execution=dict(runs.pop(task_id, {})),
                extension=item.get("herd"),
            )
        )
    for task_id in runs:
        reader.warn(f"execution task '{task_id}' has no specification task: ignored")
    return raws


def _raw_14(data: Mapping[str, Any], reader: _Reader) -> list[_Raw]:
    """Schema 1.4 (and older): tasks with ``files``, referring to each other by name or id."""
    workflow = data["workflow"]
    items = _maps(workflow.get("tasks", workflow.get("jobs")), reader.source, "workflow.tasks")
    ids = [_id_14(item, i, reader.source) for i, item in enumerate(items)]
    refs: dict[str, str] = {}
    for item, task_id in zip(items, ids, strict=True):
        for ref in (item.get("name"), item.get("id"), task_id):
            if isinstance(ref, str):
                refs.setdefault(ref, task_id)
    return [_one_14(item, task_id, refs, reader) for item, task_id in zip(items, ids, strict=True)]


def _id_14(item: Mapping[str, Any], index: int, source: str) -> str:
    """The 1.5 id WfCommons' migration gives a 1.4 task, so both versions name tasks alike."""
    name = _id(item, source, f"workflow.tasks[{index}].name", key="name")
    old = item.get("id")
    if old is None:
        return f"{name}_{index}"
    return name if str(old) in name else f"{name}_{old}"


def _one_14(item: Mapping[str, Any], task_id: str, refs: dict[str, str], reader: _Reader) -> _Raw:
    inputs: list[str] = []
    outputs: list[str] = []
    for i, file in enumerate(_maps(item.get("files") or [], reader.source, "files", task_id)):
        file_id = str(file.get("path", "")) + _id(file, reader.source, f"files[{i}].name", "name")
        reader.sizes[file_id] = file.get("sizeInBytes", file.get("size", 0))
        (inputs if str(file.get("link", "")).lower() == "input" else outputs).append(file_id)
    execution = {k: item[k] for k in ("command", "priority", *_EXECUTION_EXTRAS) if k in item}
    execution["runtimeInSeconds"] = item.get("runtimeInSeconds", item.get("runtime"))
    execution["coreCount"] = item.get("cores")
    if "memoryInBytes" in item or "memory" in item:
        execution["memoryInBytes"] = item.get("memoryInBytes", (item.get("memory") or 0) * 1000)
    if "machine" in item:
        execution["machines"] = [item["machine"]]
    return _Raw(
        id=task_id,
        name=str(item["name"]),
        parents=[
            refs.get(p, p) for p in _ids(item.get("parents"), reader.source, task_id, "parents")
        ],
        children=[
            refs.get(c, c) for c in _ids(item.get("children"), reader.source, task_id, "children")
        ],
        inputs=inputs,
        outputs=outputs,
        execution={k: v for k, v in execution.items() if v is not None},
        extension=item.get("herd"),
    )


# --- building tasks -------------------------------------------------------------------------


@dataclass
class _Reader:
    source: str
    template: str | None
    sizes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    absolute: set[str] = field(default_factory=set)

    def warn(self, message: str, task: str | None = None, field: str | None = None) -> None:
        where = "".join([f": task '{task}'" if task else "", f": field '{field}'" if field else ""])
        self.warnings.append(f"{self.source}{where}: {message}")

    def tasks(self, raws: list[_Raw]) -> list[Task]:
        children: dict[str, list[str]] = {}
        known = {raw.id for raw in raws}
        for raw in raws:
            for child in raw.children:
                if child not in known:
                    fail(
                        f"child task '{child}' is not a task of this instance",
                        self.source,
                        raw.id,
                        "children",
                    )
                children.setdefault(child, []).append(raw.id)
        tasks = [self.task(raw, children.get(raw.id, [])) for raw in raws]
        if self.absolute:
            self.warn(
                f"{len(self.absolute)} file ids are absolute paths: herd reads and writes "
                "them relative to the working directory"
            )
        return tasks

    def task(self, raw: _Raw, extra_parents: list[str]) -> Task:
        task = _decode(raw, extra_parents, self)
        if raw.extension is not None:
            task = _apply_extension(task, raw.extension, self)
        return task

    def path(self, file_id: str) -> str:
        if file_id.startswith("/") and file_id.strip("/"):
            self.absolute.add(file_id)
            return file_id.lstrip("/")
        return file_id


def _decode(raw: _Raw, extra_parents: list[str], reader: _Reader) -> Task:
    """The herd task the standard WfFormat fields describe."""
    run, source = raw.execution, reader.source
    inputs = tuple(dict.fromkeys(reader.path(f) for f in raw.inputs))
    outputs = tuple(dict.fromkeys(reader.path(f) for f in raw.outputs))
    runtime = run.get("runtimeInSeconds")
    duration = (
        as_float(runtime, source, raw.id, "runtimeInSeconds") if runtime is not None else None
    )
    resources: dict[str, float] = {}
    if run.get("coreCount") is not None:
        resources["cpu"] = as_float(run["coreCount"], source, raw.id, "coreCount")
    if run.get("memoryInBytes") is not None:
        resources["mem"] = as_float(run["memoryInBytes"], source, raw.id, "memoryInBytes") / 1e6
    priority = run.get("priority")
    sizes = {reader.path(f): reader.sizes.get(f, 0) for f in (*raw.inputs, *raw.outputs)}
    return Task(
        name=raw.id,
        cmd=_cmd(raw, inputs, outputs, resources, duration, sizes, reader),
        needs=tuple(dict.fromkeys([*raw.parents, *extra_parents])),
        inputs=inputs,
        outputs=outputs,
        resources=frozen_map(resources),
        labels=_labels(raw.name, raw.id),
        priority=round(as_float(priority, source, raw.id, "priority", None))
        if priority is not None
        else 0,
        duration=duration,
        meta=_task_meta(raw, sizes),
    )


def _labels(name: str, task_id: str) -> tuple[str, ...]:
    category = re.sub(r"_ID\d+$", "", name)
    return tuple(dict.fromkeys(x for x in (category, name) if x and x != task_id))


def _task_meta(raw: _Raw, sizes: Mapping[str, Any]) -> Any:
    found: dict[str, Any] = {k: raw.execution[k] for k in _EXECUTION_EXTRAS if k in raw.execution}
    if raw.name != raw.id:
        found["name"] = raw.name
    if raw.execution.get("command"):
        found["command"] = raw.execution["command"]
    if sizes:
        found["files"] = dict(sizes)
    return freeze({"wfformat": found}) if found else frozen_map(None)


def _cmd(
    raw: _Raw,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    resources: Mapping[str, float],
    duration: float | None,
    sizes: Mapping[str, Any],
    reader: _Reader,
) -> str | tuple[str, ...]:
    program, arguments = _command(raw.execution.get("command"), raw.id, reader.source)
    if reader.template is not None:
        values = {
            "id": raw.id,
            "name": raw.name,
            "runtime": duration or 0.0,
            "cores": _number(resources.get("cpu", 1.0)),
            "mem": _number(resources.get("mem", 0.0)),
            "inputs": " ".join(map(shlex.quote, inputs)),
            "outputs": " ".join(map(shlex.quote, outputs)),
            "make_outputs": make_files({p: sizes.get(p, 0) for p in outputs}),
            "program": shlex.quote(program) if program else "",
            "arguments": " ".join(map(shlex.quote, arguments)),
            "command": shlex.join([program, *arguments]) if program else "",
        }
        try:
            return reader.template.format_map(values)
        except (ValueError, KeyError, IndexError) as exc:
            fail(f"the template does not render: {exc}", reader.source, raw.id, "command_template")
    if program:
        return (program, *arguments) if arguments else program
    message = (
        f"herd: WfFormat task {raw.id} has no command; load the instance with a command "
        "template, e.g. herd convert --command-template 'sleep {runtime} && {make_outputs}'"
    )
    return f"echo {shlex.quote(message)} >&2; exit 2"


def _command(value: Any, task: str, source: str) -> tuple[str, list[str]]:
    if not value:
        return "", []
    if not isinstance(value, Mapping):
        fail(f"expected {{program, arguments}}, got {describe(value)}", source, task, "command")
    program = value.get("program") or ""
    arguments = value.get("arguments") or []
    if not isinstance(program, str) or not isinstance(arguments, list):
        fail("expected a string program and a list of arguments", source, task, "command")
    return program, [str(a) for a in arguments]


def make_files(sizes: Mapping[str, Any]) -> str:
    """A shell command creating each file (and its directory) at its size; sparse, so cheap."""
    if not sizes:
        return "true"
    dirs = sorted({os.path.dirname(p) for p in sizes} - {""})
    steps = [f"mkdir -p {' '.join(map(shlex.quote, dirs))}"] if dirs else []
    steps += [f"truncate -s {_size(size)} {shlex.quote(path)}" for path, size in sizes.items()]
    return " && ".join(steps)


def _size(value: Any) -> int:
    return (
        int(value) if isinstance(value, int | float) and math.isfinite(value) and value > 0 else 0
    )


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def _apply_extension(task: Task, ext: Any, reader: _Reader) -> Task:
    """Lay the fields a herd-written document kept in ``herd`` over the decoded task."""
    from herd.formats.native import TaskParser

    if not isinstance(ext, Mapping):
        fail(f"expected a mapping, got {describe(ext)}", reader.source, task.name, "herd")
    parsers = TaskParser(reader.source).fields
    changes: dict[str, Any] = {}
    for key, value in ext.items():
        attrs = _EXTENSION.get(key)
        if attrs is None:
            reader.warn("unknown key ignored", task.name, f"herd.{key}")
        elif value is None:
            changes.update({a: getattr(_DEFAULT, a) for a in attrs})
        else:
            parsed = parsers[key](value, reader.source, task.name, f"herd.{key}")
            changes.update(
                zip(attrs, parsed, strict=True) if len(attrs) > 1 else {attrs[0]: parsed}
            )
    return task._replace(**changes)


def _workflow(data: Mapping[str, Any], source: str, tasks: list[Task], reader: _Reader) -> Workflow:
    ext = _workflow_extension_of(data.get("herd"), source)
    init = ext.get("init")
    if init is None and reader.template is not None:
        init = _make_inputs(tasks)
    meta = {**ext.get("meta", {}), "wfformat": _instance_meta(data)}
    if reader.warnings:
        meta["warnings"] = reader.warnings
    for line in reader.warnings:
        logger.info("%s", line)
    name = data.get("name")
    return Workflow(
        name=name if isinstance(name, str) and name else "wfformat",
        tasks=tuple(tasks),
        env=ext.get("env", frozen_map(None)),
        init=init,
        source=source,
        format=SpecFormat.WFFORMAT,
        limits=ext.get("limits", frozen_map(None)),
        meta=freeze(meta),
    )


def _instance_meta(data: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: data[k] for k in _INSTANCE_KEYS if k in data}
    execution = data["workflow"].get("execution")
    if isinstance(execution, Mapping):
        meta.update({k: execution[k] for k in _RUN_KEYS if k in execution})
    return meta


def _workflow_extension_of(raw: Any, source: str) -> dict[str, Any]:
    """The workflow fields a herd-written document kept in its top-level ``herd`` object."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        fail(f"expected a mapping, got {describe(raw)}", source, None, "herd")
    parsers = {"env": as_env, "init": as_str, "limits": as_amounts}
    found = {
        k: parse(raw[k], source, None, f"herd.{k}")
        for k, parse in parsers.items()
        if raw.get(k) is not None
    }
    if isinstance(raw.get("meta"), Mapping):
        found["meta"] = thaw(raw["meta"])
    return found


def _make_inputs(tasks: list[Task]) -> str | None:
    """The init command of a replay: create each missing workflow input at its recorded size."""
    written = {path for task in tasks for path in task.outputs}
    sizes: dict[str, Any] = {}
    for task in tasks:
        files = task.meta.get("wfformat", {}).get("files", {})
        for path in task.inputs:
            if path not in written:
                sizes.setdefault(path, files.get(path, 0))
    if not sizes:
        return None
    lines = [f"[ -e {shlex.quote(p)} ] || {{ {make_files({p: s})}; }}" for p, s in sizes.items()]
    return "\n".join(["set -e", *lines])


# --- writing --------------------------------------------------------------------------------


# --- small parsing helpers ------------------------------------------------------------------


def _mapping(value: Any, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        fail(f"expected a mapping, got {describe(value)}", source, None, where)
    return value


def _maps(value: Any, source: str, where: str, task: str | None = None) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        fail(f"expected a list, got {describe(value)}", source, task, where)
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            fail(f"expected a mapping, got {describe(item)}", source, task, f"{where}[{i}]")
    return value


def _id(item: Mapping[str, Any], source: str, where: str, key: str = "id") -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        fail(f"expected a non-empty string, got {describe(value)}", source, None, where)
    return value


def _ids(value: Any, source: str, task: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        fail(f"expected a list of ids, got {describe(value)}", source, task, where)
    return list(value)
