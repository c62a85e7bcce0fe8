"""DAMPE DmpWorkflow XML job definitions → herd.

The format of DmpWorkflow (the DAMPE production system), with two additions for a DAG: the
``instances`` and ``depends`` attributes and per-instance ``<Instance>`` overrides::

    <Jobs>
      <MetaData><Var name="storage" value="store"/></MetaData>        <!-- every job sees these -->
      <Job name="sim" type="Generation" release="6-0-0" instances="3">
        <MetaData><Var name="NEVENTS" value="1000"/></MetaData>
        <InputFiles><File source="macros/electron.mac" target="G4macro.mac"/></InputFiles>
        <OutputFiles>
          <File source="dmpsimu.root" target="${storage}/sim/sim.${DWF_SIXDIGIT}.root"/>
        </OutputFiles>
        <JobWrapper executable="/bin/bash"><![CDATA[ dmp-sim -n $NEVENTS ]]></JobWrapper>
        <Instance id="2"><MetaData><Var name="NEVENTS" value="500"/></MetaData></Instance>
      </Job>
      <Job name="reco" type="Reconstruction" instances="3" depends="sim"> ... </Job>
    </Jobs>

A job with ``instances="N"`` becomes N tasks ``<job>.000001`` … ``<job>.00000N`` (instance ids
start at 1, as in DmpWorkflow). Instance *i* of a job needs instance *i* of each job it
``depends`` on; a parent with one instance is needed by every instance; a child with one instance
needs every instance of its parent (a merge); other mismatched counts are an error.

The jobs a job ``depends`` on are its parent tasks, as in DmpWorkflow's ``/newjobs/`` endpoint:
their MetaData is inherited and their OutputFiles are added to its InputFiles (read into the
file's basename), instance by aligned instance (:class:`_Resolver`).

Variables (``<Var name value>``, referenced as ``${NAME}`` or ``$NAME``), weakest first: the
parent jobs' MetaData, ``<Jobs>``-level MetaData, the job's attributes (``release`` also as ``RELEASE_TAG``, ``type`` as
``DWF_TYPE``), the job's MetaData, the instance's MetaData, then herd's ``DWF_TASKNAME``,
``DWF_JOBNAME`` (the job name), ``DWF_INSTANCE_ID`` and ``DWF_SIXDIGIT`` (the id on six digits).
A value may use any variable of its task; a variable that uses its own name gets the weaker
definition (``PATH="${PATH}:x"``). Every variable is in the task's environment. Unknown references
stay for the shell to expand at run time (with a warning). ``BATCH_OVERRIDE_MEMORY`` (MB) becomes
the ``mem`` resource, ``BATCH_OVERRIDE_CPUTIME`` (``HH:MM``) the timeout; other batch overrides
are reported as ignored.

Each task's command does what DmpWorkflow's payload script does, in a fresh directory
``<job>/<six digits>`` of the working directory, with ``set -e``: copy every InputFile
``source`` → ``target``; write the JobWrapper to ``payload`` and run ``<executable> payload``; copy
every OutputFile ``source`` → ``target`` (creating its directory); on success remove the
directory. Storage-side paths (InputFile sources, OutputFile targets) are relative to the working
directory and are the task's ``inputs``/``outputs``, so herd also infers dependencies from them;
``root://`` URLs are copied with ``xrdcp`` and kept in ``meta`` only.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

from herd.core.model import SpecFormat, Task, Workflow, frozen_map
from herd.formats.common import as_float, as_int, fail, freeze

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_REF = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_RESERVED = ("DWF_TASKNAME", "DWF_JOBNAME", "DWF_INSTANCE_ID", "DWF_SIXDIGIT")
_HERD_ATTRIBUTES = frozenset({"name", "instances", "depends"})
_SECTIONS = frozenset({"MetaData", "InputFiles", "OutputFiles"})
_PAYLOAD_END = "HERD_DAMPE_PAYLOAD"


@dataclass
class _Body:
    """The MetaData and files of a job or of one of its instances."""

    variables: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Job:
    name: str
    attributes: dict[str, str]
    instances: int
    depends: list[str]
    body: _Body
    executable: str
    script: str
    overrides: dict[int, _Body]


@dataclass
class _Report:
    source: str
    warnings: list[str] = field(default_factory=list)

    def warn(self, job: str | None, field: str, message: str) -> None:
        where = f"job '{job}': " if job else ""
        line = f"{self.source}: {where}field '{field}': {message}"
        if line not in self.warnings:
            self.warnings.append(line)


# --- entry point ----------------------------------------------------------------------------


def load_text(text: str, source: str) -> Workflow:
    """Build a :class:`Workflow` from the text of a DAMPE XML job definition.

    >>> wf = load_text('<Jobs><Job name="a" instances="2"><JobWrapper executable="/bin/sh">'
    ...                '<![CDATA[echo $DWF_SIXDIGIT]]></JobWrapper></Job></Jobs>', "a.xml")
    >>> [t.name for t in wf.tasks], wf.tasks[1].env["DWF_SIXDIGIT"]
    (['a.000001', 'a.000002'], '000002')
    """
    root = _parse(text, source)
    report = _Report(source)
    shared = _body(root, source, None, report) if root.tag == "Jobs" else _Body()
    elements = [root] if root.tag == "Job" else root.findall("Job")
    if not elements:
        fail("no <Job> element", source, None, "Jobs", "add <Job name=...> elements to <Jobs>")
    for child in root:
        if root.tag == "Jobs" and child.tag not in ("Job", "MetaData"):
            report.warn(None, child.tag, "unknown element ignored")
    jobs = _jobs(elements, source, report)
    resolver = _Resolver(jobs, shared, report)
    tasks = [resolver.task(job, n) for job in jobs.values() for n in range(1, job.instances + 1)]
    for line in report.warnings:
        logger.info("%s", line)
    meta = {"warnings": report.warnings} if report.warnings else None
    return Workflow(
        name=root.get("name") or _stem(source),
        tasks=tuple(tasks),
        source=source,
        format=SpecFormat.DAMPE,
        meta=freeze(meta) if meta else frozen_map(None),
    )


def _parse(text: str, source: str) -> ElementTree.Element:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        problem = str(exc).split(":")[0]
        fail(f"invalid XML at line {line}, column {column + 1}: {problem}", source, None, None)
    if root.tag not in ("Jobs", "Job"):
        fail(f"the root element is <{root.tag}>, not <Jobs>", source, None, root.tag)
    return root


def _stem(source: str) -> str:
    return source.rsplit("/", 1)[-1].split(".", 1)[0] or "dampe"


# --- parsing jobs ---------------------------------------------------------------------------


def _jobs(elements: list[ElementTree.Element], source: str, report: _Report) -> dict[str, _Job]:
    jobs: dict[str, _Job] = {}
    for index, element in enumerate(elements):
        job = _job(element, index, len(elements), source, report)
        if job.name in jobs:
            fail("duplicate job name", source, job.name, "name", "every job needs a unique name")
        jobs[job.name] = job
    for job in jobs.values():
        for parent in job.depends:
            if parent not in jobs:
                fail(
                    f"depends on '{parent}', which is not a job of this file",
                    source,
                    job.name,
                    "depends",
                    "known jobs: " + ", ".join(jobs),
                )
    return jobs


def _job(
    element: ElementTree.Element, index: int, count: int, source: str, report: _Report
) -> _Job:
    name = element.get("name") or (_stem(source) if count == 1 else "")
    if not name:
        fail("a job needs a name when the file has several", source, f"#{index + 1}", "name")
    if not _NAME.match(name):
        fail("a job name may use letters, digits, '_', '.' and '-'", source, name, "name")
    instances = as_int(element.get("instances", "1"), source, name, "instances", 1)
    wrapper = element.find("JobWrapper")
    if wrapper is None or not (wrapper.text or "").strip():
        fail("a job needs a <JobWrapper> with a script", source, name, "JobWrapper")
    for child in element:
        if child.tag not in (*_SECTIONS, "JobWrapper", "Instance"):
            report.warn(name, child.tag, "unknown element ignored")
    return _Job(
        name=name,
        attributes={k: v for k, v in element.attrib.items() if k not in _HERD_ATTRIBUTES},
        instances=instances,
        depends=[d.strip() for d in element.get("depends", "").split(",") if d.strip()],
        body=_body(element, source, name, report),
        executable=wrapper.get("executable") or "/bin/bash",
        script=wrapper.text or "",
        overrides=_overrides(element, instances, source, name, report),
    )


def _overrides(
    element: ElementTree.Element, instances: int, source: str, job: str, report: _Report
) -> dict[int, _Body]:
    found: dict[int, _Body] = {}
    for item in element.findall("Instance"):
        number = as_int(item.get("id"), source, job, "Instance.id", 1)
        if number > instances:
            fail(
                f"instance {number} does not exist: the job has {instances}",
                source,
                job,
                "Instance.id",
                f"use an id from 1 to {instances}",
            )
        if number in found:
            fail(f"instance {number} is given twice", source, job, "Instance.id")
        found[number] = _body(item, source, job, report)
    return found


def _body(element: ElementTree.Element, source: str, job: str | None, report: _Report) -> _Body:
    body = _Body()
    for section in element.findall("MetaData"):
        for var in section.findall("Var"):
            name, value = var.get("name", ""), var.get("value", "")
            if not name:
                report.warn(job, "MetaData.Var", "a Var without a name is ignored")
            elif not re.fullmatch(r"[A-Za-z_]\w*", name):
                fail(f"invalid variable name {name!r}", source, job, "MetaData.Var.name")
            else:
                body.variables[name] = value
    body.inputs = _files(element, "InputFiles", source, job, report)
    body.outputs = _files(element, "OutputFiles", source, job, report)
    return body


def _files(
    element: ElementTree.Element, kind: str, source: str, job: str | None, report: _Report
) -> list[tuple[str, str]]:
    files = []
    for section in element.findall(kind):
        for i, item in enumerate(section.findall("File")):
            src, dst = item.get("source", "").strip(), item.get("target", "").strip()
            if not src and not dst:
                report.warn(job, f"{kind}.File", "a File without source and target is ignored")
            elif not src or not dst:
                missing = "source" if not src else "target"
                fail(f"a File needs a {missing}", source, job, f"{kind}.File[{i + 1}].{missing}")
            else:
                files.append((src.removeprefix("@"), dst))
    return files


# --- instances ------------------------------------------------------------------------------


def _instance_name(job: str, number: int) -> str:
    return f"{job}.{number:06d}"


def _aligned(job: _Job, number: int, parent: _Job, source: str) -> range:
    """The instances of ``parent`` that instance ``number`` of ``job`` depends on."""
    if parent.instances == 1:
        return range(1, 2)
    if parent.instances == job.instances:
        return range(number, number + 1)
    if job.instances == 1:
        return range(1, parent.instances + 1)
    fail(
        f"the job has {job.instances} instances but depends on '{parent.name}', which has "
        f"{parent.instances}",
        source,
        job.name,
        "depends",
        "instance i needs instance i of its parent: give both jobs the same number of "
        "instances, or one of them a single instance",
    )


@dataclass(frozen=True)
class _Instance:
    """One instance of a job, its variables resolved: what its children inherit from it."""

    scope: _Scope
    #: the MetaData definitions it passes on (what it inherited, then its own), unresolved
    metadata: dict[str, str]
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]


class _Resolver:
    """Instances of every job, parents first, as DmpWorkflow's ``/newjobs/`` builds children.

    A job's parent tasks are the jobs it ``depends`` on: their MetaData is inherited (weaker than
    the ``<Jobs>`` level; later parents beat earlier ones) and their OutputFiles become the
    child's InputFiles, the storage path read into the file's basename. Instance *i* inherits
    from the parent instances it depends on (:func:`_aligned`).
    """

    def __init__(self, jobs: Mapping[str, _Job], shared: _Body, report: _Report) -> None:
        self.jobs, self.shared, self.report = jobs, shared, report
        self.done: dict[tuple[str, int], _Instance] = {}
        self.pending: list[str] = []

    def parents(self, job: _Job, number: int) -> list[tuple[_Job, int]]:
        return [
            (self.jobs[name], i)
            for name in job.depends
            for i in _aligned(job, number, self.jobs[name], self.report.source)
        ]

    def instance(self, job: _Job, number: int) -> _Instance:
        key = (job.name, number)
        if key not in self.done:
            name = _instance_name(*key)
            if name in self.pending:
                path = " -> ".join([*self.pending[self.pending.index(name) :], name])
                fail(
                    f"jobs depend on each other in a cycle: {path}",
                    self.report.source,
                    job.name,
                    "depends",
                    "remove one of the depends",
                )
            self.pending.append(name)
            self.done[key] = self._resolve(job, number)
            self.pending.pop()
        return self.done[key]

    def _resolve(self, job: _Job, number: int) -> _Instance:
        own = job.overrides.get(number, _Body())
        inherited: dict[str, str] = {}
        extra: dict[str, str] = {}
        for parent, i in self.parents(job, number):
            above = self.instance(parent, i)
            inherited.update(above.metadata)
            extra.update((dst, _basename(dst)) for _, dst in above.outputs)
        layers = _layers(job, number, self.shared, own, self.report)
        scope = _Scope([inherited, *layers], self.report.source, _instance_name(job.name, number))
        inputs = [(scope.expand(s), scope.expand(t)) for s, t in (*job.body.inputs, *own.inputs)]
        outputs = [(scope.expand(s), scope.expand(t)) for s, t in (*job.body.outputs, *own.outputs)]
        listed = {src for src, _ in inputs}
        inputs += [(src, dst) for src, dst in extra.items() if src not in listed]
        _check_targets(inputs, self.report.source, job.name)
        metadata = {**inherited, **job.body.variables, **own.variables}
        return _Instance(scope, metadata, inputs, outputs)

    def task(self, job: _Job, number: int) -> Task:
        resolved = self.instance(job, number)
        scope = resolved.scope
        env = scope.environment()
        policy = _batch(env, self.report, job.name)
        for ref in sorted(scope.unresolved):
            self.report.warn(
                job.name, f"${{{ref}}}", "unknown variable: the shell expands it at run time"
            )
        storage_in = [src for src, _ in resolved.inputs]
        storage_out = [dst for _, dst in resolved.outputs]
        return Task(
            name=_instance_name(job.name, number),
            cmd=_command(job, number, resolved.inputs, resolved.outputs),
            needs=tuple(_instance_name(p.name, i) for p, i in self.parents(job, number)),
            inputs=tuple(p for p in dict.fromkeys(storage_in) if not _is_url(p)),
            outputs=tuple(p for p in dict.fromkeys(storage_out) if not _is_url(p)),
            labels=tuple(x for x in dict.fromkeys([job.name, job.attributes.get("type", "")]) if x),
            env=frozen_map(env),
            timeframe=number,
            meta=_meta(job, number, storage_in, storage_out),
            **policy,
        )


def _basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _check_targets(inputs: list[tuple[str, str]], source: str, job: str) -> None:
    """Two InputFiles copied to one name would silently lose one of them."""
    seen: dict[str, str] = {}
    for src, dst in inputs:
        if seen.setdefault(dst, src) != src:
            fail(
                f"two InputFiles are copied to '{dst}': '{seen[dst]}' and '{src}' (a parent's "
                "OutputFiles are read into their basenames)",
                source,
                job,
                "InputFiles",
                "give the outputs distinct names, e.g. with ${DWF_SIXDIGIT}",
            )


def _layers(
    job: _Job, number: int, shared: _Body, own: _Body, report: _Report
) -> list[dict[str, str]]:
    attributes = dict(job.attributes)
    if "type" in attributes:
        attributes["DWF_TYPE"] = attributes["type"]
    if "release" in attributes:
        attributes["RELEASE_TAG"] = attributes["release"]
    builtins = {
        "DWF_TASKNAME": job.name,
        "DWF_JOBNAME": job.name,
        "DWF_INSTANCE_ID": str(number),
        "DWF_SIXDIGIT": f"{number:06d}",
    }
    layers = [shared.variables, attributes, job.body.variables, own.variables]
    for layer in layers:
        for key in _RESERVED:
            if key in layer:
                report.warn(job.name, f"MetaData.{key}", "set by herd for each instance: ignored")
    return [*layers, builtins]


def _meta(job: _Job, number: int, storage_in: list[str], storage_out: list[str]) -> Any:
    meta: dict[str, Any] = {"job": job.name, "instance": number}
    if job.attributes:
        meta["attributes"] = job.attributes
    remote_in = [p for p in storage_in if _is_url(p)]
    remote_out = [p for p in storage_out if _is_url(p)]
    if remote_in:
        meta["remote_inputs"] = tuple(remote_in)
    if remote_out:
        meta["remote_outputs"] = tuple(remote_out)
    return freeze(meta)


def _batch(env: dict[str, str], report: _Report, job: str) -> dict[str, Any]:
    """Resources and timeout from DmpWorkflow's BATCH_OVERRIDE_* variables (taken out of env)."""
    resources: dict[str, float] = {}
    policy: dict[str, Any] = {"resources": resources}
    for key in [k for k in env if k.startswith("BATCH_OVERRIDE_")]:
        value = env.pop(key)
        if key == "BATCH_OVERRIDE_MEMORY":
            resources["mem"] = as_float(value, report.source, job, key)
        elif key == "BATCH_OVERRIDE_CPUTIME":
            policy["timeout"] = _hhmm(value, report.source, job, key)
        else:
            report.warn(job, key, "batch-system setting ignored: herd runs the job on this machine")
    policy["resources"] = frozen_map(resources)
    return policy


def _hhmm(value: str, source: str, job: str, field: str) -> float:
    parts = value.strip().split(":")
    if not 2 <= len(parts) <= 3 or not all(p.strip().isdigit() for p in parts):
        fail(f"expected HH:MM or HH:MM:SS, got {value!r}", source, job, field)
    seconds = sum(int(p) * f for p, f in zip(parts, (3600, 60, 1), strict=False))
    if seconds <= 0:
        fail("must be more than 0", source, job, field)
    return float(seconds)


# --- variables ------------------------------------------------------------------------------


class _Scope:
    """The variables of one instance: layered definitions, resolved on demand, cycles refused."""

    def __init__(self, layers: list[dict[str, str]], source: str, task: str) -> None:
        self.layers, self.source, self.task = layers, source, task
        self.cache: dict[tuple[str, int], str] = {}
        self.unresolved: set[str] = set()

    def environment(self) -> dict[str, str]:
        names = dict.fromkeys(name for layer in self.layers for name in layer)
        return {name: self.value(name, len(self.layers), ()) or "" for name in names}

    def expand(self, text: str) -> str:
        return self._substitute(text, None, len(self.layers), ())

    def value(self, name: str, below: int, stack: tuple[tuple[str, int], ...]) -> str | None:
        for level in range(below - 1, -1, -1):
            if name in self.layers[level]:
                return self._resolve(name, level, stack)
        return None

    def _resolve(self, name: str, level: int, stack: tuple[tuple[str, int], ...]) -> str:
        key = (name, level)
        if key in self.cache:
            return self.cache[key]
        if key in stack:
            path = " -> ".join(f"${{{n}}}" for n, _ in (*stack[stack.index(key) :], key))
            fail(
                f"variables refer to each other in a cycle: {path}",
                self.source,
                self.task,
                "MetaData",
                "break the cycle: one of them must not use the other",
            )
        text = self._substitute(self.layers[level][name], name, level, (*stack, key))
        self.cache[key] = text
        return text

    def _substitute(
        self, text: str, own: str | None, level: int, stack: tuple[tuple[str, int], ...]
    ) -> str:
        def replace(match: re.Match[str]) -> str:
            ref = match.group(1) or match.group(2)
            found = self.value(ref, level if ref == own else len(self.layers), stack)
            if found is None:
                self.unresolved.add(ref)
                return "${" + ref + "}"
            return found

        return _REF.sub(replace, text)


# --- the command ----------------------------------------------------------------------------


def _command(
    job: _Job, number: int, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]
) -> str:
    """The shell script of one instance: stage in, run the payload, stage out, clean up."""
    directory = shlex.quote(f"{job.name}/{number:06d}")
    end = _PAYLOAD_END
    while end in job.script:
        end += "_"
    lines = [
        "set -e",
        "herd_wd=$PWD",
        f"rm -rf {directory} && mkdir -p {directory} && cd {directory}",
        *(_copy(src, dst, storage_source=True) for src, dst in inputs),
        f"cat > payload <<'{end}'",
        job.script.strip("\n"),
        end,
        f"{_executable(job.executable)} payload",
        *(_copy(src, dst, storage_source=False) for src, dst in outputs),
        f'cd "$herd_wd" && rm -rf {directory} && {{ rmdir {shlex.quote(job.name)} 2>/dev/null || true; }}',
    ]
    return "\n".join(lines)


def _executable(executable: str) -> str:
    try:
        return shlex.join(shlex.split(executable))
    except ValueError:
        return shlex.quote(executable)


def _copy(src: str, dst: str, *, storage_source: bool) -> str:
    """Copy one file; the storage side is relative to the working directory, the other to the
    instance directory."""
    source = _storage(src) if storage_source else _word(src)
    target = _word(dst) if storage_source else _storage(dst)
    remote = src if storage_source else dst
    if remote.startswith("root://"):
        return f"xrdcp -f {source} {target}"
    if re.match(r"https?://", src):
        return f"curl -fsSL -o {target} {source}"
    mkdir = f'mkdir -p "$(dirname -- {target})" && ' if "/" in dst or "$" in dst else ""
    return f"{mkdir}cp -- {source} {target}"


def _storage(path: str) -> str:
    if path.startswith("/") or _is_url(path) or path.startswith("$"):
        return _word(path)
    return '"$herd_wd"/' + _word(path)


def _word(path: str) -> str:
    """A shell word for ``path``; ``${VAR}`` references left in it stay live for the shell."""
    if "$" not in path:
        return shlex.quote(path)
    escaped = re.sub(r'(["\\`])', r"\\\1", path)
    escaped = re.sub(r"\$(?!\{?\w)", r"\\$", escaped)
    return f'"{escaped}"'


def _is_url(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None
