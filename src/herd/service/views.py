"""Read-only operations: what a front end shows of a workflow, its plan and its recorded runs.

Each opens the state it needs (:mod:`herd.service.state`), asks one view of :mod:`herd.reports`
and returns typed data; rendering (text, JSON, CSV, files) is the front end's.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from herd.core.graph import build
from herd.core.model import TaskState, Workflow
from herd.errors import HerdError
from herd.formats import convert as converting
from herd.formats import load as load_spec
from herd.formats.wfformat_write import dump_run
from herd.launch import dagman
from herd.reports import analyze as analyzing
from herd.reports import dag as dags
from herd.reports import plot as plotting
from herd.reports import provenance as provenances
from herd.reports import stats as statistics
from herd.reports import status as statuses
from herd.reports import why as explaining
from herd.reports.dot import to_dot
from herd.run.submit import RunOptions
from herd.service import workers
from herd.service.runs import load, plan
from herd.service.state import existing_store, reading
from herd.store.base import Store, WorkflowRecord


def _name(workflow: str | None, spec: Workflow | None) -> str | None:
    """The workflow to show: the one named, else the spec's, else (None) the store's only one."""
    return workflow or (spec.name if spec is not None else None)


def status(
    workdir: Path, workflow: str | None = None, *, store: str | None = None
) -> statuses.Status:
    """Where every task of the workflow stands (``herd status``).

    Workers that stopped renewing their leases are reaped first (as ``herd reap`` does: their
    attempts run again elsewhere), and the status is read after; a store this user may only
    read is not changed: the status says what was found and who can reap it.
    """
    with reading(workdir, workflow, store=store) as (opened, record):
        found = statuses.status(opened, record.name)
    silent = found.silent()
    if not silent:
        return found
    try:
        reaped = workers.reap(workdir, store)
    except HerdError as exc:
        ids = ", ".join(str(w.id) for w in silent)
        note = (
            f"worker(s) {ids} stopped renewing their leases; their attempts were not taken "
            f"back: {exc} (`herd reap` by a user who may write the store takes them back)"
        )
        return replace(found, unreaped=note)
    with reading(workdir, found.workflow.name, store=store) as (opened, record):
        return replace(statuses.status(opened, record.name), reaped=reaped)


def why(workflow: Workflow, options: RunOptions, task: str) -> list[explaining.Step]:
    """Why ``task`` would run (or not) in a run with ``options``, root cause last (``herd why``)."""
    prepared = plan(workflow, options)
    return explaining.explain(prepared.graph, prepared.plan, task)


def provenance(
    workdir: Path,
    workflow: str | None,
    task: str,
    attempt: int | None = None,
    *,
    store: str | None = None,
) -> list[dict[str, Any]]:
    """The provenance records of ``task``'s attempts (or of attempt number ``attempt``)."""
    with reading(workdir, workflow, store=store, then="") as (opened, record):
        return provenances.records(opened, record, task, attempt)


def graph(workflow: Workflow, workdir: Path, *, store: str | None = None) -> str:
    """The workflow's DAG in Graphviz DOT, coloured by the states the store records, if any."""
    states: dict[str, TaskState] | None = None
    with existing_store(workdir, store) as opened:
        record = opened.workflow(workflow.name) if opened else None
        if opened is not None and record is not None:
            states = {name: r.state for name, r in opened.task_records(record.id).items()}
    return to_dot(build(workflow), states)


def dag_of(opened: Store, record: WorkflowRecord, workdir: Path | None = None) -> dags.Dag:
    """The workflow's DAG with the state of every task, as data to draw (the dashboard's graph):
    the edges from the spec file it was added from (a relative path from ``workdir``; variables
    in file paths kept as written), none when that cannot be read (the reason in ``problem``)."""
    records = opened.task_records(record.id)
    if not record.source:
        return dags.dag(record, records, None, "built in Python: no spec file to read edges from")
    path = Path(record.source)
    if workdir is not None and not path.is_absolute():
        path = workdir / path
    try:
        spec = build(load_spec(path, environ=None))
    except HerdError as exc:
        return dags.dag(record, records, None, f"cannot read {record.source}: {exc.message}")
    return dags.dag(record, records, spec, "")


def chart_of(opened: Store, record: WorkflowRecord, run: int | None = None) -> plotting.Chart:
    """What ``herd plot`` draws of run ``run`` (default: the last) of the workflow, in a store
    already open: the Gantt bars, the CPU and memory in use, the limits."""
    return plotting.chart_from_store(opened, record.id, run_id=run)


def stats(
    workdir: Path, workflow: str | None, spec: Workflow | None = None, *, store: str | None = None
) -> statistics.Stats:
    """Counts, retries, wall and CPU time of the workflow's runs, a table per label (``spec``
    gives the labels when the store's source file is gone)."""
    with reading(workdir, _name(workflow, spec), store=store) as (opened, record):
        return statistics.stats(opened, record.id, spec=spec)


def analyze(
    workdir: Path,
    workflow: str | None,
    spec: Workflow | None = None,
    *,
    lines: int = analyzing.DEFAULT_LINES,
    all_attempts: bool = False,
    store: str | None = None,
) -> analyzing.Analysis:
    """The workflow's failed tasks with their outcome, log tails and what they cancelled."""
    with reading(workdir, _name(workflow, spec), store=store) as (opened, record):
        return analyzing.analyze(
            opened, record.id, lines=lines, all_attempts=all_attempts, workdir=workdir
        )


def plot(
    workdir: Path,
    workflow: str | None,
    spec: Workflow | None = None,
    run: int | None = None,
    *,
    store: str | None = None,
) -> tuple[plotting.Chart, str]:
    """The chart of run ``run`` (default: the last) of the workflow, and the workflow's name."""
    with reading(workdir, _name(workflow, spec), store=store) as (opened, record):
        return plotting.chart_from_store(opened, record.id, run_id=run, spec=spec), record.name


def plot_schedule(path: str, spec: str | None = None) -> tuple[plotting.Chart, str]:
    """The chart of a schedule ``herd simulate --schedule`` wrote (labelled by the tasks of the
    spec file ``spec``, if any), and its workflow's name."""
    data = plotting.load_schedule(path)
    chart = plotting.chart_from_schedule(data, spec=load(spec) if spec else None)
    return chart, str(data.get("workflow") or "schedule")


def export(workflow: Workflow, workdir: Path, *, store: str | None = None) -> dict[str, Any]:
    """The workflow's recorded attempts as a WfCommons WfFormat instance (real runtimes)."""
    then = ": nothing to export"
    with reading(workdir, workflow.name, store=store, then=then) as (opened, record):
        return dump_run(workflow, opened.attempts(record.id))


def export_dagman(workflow: Workflow, folder: Path, workdir: Path) -> dagman.Exported:
    """The workflow as HTCondor DAGMan files in ``folder``, its tasks to run in ``workdir``."""
    return dagman.export_dagman(workflow, folder, workdir)


def convert(
    src: str, dst: str, *, to: str | None = None, command_template: str | None = None
) -> Workflow:
    """Read the workflow in ``src`` (any format) and write it to ``dst``; return it."""
    return converting.convert(src, dst, to=to, command_template=command_template)
