"""``herd simulate``: the real scheduler on a virtual clock.

The driver here replaces processes with a heap of finish times: every :class:`~herd.core.scheduler.Start`
becomes a finish event ``duration`` later, fed back as :class:`~herd.core.scheduler.Finished`. The
scheduling code is the one ``herd run`` uses, so a simulated schedule is what a run with those
durations would do (tests check the order of starts against real runs).

Durations come from the spec (``Task.duration``: WfFormat ``runtimeInSeconds``, native ``duration``
hints, Pegasus ``runtime``), else from ``default_duration``.

The lower bound of any schedule is ``max(critical path, work / capacity)``, where work / capacity is
taken for every limited pool (``sum(duration * demand) / capacity``) and for the task cap
(``sum(duration) / max_tasks``); the report gives the makespan, that bound and their ratio, and the
peak and mean use of every pool.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

from herd.core.graph import Graph, critical_path
from herd.core.model import Limits
from herd.core.scheduler import Decision, Finished, Policy, Scheduler, Start


@dataclass(frozen=True, slots=True)
class Slot:
    """One simulated execution."""

    task: str
    start: float
    end: float
    resources: dict[str, float]


@dataclass(frozen=True, slots=True)
class SimResult:
    makespan: float
    critical_path: float
    lower_bound: float
    #: the pool (or ``tasks``) whose work / capacity gives the bound, or ``critical path``
    bound_by: str
    tasks: int
    peak: dict[str, float]  # fraction of capacity, per pool
    mean: dict[str, float]
    schedule: list[Slot] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound if self.lower_bound > 0 else 1.0

    def to_json(self) -> dict[str, object]:
        return {
            "makespan": self.makespan,
            "critical_path": self.critical_path,
            "lower_bound": self.lower_bound,
            "bound_by": self.bound_by,
            "ratio": self.ratio,
            "tasks": self.tasks,
            "peak_utilisation": self.peak,
            "mean_utilisation": self.mean,
        }


def durations_of(graph: Graph, default: float | None) -> list[float]:
    """Each task's expected duration; tasks without one get ``default``.

    Raises :class:`~herd.errors.UsageError` naming the first task with no duration when no default
    is given.
    """
    from herd.errors import UsageError

    out = []
    for task in graph.tasks:
        d = task.duration if task.duration is not None else default
        if d is None:
            raise UsageError(
                f"task '{task.name}' has no expected duration: give one in the spec "
                "(`duration:`) or pass --duration SECONDS for tasks without one"
            )
        out.append(float(d))
    return out


def lower_bound(graph: Graph, limits: Limits, durations: Sequence[float]) -> tuple[float, str]:
    """max(critical path, work / capacity over every limited pool and the task cap)."""
    best, by = critical_path(graph, durations), "critical path"
    for pool, cap in limits.resources.items():
        if cap == float("inf") or cap <= 0:
            continue
        work = sum(d * t.resource(pool) for d, t in zip(durations, graph.tasks, strict=True))
        if work / cap > best:
            best, by = work / cap, pool
    if limits.max_tasks:
        bound = sum(durations) / limits.max_tasks
        if bound > best:
            best, by = bound, "tasks"
    return best, by


def simulate(
    graph: Graph,
    limits: Limits,
    durations: Sequence[float],
    *,
    policy: Policy = Policy.CRITICAL_PATH,
    use_durations: bool = True,
    keep_schedule: bool = False,
) -> SimResult:
    """Run the scheduler over ``graph`` with these durations; every task succeeds.

    ``use_durations`` lets the scheduler rank by the durations (as it would with spec hints or
    earlier runs); False makes it schedule blind, as on a first run without hints.
    """
    sched = Scheduler(
        graph, limits, policy=policy, durations=list(durations) if use_durations else None
    )
    events: list[tuple[float, int]] = []
    schedule: list[Slot] = []
    usage = _Usage(sched.pools)
    now = 0.0

    def apply(decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Start):
                end = now + durations[d.task]
                heapq.heappush(events, (end, d.task))
                if keep_schedule:
                    schedule.append(Slot(graph.name(d.task), now, end, dict(d.resources)))

    apply(sched.start())
    usage.mark(now, sched)
    while events:
        now, i = heapq.heappop(events)
        apply(sched.handle(Finished(i, ok=True, now=now)))
        usage.mark(now, sched)
    bound, by = lower_bound(graph, limits, durations)
    peak, mean = usage.report(limits, now)
    return SimResult(
        now, critical_path(graph, durations), bound, by, len(graph), peak, mean, schedule
    )


class _Usage:
    """Integrates the use of each pool over virtual time."""

    def __init__(self, pools: tuple[str, ...]) -> None:
        self.pools = pools
        self.last = 0.0
        self.current = [0.0] * len(pools)
        self.area = [0.0] * len(pools)
        self.peak = [0.0] * len(pools)

    def mark(self, now: float, sched: Scheduler) -> None:
        dt = now - self.last
        for k, used in enumerate(self.current):
            self.area[k] += used * dt
        self.last = now
        self.current = list(sched.in_use)  # the scheduler's own accounting
        for k, used in enumerate(self.current):
            if used > self.peak[k]:
                self.peak[k] = used

    def report(self, limits: Limits, makespan: float) -> tuple[dict[str, float], dict[str, float]]:
        peak, mean = {}, {}
        for k, pool in enumerate(self.pools):
            cap = limits.capacity(pool)
            if cap > 0:
                peak[pool] = self.peak[k] / cap
                mean[pool] = self.area[k] / (cap * makespan) if makespan > 0 else 0.0
        return peak, mean
