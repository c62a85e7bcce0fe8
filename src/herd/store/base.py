"""The Store protocol: where workflow state lives, and the records that cross it.

One narrow protocol with intention-named methods; ``sqlite.py`` (``.herd/herd.db``, the
default) and ``postgres.py`` implement it. Implementations hold code
only: the contract is documented here, once, and tested once by ``tests/integration/
test_store_contract.py`` for every implementation.

Writes come in batches: the runner collects the changes its loop produced (attempts started,
attempts finished, task states, samples, user data), turn after turn, and hands whole turns to
:meth:`Store.write` at least every few milliseconds (group commit, see ``run/local.py``); the batch is
applied in a single transaction. The store thus always holds the run's history up to the end of
some turn, and ``kill -9`` at any moment loses at most the last few milliseconds of it: those
tasks run again.
:func:`herd.store.batch.coalesce` shrinks a batch to fewer, equivalent writes (a short task starts
and ends within one batch: one attempt row written whole, one task update).

Records
-------
``WorkflowRecord``  a workflow known to the store (by name)
``TaskRecord``      the last known state of a task, and what its last success was computed from
``RunRecord``       one ``herd run`` invocation
``AttemptRecord``   one execution of a task, with its provenance
Changes (the batch vocabulary): ``AttemptStarted``, ``AttemptFinished``, ``TaskChanged``,
``Sample``, ``UserData``, ``UserEvent``.

Workers (``herd submit`` / ``herd worker``; the protocol is documented on :class:`WorkerStore`,
the part of :class:`Store` a worker uses, which the HTTP client implements too)
``QueuedTask``      everything a worker needs to run a task, as ``herd submit`` planned it
``Claimed``         a queued task a worker holds, with its attempt number and run
``Outcome``         how a claimed attempt ended, as its worker reports it
``WorkerRecord``    a worker as the store knows it
``Lost``            an attempt whose lease expired (reaped) or that its worker released
``StaleReport``     a finish refused because the attempt's lease had been taken back
``ShippedLog``      an attempt's whole output, sent with its finish (sites without a shared disk)

The HTTP server (``herd serve``; written once in :mod:`herd.store.served`)
``TokenRecord``     a bearer token: its scope, workflow, times, and the digest of its secret
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from herd.core.model import EMPTY, Kill, RunStatus, Scope, SpecFormat, TaskState, Workflow
from herd.core.records import record
from herd.store.campaigned import CampaignStore
from herd.store.queued import (
    Claimed,
    Lost,
    Outcome,
    QueuedTask,
    QueueStates,
    ShippedLog,
    StaleReport,
    WorkerRecord,
)
from herd.store.watched import Watched

#: the kill reason of attempts found running when a new run begins (herd was killed meanwhile)
INTERRUPTED = "interrupted: herd stopped"

#: a file as seen at some moment: (size in bytes, mtime in ns, content digest or "")
FileStamp = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    id: int
    name: str
    source: str | None
    format: SpecFormat
    created: float
    tasks: int


class TaskRecord(NamedTuple):
    """The state of one task as the store last saw it (a named tuple: a run reads a million).

    ``fingerprint``, ``cmd_digest``, ``env_digest`` and ``inputs`` describe the last *successful*
    attempt (empty when it never succeeded); the planner compares them with the current ones to
    decide whether the task must rerun and why.
    """

    name: str
    state: TaskState
    attempts: int = 0
    fingerprint: str = ""
    cmd_digest: str = ""
    env_digest: str = ""
    inputs: Mapping[str, FileStamp] = EMPTY
    #: why the last attempt ended as it did (``exit 1``, ``killed: memory 5.1 GB > 4.0 GB limit``)
    reason: str = ""
    exit_code: int | None = None
    #: when the task last changed state (epoch seconds)
    updated: float = 0.0
    #: cancelled: the task whose final failure cancelled it (``reason`` says it in words); None
    #: otherwise, and for tasks cancelled before the store kept it (see reports/analyze.py)
    cancelled_by: str | None = None


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    workflow_id: int
    started: float
    ended: float | None
    status: RunStatus
    host: str
    user: str
    pid: int
    argv: tuple[str, ...] = ()
    limits: Mapping[str, float] = EMPTY


@record
class AttemptRecord:
    """One execution of a task: the provenance record (Pegasus kickstart is the model)."""

    workflow_id: int
    run_id: int
    task: str
    number: int  # 1, 2, ... counted over all runs of the task
    host: str
    user: str
    pid: int
    start: float
    cmd: str  # as executed, after variable expansion where herd did it
    env_digest: str
    fingerprint: str
    reason: str  # why it ran (``new``, ``command changed``, ...)
    end: float | None = None
    state: TaskState = TaskState.RUNNING
    exit_code: int | None = None
    signal: int | None = None
    kill_reason: str = ""
    #: why herd (or Slurm, or the loss of a worker) ended it from outside; None when it ended by
    #: itself, or when it was recorded before the store kept the kind (see ``reports.analyze``)
    kill: Kill | None = None
    utime: float | None = None  # seconds of user CPU (rusage of the process and its children)
    stime: float | None = None
    max_rss: int | None = None  # bytes, rusage
    peak_mem: int | None = None  # bytes, whole process tree, from sampling
    mean_cpu: float | None = None  # cores, whole process tree, from sampling
    cwd: str = ""
    stdout_path: str = ""
    stderr_path: str = ""
    inputs: Mapping[str, FileStamp] = EMPTY
    outputs: Mapping[str, FileStamp] = EMPTY
    resources: Mapping[str, float] = EMPTY


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A bearer token of ``herd serve``: ``digest`` is the SHA-256 of its secret (kept nowhere);
    ``workflow`` the one it acts on (None: any); ``expires``, ``revoked``: times, or None."""

    id: int
    digest: str
    scope: Scope
    workflow: str | None
    note: str
    created: float
    expires: float | None = None
    revoked: float | None = None


# --- changes: what a batch is made of -------------------------------------------------------


@record
class AttemptStarted:
    attempt: AttemptRecord


@record
class AttemptFinished:
    """Completes the attempt ``(workflow_id, task, number)`` with its outcome fields."""

    workflow_id: int
    task: str
    number: int
    end: float
    state: TaskState
    exit_code: int | None = None
    signal: int | None = None
    kill_reason: str = ""
    kill: Kill | None = None
    utime: float | None = None
    stime: float | None = None
    max_rss: int | None = None
    peak_mem: int | None = None
    mean_cpu: float | None = None
    inputs: Mapping[str, FileStamp] = EMPTY
    outputs: Mapping[str, FileStamp] = EMPTY


@record
class TaskChanged:
    """A task's new state. With ``state=SUCCEEDED`` the digest fields record what it ran from."""

    workflow_id: int
    task: str
    state: TaskState
    time: float
    attempts: int | None = None  # new attempt count, None to keep
    reason: str = ""
    exit_code: int | None = None
    #: with ``state=CANCELLED``: the task whose final failure cancelled it (core.events.Cancel)
    cancelled_by: str | None = None
    fingerprint: str | None = None  # None keeps the stored value
    cmd_digest: str | None = None
    env_digest: str | None = None
    inputs: Mapping[str, FileStamp] | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """One monitoring sample of an attempt's whole process tree."""

    workflow_id: int
    task: str
    number: int
    time: float
    rss: int  # bytes
    cpu: float  # cores in use since the previous sample
    processes: int


@dataclass(frozen=True, slots=True)
class UserData:
    """A key/value result a task recorded (torc's user data)."""

    workflow_id: int
    task: str
    number: int
    key: str
    value: Any  # JSON-serialisable


@dataclass(frozen=True, slots=True)
class UserEvent:
    """A timestamped structured event a task recorded (torc's events)."""

    workflow_id: int
    task: str
    number: int
    time: float
    data: Mapping[str, Any] = field(default_factory=dict)


Change = AttemptStarted | AttemptFinished | TaskChanged | Sample | UserData | UserEvent


class WorkerStore(Protocol):
    """What a worker needs of a store (:mod:`herd.run.worker`): the queue's transactions and the
    few lookups around them. Every :class:`Store` is one; so is the HTTP client of a server
    (:mod:`herd.store.remote`), for sites that cannot reach the database.

    A submitted workflow's tasks wait in a queue; workers *claim* ready ones in one transaction
    (by ``seq``, those that fit the worker's free resources and the workflow's named pools),
    run them, and *finish* them in one transaction that makes their dependents ready (unmet-
    needs counters). A claim holds a *lease* until ``lease_until``; :meth:`heartbeat` renews
    it. Anyone may :meth:`reap` expired leases: the attempt is recorded as lost and the task is
    ready again, or failed once its retries are spent. A finish is *fenced*: it is recorded only
    while the lease is still the worker's, so a worker presumed dead cannot overwrite a retry;
    the refused report is kept as a :class:`~herd.store.queued.StaleReport`.
    """

    def workflow(self, name: str) -> WorkflowRecord | None:
        """The workflow called ``name``, or None."""
        ...

    def runs(self, workflow_id: int) -> list[RunRecord]:
        """The runs of a workflow, oldest first."""
        ...

    def queue_counts(self, workflows: Sequence[int] | None = None) -> dict[TaskState, int]:
        """How many queued tasks of ``workflows`` (every workflow: None) are in each state (a
        state no task is in is left out); empty when none was ever submitted."""
        ...

    def workers(self) -> list[WorkerRecord]:
        """Every worker the store knows, oldest first, with the tasks each holds."""
        ...

    def register_worker(
        self,
        *,
        host: str,
        pid: int,
        user: str,
        resources: Mapping[str, float],
        now: float,
        lease: float,
        token_id: int | None = None,
    ) -> int:
        """Record a new worker (``active``, its leases lasting ``lease`` seconds: :meth:`reap`
        marks it ``lost`` when it has been silent longer) and return its id; ``token_id`` is the
        token of ``herd serve`` that registered it (None: a database worker)."""
        ...

    def claim(
        self,
        worker_id: int,
        free: Mapping[str, float],
        *,
        now: float,
        lease: float,
        workflows: Sequence[int] | None = None,
        limit: int | None = None,
        ends_before: float | None = None,
        capacity: Mapping[str, float] | None = None,
    ) -> list[Claimed]:
        """Claim, in one transaction, ready tasks by ``seq`` that fit ``free`` (a resource not
        named there is unbounded) and the workflow's pools, at most ``limit``; each becomes
        running with a new attempt whose lease lasts until ``now + lease``.

        ``workflows`` restricts the claim to those workflow ids; ``ends_before`` skips tasks
        whose expected duration would end after it. ``capacity`` is the worker's whole: a task
        asking more ``cpu`` than it has is given (and claimed with) all of it, since cores are
        elastic. Returns nothing when nothing fits.
        """
        ...

    def heartbeat(self, worker_id: int, *, now: float, lease: float) -> set[tuple[int, str, int]]:
        """Renew the leases of the worker (to ``now + lease``) and its last-seen time; return the
        attempts ``(workflow_id, task, number)`` it still holds: one missing was reaped, and its
        process should be stopped."""
        ...

    def finish(self, worker_id: int, outcomes: Sequence[Outcome], *, now: float) -> list[bool]:
        """Record the outcomes in one transaction; for each, whether it was accepted (False: the
        lease is no longer the worker's; only a :class:`~herd.store.queued.StaleReport` of it is
        written). A report already recorded (the same attempt, process and start: a retry whose
        answer was lost) is accepted again and changes nothing.

        A success records the task's fingerprint and inputs (from its :class:`QueuedTask`) and
        makes the tasks whose last unmet need it was ready; a final failure cancels the tasks
        that need it, transitively. Pools are released. The run ends when its last task ends.
        """
        ...

    def finish_and_claim(
        self, worker_id: int, outcomes: Sequence[Outcome], free: Mapping[str, float], **terms: Any
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`finish`, then :meth:`claim` (``terms``: its keywords), in one transaction."""
        ...

    def release(
        self, worker_id: int, attempts: Sequence[tuple[int, str, int]], *, now: float, reason: str
    ) -> list[Lost]:
        """Give back attempts the worker will not finish (it is draining and stopped them): each
        is recorded as cancelled with ``reason`` and its task is ready again at once, the try not
        counted."""
        ...

    def stop_worker(self, worker_id: int, *, now: float, state: str = "stopped") -> None:
        """Mark the worker ``stopped`` (or ``draining``); a stopped worker's leases are
        released as :meth:`release` does."""
        ...

    def reap(self, *, now: float) -> list[Lost]:
        """Take back every attempt whose lease expired before ``now``: recorded as failed
        (``lost: ...``), the task ready again or failed once its retries are spent; workers
        whose heartbeat expired are marked ``lost``. Idempotent: a second call finds nothing."""
        ...

    def wait_for_work(self, timeout: float) -> bool:
        """Wait until another participant may have made work claimable (a submit, a finish, a
        release or a reap committed; True, at once if one did since the last call) or
        ``timeout`` seconds pass (False). (PostgreSQL: ``LISTEN``; SQLite: the file's data
        version.)"""
        ...


class Store(WorkerStore, QueueStates, CampaignStore, Watched, Protocol):
    """Workflow state: workflows, task states, runs, attempts with provenance, samples, user data.

    Every method either completes or raises :class:`herd.errors.StoreError` (driver errors are
    wrapped at the boundary); a failed :meth:`write` leaves nothing of its batch behind.
    """

    def close(self) -> None:
        """Release the connection. The store is unusable afterwards."""

    def add_workflow(self, workflow: Workflow) -> int:
        """Record ``workflow`` (by name) and its tasks; return its id.

        Tasks new to the store start in ``WAITING`` with no history; tasks that exist keep their
        state and history; tasks no longer in the workflow are kept (history is never lost) but
        are not returned by :meth:`task_records`. Idempotent and fast: a million tasks in seconds.
        """
        ...

    def workflows(self) -> list[WorkflowRecord]:
        """Every workflow in the store, oldest first."""
        ...

    def task_records(self, workflow_id: int) -> dict[str, TaskRecord]:
        """The last known state of every task currently in the workflow, by name."""
        ...

    def begin_run(
        self,
        workflow_id: int,
        *,
        started: float,
        host: str,
        user: str,
        pid: int,
        argv: Sequence[str],
        limits: Mapping[str, float],
    ) -> int:
        """Open a run (status ``running``) and return its id.

        Attempts still marked running from a run that never ended (herd was killed) are closed as
        ``interrupted`` and their tasks set back to ``WAITING``, so they run again.
        """
        ...

    def write(self, changes: Sequence[Change]) -> None:
        """Apply a batch of changes in one transaction, in order."""
        ...

    def end_run(self, run_id: int, *, ended: float, status: RunStatus) -> None:
        """Close a run with its final status."""
        ...

    def attempts(self, workflow_id: int, task: str | None = None) -> list[AttemptRecord]:
        """Attempts of a workflow (or of one task), in start order."""
        ...

    def durations(self, workflow_id: int) -> dict[str, float]:
        """The mean wall time (seconds) of the successful attempts of each task that has one."""
        ...

    def samples(self, workflow_id: int, task: str, number: int) -> list[Sample]:
        """The monitoring time series of one attempt, in time order."""
        ...

    def user_data(self, workflow_id: int, task: str | None = None) -> list[UserData]:
        """User data recorded by tasks, in recording order."""
        ...

    def user_events(self, workflow_id: int, task: str | None = None) -> list[UserEvent]:
        """User events recorded by tasks, in time order."""
        ...

    def reset(self, workflow_id: int, tasks: Sequence[str]) -> None:
        """Forget that ``tasks`` ever succeeded: they run again next time. History is kept."""
        ...

    def forget(self, workflow_id: int) -> None:
        """Drop every record of the workflow (files on disk are not touched)."""
        ...

    # --- the queue's other side: submitting, and what workers left -----------------------

    def submit(
        self,
        workflow_id: int,
        tasks: Sequence[QueuedTask],
        *,
        pools: Mapping[str, float],
        now: float,
        host: str,
        user: str,
        pid: int,
        argv: Sequence[str],
    ) -> int:
        """Queue ``tasks`` (the tasks to run of the workflow, as planned) and return the run id
        their attempts are recorded under; every task of the workflow not in ``tasks`` is done.

        Replaces the workflow's queue: a task running under a lease keeps running (its finish
        still counts); every other queued task is dropped or requeued. A task is ready when none
        of its ``needs`` is still to run. ``pools`` are the named limits that hold across all
        workers (a semaphore is a pool of 1 named ``semaphore:NAME``). An earlier submission's run
        ends (``interrupted`` when it had tasks left). A submission with nothing to run ends its
        run at once (``succeeded``).
        """
        ...

    def failure_log(self, workflow_id: int, task: str, number: int) -> str | None:
        """The log tail a worker stored for a failed attempt, or None."""
        ...

    def shipped_log(self, workflow_id: int, task: str, number: int) -> ShippedLog | None:
        """The output a worker shipped with an attempt's finish (``--ship-logs``), or None."""
        ...

    def stale_reports(self, workflow_id: int) -> list[StaleReport]:
        """The finishes refused because their lease had been taken back, oldest first."""
        ...

    # --- the HTTP server (herd.store.served) -------------------------------------------------

    def add_token(
        self,
        *,
        digest: str,
        scope: Scope,
        workflow: str | None,
        note: str,
        now: float,
        expires: float | None,
    ) -> int:
        """Record a token (the SHA-256 ``digest`` of its secret) and return its id."""
        ...

    def token(self, token_id: int) -> TokenRecord | None:
        """Token ``token_id``, revoked or expired ones included; None when there is none."""
        ...

    def tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        ...

    def revoke_token(self, token_id: int, *, now: float) -> bool:
        """Revoke the token at ``now``; False when there is no such token or it was revoked."""
        ...

    def task_labels(self, workflow_id: int) -> dict[str, tuple[str, ...]]:
        """The labels of the workflow's current tasks that have some, by name."""
        ...

    def cancel(self, workflow_id: int, *, now: float, reason: str) -> list[str]:
        """Cancel, in one transaction, every queued task of the workflow still waiting, ready or
        running (``reason`` recorded): a running attempt is recorded as cancelled, its lease ends
        (its worker's next heartbeat stops it; its finish is refused); the submission's run ends
        ``interrupted``. Returns the tasks cancelled (none if not submitted to workers)."""
        ...
