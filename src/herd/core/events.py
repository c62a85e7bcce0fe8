"""What the scheduler hears and what it answers: the events a driver feeds it and the decisions it
returns (:meth:`herd.core.scheduler.Scheduler.handle`).

Events carry ``now`` (the driver's clock: real or virtual), never read a clock themselves:
:class:`Finished` (an attempt ended), :class:`RetryDue` (a back-off delay is over), :class:`Stop`
(the run is interrupted), :class:`AddTasks` (a sub-workflow joins the running graph). Decisions:
:class:`Start` a task with these resources, :class:`RetryAt` a time, :class:`Cancel` a task,
:class:`Settled` (a group of tasks added together is over).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from herd.core.graph import Graph
from herd.core.model import Kill
from herd.core.records import record


@record
class Finished:
    """An attempt of ``task`` ended: ``ok`` when it exited 0."""

    task: int
    ok: bool
    now: float
    kill: Kill | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryDue:
    """The back-off delay of ``task`` has passed."""

    task: int
    now: float


@dataclass(frozen=True, slots=True)
class Stop:
    """Start nothing more; cancel everything not yet running (Ctrl-C, SIGTERM)."""

    now: float
    reason: str = "run stopped"


@dataclass(frozen=True, slots=True)
class AddTasks:
    """Tasks joined the running workflow. ``graph`` is the scheduler's graph with them appended
    (:func:`herd.core.graph.extend`: the old ids and edges unchanged); ``todo`` holds the new ids to
    run, the other new ids count as done before. With ``group``, the running task ``group``
    stands for the new tasks of ``todo``: from now on it holds no resources and no ``-j`` slot,
    and it ends when they have — succeeded when every one did, failed as soon as one fails
    finally (a Pegasus sub-workflow job). :class:`Settled` says how it ended."""

    graph: Graph
    todo: frozenset[int]
    now: float
    group: int | None = None


Event = Finished | RetryDue | Stop | AddTasks


@record
class Start:
    """Run attempt ``attempt`` (1-based, in this run) of ``task`` with these resources."""

    task: int
    attempt: int
    resources: Mapping[str, float]
    timeout: float | None


@dataclass(frozen=True, slots=True)
class RetryAt:
    """Send :class:`RetryDue` for ``task`` at time ``at``."""

    task: int
    at: float


@dataclass(frozen=True, slots=True)
class Cancel:
    """``task`` will not run in this run. ``reason`` says why in words; ``cause`` is the task
    whose final failure cancelled it (an ancestor, or without ``keep_going`` any task), None when
    the run was stopped."""

    task: int
    reason: str
    cause: int | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """Group task ``task`` (see :class:`AddTasks`) ended with its members: ``ok`` when every
    one succeeded; ``reason`` says which did not."""

    task: int
    ok: bool
    reason: str = ""


Decision = Start | RetryAt | Cancel | Settled
