"""The worker protocol as JSON: what ``herd worker --server`` (:mod:`herd.store.remote`) and the
server's worker endpoints (:mod:`herd.server.workers`) send each other.

The records are the queue's own (:class:`~herd.store.queued.Claimed`, :class:`~herd.store.queued.Lost`,
:class:`~herd.store.queued.WorkerRecord`, ...), encoded and checked by msgspec, so a field added
to one of them travels without a change here. Only the requests have types of their own, and
:class:`OutcomeIn`: an :class:`~herd.store.queued.Outcome` whose changes (an untagged union) are
split by kind, its attempt's file stamps as objects (:class:`FinishedIn`). Times the store keeps (``now``) are the server's: a worker's clock is not trusted
with leases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import msgspec

from herd.core.model import Kill, TaskState
from herd.errors import UsageError
from herd.store.base import AttemptFinished, Change, RunRecord, Sample, UserData, UserEvent
from herd.store.queued import Claimed, Lost, Outcome, ShippedLog, WorkerRecord

T = TypeVar("T")

#: the heaviest request a worker sends: a finish of many attempts with their shipped output
MAX_BODY = 64 << 20


class Register(msgspec.Struct, forbid_unknown_fields=True):
    host: str
    pid: int
    user: str
    resources: dict[str, float]
    lease: float


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    free: dict[str, float]
    lease: float
    workflows: list[int] | None = None
    limit: int | None = None
    ends_before: float | None = None
    capacity: dict[str, float] | None = None
    #: the worker's name for this claim: the same claim sent again gets the same answer
    request: str = ""


class HeartbeatIn(msgspec.Struct, forbid_unknown_fields=True):
    lease: float


class Stamp(msgspec.Struct, forbid_unknown_fields=True):
    """A file as seen at some moment (:data:`~herd.store.base.FileStamp`), named by field: an
    object, not a positional triple (OpenAPI 3.1 tools disagree on tuples)."""

    size: int
    mtime_ns: int
    digest: str = ""


class FinishedIn(msgspec.Struct, forbid_unknown_fields=True):
    """An :class:`~herd.store.base.AttemptFinished` on the wire, its file stamps as
    :class:`Stamp` objects (the same fields: a test keeps them so)."""

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
    inputs: dict[str, Stamp] = {}
    outputs: dict[str, Stamp] = {}


_PLAIN = tuple(f for f in FinishedIn.__struct_fields__ if f not in ("inputs", "outputs"))


def finished_in(a: AttemptFinished) -> FinishedIn:
    plain = {f: getattr(a, f) for f in _PLAIN}
    inputs = {path: Stamp(*s) for path, s in a.inputs.items()}
    outputs = {path: Stamp(*s) for path, s in a.outputs.items()}
    return FinishedIn(**plain, inputs=inputs, outputs=outputs)


def finished(w: FinishedIn) -> AttemptFinished:
    plain = {f: getattr(w, f) for f in _PLAIN}
    inputs = {path: (s.size, s.mtime_ns, s.digest) for path, s in w.inputs.items()}
    outputs = {path: (s.size, s.mtime_ns, s.digest) for path, s in w.outputs.items()}
    return AttemptFinished(**plain, inputs=inputs, outputs=outputs)


class OutcomeIn(msgspec.Struct, forbid_unknown_fields=True):
    """An :class:`~herd.store.queued.Outcome` on the wire."""

    attempt: FinishedIn
    pid: int
    started: float
    then: TaskState
    reason: str = ""
    not_before: float = 0.0
    resources: dict[str, float] | None = None
    timeout: float | None = None
    recovered: bool = False
    log_tail: str = ""
    samples: list[Sample] = []
    user_data: list[UserData] = []
    events: list[UserEvent] = []
    shipped: ShippedLog | None = None


class FinishIn(msgspec.Struct, forbid_unknown_fields=True):
    outcomes: list[OutcomeIn]
    #: a claim to make once they are recorded: a worker's turn in one round trip
    claim: ClaimIn | None = None


class AttemptKey(msgspec.Struct, forbid_unknown_fields=True):
    """One attempt, named by its workflow's id, its task and its number (an object, not a
    positional triple: clients read fields by name, and OpenAPI 3.1 tools disagree on tuples)."""

    workflow_id: int
    task: str
    number: int

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.workflow_id, self.task, self.number)


class ReleaseIn(msgspec.Struct, forbid_unknown_fields=True):
    attempts: list[AttemptKey]
    reason: str


class StopIn(msgspec.Struct, forbid_unknown_fields=True):
    state: Literal["stopped", "draining"] = "stopped"

    @classmethod
    def of(cls, state: str) -> StopIn:
        if state == "draining":
            return cls("draining")
        if state == "stopped":
            return cls("stopped")
        raise UsageError(f"a worker stops or drains, not '{state}'")


# --- answers ----------------------------------------------------------------------------------


class Registered(msgspec.Struct):
    id: int


class ClaimOut(msgspec.Struct):
    claimed: list[Claimed]


class HeartbeatOut(msgspec.Struct):
    #: the attempts the worker still holds
    held: list[AttemptKey]


class FinishOut(msgspec.Struct):
    """Whether each outcome was accepted, in order (False: stale, refused with 409), and what
    the claim that came with them took."""

    accepted: list[bool]
    claimed: list[Claimed] = []


class ReleaseOut(msgspec.Struct):
    released: list[Lost]


class Stopped(msgspec.Struct):
    state: str


class ReapOut(msgspec.Struct):
    lost: list[Lost]


class WorkersOut(msgspec.Struct):
    workers: list[WorkerRecord]


class WaitOut(msgspec.Struct):
    #: whether ``version`` moved past the ``since`` asked about
    work: bool
    version: int


class CountsOut(msgspec.Struct):
    counts: dict[str, int]


class RunsOut(msgspec.Struct):
    runs: list[RunRecord]


class StatesIn(msgspec.Struct, forbid_unknown_fields=True):
    """Named tasks of a workflow whose queue states a worker asks (the readers of temp files)."""

    workflow_id: int
    tasks: list[str]


class StatesOut(msgspec.Struct):
    #: the queue state of each task asked about (a task not in the queue is left out)
    states: dict[str, str]


class OpenOut(msgspec.Struct):
    #: how many open campaigns have one of the workflows asked about
    open: int


def outcome_in(o: Outcome) -> OutcomeIn:
    """An outcome as a worker sends it."""
    return OutcomeIn(
        finished_in(o.attempt),
        o.pid,
        o.started,
        o.then,
        o.reason,
        o.not_before,
        None if o.resources is None else dict(o.resources),
        o.timeout,
        o.recovered,
        o.log_tail,
        [c for c in o.changes if isinstance(c, Sample)],
        [c for c in o.changes if isinstance(c, UserData)],
        [c for c in o.changes if isinstance(c, UserEvent)],
        o.shipped,
    )


def outcome(w: OutcomeIn) -> Outcome:
    """An outcome as the store takes it."""
    changes: list[Change] = [*w.samples, *w.user_data, *w.events]
    return Outcome(
        finished(w.attempt),
        w.pid,
        w.started,
        w.then,
        w.reason,
        w.not_before,
        w.resources,
        w.timeout,
        w.recovered,
        w.log_tail,
        changes,
        w.shipped,
    )


def check_outcomes(outcomes: Sequence[OutcomeIn]) -> None:
    """Refuse outcomes whose changes belong to another attempt than the one they finish."""
    for o in outcomes:
        a = o.attempt
        changes: list[Sample | UserData | UserEvent] = [*o.samples, *o.user_data, *o.events]
        for c in changes:
            if (c.workflow_id, c.task, c.number) != (a.workflow_id, a.task, a.number):
                raise UsageError(
                    f"the finish of task '{a.task}' attempt {a.number} carries data of task "
                    f"'{c.task}' attempt {c.number}: send each attempt's data with its own finish"
                )
        if o.then not in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.READY):
            raise UsageError(
                f"the finish of task '{a.task}' attempt {a.number} says it is "
                f"'{o.then.value}': a finished attempt leaves its task succeeded, failed or ready"
            )


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value)


def decode(data: bytes, kind: type[T], what: str) -> T:
    """``data`` as a ``kind``, or a :class:`~herd.errors.UsageError` naming ``what`` and the
    faulty field."""
    try:
        return msgspec.json.decode(data, type=kind)
    except msgspec.ValidationError as exc:
        raise UsageError(f"{what}: {exc}; see docs/api.md for its fields") from None
    except msgspec.DecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None


def schema(kind: type[Any]) -> dict[str, Any]:
    """The JSON schema of a request or an answer, for the OpenAPI document: self-contained (its
    definitions inlined), since OpenAPI resolves references from the document's root."""
    whole: dict[str, Any] = msgspec.json.schema(kind, ref_template="#/$defs/{name}")
    defs = whole.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            # (a tuple's "items": false is JSON Schema, not an OpenAPI schema object: its
            # minItems and maxItems already bound it)
            return {k: inline(v) for k, v in node.items() if not (k == "items" and v is False)}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out: dict[str, Any] = inline(whole)
    return out
