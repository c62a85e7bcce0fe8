"""Campaigns: one template workflow instantiated per data run, as runs arrive (CMS ECAL).

A :class:`Template` holds :class:`TemplateTask`\\ s whose commands use run fields (``{run}``,
``{fill}``, ``{run_type}``, any field a run carries). A :class:`Run` is a run number and its
fields. Expanding a run gives :class:`Instance`\\ s — the tasks herd queues — named

``reco[run=123]``            a per-run task (``reco[run=123,job=2]`` for its second of N jobs)
``calib[fill=8000]``         a grouped task: one per :class:`Group` (``group_by: fill``)

Rules, per template task:

- ``run_types: [...]`` / ``when: {field: value or [values]}``: the task applies to a run only
  when they hold; elsewhere its status is ``skipped``. A grouped task groups only the runs it
  applies to.
- ``needs`` names template tasks listed before it and means "of the same run"; for a grouped
  task, "of every run of the group" (a need that does not apply to a run is dropped). A grouped
  task may need another grouped task with the same ``group_by``: "of the same group".
- ``group_by: FIELD`` and ``complete:``: ``next`` (default: the group is complete when a run of
  another group with a higher number arrives), ``size`` (``group_size: N`` runs), or
  ``explicit`` (``herd campaign close``). A complete group is *closed* with its members; the
  lowest run carries the task's status, the others show ``merged``. ``{runs}`` is the members,
  separated by spaces; every other field comes from the carrying run.

Field values are shell-quoted in commands (``{runs}`` is digits and spaces). The status matrix
(:func:`matrix`) is derived from the instances' task states only: never a second record.
Pure: no I/O; the store keeps runs and closed groups, :mod:`herd.store.campaigns` queues
instances.
"""

from __future__ import annotations

import enum
import json
import shlex
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from herd.core.model import TaskState
from herd.errors import SpecError, UsageError

#: a run field's value: what a JSON line may give
Scalar = str | int | float | bool
#: fields every command may use without the run giving them
BUILTIN = frozenset({"run", "runs", "job", "campaign"})


class Completion(enum.StrEnum):
    """When a group of runs is complete, and its task is queued."""

    NEXT = "next"  # a run of another group with a higher number arrived
    SIZE = "size"  # it holds ``group_size`` runs
    EXPLICIT = "explicit"  # ``herd campaign close``


class Status(enum.StrEnum):
    """A task's status for one run, in the ECAL automation's words."""

    NEW = "new"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    MERGED = "merged"  # a grouped task's status is carried by another run of the group
    SKIPPED = "skipped"  # the task does not apply to the run


#: a task state, as a campaign's status (a task cancelled because a need failed is ``failed``)
STATUS_OF: Mapping[TaskState, Status] = {
    TaskState.WAITING: Status.NEW,
    TaskState.READY: Status.NEW,
    TaskState.RUNNING: Status.PROCESSING,
    TaskState.RETRYING: Status.PROCESSING,
    TaskState.SUCCEEDED: Status.DONE,
    TaskState.SKIPPED: Status.DONE,
    TaskState.FAILED: Status.FAILED,
    TaskState.CANCELLED: Status.FAILED,
}


@dataclass(frozen=True, slots=True)
class TemplateTask:
    """One task of a template: see the module docstring for the rules."""

    name: str
    cmd: str
    needs: tuple[str, ...] = ()
    run_types: tuple[str, ...] | None = None
    when: Mapping[str, tuple[Scalar, ...]] = field(default_factory=dict)
    group_by: str | None = None
    complete: Completion = Completion.NEXT
    group_size: int | None = None
    jobs: int = 1
    resources: Mapping[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    retries: int = 0
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    @property
    def fields(self) -> frozenset[str]:
        """The run fields the command uses (``{run}``, ``{fill}``...)."""
        return command_fields(self.cmd)

    def required(self) -> frozenset[str]:
        """Fields a run must carry for the task to be expanded for it."""
        need = set(self.fields - BUILTIN)
        if self.group_by is not None:
            need.add(self.group_by)
        return frozenset(need)

    def deciding(self) -> frozenset[str]:
        """Fields a run must carry to decide whether the task applies to it."""
        return frozenset((["run_type"] if self.run_types is not None else []) + [*self.when])


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    tasks: tuple[TemplateTask, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    def task(self, name: str) -> TemplateTask:
        for t in self.tasks:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.tasks)
        raise UsageError(f"template '{self.name}' has no task '{name}' (it has: {known})")


@dataclass(frozen=True, slots=True)
class Run:
    """A data run: its number and fields (``run`` is not among ``fields``)."""

    run: int
    fields: Mapping[str, Scalar]

    def value(self, name: str) -> Scalar | None:
        return self.run if name == "run" else self.fields.get(name)


@dataclass(frozen=True, slots=True)
class Group:
    """A closed group of a grouped task: the runs with one value of its ``group_by`` field;
    ``runs[0]`` carries the status."""

    task: str
    value: Scalar
    runs: tuple[int, ...]

    @property
    def key(self) -> str:
        return value_key(self.value)


@dataclass(frozen=True, slots=True)
class Instance:
    """A task herd queues: a template task for one run (or job of it), or for one group."""

    name: str
    task: str
    cmd: str
    needs: tuple[str, ...]
    run: int | None = None
    group: Group | None = None
    job: int | None = None


# --- names --------------------------------------------------------------------------------


def value_key(value: Scalar) -> str:
    """A group value as a key that tells 8000 from "8000"."""
    return json.dumps(value)


def run_names(task: TemplateTask, run: int) -> list[str]:
    if task.jobs == 1:
        return [f"{task.name}[run={run}]"]
    return [f"{task.name}[run={run},job={j}]" for j in range(1, task.jobs + 1)]


def group_names(task: TemplateTask, value: Scalar) -> list[str]:
    assert task.group_by is not None
    stem = f"{task.name}[{task.group_by}={value}"
    if task.jobs == 1:
        return [stem + "]"]
    return [f"{stem},job={j}]" for j in range(1, task.jobs + 1)]


# --- the template's own checks -----------------------------------------------------------


def command_fields(cmd: str) -> frozenset[str]:
    """The fields ``{...}`` of a command (``{{`` is a literal brace)."""
    try:
        parsed = list(string.Formatter().parse(cmd))
    except ValueError as exc:
        raise SpecError(f"{exc} (write {{{{ and }}}} for literal braces)", field="cmd") from None
    out = set()
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise SpecError(f"'{{{name}}}' is not a run field name", field="cmd")
        out.add(name)
    return frozenset(out)


def check(template: Template) -> None:
    """Refuse a template whose rules cannot hold (the problem and the task named)."""
    seen: dict[str, TemplateTask] = {}
    for t in template.tasks:
        if t.name in seen:
            raise SpecError("two tasks have this name", task=t.name, field="name")
        if "[" in t.name or "]" in t.name or not t.name.isprintable() or not t.name:
            raise SpecError("a task name may not hold '[' or ']'", task=t.name, field="name")
        t.fields  # noqa: B018 (parses the command)
        if t.group_by is None and "runs" in t.fields:
            raise SpecError("{runs} is for grouped tasks (group_by)", task=t.name, field="cmd")
        if t.complete is Completion.SIZE and not t.group_size:
            raise SpecError("complete: size needs group_size: N", task=t.name, field="complete")
        if t.group_size is not None and t.group_by is None:
            raise SpecError("group_size needs group_by", task=t.name, field="group_size")
        for need in t.needs:
            _check_need(t, need, seen)
        seen[t.name] = t


def _check_need(t: TemplateTask, need: str, earlier: Mapping[str, TemplateTask]) -> None:
    other = earlier.get(need)
    if other is None:
        raise SpecError(
            f"needs '{need}', which is not a task listed before it", task=t.name, field="needs"
        )
    if other.group_by is not None and t.group_by is None:
        raise SpecError(
            f"a per-run task cannot need the grouped task '{need}'", task=t.name, field="needs"
        )
    if other.group_by is not None and other.group_by != t.group_by:
        raise SpecError(
            f"needs '{need}', grouped by '{other.group_by}', not '{t.group_by}'",
            task=t.name,
            field="needs",
        )


# --- runs ---------------------------------------------------------------------------------


def applies(task: TemplateTask, run: Run) -> bool:
    """Whether ``task`` runs for ``run`` (``run_types`` and ``when``)."""
    if task.run_types is not None and run.fields.get("run_type") not in task.run_types:
        return False
    return all(run.value(k) in accepted for k, accepted in task.when.items())


def refusal(template: Template, run: Run) -> str | None:
    """Why ``run`` cannot join a campaign of ``template`` (a field named), or None."""
    for k, v in run.fields.items():
        if not isinstance(v, str | int | float | bool):
            return f"field '{k}' is {type(v).__name__}: give a string, number or boolean"
    for t in template.tasks:
        missing = sorted(t.deciding() - {"run"} - set(run.fields))
        if not missing and applies(t, run):
            missing = sorted(t.required() - {"run"} - set(run.fields))
        if missing:
            return f"task '{t.name}' uses field '{missing[0]}', which the run lacks"
    return None


def run_instances(template: Template, run: Run, campaign: str) -> list[Instance]:
    """The per-run instances of ``run``, upstream first."""
    out = []
    for t in template.tasks:
        if t.group_by is not None or not applies(t, run):
            continue
        needs = [n for need in t.needs for n in _run_needs(template.task(need), run)]
        for j, name in enumerate(run_names(t, run.run), start=1):
            values = {**run.fields, "run": run.run, "job": j, "campaign": campaign}
            out.append(
                Instance(name, t.name, fill(t.cmd, values), tuple(needs), run=run.run, job=j)
            )
    return out


def _run_needs(need: TemplateTask, run: Run) -> list[str]:
    return run_names(need, run.run) if applies(need, run) else []


def fill(cmd: str, values: Mapping[str, object]) -> str:
    """``cmd`` with its fields replaced: strings shell-quoted, ``{runs}`` as it is."""
    quoted = {
        k: shlex.quote(v) if isinstance(v, str) and k != "runs" else v for k, v in values.items()
    }
    return cmd.format_map(quoted)


# --- groups -------------------------------------------------------------------------------


def members(task: TemplateTask, runs: Iterable[Run]) -> dict[str, list[Run]]:
    """The runs ``task`` applies to, by group key, each list by run number."""
    assert task.group_by is not None
    out: dict[str, list[Run]] = {}
    for r in sorted(runs, key=lambda r: r.run):
        value = r.value(task.group_by)
        if value is not None and applies(task, r):
            out.setdefault(value_key(value), []).append(r)
    return out


def complete(
    template: Template, runs: Sequence[Run], closed: Iterable[tuple[str, str]]
) -> list[Group]:
    """The groups that are complete now by their task's rule and not yet closed."""
    done = set(closed)
    out = []
    for t in template.tasks:
        if t.group_by is None or t.complete is Completion.EXPLICIT:
            continue
        groups = members(t, runs)
        for key, rs in groups.items():
            if (t.name, key) in done:
                continue
            if t.complete is Completion.SIZE:
                ready = len(rs) >= (t.group_size or 1)
            else:
                last = rs[-1].run
                ready = any(k != key and g[-1].run > last for k, g in groups.items())
            if ready:
                out.append(_group(t, rs))
    return out


def closing(
    template: Template,
    runs: Sequence[Run],
    closed: Iterable[tuple[str, str]],
    task: str | None = None,
    values: Sequence[str] | None = None,
) -> list[Group]:
    """The open groups an explicit close closes: of ``task`` (every grouped task: None), with
    a value written as one of ``values`` (every value: None)."""
    done = set(closed)
    out = []
    for t in template.tasks:
        if t.group_by is None or (task is not None and t.name != task):
            continue
        for key, rs in members(t, runs).items():
            value = rs[0].value(t.group_by)
            if (t.name, key) in done or (values is not None and str(value) not in values):
                continue
            out.append(_group(t, rs))
    return out


def _group(t: TemplateTask, rs: Sequence[Run]) -> Group:
    assert t.group_by is not None
    value = rs[0].value(t.group_by)
    assert value is not None
    return Group(t.name, value, tuple(r.run for r in rs))


def group_instances(
    template: Template, group: Group, runs: Mapping[int, Run], campaign: str
) -> list[Instance]:
    """The instances of a closed group (its task needs every member's instances)."""
    t = template.task(group.task)
    carrier = runs[group.runs[0]]
    needs: list[str] = []
    for need in t.needs:
        other = template.task(need)
        if other.group_by is not None:
            needs += group_names(other, group.value)
        else:
            needs += [n for r in group.runs for n in _run_needs(other, runs[r])]
    out = []
    for j, name in enumerate(group_names(t, group.value), start=1):
        values = {
            **carrier.fields,
            "run": carrier.run,
            "runs": " ".join(str(r) for r in group.runs),
            "job": j,
            "campaign": campaign,
        }
        out.append(Instance(name, t.name, fill(t.cmd, values), tuple(needs), group=group, job=j))
    return out


def order(template: Template, groups: Sequence[Group]) -> list[Group]:
    """Groups in template order (a grouped need is queued before its dependant)."""
    rank = {t.name: i for i, t in enumerate(template.tasks)}
    return sorted(groups, key=lambda g: (rank[g.task], g.runs))


# --- the status matrix --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One run x task: its status and the instances (jobs) behind it, by status."""

    status: Status
    instances: tuple[str, ...] = ()
    jobs: Mapping[Status, int] = field(default_factory=dict)


def matrix(
    template: Template,
    runs: Sequence[Run],
    groups: Sequence[Group],
    states: Mapping[str, TaskState],
) -> dict[int, dict[str, Cell]]:
    """Every run x task status, from the instances' task states only."""
    carried: dict[tuple[str, int], Group] = {}
    for group in groups:
        for r in group.runs:
            carried[(group.task, r)] = group
    out: dict[int, dict[str, Cell]] = {}
    for run in runs:
        row = out[run.run] = {}
        for t in template.tasks:
            if not applies(t, run):
                row[t.name] = Cell(Status.SKIPPED)
            elif t.group_by is None:
                row[t.name] = _cell(run_names(t, run.run), states)
            elif (g := carried.get((t.name, run.run))) is None:
                row[t.name] = Cell(Status.NEW)  # its group is still open
            elif g.runs[0] != run.run:
                row[t.name] = Cell(Status.MERGED)
            else:
                row[t.name] = _cell(group_names(t, g.value), states)
    return out


def _cell(names: Sequence[str], states: Mapping[str, TaskState]) -> Cell:
    each = [STATUS_OF[states[n]] if n in states else Status.NEW for n in names]
    jobs: dict[Status, int] = {}
    for s in each:
        jobs[s] = jobs.get(s, 0) + 1
    return Cell(_overall(each), tuple(names), jobs)


def _overall(each: Sequence[Status]) -> Status:
    """Several jobs as one status: any failed, failed; all done, done; any started, processing."""
    if Status.FAILED in each:
        return Status.FAILED
    if all(s is Status.DONE for s in each):
        return Status.DONE
    if any(s in (Status.PROCESSING, Status.DONE) for s in each):
        return Status.PROCESSING
    return Status.NEW
