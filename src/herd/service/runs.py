"""Operations on a workflow spec and its runs: load, validate, list, plan, submit, run, simulate.

The front end loads the spec once (:func:`load` or :func:`load_built`). :func:`run` validates it,
plans it against the store and records the plan there (:mod:`herd.run.submit`), then drives the
scheduler over real processes until the workflow ends (:mod:`herd.run.local`); :func:`plan` plans
without writing (``herd run --dry-run``, ``herd why``). Submitting to a queue for workers is
:func:`herd.service.workers.submit`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.core.graph import Graph, build, check_limits, select
from herd.core.model import MAX_TASKS, Limits, Workflow
from herd.core.scheduler import Policy
from herd.exec.base import Executor
from herd.exec.machine import parse_named, run_limits
from herd.formats import Setup
from herd.formats import load as load_spec
from herd.formats.built import load_built as load_spec_built
from herd.run.local import Reporter, RunResult, run_workflow
from herd.run.submit import Prepared, RunOptions, prepare
from herd.service.state import existing_store

if TYPE_CHECKING:
    from herd.run.simulate import SimResult

# Slurm, the simulator and the script writer are imported by the operations that use them: a
# `herd run` on this machine does not pay their ~16 ms of imports.

__all__ = [
    "Graph",
    "Policy",
    "Prepared",
    "Reporter",
    "RunOptions",
    "RunResult",
    "Setup",
    "SimResult",
    "limits",
    "load",
    "load_built",
    "plan",
    "run",
    "script",
    "simulate",
    "slurm_executor",
    "tasks",
    "validate",
]


def load(path: str, *, max_tasks: int = MAX_TASKS, setup: Setup | None = None) -> Workflow:
    """The workflow in the spec file ``path``, any format herd reads, of at most ``max_tasks``
    tasks; ``setup``: what ``pegasus-plan`` would be given besides a Pegasus workflow
    (:func:`herd.formats.load`)."""
    return load_spec(path, max_tasks=max_tasks, setup=setup)


def load_built(
    path: str,
    workdir: Path,
    *,
    save: bool,
    max_tasks: int = MAX_TASKS,
    setup: Setup | None = None,
) -> tuple[Workflow, Graph]:
    """The workflow in ``path`` and its graph, from the working directory's spec cache when it
    holds them (:mod:`herd.formats.built`); ``save`` keeps a big spec's for the next run."""
    return load_spec_built(path, workdir, save=save, max_tasks=max_tasks, setup=setup)


def limits(
    workflow: Workflow,
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Sequence[str] = (),
    jobs: int | None = None,
) -> Limits:
    """The limits of a run: these values, then the spec's ``limits``, then this machine's;
    ``named`` holds ``NAME=N`` pools as the user wrote them."""
    return run_limits(
        workflow, cpu=cpu, mem=mem, gpu=gpu, named=parse_named(list(named)), jobs=jobs
    )


def slurm_executor(
    *,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    extra: Sequence[str] = (),
    group: int = 1,
) -> Callable[[Workflow, Path], Executor]:
    """The executor factory (``RunOptions.executor``) that runs each task as a Slurm job
    (:mod:`herd.launch.slurm`) with these sbatch options; ``group`` tasks may share a job."""
    from herd.launch.slurm.executor import slurm_executor as launch_slurm_executor
    from herd.launch.slurm.jobs import SlurmOptions

    options = SlurmOptions(partition, account, qos, tuple(extra), group)
    return launch_slurm_executor(options)


def validate(workflow: Workflow, limits: Limits) -> Graph:
    """The workflow's graph, once it is a valid DAG whose every task fits ``limits``."""
    graph = build(workflow)
    check_limits(graph, limits)
    return graph


def tasks(workflow: Workflow) -> list[dict[str, Any]]:
    """Each task in dependency order: its name, needs, resources, labels and timeframe."""
    graph = build(workflow)
    return [
        {
            "name": graph.name(i),
            "needs": [graph.name(p) for p in graph.parents(i)],
            "resources": graph.tasks[i].demand,
            "labels": list(graph.tasks[i].labels),
            "timeframe": graph.tasks[i].timeframe,
        }
        for i in graph.order
    ]


def script(workflow: Workflow, targets: Sequence[str] = (), labels: Sequence[str] = ()) -> str:
    """The workflow (or the targets and what they need) as a serial bash script."""
    from herd.reports.script import serial_script

    graph = build(workflow)
    return serial_script(graph, select(graph, list(targets), list(labels)))


def plan(workflow: Workflow, options: RunOptions, graph: Graph | None = None) -> Prepared:
    """What a run with ``options`` would do and why, against what the store remembers; writes
    nothing (no store is created where herd never ran)."""
    with existing_store(options.workdir, options.store) as store:
        return prepare(workflow, options, store, graph)


def run(
    workflow: Workflow, options: RunOptions, reporter: Reporter, graph: Graph | None = None
) -> RunResult:
    """Validate, plan and record ``workflow``, then run it to the end (or until interrupted) on
    this machine."""
    return run_workflow(workflow, options, reporter, graph)


def simulate(
    workflow: Workflow,
    limits: Limits,
    *,
    duration: float | None = None,
    policy: Policy = Policy.CRITICAL_PATH,
    blind: bool = False,
    keep_schedule: bool = False,
) -> SimResult:
    """The real scheduler over ``workflow`` on a virtual clock: tasks last what the spec records
    (``duration`` for those it gives none); ``blind`` schedules without looking at durations."""
    from herd.run.simulate import durations_of
    from herd.run.simulate import simulate as simulate_graph

    graph = validate(workflow, limits)
    durations = durations_of(graph, duration)
    return simulate_graph(
        graph,
        limits,
        durations,
        policy=policy,
        use_durations=not blind,
        keep_schedule=keep_schedule,
    )


def __getattr__(name: str) -> Any:
    """``SimResult``, imported with the simulator at the first use."""
    if name == "SimResult":
        from herd.run.simulate import SimResult

        return SimResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
