"""The workflow model: plain typed data, no I/O.

Every spec format (native YAML/JSON, O2DPG ``workflow.json``, Pegasus ``wf.yml``, WfFormat, DAMPE
XML) and the Python API produce the same two types: a :class:`Workflow` holding a tuple of
:class:`Task`. Everything downstream — validation and graph building (``core/graph.py``), planning
(``plan/planner.py``), the scheduler, the store — reads only these.

Conventions
-----------
- Resources are a plain mapping ``name -> float``. ``cpu`` is cores (fractions allowed, 0 allowed:
  such a task takes no core), ``mem`` is MB, ``gpu`` is devices; any other name is a user pool
  (``tape_drive: 1``). A resource a task does not name is 0 for it, except ``cpu``, which is 1: a
  command uses a core unless it says otherwise. :attr:`Task.demand` applies that rule; read it
  rather than ``resources`` when accounting.
- ``cmd`` is either a shell string (run by ``/bin/sh -c``) or an argv tuple (run directly).
- Paths in ``inputs``/``outputs``/``done_marker`` are relative to the task's ``cwd`` unless
  absolute; ``cwd`` is relative to the workflow's working directory.
- ``env`` on a task is layered over the workflow's ``env``, which is layered over herd's own
  environment. Values are strings; ``${VAR}`` references are expanded by the shell at run time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, NoReturn

#: resources every task has a value for (0 when not given), in this order in tables and arrays
STANDARD_RESOURCES: tuple[str, ...] = ("cpu", "mem", "gpu")


class FrozenDict(dict[str, Any]):
    """A read-only, hashable dict: task resources, env and metadata.

    A dict subclass rather than a proxy so that lookups stay at dict speed for a million tasks.
    """

    __slots__ = ()

    def _readonly(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(
            "herd model mappings are read-only: build a new mapping, then a new task with "
            "task._replace(...) (a new workflow with dataclasses.replace)"
        )

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly
    __ior__ = _readonly

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=lambda kv: kv[0])))


#: the shared empty mapping, so that a million tasks do not each carry an empty dict
EMPTY: Mapping[str, Any] = FrozenDict()

#: the most tasks a workflow may have, sweeps expanded, unless the user raises it (``--max-tasks``):
#: twice the million-task workflows herd is measured on, well below what exhausts a large machine
MAX_TASKS = 2_000_000


def frozen_map(values: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """A read-only copy of ``values`` (the shared :data:`EMPTY` when there are none)."""
    if not values:
        return EMPTY
    if isinstance(values, FrozenDict):
        return values
    return FrozenDict(values)


class SpecFormat(enum.StrEnum):
    """Where a workflow came from: the spec format herd read, or the Python API."""

    NATIVE = "native"
    O2DPG = "o2dpg"
    PEGASUS = "pegasus"
    WFFORMAT = "wfformat"
    DAMPE = "dampe"
    API = "api"
    CAMPAIGN = "campaign"  # the live workflow of a campaign (herd campaign)


class RunStatus(enum.StrEnum):
    """How a run (one ``herd run``, or a submission workers run) stands or ended."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped by a signal, or its herd died


class Scope(enum.StrEnum):
    """What a token of ``herd serve`` lets its holder do (docs/api.md): ``read`` reads, ``submit``
    also submits, cancels, resets and retries, ``worker`` only registers workers and claims,
    heartbeats, finishes and releases for them, ``admin`` does everything."""

    READ = "read"
    SUBMIT = "submit"
    WORKER = "worker"
    ADMIN = "admin"

    def allows(self, needed: Scope) -> bool:
        """Whether a token of this scope may do what needs ``needed``."""
        return self is needed or self is Scope.ADMIN or (self, needed) == (Scope.SUBMIT, Scope.READ)


class Kill(enum.StrEnum):
    """Why an attempt was ended from outside, beside the free text that says how
    (``Exited.kill_reason``: "memory 5.1 GB > 4.0 GB limit")."""

    MEMORY = "memory"  # the watchdog: its memory passed the allowed multiple of its ``mem``
    TIMEOUT = "timeout"  # it ran past its ``timeout``
    CPU = "cpu"  # the kernel's CPU-time limit (RLIMIT_CPU) ended it with SIGXCPU
    INTERRUPTED = "interrupted"  # herd stopped it: the run was interrupted, or the task cancelled
    LOST = "lost"  # its worker stopped renewing the lease: nobody knows how it ended


class TaskState(enum.Enum):
    """Where a task stands in one run. Legal moves are in ``scheduler.TRANSITIONS``."""

    WAITING = "waiting"  # some needed task has not succeeded yet
    READY = "ready"  # all needs met, waiting for resources
    RUNNING = "running"  # an attempt is executing
    RETRYING = "retrying"  # an attempt failed; the next waits for its back-off delay
    SUCCEEDED = "succeeded"  # the last attempt exited 0 (or the task was found done)
    FAILED = "failed"  # the last attempt failed and no retries are left
    CANCELLED = "cancelled"  # will not run: a task it needs failed, or the run was stopped
    SKIPPED = "skipped"  # done in an earlier run (unchanged fingerprint) or by a done marker

    #: members are singletons compared by identity: hash them so, in C (``Enum.__hash__`` is a
    #: Python function, and the scheduler hashes states many times per task)
    __hash__ = object.__hash__

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.SKIPPED}
)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What to do after the watchdog kills an attempt (torc's ``recover``).

    After an out-of-memory kill the next attempt asks for ``mem * mem_factor``; after a timeout
    kill it gets ``timeout * time_factor``. ``attempts`` bounds how many such recoveries happen,
    independently of ordinary ``retries``.
    """

    mem_factor: float = 1.5
    time_factor: float = 1.5
    attempts: int = 1


class Task(NamedTuple):
    """One node of a workflow: a command with its needs, files, resources and policy.

    A named tuple, not a frozen dataclass: loading a large spec builds a million of them, and a
    tuple is made in one step where a frozen dataclass sets its 24 fields one
    ``object.__setattr__`` call at a time (several times slower: docs/performance.md). Change a
    task with ``task._replace(field=value)``.
    """

    name: str
    cmd: str | tuple[str, ...]
    needs: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    #: outputs that may be deleted once every task reading them has succeeded
    temp: tuple[str, ...] = ()
    resources: Mapping[str, float] = EMPTY
    labels: tuple[str, ...] = ()
    cwd: str | None = None
    env: Mapping[str, str] = EMPTY
    #: seconds; the attempt is killed when it runs longer
    timeout: float | None = None
    #: extra attempts after a failure (0: run once)
    retries: int = 0
    #: seconds before the first retry; doubles with every further retry
    backoff: float = 1.0
    #: tasks naming the same semaphore never run at the same time
    semaphore: str | None = None
    #: higher runs first; beats the critical-path order
    priority: int = 0
    #: the instance group (O2DPG timeframe, CMS run, sweep point); None when not part of one
    timeframe: int | None = None
    #: expected runtime in seconds, when known (WfFormat runtimes, hints, earlier runs)
    duration: float | None = None
    #: a file whose existence means the task is done (O2DPG ``<cwd>/<name>.log_done``)
    done_marker: str | None = None
    #: redirections (Pegasus): paths relative to cwd; None means the task's own log files
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    recovery: Recovery | None = None
    #: format-specific extras kept for round trips (WfFormat ids, Pegasus job ids, ...)
    meta: Mapping[str, Any] = EMPTY

    def resource(self, name: str) -> float:
        """What the task asks of one pool (``cpu`` defaults to 1, any other pool to 0)."""
        return float(self.resources.get(name, 1.0 if name == "cpu" else 0.0))

    @property
    def demand(self) -> dict[str, float]:
        """Every pool the task asks of, with the default ``cpu: 1`` filled in."""
        out = {k: float(v) for k, v in self.resources.items()}
        out.setdefault("cpu", 1.0)
        return out

    @property
    def argv_or_shell(self) -> str:
        """The command as one line, for display and scripts."""
        if isinstance(self.cmd, str):
            return self.cmd
        import shlex

        return shlex.join(self.cmd)


class HookEvent(enum.Enum):
    """When a workflow hook runs (Pegasus ``_on``): before the first task of a run, after it."""

    START = "start"
    SUCCESS = "success"
    ERROR = "error"  # a task failed, or the run was stopped
    END = "end"  # after SUCCESS or ERROR hooks, whatever the outcome


@dataclass(frozen=True, slots=True)
class Hook:
    """A shell command run when the workflow reaches ``on`` (Pegasus workflow ``hooks``)."""

    on: HookEvent
    cmd: str


@dataclass(frozen=True, slots=True)
class Workflow:
    """A named DAG of tasks, as loaded from one spec or built with the API."""

    name: str
    tasks: tuple[Task, ...]
    env: Mapping[str, str] = EMPTY
    #: a command run once before any task in every ``herd run`` (O2DPG ``__global_init_task__``)
    init: str | None = None
    #: the file it was loaded from, for messages; None when built in Python
    source: str | None = None
    format: SpecFormat = SpecFormat.NATIVE
    #: named resource limits the spec itself declares (``limits: {tape_drive: 2}``)
    limits: Mapping[str, float] = EMPTY
    meta: Mapping[str, Any] = EMPTY
    #: commands run at the start and end of every ``herd run`` that has tasks to run
    hooks: tuple[Hook, ...] = ()

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one run may use at once: resource capacities and a task-count cap (``-j``)."""

    resources: Mapping[str, float] = field(default_factory=dict)
    max_tasks: int | None = None

    def capacity(self, name: str) -> float:
        """The capacity of a pool; a pool that is not limited is unbounded."""
        return float(self.resources.get(name, float("inf")))
