"""``herd analyze``: why tasks failed, like ``pegasus-analyzer``.

For each task whose last state is failed (and, with ``all_attempts``, for every failed attempt of
any task, such as those retried later) the report gives: the task and attempt number, the host,
how it ended (``exit 3``, ``signal SIGKILL``), the kill reason herd recorded (``timeout 0.6 s >
0.5 s limit``, ``memory ...``), the command as executed and its cwd, the last lines of its stderr
and stdout files (saying so when a log is empty), the user data and events it recorded, and the
command that reruns just that task. Tasks cancelled because a task failed are listed under it.

Which failure cancelled a task is the cause the store keeps beside its reason
(:attr:`herd.store.base.TaskRecord.cancelled_by`, from :class:`herd.core.events.Cancel`); a
cancellation with none (the run was stopped) is counted in the summary only. Tasks cancelled
before the store kept it (SQLite schema 5, PostgreSQL schema 4) have none: for them alone
:func:`legacy_cancel_cause` reads it from the reason's words, as herd did then.

How an attempt was ended from outside is the kind the store keeps beside the kill reason
(:class:`herd.core.model.Kill`: memory, timeout, cpu, interrupted, lost). Attempts recorded before
the store kept it (SQLite schema 4, PostgreSQL schema 3) have none: for them alone
:func:`legacy_kill_kind` reads it from the text, as herd did then.

The first line sums up the workflow: ``N failed, M cancelled, K succeeded``.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from herd.core.model import Kill, TaskState
from herd.reports.stats import (
    OverMemory,
    fmt_seconds,
    over_memory,
    over_memory_lines,
    workflow_record,
)
from herd.store.base import AttemptRecord, Store, TaskRecord, UserData, UserEvent

#: lines of each log shown by default
DEFAULT_LINES = 20
#: cancelled dependents named per failed task (the rest are counted)
SHOW_CANCELLED = 5

#: the words of the reasons that named a cancelled task's cause, before the store kept it
_LEGACY_CANCELLED_BY = re.compile(
    r"^(?:needs '(?P<a>.*)', which failed|not started: '(?P<b>.*)' failed)"
)
#: how the kill reasons of attempts herd stopped began, before the store kept their kind
_LEGACY_KILLS = (
    ("timeout", Kill.TIMEOUT),
    ("memory", Kill.MEMORY),
    ("cancelled", Kill.INTERRUPTED),
    ("interrupted", Kill.INTERRUPTED),
    ("killed", Kill.INTERRUPTED),
)
#: bytes read per step when looking for the last lines of a log
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class LogTail:
    """The last lines of a log file, or why it could not be read."""

    path: str
    lines: tuple[str, ...] = ()
    #: why there are no lines (``missing``, ``empty``, an OS error); empty when read
    problem: str = ""


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """One failed attempt and everything needed to see why."""

    task: str
    number: int
    host: str
    outcome: str  # exit 3 | signal SIGKILL | killed: <reason>
    exit_code: int | None
    signal: str | None  # the signal's name
    kill_reason: str  # empty unless herd (or Slurm) ended it: see ``kill``
    kill: Kill | None  # how it was ended from outside (``lost`` too)
    cmd: str
    cwd: str
    start: float
    end: float | None
    stderr: LogTail
    stdout: LogTail
    #: the end of its stderr (else stdout) its worker stored, shown when neither file is here
    stored: LogTail | None = None
    user_data: Mapping[str, Any] = field(default_factory=dict)
    events: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Failure:
    """A task with failed attempts: the attempts, the rerun command and what it cancelled."""

    task: str
    state: TaskState  # the task's current state (failed, or succeeded after a retry)
    attempts: tuple[FailedAttempt, ...]
    rerun: str
    cancelled: int  # tasks cancelled because this one failed
    cancelled_names: tuple[str, ...]  # the first few of them


@dataclass(frozen=True, slots=True)
class Analysis:
    workflow: str
    source: str | None
    failed: int
    cancelled: int
    succeeded: int
    failures: tuple[Failure, ...]
    #: attempts over their declared memory, failed or not (a spike between samples included)
    over_memory: tuple[OverMemory, ...] = ()


def analyze(
    store: Store,
    workflow_id: int,
    *,
    lines: int = DEFAULT_LINES,
    all_attempts: bool = False,
    workdir: Path | None = None,
) -> Analysis:
    """The failures of workflow ``workflow_id`` (see the module docstring); ``workdir`` finds logs
    recorded under relative paths (see :func:`locate`)."""
    wf = workflow_record(store, workflow_id)
    runs = store.runs(workflow_id)
    limits = runs[-1].limits if runs else None
    records = store.task_records(workflow_id)
    attempts = store.attempts(workflow_id)
    cancelled = _cancelled_by(records.values())
    failed: dict[str, list[AttemptRecord]] = {}
    for a in attempts:
        if a.state is TaskState.FAILED:
            failed.setdefault(a.task, []).append(a)
    failures = []
    for name in _failed_tasks(records, attempts, all_attempts):
        mine = failed.get(name, [])
        shown = tuple(
            _failed_attempt(store, a, lines, workdir) for a in mine[0 if all_attempts else -1 :]
        )
        victims = cancelled.get(name, [])
        rerun = rerun_command(wf.source, name, workdir, limits)
        state = records[name].state
        failures.append(
            Failure(name, state, shown, rerun, len(victims), tuple(victims[:SHOW_CANCELLED]))
        )
    states = [r.state for r in records.values()]
    return Analysis(
        wf.name,
        wf.source,
        states.count(TaskState.FAILED),
        states.count(TaskState.CANCELLED),
        states.count(TaskState.SUCCEEDED),
        tuple(failures),
        over_memory(attempts),
    )


def _failed_tasks(
    records: Mapping[str, TaskRecord], attempts: Sequence[AttemptRecord], all_attempts: bool
) -> list[str]:
    """Names of the tasks to report, in the order their last failed attempt started."""
    order: dict[str, None] = {}
    for a in attempts:
        if a.state is TaskState.FAILED and a.task in records:
            order.pop(a.task, None)
            order[a.task] = None
    return [
        n for n in order if all_attempts or records[n].state is TaskState.FAILED
    ] + [  # a failed task with no attempt recorded (its process could not start)
        n for n, r in records.items() if r.state is TaskState.FAILED and n not in order
    ]


def _cancelled_by(records: Iterable[TaskRecord]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in records:
        cause = cancel_cause(r)
        if cause is not None:
            out.setdefault(cause, []).append(r.name)
    return out


def cancel_cause(r: TaskRecord) -> str | None:
    """The task whose final failure cancelled ``r``, as the store keeps it; None when ``r`` is
    not cancelled or was cancelled by a stop (see the module docstring for older records)."""
    if r.state is not TaskState.CANCELLED:
        return None
    return r.cancelled_by if r.cancelled_by is not None else legacy_cancel_cause(r.reason)


def legacy_cancel_cause(reason: str) -> str | None:
    """The cause of a task cancelled before the store kept it (its ``cancelled_by`` is None),
    read from the words of its reason as herd did then. A task cancelled since that has no cause
    was not cancelled by a failure: every path that writes these words also writes the cause
    (the runner's cancel decisions, the workers' queue when a failure cancels dependents)."""
    m = _LEGACY_CANCELLED_BY.match(reason)
    return (m["a"] or m["b"]) if m else None


def _failed_attempt(
    store: Store, a: AttemptRecord, lines: int, workdir: Path | None
) -> FailedAttempt:
    data = {d.key: d.value for d in _of_attempt(store.user_data(a.workflow_id, a.task), a)}
    events = tuple(
        {"time": e.time, **e.data} for e in _of_attempt(store.user_events(a.workflow_id, a.task), a)
    )
    stderr = tail(locate(a.stderr_path, workdir), lines)
    stdout = tail(locate(a.stdout_path, workdir), lines)
    stored = None
    if stderr.problem and stdout.problem:  # run elsewhere (or printed nothing)
        text = store.failure_log(a.workflow_id, a.task, a.number)
        if text:
            stored = LogTail(f"stored by the worker on {a.host}", _last(text, lines))
    return FailedAttempt(
        task=a.task,
        number=a.number,
        host=a.host,
        outcome=outcome(a),
        exit_code=a.exit_code,
        signal=signal_name(a.signal),
        kill_reason=a.kill_reason if stopped_by_herd(a) else "",
        kill=kill_kind(a),
        cmd=a.cmd,
        cwd=a.cwd,
        start=a.start,
        end=a.end,
        stderr=stderr,
        stdout=stdout,
        stored=stored,
        user_data=data,
        events=events,
    )


def _of_attempt(items: Iterable[UserData | UserEvent], a: AttemptRecord) -> Iterable[Any]:
    return (i for i in items if i.number == a.number)


def signal_name(number: int | None) -> str | None:
    """``SIGKILL`` for 9; ``signal 99`` for a number Python does not name."""
    if number is None:
        return None
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def outcome(a: AttemptRecord) -> str:
    """How an attempt ended, in a few words: ``exit 3``, ``signal SIGSEGV``, ``killed: timeout:
    ran 0.6 s > 0.5 s limit``, ``exit 0: declared output out.txt was not created``."""
    if a.signal:
        base = f"signal {signal_name(a.signal)}"
    else:
        base = f"exit {a.exit_code}" if a.exit_code is not None else a.state.value
    why = a.kill_reason
    if not why or why == base:
        return base
    if stopped_by_herd(a):
        return f"killed: {why}"
    return f"{base}: {why}"


def stopped_by_herd(a: AttemptRecord) -> bool:
    """Whether herd (or Slurm at herd's limits) ended the attempt: any kind of kill but a lost one,
    which nobody stopped (its worker or node went away)."""
    kind = kill_kind(a)
    return kind is not None and kind is not Kill.LOST


def kill_kind(a: AttemptRecord) -> Kill | None:
    """How the attempt was ended from outside, as the store keeps it (see the module docstring
    for attempts recorded before it did)."""
    return a.kill if a.kill is not None else legacy_kill_kind(a.kill_reason)


def legacy_kill_kind(reason: str) -> Kill | None:
    """The kind of kill of an attempt recorded before the store kept it (its ``kill`` is None),
    read from the first word of its kill reason as herd did then. An attempt recorded since
    that has no kind was not killed: every path that writes one of these words also writes the
    kind (the executors, the queue's release and reap, the close of a dead herd's attempts)."""
    for prefix, kind in _LEGACY_KILLS:
        if reason.startswith(prefix):
            return kind
    return None


def rerun_command(
    source: str | None,
    task: str,
    workdir: Path | None = None,
    limits: Mapping[str, float] | None = None,
) -> str:
    """The command that reruns just ``task`` (``FILE`` when the spec file is unknown), with
    ``-C workdir`` when the run was elsewhere than here and the limits the run had (a task that
    needed 8 cores must not be refused on a rerun for want of ``--cpu-limit``)."""
    pattern = shlex.quote(f"^{re.escape(task)}$")
    spec = shlex.quote(locate(source, workdir)) if source else "FILE"
    where = f" -C {shlex.quote(str(workdir))}" if workdir and workdir != Path(".") else ""
    return f"herd run {spec}{where}{_limit_flags(limits or {})} --force {pattern} -tt {pattern}"


_FLAGS = {"cpu": "--cpu-limit", "mem": "--mem-limit", "gpu": "--gpu-limit"}


def _limit_flags(limits: Mapping[str, float]) -> str:
    out = ""
    for name, value in sorted(limits.items()):
        if value == float("inf"):
            continue
        flag = _FLAGS.get(name)
        out += f" {flag} {value:g}" if flag else f" --limit {shlex.quote(f'{name}={value:g}')}"
    return out


def locate(path: str, workdir: Path | None) -> str:
    """Where a recorded log path is, seen from here.

    A run started with a relative working directory records relative paths (relative to where
    ``herd run`` was started). herd's own logs are found under ``workdir/.herd``; another relative
    path is taken as it is when it exists, else under ``workdir``.
    """
    p = Path(path)
    if not path or p.is_absolute() or workdir is None:
        return path
    if ".herd" in p.parts:
        return str(workdir.joinpath(*p.parts[p.parts.index(".herd") :]))
    return path if p.exists() else str(workdir / p)


def tail(path: str, lines: int) -> LogTail:
    """The last ``lines`` lines of the file at ``path``, read from its end."""
    if not path:
        return LogTail(path, problem="no log recorded")
    try:
        with open(path, "rb") as f:
            data = _read_tail(f, lines)
    except FileNotFoundError:
        # herd creates a log at the task's first byte (exec/capture.py): no file, no output
        return LogTail(path, problem="empty")
    except OSError as exc:
        return LogTail(path, problem=f"unreadable: {exc.strerror or exc}")
    if not data:
        return LogTail(path, problem="empty")
    return LogTail(path, _last(data.decode("utf-8", errors="replace"), lines))


def _last(text: str, lines: int) -> tuple[str, ...]:
    return tuple(text.splitlines()[-lines:]) if lines > 0 else ()


def _read_tail(f: Any, lines: int) -> bytes:
    size = f.seek(0, os.SEEK_END)
    pos, data = size, b""
    while pos > 0 and data.count(b"\n") <= lines:
        step = min(_CHUNK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    return data


# --- rendering -------------------------------------------------------------------------------


def render_text(an: Analysis) -> str:
    """The report as a human reads it."""
    head = f"workflow {an.workflow}: {an.failed} failed, {an.cancelled} cancelled, {an.succeeded} succeeded"
    out = [head]
    if not an.failures:
        out.append("no failed attempts" if an.failed == 0 else "")
    for f in an.failures:
        out += ["", *_failure_lines(f)]
    if an.over_memory:
        out += ["", *over_memory_lines(an.over_memory)]
    return "\n".join(out).rstrip() + "\n"


def _failure_lines(f: Failure) -> list[str]:
    title = f"=== {f.task} ({f.state.value}"
    title += f", {len(f.attempts)} failed attempts shown)" if len(f.attempts) > 1 else ")"
    out = [title]
    for a in f.attempts:
        out += _attempt_lines(a)
    if f.cancelled:
        more = (
            f", ... ({f.cancelled - len(f.cancelled_names)} more)"
            if f.cancelled > len(f.cancelled_names)
            else ""
        )
        out.append(f"cancelled because of it: {f.cancelled}: {', '.join(f.cancelled_names)}{more}")
    out.append(f"rerun it: {f.rerun}")
    return out


def _attempt_lines(a: FailedAttempt) -> list[str]:
    took = fmt_seconds(a.end - a.start) if a.end is not None else "still running"
    out = [
        f"attempt {a.number} on {a.host}: {a.outcome} after {took}",
        f"  command: {a.cmd}",
        f"  cwd:     {a.cwd}",
    ]
    for name, log in (("stderr", a.stderr), ("stdout", a.stdout)):
        out += _log_lines(name, log)
    if a.stored is not None:
        out += _log_lines("log tail", a.stored)
    if a.user_data:
        out.append("  user data: " + ", ".join(f"{k}={v!r}" for k, v in a.user_data.items()))
    for e in a.events:
        out.append(f"  event: {dict(e)}")
    return out


def _log_lines(name: str, log: LogTail) -> list[str]:
    if log.problem:
        return [f"  {name}: {log.path or '-'} ({log.problem})"]
    n = len(log.lines)
    out = [f"  {name}: {log.path} (last {n} line{'' if n == 1 else 's'})"]
    out += [f"    | {line}" for line in log.lines]
    return out


def to_json(an: Analysis) -> dict[str, Any]:
    """The report as JSON-ready data: every field of :class:`Analysis`."""
    data = asdict(an)
    for f in data["failures"]:
        f["state"] = f["state"].value
    return data
