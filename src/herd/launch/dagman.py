"""``herd export --to dagman``: a workflow as HTCondor DAGMan files, for a user with a pool.

What is written to the output folder, all plain text, the same bytes for the same spec and
working directory (no dates, no random names), so that a rerun of the export diffs clean:

``<workflow>.dag``        the DAG: one ``JOB`` per task, ``PARENT … CHILD …`` per dependency,
                          ``RETRY`` from the task's retries, ``PRIORITY`` when it is not 0,
                          ``VARS`` (the node's task name and DAGMan's retry number, which the
                          submit description puts in its log names), ``CATEGORY``/``MAXJOBS 1``
                          for a semaphore, ``SUBDAG EXTERNAL`` for a nested workflow
``tasks/<node>.sub``      the task's submit description: ``request_cpus``, ``request_memory``
                          (MB, as herd's ``mem``), ``request_gpus``, ``request_<pool>`` for a
                          named pool, the wrapper as executable, output/error/log paths
``tasks/<node>.sh``       the wrapper: the task's directory, every variable it sets (the
                          workflow's, then its own: nothing comes from the submitter's
                          environment, ``getenv = false``), its timeout, its done marker and
                          its declared outputs checked as ``herd run`` checks them
``logs/``                 where the jobs' output, error and the DAG's job log go
``<node>/``               a nested workflow's own files (its ``.dag`` is the SUBDAG)

DAGMan runs every node from the DAG's folder, so paths in the submit descriptions are relative
to it; the wrappers change to the task's directory below the workflow's working directory, which
is written in each wrapper as an absolute path (a shared file system is assumed, as for
``herd run``). A workflow's ``init`` command becomes the node ``herd_init``, a parent of every
task without needs: herd runs it once before any task, so does DAGMan.

A task is *nested* when its ``meta`` names a spec in ``subworkflow`` (a path, relative to the
task's directory): that spec is exported into ``<node>/`` and the task is its ``SUBDAG``.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from herd.core.graph import Graph, build
from herd.core.model import STANDARD_RESOURCES, Task, Workflow
from herd.errors import UsageError
from herd.reports.script import task_command
from herd.version import __version__

#: the node that runs the workflow's init command
INIT_NODE = "herd_init"
#: what a DAGMan node name may hold here: no white space, no ``+`` (splices), no quotes
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")
#: seconds a timed-out task gets between SIGTERM and SIGKILL, as herd run's default grace
_GRACE = 5


@dataclass(frozen=True, slots=True)
class Exported:
    """What :func:`export_dagman` wrote: the DAG file and how many nodes and edges it has."""

    dag: Path
    nodes: int
    edges: int


def export_dagman(workflow: Workflow, outdir: Path, workdir: Path) -> Exported:
    """Write ``workflow`` as DAGMan files into ``outdir``; tasks run in ``workdir``."""
    graph = build(workflow)
    files = render(graph, workdir.resolve())
    for rel, text in files.items():
        path = outdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)
    for rel in files:
        if rel.endswith(".dag"):  # every DAG's jobs write their logs beside it
            (outdir / rel).parent.joinpath("logs").mkdir(exist_ok=True)
    return Exported(
        outdir / _dag_name(workflow), len(graph.tasks) + bool(workflow.init), graph.edges
    )


def render(graph: Graph, workdir: Path) -> dict[str, str]:
    """Every file of the export, by path relative to the output folder."""
    wf = graph.workflow
    nodes = node_names(wf.tasks)
    files: dict[str, str] = {}
    for task in wf.tasks:
        node = nodes[task.name]
        sub = task.meta.get("subworkflow") if task.meta else None
        if sub:
            files.update(_nested(task, node, str(sub), workdir))
        else:
            files[f"tasks/{node}.sub"] = submit_description(wf, task, node)
            files[f"tasks/{node}.sh"] = wrapper(wf, task, workdir)
    if wf.init:
        files[f"tasks/{INIT_NODE}.sub"] = _init_submit(wf)
        files[f"tasks/{INIT_NODE}.sh"] = _init_wrapper(wf, workdir)
    files[_dag_name(wf)] = dag_text(graph, nodes)
    return files


def node_names(tasks: tuple[Task, ...]) -> dict[str, str]:
    """Task name -> DAGMan node name: the name itself when DAGMan accepts it, else its unsafe
    characters replaced by ``_`` (and a number added when that collides)."""
    out: dict[str, str] = {}
    taken = {INIT_NODE}
    for task in tasks:
        base = _UNSAFE.sub("_", task.name) or "task"
        if base.upper() in ("PARENT", "CHILD"):
            base += "_"
        node, n = base, 1
        while node in taken:
            n += 1
            node = f"{base}_{n}"
        taken.add(node)
        out[task.name] = node
    return out


# --- the DAG --------------------------------------------------------------------------------


def dag_text(graph: Graph, nodes: Mapping[str, str]) -> str:
    wf = graph.workflow
    lines = [
        f"# HTCondor DAGMan workflow '{wf.name}': {len(wf.tasks)} tasks, {graph.edges} dependencies",
        f"# written by herd {__version__} (herd export --to dagman) from {wf.source or 'the API'}",
        f"# submit with: condor_submit_dag {_dag_name(wf)}",
        "# (run it from this folder: submit descriptions and logs are relative to it)",
        "",
    ]
    if wf.init:
        lines += ["# the workflow's init command, once before any task", _job(INIT_NODE), ""]
    semaphores: set[str] = set()
    for i, task in enumerate(graph.tasks):
        lines += _node_lines(task, nodes[task.name], graph.name(i))
        if task.semaphore:
            semaphores.add(task.semaphore)
    lines += _edge_lines(graph, nodes)
    if semaphores:
        lines += ["", "# a semaphore: at most one of its tasks runs at a time"]
        lines += [f"MAXJOBS {_category(s)} 1" for s in sorted(semaphores)]
    return "\n".join(lines) + "\n"


def _node_lines(task: Task, node: str, name: str) -> list[str]:
    head = (
        f"# {name}"
        if name == node
        else f"# {name} (node {node}: DAGMan names allow no {_unsafe(name)})"
    )
    sub = task.meta.get("subworkflow") if task.meta else None
    lines = [head]
    if sub:
        lines.append(f"SUBDAG EXTERNAL {node} {_dag_name_of(node)} DIR {node}")
    else:
        lines.append(_job(node))
        lines.append(f'VARS {node} task="{_vars_value(name)}" attempt="$(RETRY)"')
    if task.retries:
        lines.append(f"RETRY {node} {task.retries}")
    if task.priority:
        lines.append(f"PRIORITY {node} {task.priority}")
    if task.semaphore:
        lines.append(f"CATEGORY {node} {_category(task.semaphore)}")
    return lines


def _edge_lines(graph: Graph, nodes: Mapping[str, str]) -> list[str]:
    wf = graph.workflow
    lines = ["", "# dependencies: each parent with the children that need it"]
    if wf.init:
        roots = [nodes[graph.name(i)] for i in range(len(graph)) if not len(graph.parents(i))]
        if roots:
            lines.append(f"PARENT {INIT_NODE} CHILD {' '.join(roots)}")
    for i in range(len(graph)):
        children = graph.children(i)
        if len(children):
            kids = " ".join(nodes[graph.name(c)] for c in children)
            lines.append(f"PARENT {nodes[graph.name(i)]} CHILD {kids}")
    return lines


def _job(node: str) -> str:
    return f"JOB {node} tasks/{node}.sub"


# --- submit descriptions ---------------------------------------------------------------------


def submit_description(wf: Workflow, task: Task, node: str) -> str:
    lines = [
        f"# HTCondor submit description of herd task '{task.name}' (workflow '{wf.name}')",
        "universe = vanilla",
        f"executable = tasks/{node}.sh",
        "# the wrapper sets the task's variables itself: nothing of the submitter's environment",
        "getenv = false",
        *_requests(task),
        "# one file per attempt: $(attempt) is DAGMan's retry number (VARS in the .dag)",
        f"output = logs/{node}.$(attempt).out",
        f"error = logs/{node}.$(attempt).err",
        f"log = logs/{_dag_name(wf)}.log",
        "# the task reads and writes its files in place: a shared file system, as herd run",
        "should_transfer_files = NO",
        "queue",
    ]
    return "\n".join(lines) + "\n"


def _requests(task: Task) -> list[str]:
    demand = task.demand
    cpu, mem, gpu = (demand.get(r, 0.0) for r in STANDARD_RESOURCES)
    cpus = max(1, math.ceil(cpu))
    lines = []
    if cpus != cpu:
        lines.append(f"# herd asks {_num(cpu)} core(s); HTCondor counts whole cores")
    lines.append(f"request_cpus = {cpus}")
    if mem:
        lines.append(f"request_memory = {math.ceil(mem)}")  # MB, HTCondor's default unit
    if gpu:
        lines.append(f"request_gpus = {math.ceil(gpu)}")
    pools = sorted(k for k in demand if k not in STANDARD_RESOURCES and demand[k])
    if pools:
        lines.append("# named pools: machines must offer them (MACHINE_RESOURCE_<name>)")
        lines += [f"request_{k} = {_num(demand[k])}" for k in pools]
    return lines


def _init_submit(wf: Workflow) -> str:
    lines = [
        f"# HTCondor submit description of workflow '{wf.name}''s init command",
        "universe = vanilla",
        f"executable = tasks/{INIT_NODE}.sh",
        "getenv = false",
        "request_cpus = 1",
        f"output = logs/{INIT_NODE}.out",
        f"error = logs/{INIT_NODE}.err",
        f"log = logs/{_dag_name(wf)}.log",
        "should_transfer_files = NO",
        "queue",
    ]
    return "\n".join(lines) + "\n"


# --- wrappers -------------------------------------------------------------------------------


def wrapper(wf: Workflow, task: Task, workdir: Path) -> str:
    """The shell script an HTCondor job runs for ``task``, as ``herd run`` would run it."""
    cwd = workdir / task.cwd if task.cwd else workdir
    lines = [
        "#!/bin/sh",
        f"# herd task '{task.name}' of workflow '{wf.name}'",
        "set -e",
        "# HTCondor starts the job with a minimal environment: set PATH and your software's",
        "# setup (module load, alienv) in the workflow's env, or add it here",
        f"mkdir -p {shlex.quote(str(cwd))} && cd {shlex.quote(str(cwd))}",
        *_exports(wf.env, "the workflow's variables"),
        *_exports(task.env, "the task's variables"),
        f"export HERD_WORKFLOW={shlex.quote(wf.name)} HERD_TASK={shlex.quote(task.name)}",
    ]
    if task.done_marker:
        marker = shlex.quote(task.done_marker)
        lines += [
            "# done before: the marker says so (herd run skips the task too)",
            f"if [ -e {marker} ]; then exit 0; fi",
        ]
    lines += [*_run(task), *_checks(task)]
    return "\n".join(lines) + "\n"


def _run(task: Task) -> list[str]:
    cmd = task_command(task)
    if not task.timeout:
        return [f"/bin/sh -c {shlex.quote(cmd)} || exit $?"]
    limit = math.ceil(task.timeout)
    return [
        f"# timeout {_num(task.timeout)} s: SIGTERM, then SIGKILL {_GRACE} s later (exit 124)",
        f"timeout --kill-after={_GRACE} {limit} /bin/sh -c {shlex.quote(cmd)} || exit $?",
    ]


def _checks(task: Task) -> list[str]:
    lines = []
    for out in task.outputs:
        q = shlex.quote(out)
        message = shlex.quote(f"herd: declared output {out} was not created")
        lines.append(f"[ -e {q} ] || {{ echo {message} >&2; exit 1; }}")
    if task.done_marker:
        marker = shlex.quote(task.done_marker)
        lines.append(f'mkdir -p "$(dirname {marker})" && touch {marker}')
    return lines


def _init_wrapper(wf: Workflow, workdir: Path) -> str:
    assert wf.init is not None
    lines = [
        "#!/bin/sh",
        f"# workflow '{wf.name}': its init command, run once before any task",
        "set -e",
        f"mkdir -p {shlex.quote(str(workdir))} && cd {shlex.quote(str(workdir))}",
        *_exports(wf.env, "the workflow's variables"),
        f"exec /bin/sh -c {shlex.quote(wf.init)}",
    ]
    return "\n".join(lines) + "\n"


def _exports(env: Mapping[str, str], what: str) -> list[str]:
    if not env:
        return []
    return [f"# {what}", *(f"export {k}={shlex.quote(str(v))}" for k, v in env.items())]


# --- nested workflows -----------------------------------------------------------------------


def _nested(task: Task, node: str, spec: str, workdir: Path) -> dict[str, str]:
    from herd.formats import load

    cwd = workdir / task.cwd if task.cwd else workdir
    path = cwd / spec
    if not path.is_file():
        raise UsageError(
            f"task {task.name}: its nested workflow {path} does not exist; DAGMan needs it at "
            "export time (export after the task that writes it has run)"
        )
    inner = load(path)
    files = render(build(inner), cwd)
    dag = files.pop(_dag_name(inner))
    files[_dag_name_of(node)] = dag
    return {f"{node}/{rel}": text for rel, text in files.items()}


# --- names ----------------------------------------------------------------------------------


def _dag_name(wf: Workflow) -> str:
    return _dag_name_of(_UNSAFE.sub("_", wf.name) or "workflow")


def _dag_name_of(stem: str) -> str:
    return f"{stem}.dag"


def _category(semaphore: str) -> str:
    return "sem_" + _UNSAFE.sub("_", semaphore)


def _vars_value(value: str) -> str:
    """A VARS value in double quotes: DAGMan escapes ``"`` and ``\\`` with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _unsafe(name: str) -> str:
    return " ".join(sorted({repr(c) for c in _UNSAFE.findall(name)}))


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
