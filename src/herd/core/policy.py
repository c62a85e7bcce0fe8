"""The scheduler's policies that a store's queue applies too: the order ready tasks start in, and
what a failed attempt leads to (a retry after a back-off, a recovery with more memory or time, or
the end).

Workers on many machines do not run the scheduler; the queue (:mod:`herd.store.queue`) orders and
retries their tasks with these same functions, so a workflow runs in the same order and with the
same retries under ``herd run`` and under ``herd worker``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from herd.core.graph import Graph, upward_ranks
from herd.core.model import Kill, Recovery

EPS = 1e-9


class Policy(enum.Enum):
    """How ready tasks are ordered after user priority."""

    CRITICAL_PATH = "critical-path"
    TIMEFRAME = "timeframe"
    FIFO = "fifo"


def order_keys(
    graph: Graph,
    todo: set[int],
    policy: Policy = Policy.CRITICAL_PATH,
    durations: Sequence[float | None] | None = None,
) -> dict[int, tuple[float, ...]]:
    """The order key of every task to run (lower first; see the module docstring). Ranks take a
    pass over the whole graph: a resumed run with nothing (or little) to do keys only what it
    runs, and ranks nothing if nothing. ``herd submit`` queues tasks in this order too."""
    tasks = graph.tasks
    if policy is Policy.FIFO or not todo:
        return {i: (-tasks[i].priority, i) for i in todo}
    dur = [1.0] * len(tasks)
    if durations is not None:
        known = [float(d) for d in durations if d is not None]
        guess = math.fsum(known) / len(known) if known else 1.0  # for a task with none
        dur = [guess if d is None else float(d) for d in durations]
    rank = upward_ranks(graph, dur)
    if policy is Policy.TIMEFRAME:

        def timeframe_key(i: int) -> tuple[float, ...]:
            tf = tasks[i].timeframe
            return (-tasks[i].priority, -1 if tf is None else tf, -rank[i], i)

        return {i: timeframe_key(i) for i in todo}
    return {i: (-tasks[i].priority, -rank[i], i) for i in todo}


@dataclass(frozen=True, slots=True)
class Again:
    """What follows a failed attempt that is not final: the next one, from ``at``, with these
    resources and timeout (raised after a watchdog kill when ``recovered``)."""

    at: float
    resources: Mapping[str, float]
    timeout: float | None
    recovered: bool


def after_failure(
    *,
    retries: int,
    backoff: float,
    recovery: Recovery | None,
    tries: int,
    recoveries: int,
    kill: Kill | None,
    resources: Mapping[str, float],
    timeout: float | None,
    now: float,
    mem_cap: float = float("inf"),
) -> Again | None:
    """The policy of :class:`Scheduler` for a failed attempt, for a driver that keeps the counts
    itself (``herd worker``: the store holds them): a recovery with more memory or time after a
    watchdog kill, else a retry after ``backoff * 2**(k-1)`` while retries are left, else None
    (failed). ``tries`` counts the attempts so far, this one included; ``recoveries`` those that
    were recoveries."""
    policy = recovery
    if kill is not None and policy is not None and recoveries < policy.attempts:
        res = dict(resources)
        if kill is Kill.MEMORY and res.get("mem"):
            res["mem"] = min(res["mem"] * policy.mem_factor, mem_cap)
        if kill is Kill.TIMEOUT and timeout is not None:
            timeout = timeout * policy.time_factor
        return Again(now, res, timeout, recovered=True)
    k = tries - recoveries
    if k <= retries:
        return Again(now + backoff * 2 ** (k - 1), resources, timeout, recovered=False)
    return None
