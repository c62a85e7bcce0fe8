"""Pegasus 5 abstract workflows (``wf.yml``, as written by ``Pegasus.api``) → herd.

A Pegasus job becomes a task named by its ``id``; its transformation ``name`` and ``nodeLabel``
become labels. The catalogs — inline in the workflow, and the files ``pegasus-plan`` would read
(``transformations.yml``, ``replicas.yml``, ``sites.yml`` beside the workflow or named by
``pegasus.properties``; :mod:`.pegasus_catalogs`) — are resolved here, so the task runs on this
machine:

- **transformations**: an ``installed`` executable runs from its ``pfn`` (argv, no shell); a
  ``stageable`` one is fetched once to ``./NAME`` by a ``stage_exe_NAME`` task, which every job
  using it reads. An unknown transformation runs by name from ``PATH``, with a warning.
- **replicas**: an input with a replica catalog entry is read as its ``lfn`` in the working
  directory, fetched there by a ``stage_in_LFN`` task (checksum verified);
  ``task.meta["replicas"]`` keeps the pfn. Outputs marked ``stageOut`` / ``registerReplica`` are
  copied to the output site's storage directory and recorded in the output replica catalog by a
  ``stage_out_JOB`` task (:mod:`.pegasus_staging`).
- **profiles** merge key by key, job > transformation site entry > transformation > site catalog
  > workflow: ``env`` → env; ``pegasus`` cores/memory (MB)/gpus → resources (no cores: the
  model's default, 1), runtime → duration, maxwalltime (minutes) → timeout; ``dagman`` RETRY →
  retries, PRIORITY → priority; ``condor`` request_cpus/request_memory/request_gpus/priority fill
  what ``pegasus`` leaves.
- **uses**: input → inputs, output → outputs, inout → both, checkpoint → outputs (and
  ``meta["checkpoints"]``). ``stdin``/``stdout``/``stderr`` map to the task's redirections.
- **hooks**: job and transformation ``shell`` hooks run in a wrapper around the command, after the
  job's own exit (``start`` before it), with ``PEGASUS_EVENT``, ``PEGASUS_JOBID`` and
  ``PEGASUS_STATUS`` set; their output goes to stderr (or ``<id>.hooks.log`` when stderr is
  redirected); their failure never changes the job's result. Workflow-level hooks are not run.

Everything herd cannot honour (remote sites, grid contacts, containers, other profile keys,
``selector`` and ``globus`` profiles, data reuse, catalogs other than YAML) is reported in
``Workflow.meta["warnings"]``, one line per problem naming the file, the job(s) and the field.
A ``pegasusWorkflow`` job becomes a task that checks its workflow file is there; when it
succeeds, ``herd run`` adds the file's tasks to the run (:mod:`herd.run.nested`). A
``condorWorkflow`` job (a DAGMan file) raises :class:`SpecError`.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from herd.core.model import SpecFormat, Task, Workflow, frozen_map
from herd.exec.stage import SCHEMES, scheme
from herd.formats.common import describe, fail, freeze, list_of_maps
from herd.formats.loading import Setup
from herd.formats.pegasus_catalogs import (
    KINDS,
    Found,
    Transformation,
    catalog,
    properties,
    read_replicas,
    read_sites,
    read_transformations,
)
from herd.formats.pegasus_commands import (
    arguments,
    parse_hooks,
    with_checkpoint,
    with_hooks,
    workflow_hooks,
)
from herd.formats.pegasus_profiles import Profiles, Report, merge, parse_profiles
from herd.formats.pegasus_staging import (
    Replica,
    executable_name,
    stage_exe_task,
    stage_in_tasks,
    stage_out_task,
    storage_directory,
)

logger = logging.getLogger(__name__)

_LINK_TYPES = frozenset({"input", "output", "inout", "checkpoint", "none"})
_JOB_KEYS = frozenset(
    {"type", "name", "namespace", "version", "id", "nodeLabel", "node_label", "metadata",
     "arguments", "stdin", "stdout", "stderr", "uses", "profiles", "hooks", "file"}
)  # fmt: skip
_TOP_KEYS = frozenset(
    {"pegasus", "name", "version", "siteCatalog", "replicaCatalog", "transformationCatalog",
     "jobs", "jobDependencies", "profiles", "hooks", "metadata"}
)  # fmt: skip
#: herd resource, pegasus profile key, condor profile key (used when the pegasus key is absent)
_POOLS = (
    ("cpu", "cores", "request_cpus"),
    ("mem", "memory", "request_memory"),
    ("gpu", "gpus", "request_gpus"),
)


# --- entry point ----------------------------------------------------------------------------


def load_data(data: Any, source: str, setup: Setup | None = None) -> Workflow:
    """Build a :class:`Workflow` from a parsed Pegasus 5 ``wf.yml``.

    >>> wf = load_data({"pegasus": "5.0.4", "name": "w", "jobs": [
    ...     {"type": "job", "name": "echo", "id": "a", "arguments": ["hi"], "uses": []}]}, "w.yml")
    >>> wf.tasks[0].name, wf.tasks[0].cmd
    ('a', ('echo', 'hi'))
    """
    if not isinstance(data, Mapping):
        fail(f"expected a Pegasus workflow mapping, got {describe(data)}", source, None, None)
    report = Report(source)
    _check_top(data, source, report)
    found = properties(source, setup or Setup())
    raw = {kind: catalog(kind, data, source, found) for kind in KINDS}
    for where, key, message in found.warnings:
        report.warn(where, key, message)
    sites = read_sites(raw["site"][0], source, report)
    catalog_ = read_transformations(raw["transformation"][0], source, report)
    replicas = read_replicas(raw["replica"][0], source, report)
    base = parse_profiles(data.get("profiles"), source, None, "profiles", report)
    jobs = _job_list(data.get("jobs"), source)
    context = _Context(source, report, sites, catalog_, replicas, base)
    tasks = [_task(job, i, context) for i, job in enumerate(jobs)]
    tasks = _add_dependencies(tasks, data.get("jobDependencies"), source)
    produced = {path for task in tasks for path in task.outputs}
    tasks = _resolve_optional(tasks, produced)
    tasks += _staging(tasks, context, produced, _outputs_to(raw["site"][0], found, data))
    workflow = _workflow(data, source, tasks, None, context, base)
    files = {kind: path for kind, (_, path) in raw.items() if path}
    return _with_catalog_files(workflow, files, found.files)


@dataclass(frozen=True)
class _Context:
    source: str
    report: Report
    sites: dict[str, Profiles]
    catalog: dict[str, list[Transformation]]
    replicas: dict[str, Replica]
    base: Profiles


def _check_top(data: Mapping[str, Any], source: str, report: Report) -> None:
    version = str(data.get("pegasus", ""))
    if version and not version.startswith("5"):
        fail(
            f"Pegasus {version} workflows are not supported",
            source,
            None,
            "pegasus",
            "herd reads the YAML workflows of Pegasus 5",
        )
    for key in data:
        if key not in _TOP_KEYS and not str(key).startswith("x-"):
            report.warn("workflow", str(key), "unknown key ignored")


def _workflow(
    data: Mapping[str, Any],
    source: str,
    tasks: list[Task],
    init: str | None,
    context: _Context,
    base: Profiles,
) -> Workflow:
    env = {k: str(v) for k, v in base.get("env", {}).items()}
    meta: dict[str, Any] = {"pegasus": str(data.get("pegasus", ""))}
    nested = [t.name for t in tasks if "subworkflow" in t.meta]
    if nested:
        meta["nested"] = nested  # herd.run.nested: run as sub-workflows when they succeed
    warnings = context.report.lines()
    if warnings:
        meta["warnings"] = warnings
    for key in ("metadata", "x-pegasus"):
        if data.get(key):
            meta[key] = freeze(data[key])
    for line in warnings:
        logger.info("%s", line)
    name = data.get("name")
    return Workflow(
        name=name if isinstance(name, str) and name else _stem(source),
        tasks=tuple(tasks),
        env=frozen_map(env),
        init=init,
        source=source,
        format=SpecFormat.PEGASUS,
        meta=freeze(meta),
        hooks=workflow_hooks(data.get("hooks"), source),
    )


def _with_catalog_files(
    workflow: Workflow, catalogs: dict[str, str], read: dict[str, tuple[int, int]]
) -> Workflow:
    """Name the catalog files used; ``meta["read_files"]`` lets :mod:`herd.formats.built` notice an
    edited catalog."""
    if not read:
        return workflow
    meta = {**workflow.meta, "catalogs": catalogs, "read_files": read}
    return replace(workflow, meta=freeze(meta))


def _stem(source: str) -> str:
    base = source.rsplit("/", 1)[-1]
    return base.split(".", 1)[0] or "pegasus"


# --- jobs -----------------------------------------------------------------------------------


def _job_list(raw: Any, source: str) -> list[Mapping[str, Any]]:
    if raw is None:
        fail("a Pegasus workflow needs jobs", source, None, "jobs")
    jobs = list_of_maps(raw, source, "jobs")
    if not jobs:
        fail("a Pegasus workflow needs at least one job", source, None, "jobs")
    return jobs


def _task(job: Mapping[str, Any], index: int, ctx: _Context) -> Task:
    job_id = _node_id(job.get("id"))
    if not job_id:
        fail("a job needs an id", ctx.source, None, f"jobs[{index}].id")
    kind = job.get("type", "job")
    if kind == "condorWorkflow":
        fail(
            "a condorWorkflow job runs a DAGMan file that pegasus-plan made for HTCondor, "
            "which herd cannot run",
            ctx.source,
            job_id,
            "type",
            "give the job the abstract workflow instead: SubWorkflow(file, is_planned=False) "
            "(type: pegasusWorkflow)",
        )
    if kind == "pegasusWorkflow":
        return _subworkflow(job, job_id, ctx)
    if kind != "job":
        fail(f"unknown job type {kind!r}", ctx.source, job_id, "type", "use type: job")
    for key in job:
        if key not in _JOB_KEYS and not str(key).startswith("x-"):
            ctx.report.warn(f"job '{job_id}'", str(key), "unknown key ignored")
    tf = _find_transformation(job, job_id, ctx)
    files = _uses(job.get("uses"), job_id, ctx.source)
    return _build_task(job, job_id, tf, files, ctx)


def _subworkflow(job: Mapping[str, Any], job_id: str, ctx: _Context) -> Task:
    """A pegasusWorkflow job: checks that its workflow file is there, then ``herd run`` adds the
    file's tasks to the run (:mod:`herd.run.nested`)."""
    file = _lfn(job.get("file"), job_id, "file", ctx.source)
    if file is None:
        fail("a pegasusWorkflow job needs the file of its workflow", ctx.source, job_id, "file")
    files = _uses(job.get("uses"), job_id, ctx.source)
    words = arguments(job.get("arguments"), job_id, ctx.source)
    planner = _planner(words, job_id, ctx.report)
    message = (
        f"herd: the sub-workflow file {file} does not exist: an earlier job must write it, or "
        "the replica catalog must name it"
    )
    check = f"test -f {shlex.quote(file)} || {{ echo {shlex.quote(message)} >&2; exit 1; }}"
    labels = [x for x in ("pegasusWorkflow", job.get("nodeLabel")) if isinstance(x, str) and x]
    return Task(
        name=job_id,
        cmd=check,
        inputs=tuple(dict.fromkeys([file, *files.inputs])),
        outputs=tuple(dict.fromkeys(files.outputs)),
        resources=frozen_map({"cpu": 0.0}),  # the check only; the group holds nothing
        labels=tuple(labels),
        meta=freeze({"subworkflow": file, "planner": planner, "metadata": job.get("metadata")}),
    )


def _planner(words: list[str], job_id: str, report: Report) -> dict[str, Any]:
    """pegasus-plan's ``--conf`` and ``-Dkey=value`` among a sub-workflow job's arguments."""
    conf, defines, ignored = None, {}, []
    rest = iter(words)
    for word in rest:
        if word == "--conf":
            conf = next(rest, None)
        elif word.startswith("--conf="):
            conf = word.removeprefix("--conf=")
        elif word.startswith("-D") and "=" in word:
            key, _, value = word[2:].partition("=")
            defines[key] = value
        else:
            ignored.append(word)
    if ignored:
        report.warn(f"job '{job_id}'", "arguments",
                    f"planner arguments ignored: {' '.join(ignored)} (herd plans the sub-workflow "
                    "for this machine; --conf and -D are honoured)")  # fmt: skip
    return {"conf": conf, "defines": defines} if conf or defines else {}


def _find_transformation(
    job: Mapping[str, Any], job_id: str, ctx: _Context
) -> Transformation | None:
    name = job.get("name")
    if not isinstance(name, str) or not name:
        fail("a job needs the name of its transformation", ctx.source, job_id, "name")
    candidates = ctx.catalog.get(name, [])
    wanted = [
        tf
        for tf in candidates
        if job.get("namespace") in (None, tf.namespace) and job.get("version") in (None, tf.version)
    ]
    if candidates:
        return (wanted or candidates)[0]
    ctx.report.warn(
        f"job '{job_id}'",
        "name",
        f"transformation '{name}' is not in the inline transformation catalog: "
        "herd runs it by name from PATH",
    )
    return None


@dataclass
class _Files:
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    stage_out: list[str] = field(default_factory=list)
    register: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)


def _uses(raw: Any, job_id: str, source: str) -> _Files:
    files = _Files()
    for i, use in enumerate(list_of_maps(raw or [], source, "uses", job_id)):
        lfn, link = use.get("lfn"), use.get("type")
        if not isinstance(lfn, str) or not lfn:
            fail("a use needs an lfn", source, job_id, f"uses[{i}].lfn")
        if link not in _LINK_TYPES:
            fail(
                f"unknown link type {link!r}",
                source,
                job_id,
                f"uses[{i}].type",
                "use input, output, inout, checkpoint or none",
            )
        _add_use(files, lfn, str(link), use)
    return files


def _add_use(files: _Files, lfn: str, link: str, use: Mapping[str, Any]) -> None:
    if link == "none":
        files.unused.append(lfn)
        return
    if link in ("input", "inout"):
        (files.optional if use.get("optional") else files.inputs).append(lfn)
    if link in ("output", "inout", "checkpoint"):
        files.outputs.append(lfn)
    if link == "checkpoint":
        files.checkpoints.append(lfn)
    if use.get("stageOut") and link != "input":
        files.stage_out.append(lfn)
    if use.get("registerReplica") and link != "input":
        files.register.append(lfn)


def _build_task(
    job: Mapping[str, Any],
    job_id: str,
    tf: Transformation | None,
    files: _Files,
    ctx: _Context,
) -> Task:
    own = parse_profiles(job.get("profiles"), ctx.source, job_id, "profiles", ctx.report)
    site_layer = ctx.sites.get(tf.site, {}) if tf else {}
    profiles = merge([ctx.base, site_layer, *(tf.layers if tf else ()), own])
    own_hooks = parse_hooks(job.get("hooks"), ctx.source, job_id, "hooks")
    hooks = (*(tf.hooks if tf else ()), *own_hooks)
    args = arguments(job.get("arguments"), job_id, ctx.source)
    stdio = {k: _lfn(job.get(k), job_id, k, ctx.source) for k in ("stdin", "stdout", "stderr")}
    cmd = _command(job, job_id, tf, args)
    if checkpoint := profiles.get("pegasus", {}).get("checkpoint.time"):
        cmd = _checkpointed(cmd, checkpoint, profiles, job_id, ctx.report)
    if hooks:
        cmd = with_hooks(cmd, hooks, job_id, stdio["stderr"] is not None)
    staged = [executable_name(tf.name)] if tf is not None and tf.stageable else []
    return Task(
        name=job_id,
        cmd=cmd,
        inputs=tuple(dict.fromkeys([*files.inputs, *staged])),
        outputs=tuple(dict.fromkeys(files.outputs)),
        labels=_labels(job, tf),
        env=frozen_map(profiles.get("env")),
        stdin=stdio["stdin"],
        stdout=stdio["stdout"],
        stderr=stdio["stderr"],
        meta=_task_meta(job, tf, files, hooks, ctx.replicas, profiles),
        **_policy(profiles),
    )


def _checkpointed(
    cmd: str | tuple[str, ...], minutes: float, profiles: Profiles, job_id: str, report: Report
) -> str:
    walltime = profiles.get("pegasus", {}).get("maxwalltime")
    if walltime is not None and walltime <= minutes:
        report.warn(f"job '{job_id}'", "profiles.pegasus.checkpoint.time",
                    "not below maxwalltime: the job gets a minute to write its checkpoint")  # fmt: skip
    grace = (walltime - minutes) * 60.0 if walltime is not None else None
    if not profiles.get("dagman", {}).get("RETRY"):
        report.warn(f"job '{job_id}'", "profiles.pegasus.checkpoint.time",
                    "no dagman.retry: the job is not retried from its checkpoint files")  # fmt: skip
    return with_checkpoint(cmd, minutes * 60.0, grace)


def _labels(job: Mapping[str, Any], tf: Transformation | None) -> tuple[str, ...]:
    labels = [str(job.get("name"))]
    node_label = job.get("nodeLabel", job.get("node_label"))
    if isinstance(node_label, str) and node_label:
        labels.append(node_label)
    return tuple(dict.fromkeys(labels))


def _policy(profiles: Profiles) -> dict[str, Any]:
    """Resources and run policy from the merged profiles (pegasus keys beat condor keys)."""
    pegasus: dict[str, Any] = profiles.get("pegasus", {})
    condor: dict[str, Any] = profiles.get("condor", {})
    dagman: dict[str, Any] = profiles.get("dagman", {})
    resources: dict[str, float] = {}
    for name, key, condor_key in _POOLS:
        value = pegasus.get(key, condor.get(condor_key))
        if value is not None:
            resources[name] = value
    walltime = pegasus.get("maxwalltime")
    return {
        "resources": frozen_map(resources),
        "duration": pegasus.get("runtime", pegasus.get("job.runtime")),  # (job.runtime: old name)
        # a checkpointing job's wrapper ends it at its walltime (pegasus_commands.with_checkpoint)
        "timeout": walltime * 60.0 if walltime and not pegasus.get("checkpoint.time") else None,
        "retries": round(dagman.get("RETRY", 0)),
        "priority": round(dagman.get("PRIORITY", condor.get("priority", 0))),
    }


def _task_meta(
    job: Mapping[str, Any],
    tf: Transformation | None,
    files: _Files,
    hooks: tuple[tuple[str, str], ...],
    replicas: Mapping[str, Replica],
    profiles: Profiles,
) -> Any:
    meta: dict[str, Any] = {"transformation": str(job.get("name"))}
    if tf is not None:
        meta["pfn"] = tf.pfn
        meta["stageable"] = tf.stageable
    used = {lfn: replicas[lfn].pfn for lfn in (*files.inputs, *files.optional) if lfn in replicas}
    extras = {
        "replicas": used,
        "checkpoints": files.checkpoints,
        "optional_inputs": files.optional,
        "stage_out": files.stage_out,
        "register_replica": files.register,
        "unused_files": files.unused,
        "hooks": [{"on": on, "cmd": cmd} for on, cmd in hooks],
        "metadata": job.get("metadata"),
        "checkpoint_time": profiles.get("pegasus", {}).get("checkpoint.time"),
        "clusters_size": profiles.get("pegasus", {}).get("clusters.size"),
    }
    meta.update({k: v for k, v in extras.items() if v})
    return freeze(meta)


def _lfn(value: Any, job_id: str, key: str, source: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("lfn")
    if not isinstance(value, str) or not value:
        fail(f"expected a file name, got {describe(value)}", source, job_id, key)
    return value


# --- commands -------------------------------------------------------------------------------


def _command(
    job: Mapping[str, Any], job_id: str, tf: Transformation | None, args: list[str]
) -> str | tuple[str, ...]:
    if tf is None:
        return (str(job.get("name")), *args)
    if tf.stageable:
        return ("./" + executable_name(tf.name), *args)  # placed by its stage_exe task
    return (tf.pfn.removeprefix("file://"), *args)


# --- dependencies and stage-in --------------------------------------------------------------


def _add_dependencies(tasks: list[Task], raw: Any, source: str) -> list[Task]:
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if index.setdefault(task.name, i) != i:
            fail("duplicate job id", source, task.name, "id", "every job id must be unique")
    needs: dict[str, list[str]] = {}
    for i, entry in enumerate(list_of_maps(raw or [], source, "jobDependencies")):
        where = f"jobDependencies[{i}]"
        parent = _node_id(entry.get("id"))
        if parent not in index:
            fail(
                f"parent job {parent!r} is not a job of this workflow", source, None, f"{where}.id"
            )
        children = entry.get("children") or []
        if not isinstance(children, list):
            fail(f"expected a list, got {describe(children)}", source, parent, f"{where}.children")
        for child in map(_node_id, children):
            if child not in index:
                problem = f"child job {child!r} is not a job of this workflow"
                fail(problem, source, parent, f"{where}.children")
            needs.setdefault(child, []).append(parent)
    return [_with_needs(t, needs.get(t.name)) for t in tasks]


def _with_needs(task: Task, needs: list[str] | None) -> Task:
    return task._replace(needs=tuple(dict.fromkeys(needs))) if needs else task


def _resolve_optional(tasks: list[Task], produced: set[str]) -> list[Task]:
    """An optional input is a real input (an edge) only when some job produces it."""
    return [
        t._replace(inputs=(*t.inputs, *extra)) if extra else t
        for t in tasks
        for extra in [[p for p in t.meta.get("optional_inputs", ()) if p in produced]]
    ]


def _staging(
    tasks: list[Task], ctx: _Context, produced: set[str], outputs_to: tuple[str, str]
) -> list[Task]:
    """The stage-in, executable and stage-out tasks of the jobs (:mod:`.pegasus_staging`)."""
    wanted: dict[str, Replica] = {}
    for task in tasks:
        for lfn in (*task.inputs, *task.meta.get("optional_inputs", ())):
            if lfn in ctx.replicas and lfn not in wanted:
                if lfn in produced:
                    ctx.report.warn(f"replica '{lfn}'", "replicaCatalog", _REUSE)
                    continue
                wanted[lfn] = _reachable(lfn, ctx.replicas[lfn], ctx.report)
    staging = stage_in_tasks(wanted)
    used = {t.meta["transformation"]: t for t in tasks if t.meta.get("stageable")}
    for name in used:
        tf = next(tf for tf in ctx.catalog[name] if tf.stageable)
        staging.append(stage_exe_task(name, tf.pfn, tf.sha256))
    storage, catalog_file = outputs_to
    for task in tasks:
        copy, register = task.meta.get("stage_out", ()), task.meta.get("register_replica", ())
        if copy or register:
            staging.append(stage_out_task(task.name, copy, register, storage, catalog_file))
    return staging


_REUSE = "the file is also produced by a job: herd runs that job (no data reuse)"


def _reachable(lfn: str, found: Replica, report: Report) -> Replica:
    kind = scheme(found.pfn)
    if kind not in SCHEMES:
        report.warn(
            f"replica '{lfn}'",
            "replicaCatalog.pfns",
            f"herd cannot fetch {kind}:// files: its stage_in task fails unless {lfn} is "
            "placed in the working directory",
        )
    return found


def _outputs_to(sites: Any, found: Found, data: Mapping[str, Any]) -> tuple[str, str]:
    """The storage directory and the output replica catalog of this workflow."""
    named = found.properties.get("pegasus.catalog.replica.output.file")
    name = data.get("name") if isinstance(data.get("name"), str) else None
    return storage_directory(sites), named or f"{name or 'workflow'}.replicas.yml"


# --- small parsing helpers ------------------------------------------------------------------


def _node_id(value: Any) -> str:
    """A job id; YAML reads ``id: 7`` as a number, Pegasus means the string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) else ""
