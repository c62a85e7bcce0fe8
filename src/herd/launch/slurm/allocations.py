"""Slurm allocations that run ``herd worker``s: how many nodes, for how long, and their scripts.

Sizing follows torc's ``submit-slurm``: tasks are grouped by *resource class* (cores and GPUs
per task; the class asks for the largest memory among its tasks); a node holds as many tasks of
a class as its cores, memory and GPUs allow (*slots*); the class's known work (the sum of its
tasks' expected durations: the spec's ``duration``, else the mean of earlier successes, else
``default_duration``) is spread over as few nodes as finish it within the time cap, and the
walltime is the work per slot times a *margin*, at least the longest task times the margin,
capped by ``--time``. Nodes are capped by ``--nodes`` and by what the tasks can fill.

Each allocation's script starts one worker per node with ``srun`` (the worker reads its cores,
memory and GPUs from Slurm's environment), claims only tasks expected to end before the
allocation does (``--end-time``), and drains when Slurm signals the end is near
(``--signal=B:TERM@<drain>``: the batch shell forwards SIGTERM to the workers, which stop
claiming, let running tasks finish within the drain time and release the rest for other
workers). Every worker's node and pid are appended to a map file beside the script, which
``herd slurm status`` joins with the store's workers and ``squeue``.

Nothing here runs a command: the plan is pure; ``service.py`` submits it.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from herd.errors import UsageError
from herd.store.workdir import safe_name

#: seconds before the walltime at which Slurm signals the allocation to drain
DRAIN = 120


@dataclass(frozen=True, slots=True)
class NodeShape:
    """What one node of the partition offers."""

    cpus: int
    mem: float  # MB
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class Sizing:
    """The limits and policy of ``herd slurm submit``."""

    #: the longest walltime to ask for, seconds (``--time``)
    time_cap: int = 4 * 3600
    #: the most nodes one allocation may ask for (``--nodes``)
    max_nodes: int = 1
    #: walltime = known work x margin (torc's default is similar)
    margin: float = 1.2
    #: seconds assumed for a task whose duration is not known
    default_duration: float = 600.0


@dataclass(frozen=True, slots=True)
class ResourceClass:
    cpu: float
    gpu: float
    mem: float

    @property
    def label(self) -> str:
        parts = [f"cpu{self.cpu:g}", f"mem{self.mem:g}"]
        if self.gpu:
            parts.append(f"gpu{self.gpu:g}")
        return "-".join(parts)


@dataclass(frozen=True, slots=True)
class Demand:
    """One task to run, as sizing sees it."""

    name: str
    resources: Mapping[str, float]
    duration: float | None


@dataclass(frozen=True, slots=True)
class Allocation:
    """One ``sbatch`` of workers: its class, how many tasks it is sized for, nodes, walltime."""

    klass: ResourceClass
    tasks: int
    work: float  # seconds of known (or assumed) work
    slots: int  # tasks of the class one node runs at once
    nodes: int
    seconds: int  # walltime

    @property
    def minutes(self) -> int:
        return math.ceil(self.seconds / 60)


def classes(demands: Iterable[Demand]) -> dict[ResourceClass, list[Demand]]:
    """Tasks by resource class: equal cores and GPUs; the class asks for its largest memory."""
    by_shape: dict[tuple[float, float], list[Demand]] = {}
    for d in demands:
        key = (float(d.resources.get("cpu", 1.0)), float(d.resources.get("gpu", 0.0)))
        by_shape.setdefault(key, []).append(d)
    out: dict[ResourceClass, list[Demand]] = {}
    for (cpu, gpu), members in sorted(by_shape.items()):
        mem = max(float(m.resources.get("mem", 0.0)) for m in members)
        out[ResourceClass(cpu, gpu, mem)] = members
    return out


def size(demands: Sequence[Demand], node: NodeShape, sizing: Sizing) -> list[Allocation]:
    """One allocation per resource class of ``demands`` (see the module docstring)."""
    return [_size_class(k, members, node, sizing) for k, members in classes(demands).items()]


def _size_class(
    klass: ResourceClass, members: Sequence[Demand], node: NodeShape, sizing: Sizing
) -> Allocation:
    slots = _slots(klass, node)
    durations = [m.duration if m.duration is not None else sizing.default_duration for m in members]
    work, longest = sum(durations), max(durations)
    usable = max(60.0, sizing.time_cap / sizing.margin - DRAIN)
    wanted = math.ceil(work / (slots * usable))
    fill = math.ceil(len(members) / slots)
    nodes = max(1, min(sizing.max_nodes, fill, wanted))
    seconds = sizing.margin * max(longest, work / (slots * nodes)) + DRAIN
    seconds = min(sizing.time_cap, 60 * math.ceil(seconds / 60))
    return Allocation(klass, len(members), work, slots, nodes, int(seconds))


def _slots(klass: ResourceClass, node: NodeShape) -> int:
    """Tasks of ``klass`` one node runs at once (a task without cores is sized as one core)."""
    fits = [node.cpus // max(1, math.ceil(klass.cpu))]
    if klass.mem:
        fits.append(int(node.mem // klass.mem))
    if klass.gpu:
        fits.append(node.gpus // math.ceil(klass.gpu))
    slots = min(fits)
    if slots < 1:
        raise UsageError(
            f"tasks of class {klass.label} do not fit one node of the partition "
            f"({node.cpus} cores, {node.mem:g} MB, {node.gpus} GPUs): choose a partition with "
            "bigger nodes (--partition) or lower the tasks' requests"
        )
    return slots


# --- scripts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where the workers of an allocation work: the store, the workflow, the directory, and the
    command that starts herd on a node."""

    store: str
    workflow: str
    workdir: str
    herd: tuple[str, ...]
    #: where the allocation's log and worker map go
    folder: str
    #: seconds a worker with nothing to claim waits before it exits
    idle_exit: float = 60.0


def job_prefix(workflow: str) -> str:
    """The start of the job names of a workflow's allocations (``squeue --name`` finds them)."""
    return f"herd.{safe_name(workflow)}."


def sbatch_options(
    alloc: Allocation, target: Target, extra: Sequence[str] = (), gres: str | None = None
) -> list[str]:
    out = [
        f"--job-name={job_prefix(target.workflow)}{alloc.klass.label}",
        f"--nodes={alloc.nodes}",
        "--ntasks-per-node=1",
        "--exclusive",  # every core, memory and GPU of the node goes to its worker
        "--mem=0",
        f"--time={alloc.minutes}",
        f"--signal=B:TERM@{DRAIN}",
        f"--output={target.folder}/%j.log",
    ]
    if gres:
        out.append(f"--gres={gres}")
    return [*out, *extra]


def script(alloc: Allocation, target: Target, options: Sequence[str]) -> str:
    q = shlex.quote
    worker = [
        *target.herd,
        "worker",
        "--store",
        target.store,
        "--workflow",
        target.workflow,
        "-C",
        target.workdir,
        "--idle-exit",
        f"{target.idle_exit:g}",
        "--end-time",
        f"+{alloc.seconds - DRAIN}",
        "--drain",
        f"{DRAIN - 20}",
    ]
    record = f'echo "$SLURM_JOB_ID $SLURMD_NODENAME $(hostname) $$" >> {q(target.folder)}/workers'
    inner = f"{record}; exec {shlex.join(worker)}"
    k = alloc.klass
    return "\n".join(
        [
            "#!/bin/bash",
            f"# herd slurm submit: workers for workflow '{target.workflow}', tasks of class "
            f"{k.label} ({k.cpu:g} cores, {k.mem:g} MB, {k.gpu:g} GPUs each)",
            f"# {alloc.tasks} task(s), {alloc.work:.0f} s of known work, {alloc.slots} per node: "
            f"{alloc.nodes} node(s) for {alloc.minutes} min (work x margin, capped by --time)",
            *(f"#SBATCH {opt}" for opt in options),
            "",
            "# one worker per node; each reads its cores, memory and GPUs from Slurm's environment,",
            f"# claims only tasks expected to end {DRAIN} s before the walltime, and drains on",
            "# SIGTERM (sent by Slurm at that time, forwarded by this shell through srun)",
            "trap 'kill -TERM $workers 2>/dev/null; wait $workers' TERM",
            f"srun --kill-on-bad-exit=0 /bin/sh -c {q(inner)} &",
            "workers=$!",
            "wait $workers",
            "",
        ]
    )
