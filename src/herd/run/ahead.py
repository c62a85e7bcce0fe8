"""Claiming ahead: the tasks a worker holds claimed but not started yet.

A worker of short tasks would otherwise wait for a store round trip between a task's end and the
next one's start, and make one transaction per task. Instead it keeps a few more tasks claimed
than run: when a task ends, the next one starts from this buffer at once, and the finish (with
the claim that refills the buffer) goes to the store while the new task runs — for several ended
tasks in one transaction.

How many: ``depth`` tasks per core, enough for a window of work at the mean duration of the tasks
this worker saw end (at most :data:`MOST` per core per 50 ms of window); none for tasks as long as
the window, where a round trip costs nothing worth saving and a held task would only wait here
while another worker could run it. The window is :data:`WINDOW` seconds, or :data:`TRIPS` of the
worker's mean round trip to the store when that is longer: the worker waits for each finish (its
cores run only the tasks started before it), so the work reported in one finish (half the window)
should outlast two round trips, or the cores idle a third of the time and more. A database worker's
round trip is a few milliseconds; one over HTTP 20-45 ms: with 50 ms of work held, HTTP workers of
`true` tasks sent a finish for every 1.5-5 tasks and ran at a sixth to a half of the database
workers' rate (docs/performance.md, issue 16). A buffered task holds its lease (renewed by the
heartbeat) and its workflow's named pools; the buffer holds at most the worker's whole of every
resource but ``cpu`` (so each of its tasks fits the worker), and ``depth`` times its cores. It is
refilled once it is down to half of that, and given back (``Store.release``) when the worker drains
or stops.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping

from herd.store.queued import Claimed

#: seconds of work per core a worker holds claimed ahead (at the mean duration of its tasks)
WINDOW = 0.05
#: the most tasks per core a worker holds claimed ahead per :data:`WINDOW` of its window (tasks
#: shorter than WINDOW / MOST count as that long)
MOST = 16
#: the window is at least this many of the worker's mean round trips to the store
TRIPS = 4
#: the longest an ended attempt waits to be reported (with others: one finish for them all), unless
#: half the window is longer (:meth:`Ahead.flush_after`)
FLUSH_AFTER = 0.05
#: weight of the newest duration in the running mean
WEIGHT = 0.2
_EPS = 1e-9


class Ahead:
    """The claimed, not started tasks of a worker, in claim (priority) order."""

    def __init__(self, capacity: Mapping[str, float], per_core: int | None = None) -> None:
        self.capacity = dict(capacity)
        #: fixed tasks per core (``--ahead``), else by the tasks' durations
        self.per_core = per_core
        self.mean: float | None = None  # running mean of the durations of ended tasks
        self.trip = 0.0  # running mean of the round trips of finishes and claims
        self.tasks: deque[Claimed] = deque()

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self) -> Iterator[Claimed]:
        return iter(self.tasks)

    def observe(self, seconds: float) -> None:
        """A task ran ``seconds`` (from its start to its end)."""
        mean = self.mean
        self.mean = seconds if mean is None else mean + WEIGHT * (seconds - mean)

    def observe_trip(self, seconds: float) -> None:
        """A finish or claim kept the worker waiting ``seconds`` for the store."""
        self.trip = seconds if not self.trip else self.trip + WEIGHT * (seconds - self.trip)

    def flush_after(self) -> float:
        """Seconds an ended attempt may wait to be reported while others run: half the window
        when that is longer than :data:`FLUSH_AFTER` (round trips to the store are slow)."""
        return max(FLUSH_AFTER, self.window() / 2)

    def window(self) -> float:
        """Seconds of work per core to hold ahead (and the most an ended attempt waits to be
        reported while others run: the finish carries about half of it)."""
        return max(WINDOW, TRIPS * self.trip)

    def depth(self) -> int:
        """Tasks per core to hold ahead now."""
        if self.per_core is not None:
            return self.per_core
        window = self.window()
        if self.mean is None or self.mean >= window:
            return 0
        return int(window / max(self.mean, WINDOW / MOST))

    def request(self, free: Mapping[str, float]) -> dict[str, float] | None:
        """What a claim may take now (the ``free`` of ``Store.claim``: the room of the running
        tasks plus the buffer's), or None: the buffer is above half full, or nothing fits."""
        depth = self.depth()
        cores = self.capacity.get("cpu")
        held = self.held()
        if depth and cores is not None:
            if held.get("cpu", 0.0) > cores * depth / 2 + _EPS:
                return None
            want = {r: self.capacity.get(r, v) - held.get(r, 0.0) for r, v in free.items()}
            want["cpu"] = free.get("cpu", 0.0) + cores * depth - held.get("cpu", 0.0)
        else:
            want = {r: v - held.get(r, 0.0) for r, v in free.items()}
        return want if want.get("cpu", 1.0) > _EPS else None

    def held(self) -> dict[str, float]:
        """The resources of the buffered tasks, summed."""
        out: dict[str, float] = {}
        for c in self.tasks:
            for name, amount in c.resources.items():
                out[name] = out.get(name, 0.0) + amount
        return out

    def next(self, free: Mapping[str, float]) -> Claimed | None:
        """The first buffered task, taken out of the buffer if it fits ``free`` now (in order:
        a big task is not passed by the smaller ones behind it)."""
        if not self.tasks or free.get("cpu", 1.0) <= _EPS:
            return None
        head = self.tasks[0]
        if any(free.get(r, amount) < amount - _EPS for r, amount in head.resources.items()):
            return None
        return self.tasks.popleft()

    def keyed(self) -> Iterator[tuple[tuple[int, str, int], Claimed]]:
        """The buffered attempts by ``(workflow_id, task, number)``."""
        return (((c.workflow_id, c.task.name, c.number), c) for c in self.tasks)

    def add(self, claimed: list[Claimed], *, trip: float | None = None) -> None:
        """Hold ``claimed``, which a claim that kept the worker ``trip`` seconds brought."""
        self.tasks.extend(claimed)
        if trip is not None:
            self.observe_trip(trip)

    def drop(self, keys: set[tuple[int, str, int]]) -> list[Claimed]:
        """Remove the buffered attempts ``(workflow_id, task, number)`` in ``keys``."""
        out = [c for k, c in self.keyed() if k in keys]
        if out:
            self.tasks = deque(c for k, c in self.keyed() if k not in keys)
        return out
