"""What a store's queue holds and returns for workers on many machines: the tasks submitted to run
(:class:`QueuedTask`, all a worker needs without the spec), the attempts a claim hands out
(:class:`Claimed`), what a worker reports back (:class:`Outcome`), the workers themselves
(:class:`WorkerRecord`), the attempts taken back from them (:class:`Lost`), the reports that
came too late (:class:`StaleReport`) and the output shipped with a finish (:class:`ShippedLog`). The
:class:`~herd.store.base.Store` protocol documents the transactions that use them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from herd.core.model import Recovery, TaskState
from herd.store.workdir import safe_name

if TYPE_CHECKING:
    from herd.store.base import AttemptFinished, Change


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """Everything a worker needs to run one task, planned by ``herd submit`` (workers never read
    spec files): the command, where and with what, the policy, and what to record on success.

    ``seq`` orders the queue: claims take ready tasks by ascending ``seq`` (the scheduler's order:
    user priority, then the critical path with known durations). ``needs`` are the tasks of the
    same submission it waits for (tasks done before are not listed).
    """

    name: str
    cmd: str | tuple[str, ...]
    cwd: str  # absolute
    env: Mapping[str, str]  # the workflow's env under the task's (not the worker's environment)
    resources: Mapping[str, float]  # the demand, ``cpu`` filled in
    seq: int
    needs: tuple[str, ...] = ()
    reason: str = ""  # why it runs (``new``, ``command changed``, ...)
    retries: int = 0
    backoff: float = 1.0
    timeout: float | None = None
    recovery: Recovery | None = None
    semaphore: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    done_marker: str | None = None
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    duration: float | None = None  # expected seconds, when known
    log_dir: str = ""  # the folder for the attempt's output and user data files
    expanded: str = ""  # the command as recorded in provenance
    fingerprint: str = ""
    cmd_digest: str = ""
    env_digest: str = ""
    #: temp files it reads (absolute) and all their readers in the submission: removed once
    #: every one of them succeeded
    temp_inputs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def log_stem(self, number: int) -> str:
        """Attempt ``number``'s output files without their suffix (``.out``, ``.err``, user
        data): in the workflow's log folder, as ``herd run`` names them."""
        folder = self.log_dir or os.path.join(".herd", "logs")
        return f"{folder}/{safe_name(self.name)}.{number}"

    def log_paths(self, number: int) -> tuple[str, str]:
        """Where attempt ``number`` writes its stdout and stderr (a declared redirection, in the
        task's directory, else the log folder)."""
        stem = self.log_stem(number)
        out = os.path.join(self.cwd, self.stdout) if self.stdout else stem + ".out"
        err = os.path.join(self.cwd, self.stderr) if self.stderr else stem + ".err"
        return out, err


@dataclass(frozen=True, slots=True)
class Claimed:
    """A queued task a worker now holds: run attempt ``number`` (over all runs) under ``run_id``.

    ``resources`` and ``timeout`` are the current ones (a recovery may have raised them);
    ``tries`` counts this submission's attempts, this one included; ``recoveries`` those that
    followed a watchdog kill with more memory or time.
    """

    workflow_id: int
    run_id: int
    workflow: str
    number: int
    tries: int
    recoveries: int
    resources: Mapping[str, float]
    timeout: float | None
    task: QueuedTask


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a claimed attempt ended, reported by its worker to :meth:`Store.finish`.

    ``then`` is the task's next state: ``SUCCEEDED``, ``FAILED`` (no retries left: the tasks
    needing it are cancelled), ``READY`` (retried: claimable from ``not_before``, with
    ``resources`` and ``timeout`` when a recovery changed them). ``changes`` are the attempt's
    samples, user data and events.
    """

    attempt: AttemptFinished
    pid: int
    started: float
    then: TaskState
    reason: str = ""
    not_before: float = 0.0
    resources: Mapping[str, float] | None = None
    timeout: float | None = None
    recovered: bool = False
    #: the end of the attempt's output when it failed (reports read it from any host)
    log_tail: str = ""
    changes: Sequence[Change] = ()
    #: the attempt's whole output, when the worker ships logs (no shared filesystem)
    shipped: ShippedLog | None = None


@dataclass(frozen=True, slots=True)
class ShippedLog:
    """An attempt's output as its worker sent it (``herd worker --ship-logs``): the whole of
    stdout and stderr, or their last :data:`herd.run.worker.SHIP_MAX` bytes each when longer
    (``truncated``)."""

    stdout: str
    stderr: str
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as the store knows it: ``state`` is ``active``, ``draining``, ``stopped`` or
    ``lost`` (its heartbeats stopped); ``held`` the tasks it holds now."""

    id: int
    host: str
    pid: int
    user: str
    started: float
    heartbeat: float
    state: str
    resources: Mapping[str, float]
    held: int = 0
    #: seconds its leases last without a heartbeat
    lease: float = 0.0
    #: the id of the token that registered it over HTTP (`herd token list`), which alone (or an
    #: admin token) may drive it there; None: registered without one (a database worker)
    token_id: int | None = None

    def silent(self, now: float) -> bool:
        """Whether the worker stopped renewing its leases: :meth:`Store.reap` would take its
        attempts back (and mark it ``lost``)."""
        return self.state in ("active", "draining") and self.heartbeat + self.lease < now


@dataclass(frozen=True, slots=True)
class Lost:
    """An attempt taken back from its worker: ``then`` is the task's new state (``READY`` or,
    retries spent, ``FAILED``)."""

    workflow_id: int
    task: str
    number: int
    worker_id: int
    then: TaskState


@dataclass(frozen=True, slots=True)
class StaleReport:
    """A finish the store refused: attempt ``number`` of ``task`` had been taken back from
    ``worker_id`` (reaped or released) before its report came. ``state`` and ``exit_code`` are
    what the worker reported; ``reported`` when (the store's clock)."""

    workflow_id: int
    task: str
    number: int
    worker_id: int
    reported: float
    state: TaskState
    exit_code: int | None


@runtime_checkable
class QueueStates(Protocol):
    """A store that tells the queue states of named tasks: a worker on it removes temp files
    once their readers succeeded (every :class:`~herd.store.base.Store`, and the server's HTTP
    client)."""

    def queue_states(self, workflow_id: int, tasks: Sequence[str]) -> dict[str, TaskState]:
        """The queue state of each of ``tasks`` (a task not in the workflow's queue is left
        out)."""
        ...


# --- the spec a worker runs: JSON in queue.spec ----------------------------------------------

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_spec(task: QueuedTask) -> str:
    values = asdict(task)
    values["recovery"] = None if task.recovery is None else asdict(task.recovery)
    if not task.temp_inputs:
        del values["temp_inputs"]  # (an older herd's worker reads the spec too)
    return _encode(values)


#: a spec's JSON straight into a QueuedTask (its fields' types checked, a newer herd's extra
#: fields ignored): a claim decodes one per task, and json.loads then the dataclass took 9x longer
_decode_spec = msgspec.json.Decoder(QueuedTask).decode


def decode_spec(text: str) -> QueuedTask:
    return _decode_spec(text)
