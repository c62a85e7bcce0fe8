"""``herd stats``: the numbers of a workflow's runs, like ``pegasus-statistics``.

Everything comes from the store (task states, runs, attempts); nothing is executed. The report
holds:

- task counts by current state: succeeded, failed, incomplete (waiting, ready, running or
  retrying: not finished), cancelled, skipped;
- attempts and retries (attempts beyond the first of each task, over every run);
- workflow wall time: first run start to last run end (now, for a run still going), and the wall
  time of the last run alone;
- cumulative task wall time (the sum of attempt durations) and cumulative CPU time (utime + stime);
- one row per label (a task with several labels counts in each; tasks without labels under
  ``(none)``): tasks, succeeded, failed, attempts, and min/mean/max over finished attempts of the
  runtime, the peak memory and the mean CPU.

Where a figure comes from, per attempt: peak memory is ``peak_mem``, the larger of the sampled
peak of the whole process tree and the rusage ``max_rss`` (when that is above herd's own size, see
:func:`attempt_memory`); mean CPU is ``mean_cpu``, else ``(utime + stime) / runtime``, and is left
out for attempts shorter than :data:`MIN_CPU_WALL`.

Labels are not part of :class:`~herd.store.base.TaskRecord` yet; :func:`task_labels` reads them
from the record when a store provides them, else from the workflow given, else from the spec file
the workflow was last added from.

This module also holds the helpers the other reports share (labels, per-attempt figures, units).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from herd.core.model import TaskState, Workflow
from herd.errors import HerdError
from herd.store.base import AttemptRecord, RunRecord, Store, TaskRecord, WorkflowRecord

logger = logging.getLogger(__name__)

#: the label of tasks that have none
NO_LABEL = "(none)"
#: seconds; a shorter attempt has no meaningful mean CPU
MIN_CPU_WALL = 0.05

_INCOMPLETE = frozenset({TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.RETRYING})


# --- shared helpers --------------------------------------------------------------------------


def workflow_record(store: Store, workflow_id: int) -> WorkflowRecord:
    """The record of workflow ``workflow_id``; a HerdError when the store has no such workflow."""
    for rec in store.workflows():
        if rec.id == workflow_id:
            return rec
    raise HerdError(f"no workflow with id {workflow_id} in the store: see `herd status`")


def task_labels(
    store: Store, workflow: WorkflowRecord, spec: Workflow | None = None
) -> dict[str, tuple[str, ...]]:
    """The labels of every task, by name (tasks without labels are left out).

    From the task records when the store provides labels there, else from ``spec``, else from the
    spec file the workflow was added from; ``{}`` when none of these is available.
    """
    records = store.task_records(workflow.id)
    if any(hasattr(r, "labels") for r in records.values()):
        return {n: tuple(getattr(r, "labels", ())) for n, r in records.items()}
    if spec is None:
        spec = _load_source(workflow)
    if spec is None:
        return {}
    return {t.name: t.labels for t in spec.tasks if t.labels}


def _load_source(workflow: WorkflowRecord) -> Workflow | None:
    if not workflow.source:
        return None
    from herd.formats import load

    try:
        return load(workflow.source)
    except HerdError as exc:
        logger.warning("no task labels: cannot read %s (%s)", workflow.source, exc.message)
        return None


def attempt_seconds(a: AttemptRecord, now: float) -> float:
    """Wall time of an attempt; one still running counts until ``now``."""
    end = a.end if a.end is not None else now
    return max(0.0, end - a.start)


def attempt_memory(a: AttemptRecord) -> int | None:
    """Peak memory of the process tree in bytes, as the executor settled it.

    Not ``max_rss`` alone: a forked child's rusage counts herd's own pages from before ``exec``,
    so the executor keeps it only when it is above herd's own peak (``peak_mem`` is then set).
    """
    return a.peak_mem


def attempt_cpu_time(a: AttemptRecord) -> float | None:
    """User plus system CPU seconds, when known."""
    if a.utime is None and a.stime is None:
        return None
    return (a.utime or 0.0) + (a.stime or 0.0)


def attempt_cores(a: AttemptRecord) -> float | None:
    """Mean cores used: sampled, else CPU time over wall time; None for an attempt shorter than
    :data:`MIN_CPU_WALL` (process start-up then dominates: ``echo`` shows as several cores)."""
    if a.end is None or a.end - a.start < MIN_CPU_WALL:
        return None
    if a.mean_cpu is not None:
        return a.mean_cpu
    cpu = attempt_cpu_time(a)
    return None if cpu is None else cpu / (a.end - a.start)


def fmt_seconds(seconds: float | None) -> str:
    """``9 ms`` below a second, ``12.3 s`` below a minute, ``H:MM:SS`` above; ``-`` when unknown."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def fmt_bytes(size: float | None) -> str:
    """Decimal units, as in kill reasons: ``512 MB``, ``5.1 GB``; ``-`` when unknown."""
    if size is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{size:.0f} B"


# --- the statistics --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    """Minimum, mean and maximum of ``n`` values."""

    min: float
    mean: float
    max: float
    n: int

    @staticmethod
    def of(values: Iterable[float | None]) -> Spread | None:
        known = [float(v) for v in values if v is not None]
        if not known:
            return None
        return Spread(min(known), sum(known) / len(known), max(known), len(known))


@dataclass(frozen=True, slots=True)
class LabelStats:
    """One row of the per-label table."""

    label: str
    tasks: int
    succeeded: int
    failed: int
    attempts: int
    runtime: Spread | None  # seconds, over finished attempts
    peak_mem: Spread | None  # bytes
    cpu: Spread | None  # cores


@dataclass(frozen=True, slots=True)
class OverMemory:
    """An attempt whose peak memory went over the ``mem`` it declared: seen by the samples, or
    only by its own peak RSS from ``wait4`` when the spike fell between two samples (the
    watchdog, which acts on samples, could not kill it)."""

    task: str
    number: int
    peak: int  # bytes
    declared: int  # bytes


def over_memory(attempts: Iterable[AttemptRecord]) -> tuple[OverMemory, ...]:
    """The attempts that used more memory than they declared, in the order given."""
    out = []
    for a in attempts:
        declared = int((a.resources or {}).get("mem", 0) * 1e6)
        peak = attempt_memory(a)
        if declared and peak is not None and peak > declared:
            out.append(OverMemory(a.task, a.number, peak, declared))
    return tuple(out)


def over_memory_lines(over: Sequence[OverMemory]) -> list[str]:
    """``herd stats`` and ``herd analyze`` list them alike."""
    if not over:
        return []
    lines = [f"{len(over)} attempt(s) used more memory than declared (raise their mem):"]
    lines += [
        f"  {o.task} attempt {o.number}: peak {fmt_bytes(o.peak)} > declared {fmt_bytes(o.declared)}"
        for o in over
    ]
    return lines


@dataclass(frozen=True, slots=True)
class Stats:
    """The numbers of one workflow over all its runs (see the module docstring)."""

    workflow: str
    source: str | None
    tasks: int
    succeeded: int
    failed: int
    incomplete: int
    cancelled: int
    skipped: int
    attempts: int
    retries: int
    runs: int
    last_run_status: str | None
    wall: float | None  # first run start to last run end
    last_run_wall: float | None
    task_wall: float  # sum of attempt durations
    cpu_time: float  # sum of utime + stime
    labels: tuple[LabelStats, ...]
    labels_known: bool  # False: no labels could be found, every task is under (none)
    over_memory: tuple[OverMemory, ...] = ()


def stats(
    store: Store, workflow_id: int, *, spec: Workflow | None = None, now: float | None = None
) -> Stats:
    """The statistics of workflow ``workflow_id``; ``now`` ends a run still going (default: now)."""
    now = time.time() if now is None else now
    wf = workflow_record(store, workflow_id)
    records = store.task_records(workflow_id)
    attempts = store.attempts(workflow_id)
    runs = store.runs(workflow_id)
    labels = task_labels(store, wf, spec)
    counts = _state_counts(records.values())
    tried = {a.task for a in attempts}
    return Stats(
        workflow=wf.name,
        source=wf.source,
        tasks=len(records),
        succeeded=counts[TaskState.SUCCEEDED],
        failed=counts[TaskState.FAILED],
        incomplete=sum(counts[s] for s in _INCOMPLETE),
        cancelled=counts[TaskState.CANCELLED],
        skipped=counts[TaskState.SKIPPED],
        attempts=len(attempts),
        retries=len(attempts) - len(tried),
        runs=len(runs),
        last_run_status=runs[-1].status if runs else None,
        wall=_wall(runs, now),
        last_run_wall=_wall(runs[-1:], now),
        task_wall=sum(attempt_seconds(a, now) for a in attempts),
        cpu_time=sum(attempt_cpu_time(a) or 0.0 for a in attempts),
        labels=_label_rows(records, attempts, labels, now),
        labels_known=bool(labels),
        over_memory=over_memory(attempts),
    )


def _state_counts(records: Iterable[TaskRecord]) -> dict[TaskState, int]:
    counts = dict.fromkeys(TaskState, 0)
    for r in records:
        counts[r.state] += 1
    return counts


def _wall(runs: Sequence[RunRecord], now: float) -> float | None:
    if not runs:
        return None
    start = min(r.started for r in runs)
    end = max(r.ended if r.ended is not None else now for r in runs)
    return max(0.0, end - start)


def _label_rows(
    records: Mapping[str, TaskRecord],
    attempts: Sequence[AttemptRecord],
    labels: Mapping[str, tuple[str, ...]],
    now: float,
) -> tuple[LabelStats, ...]:
    by_task: dict[str, list[AttemptRecord]] = {}
    for a in attempts:
        by_task.setdefault(a.task, []).append(a)
    groups: dict[str, list[str]] = {}
    for name in records:
        for label in labels.get(name) or (NO_LABEL,):
            groups.setdefault(label, []).append(name)
    rows = [
        _label_row(label, [records[n] for n in names], by_task, now)
        for label, names in groups.items()
    ]
    return tuple(sorted(rows, key=lambda r: (r.label == NO_LABEL, r.label)))


def _label_row(
    label: str,
    tasks: Sequence[TaskRecord],
    by_task: Mapping[str, Sequence[AttemptRecord]],
    now: float,
) -> LabelStats:
    mine = [a for t in tasks for a in by_task.get(t.name, ())]
    done = [a for a in mine if a.end is not None]
    return LabelStats(
        label=label,
        tasks=len(tasks),
        succeeded=sum(t.state is TaskState.SUCCEEDED for t in tasks),
        failed=sum(t.state is TaskState.FAILED for t in tasks),
        attempts=len(mine),
        runtime=Spread.of(attempt_seconds(a, now) for a in done),
        peak_mem=Spread.of(attempt_memory(a) for a in done),
        cpu=Spread.of(attempt_cores(a) for a in done),
    )


# --- rendering -------------------------------------------------------------------------------


def render_text(st: Stats) -> str:
    """The report as a human reads it: totals, then the per-label table."""
    lines = [
        f"workflow {st.workflow} ({st.tasks} tasks)" + (f" from {st.source}" if st.source else "")
    ]
    lines += _totals(st)
    lines += ["", *_label_table(st)]
    if not st.labels_known:
        lines.append("(no labels known: the spec file is not available to read them from)")
    if st.over_memory:
        lines += ["", *over_memory_lines(st.over_memory)]
    return "\n".join(lines)


def _totals(st: Stats) -> list[str]:
    runs = f"{st.runs} run{'s' if st.runs != 1 else ''}"
    last = f"; last run {st.last_run_status}, {fmt_seconds(st.last_run_wall)}" if st.runs else ""
    return [
        "",
        f"{'tasks':<24}{'succeeded':>10}{'failed':>8}{'incomplete':>12}{'cancelled':>11}"
        f"{'skipped':>9}{'total':>7}",
        f"{'':<24}{st.succeeded:>10}{st.failed:>8}{st.incomplete:>12}{st.cancelled:>11}"
        f"{st.skipped:>9}{st.tasks:>7}",
        "",
        f"{'attempts':<24}{st.attempts} ({st.retries} retr{'y' if st.retries == 1 else 'ies'})",
        f"{'workflow wall time':<24}{fmt_seconds(st.wall)} ({runs}{last})",
        f"{'cumulative task wall':<24}{fmt_seconds(st.task_wall)}",
        f"{'cumulative CPU time':<24}{fmt_seconds(st.cpu_time)}",
    ]


def _label_table(st: Stats) -> list[str]:
    width = max([5, *(len(r.label) for r in st.labels)])
    head = (
        f"{'label':<{width}}  {'tasks':>5} {'ok':>5} {'fail':>5} {'tries':>5}  "
        f"{'runtime min/mean/max':<28}  {'peak memory min/mean/max':<28}  cores min/mean/max"
    )
    out = [head]
    for r in st.labels:
        out.append(
            f"{r.label:<{width}}  {r.tasks:>5} {r.succeeded:>5} {r.failed:>5} {r.attempts:>5}  "
            f"{_spread(r.runtime, fmt_seconds):<28}  {_spread(r.peak_mem, fmt_bytes):<28}  "
            f"{_spread(r.cpu, lambda v: f'{v:.2f}')}"
        )
    return out


def _spread(s: Spread | None, fmt: Any) -> str:
    if s is None:
        return "-"
    return f"{fmt(s.min)} / {fmt(s.mean)} / {fmt(s.max)}"


def to_json(st: Stats) -> dict[str, Any]:
    """The report as JSON-ready data: every field of :class:`Stats`, times in seconds, memory in
    bytes."""
    return asdict(st)


#: the columns of :func:`to_csv`
CSV_COLUMNS = (
    "label", "tasks", "succeeded", "failed", "attempts",
    "runtime_min", "runtime_mean", "runtime_max",
    "peak_mem_min", "peak_mem_mean", "peak_mem_max",
    "cpu_min", "cpu_mean", "cpu_max",
)  # fmt: skip


def to_csv(st: Stats) -> str:
    """The per-label table as CSV (seconds, bytes, cores; empty cells when unknown)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in st.labels:
        cells: list[object] = [r.label, r.tasks, r.succeeded, r.failed, r.attempts]
        for s in (r.runtime, r.peak_mem, r.cpu):
            cells += ["", "", ""] if s is None else [s.min, s.mean, s.max]
        writer.writerow(cells)
    return buf.getvalue()
