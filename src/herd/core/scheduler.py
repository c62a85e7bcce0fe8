"""The scheduling core: a pure state machine. Events in, decisions out.

The scheduler never reads a clock, a file or a process: drivers (``run/local.py`` for real
processes, ``run/simulate.py`` for a virtual clock) feed it :class:`Finished`, :class:`RetryDue`,
:class:`Stop` and :class:`AddTasks` events carrying ``now``, and carry out the :class:`Start`,
:class:`RetryAt`, :class:`Cancel` and :class:`Settled` decisions it returns. The same inputs always
give the same decisions.

Policy
------
- **Order.** Ready tasks are ordered by a key: user ``priority`` first (higher first), then the
  policy: ``critical-path`` (default) puts the longest remaining chain of work first (upward rank,
  from expected durations when known — a task without one counts the mean of the known ones —
  else unit durations), ``timeframe`` finishes early timeframes
  first (O2DPG's order), ``fifo`` keeps declaration order. Ties: declaration order.
- **Packing without head-of-line blocking.** At every decision point the scheduler starts, in key
  order, every ready task that fits the free resources, the ``-j`` cap and its semaphore; a task
  that does not fit does not stop smaller ones behind it from starting.
- **No starvation.** When the first task in key order does not fit, it is *blocked*; each task
  started past it counts as a bypass. After ``max_bypass`` bypasses the scheduler *drains*: it
  starts nothing more until the blocked task has started, so the big task gets its resources as
  soon as running tasks release them. The bypass count resets whenever the blocked task changes.
- **Failure.** A failed attempt is retried after ``backoff * 2**(k-1)`` seconds while retries are
  left (:class:`RetryAt`, then the driver sends :class:`RetryDue`). After a watchdog kill for
  memory or time, a task with a :class:`~herd.core.model.Recovery` policy is retried at once with memory
  or timeout scaled up (capped at the run's limit). A task that finally fails cancels its
  descendants; without ``keep_going`` nothing new starts after the first final failure (running
  tasks finish), as the O2DPG runner does. Each :class:`Cancel` names that failed task as its
  ``cause`` (None when the run was stopped), which the store keeps beside the reason's words.
- **Tasks added while running.** :class:`AddTasks` appends tasks to the graph (old ids and edges
  unchanged, :func:`herd.core.graph.extend`); they wait for their parents like any task, and are
  cancelled at once when one already failed. With a *group*, a running task stands for them (a
  Pegasus sub-workflow job): it gives back its resources and ``-j`` slot, and ends with them —
  succeeded when all succeed, failed at the first that fails finally (cancelled when the run
  stops) — which :class:`Settled` reports.

State collections
-----------------
``state[i]``     the :class:`~herd.core.model.TaskState` of every task
``unmet[i]``     how many of a task's parents have not succeeded yet
``_classes``     ready tasks grouped by (resource demand, semaphore); one heap of keys per class
``_running``     running task -> the demand it holds
``_used``        resources in use, per limited resource
``_held``        semaphores held by running tasks
``attempts[i]``  attempts started in this run
``_groups``      group task -> how many of its members have not finished
``_member_of``   member -> its group, until the member finishes
``_settling``    members finished during the current event, for their groups to be settled
``_cancelled_by`` cancelled task -> the task whose final failure cancelled it (:class:`Cancel`)
``_first_failure`` the first task that failed finally, None while none has
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from herd.core.events import (
    AddTasks,
    Cancel,
    Decision,
    Event,
    Finished,
    RetryAt,
    RetryDue,
    Settled,
    Start,
    Stop,
)
from herd.core.graph import Graph
from herd.core.model import Kill, Limits, TaskState
from herd.core.policy import EPS, Again, Policy, after_failure, order_keys
from herd.errors import TransitionError

#: the scheduler's API: its own names and the events and decisions it speaks (herd.core.events)
__all__ = [
    "TRANSITIONS",
    "AddTasks",
    "Again",
    "Cancel",
    "Decision",
    "Event",
    "Finished",
    "Kill",
    "Policy",
    "RetryAt",
    "RetryDue",
    "Scheduler",
    "Settled",
    "Start",
    "Stop",
    "after_failure",
    "order_keys",
]

W, R, RUN, RETRY = TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.RETRYING
OK, FAIL, CANCEL, SKIP = (
    TaskState.SUCCEEDED,
    TaskState.FAILED,
    TaskState.CANCELLED,
    TaskState.SKIPPED,
)

#: every legal move; anything else raises TransitionError
TRANSITIONS: frozenset[tuple[TaskState, TaskState]] = frozenset(
    {
        (W, R),
        (W, CANCEL),
        (R, RUN),
        (R, CANCEL),
        (RUN, OK),
        (RUN, FAIL),
        (RUN, RETRY),
        (RUN, CANCEL),  # stopped while running
        (RUN, R),  # recovery: rerun at once with more memory or time
        (RETRY, R),
        (RETRY, CANCEL),
    }
)


@dataclass(slots=True)
class _Class:
    """Ready tasks that need the same resources and semaphore: all fit or none does."""

    demand: tuple[float, ...]
    semaphore: str | None
    heap: list[tuple[tuple[float, ...], int]] = field(default_factory=list)


class Scheduler:
    """Decides which task runs next. See the module docstring for the policy."""

    def __init__(
        self,
        graph: Graph,
        limits: Limits,
        *,
        todo: Iterable[int] | None = None,
        policy: Policy = Policy.CRITICAL_PATH,
        durations: Sequence[float | None] | None = None,
        keep_going: bool = False,
        max_bypass: int = 32,
    ) -> None:
        self.graph = graph
        self.limits = limits
        self.policy = policy
        self.keep_going = keep_going
        self.max_bypass = max_bypass
        n = len(graph)
        self.pools = tuple(
            name for name, cap in sorted(limits.resources.items()) if cap != float("inf")
        )
        self._cap = tuple(float(limits.resources[p]) for p in self.pools)
        self._used = [0.0] * len(self.pools)
        self._max_tasks = limits.max_tasks or n or 1
        self.state: list[TaskState] = [SKIP] * n
        self.unmet = [0] * n
        self.attempts = [0] * n
        self._recoveries = [0] * n
        self._overrides: dict[int, tuple[dict[str, float], float | None]] = {}
        self._running: dict[int, tuple[float, ...]] = {}
        self._held: set[str] = set()
        self._classes: dict[tuple[tuple[float, ...], str | None], _Class] = {}
        #: id of a task's resource map -> (that map, kept alive so that its id is not reused by
        #: another when tasks are added; its demand vector)
        self._vectors: dict[int, tuple[Mapping[str, float], tuple[float, ...]]] = {}
        self._blocked: int | None = None
        self._bypass = 0
        #: the first task that failed finally: without keep_going, it halts the run
        self._first_failure: int | None = None
        #: cancelled task -> the task whose final failure cancelled it
        self._cancelled_by: dict[int, int] = {}
        self._stopped = False
        self.counts = dict.fromkeys(TaskState, 0)
        self.counts[SKIP] = n
        #: group task -> how many of its members have not finished (see AddTasks)
        self._groups: dict[int, int] = {}
        #: member -> its group, until the member finishes
        self._member_of: dict[int, int] = {}
        #: members that finished since the last event was handled
        self._settling: list[int] = []
        todo_set = set(range(n)) if todo is None else set(todo)
        self._keys = order_keys(graph, todo_set, policy, durations)
        self._init_todo(todo_set)

    # --- set-up -----------------------------------------------------------------------------

    def _init_todo(self, todo: set[int]) -> None:
        """Every task to run waits, or is ready when none of what it needs is to run. The ready
        ones go to their classes' heaps in bulk, each heap made once (``heapify``, linear)."""
        ptr, ids = self.graph.parent_ptr, self.graph.parent_ids
        keys, state, unmet_of = self._keys, self.state, self.unmet
        ready = 0
        for i in sorted(todo):
            unmet = sum(1 for p in ids[ptr[i] : ptr[i + 1]] if p in todo)
            unmet_of[i] = unmet
            if unmet:
                state[i] = W
                continue
            state[i] = R
            ready += 1
            self._class_of(i).heap.append((keys[i], i))
        for cls in self._classes.values():
            heapq.heapify(cls.heap)
        self.counts[SKIP] -= len(todo)
        self.counts[W] += len(todo) - ready
        self.counts[R] += ready

    # --- public -----------------------------------------------------------------------------

    def start(self) -> list[Decision]:
        """The first decisions: start what can start."""
        return self._fill()

    def handle(self, event: Event) -> list[Decision]:
        """Take one event and return what to do now."""
        if isinstance(event, Finished):
            out = self._finished(event)
        elif isinstance(event, RetryDue):
            out = self._retry_due(event)
        elif isinstance(event, Stop):
            out = self._stop(event)
        else:
            out = self._add(event)
        if self._settling:
            out.extend(self._settle())
        out.extend(self._fill())
        return out

    @property
    def active(self) -> bool:
        """True while something runs, waits for a retry, or can still start."""
        c = self.counts
        return bool(c[RUN] or c[RETRY] or c[R] or c[W])

    @property
    def succeeded(self) -> bool:
        """Everything in this run succeeded (or was done before)."""
        c = self.counts
        return not self.active and c[FAIL] == 0 and c[CANCEL] == 0

    @property
    def _halted(self) -> bool:
        return self._stopped or (self._first_failure is not None and not self.keep_going)

    @property
    def in_use(self) -> tuple[float, ...]:
        """Resources in use now, in :attr:`pools` order."""
        return tuple(self._used)

    def used(self) -> dict[str, float]:
        """Resources in use now, per limited pool."""
        return dict(zip(self.pools, self._used, strict=True))

    def demand(self, i: int) -> dict[str, float]:
        """What task ``i`` asks for now (after any recovery scaling)."""
        override = self._overrides.get(i)
        if override is not None:
            return override[0]
        return self.graph.tasks[i].demand

    # --- transitions ------------------------------------------------------------------------

    def _set(self, i: int, new: TaskState) -> None:
        old = self.state[i]
        if (old, new) not in TRANSITIONS:
            raise TransitionError(self.graph.name(i), old.value, new.value)
        self.state[i] = new
        self.counts[old] -= 1
        self.counts[new] += 1
        if self._member_of and i in self._member_of and new.finished:
            self._settling.append(i)

    def _finished(self, ev: Finished) -> list[Decision]:
        i = ev.task
        self._release(i)
        if ev.ok:
            self._set(i, OK)
            return self._unlock_children(i)
        if self._stopped:
            self._set(i, CANCEL)
            return []
        if ev.kill is not None and self._recover(i, ev.kill):
            self._set(i, R)
            self._push(i)
            return []
        task = self.graph.tasks[i]
        if self.attempts[i] - self._recoveries[i] <= task.retries and not self._halted:
            self._set(i, RETRY)
            k = self.attempts[i] - self._recoveries[i]
            return [RetryAt(i, ev.now + task.backoff * 2 ** (k - 1))]
        self._set(i, FAIL)
        return self._failed_finally(i)

    def _failed_finally(self, i: int) -> list[Decision]:
        """Task ``i`` failed for good: cancel what needs it and, without keep_going, the rest."""
        if self._first_failure is None:
            self._first_failure = i
        out = self._cancel_descendants(i)
        if not self.keep_going:
            out += self._cancel_pending(*self._halt_reason())
        return out

    def _halt_reason(self) -> tuple[str, int | None]:
        """Why nothing more starts (see :attr:`_halted`), and the failure that caused it."""
        i = self._first_failure
        if self._stopped or i is None:
            return "not started: the run is stopping", None
        return f"not started: '{self.graph.name(i)}' failed (--keep-going runs the rest)", i

    def _recover(self, i: int, kill: Kill) -> bool:
        policy = self.graph.tasks[i].recovery
        if policy is None or self._recoveries[i] >= policy.attempts or self._halted:
            return False
        self._recoveries[i] += 1
        res, timeout = self._overrides.get(i, (self.demand(i), self.graph.tasks[i].timeout))
        res = dict(res)
        if kill is Kill.MEMORY and res.get("mem"):
            cap = self.limits.capacity("mem")
            res["mem"] = min(res["mem"] * policy.mem_factor, cap)
        if kill is Kill.TIMEOUT and timeout is not None:
            timeout = timeout * policy.time_factor
        self._overrides[i] = (res, timeout)
        return True

    def _retry_due(self, ev: RetryDue) -> list[Decision]:
        i = ev.task
        if self.state[i] is not RETRY:
            return []  # cancelled meanwhile (stop); the timer is stale
        self._set(i, R)
        self._push(i)
        return []

    def _stop(self, ev: Stop) -> list[Decision]:
        self._stopped = True
        return self._cancel_pending(ev.reason)

    def _cancel_pending(self, reason: str, cause: int | None = None) -> list[Decision]:
        """Cancel every task that is not running and not finished."""
        out: list[Decision] = []
        for i, s in enumerate(self.state):
            if s is W or s is R or s is RETRY:
                out.append(self._cancel(i, reason, cause))
        self._classes.clear()
        return out

    def _cancel(self, i: int, reason: str, cause: int | None) -> Cancel:
        self._set(i, CANCEL)
        if cause is not None:
            self._cancelled_by[i] = cause
        return Cancel(i, reason, cause)

    def _unlock_children(self, i: int) -> list[Decision]:
        g = self.graph
        for c in g.child_ids[g.child_ptr[i] : g.child_ptr[i + 1]]:
            if self.state[c] is W:
                self.unmet[c] -= 1
                if self.unmet[c] == 0:
                    self._set(c, R)
                    self._push(c)
        return []

    def _cancel_descendants(self, i: int) -> list[Decision]:
        """Cancel the waiting descendants of ``i``, which failed finally."""
        g = self.graph
        reason = f"needs '{g.name(i)}', which failed"
        out: list[Decision] = []
        stack = [i]
        while stack:
            j = stack.pop()
            for c in g.child_ids[g.child_ptr[j] : g.child_ptr[j + 1]]:
                if self.state[c] is W:
                    out.append(self._cancel(c, reason, i))
                    stack.append(c)
        return out

    # --- tasks added while running ---------------------------------------------------------

    def _add(self, ev: AddTasks) -> list[Decision]:
        start, n = len(self.graph), len(ev.graph)
        if ev.todo and not (min(ev.todo) >= start and max(ev.todo) < n):
            raise ValueError("AddTasks.todo names a task that is not new")
        self.graph = ev.graph
        self._max_tasks = self.limits.max_tasks or n or 1
        grow = n - start
        self.state.extend([SKIP] * grow)
        self.counts[SKIP] += grow
        for values in (self.unmet, self.attempts, self._recoveries):
            values.extend([0] * grow)
        durations = [t.duration for t in ev.graph.tasks]
        self._keys.update(order_keys(self.graph, set(ev.todo), self.policy, durations))
        out: list[Decision] = []
        if ev.group is not None:
            out += self._open_group(ev.group, ev.todo)
        for i in sorted(ev.todo):
            out += self._join(i)
        if self._halted:
            out += self._cancel_pending(*self._halt_reason())
        return out

    def _open_group(self, g: int, members: frozenset[int]) -> list[Decision]:
        if self.state[g] is not RUN or g in self._groups:
            raise ValueError(f"task {self.graph.name(g)!r} is not running: it cannot be a group")
        self._release(g)  # waits for its members: computes nothing
        self._running[g] = (0.0,) * len(self.pools)
        self._groups[g] = len(members)
        self._member_of.update(dict.fromkeys(members, g))
        return [] if members else self._end_group(g, True, "")

    def _join(self, i: int) -> list[Decision]:
        """A new task to run: waiting for its parents, or ready, or cancelled when one failed."""
        parents = self.graph.parents(i)
        self.state[i] = W
        self.counts[SKIP] -= 1
        self.counts[W] += 1
        failed = [p for p in parents if self.state[p] is FAIL]
        if failed:
            return [
                self._cancel(i, f"needs '{self.graph.name(failed[0])}', which failed", failed[0])
            ]
        cancelled = [p for p in parents if self.state[p] is CANCEL]
        if cancelled:
            p = cancelled[0]
            why = f"needs '{self.graph.name(p)}', which was cancelled"
            return [self._cancel(i, why, self._cancelled_by.get(p))]
        self.unmet[i] = sum(1 for p in parents if self.state[p] not in (OK, SKIP))
        if self.unmet[i] == 0:
            self._set(i, R)
            self._push(i)
        return []

    def _settle(self) -> list[Decision]:
        """End the groups whose members finished: at the first failure, or when all are done."""
        out: list[Decision] = []
        while self._settling:
            i = self._settling.pop(0)  # in the order they finished: the first cause is named
            g = self._member_of.pop(i, None)
            if g is None or g not in self._groups:
                continue  # its group already ended, at an earlier member's failure
            self._groups[g] -= 1
            if self.state[i] is not OK:
                why = "failed" if self.state[i] is FAIL else "was cancelled"
                out += self._end_group(g, False, f"'{self.graph.name(i)}' {why}")
            elif self._groups[g] == 0:
                out += self._end_group(g, True, "")
        return out

    def _end_group(self, g: int, ok: bool, reason: str) -> list[Decision]:
        del self._running[g]
        if self._groups.pop(g):  # members still run or wait: they no longer hold the group
            for member in [m for m, group in self._member_of.items() if group == g]:
                del self._member_of[member]
        if ok:
            self._set(g, OK)
            return [Settled(g, True), *self._unlock_children(g)]
        if self._stopped:
            self._set(g, CANCEL)
            return [Settled(g, False, reason)]
        self._set(g, FAIL)
        return [Settled(g, False, reason), *self._failed_finally(g)]

    # --- packing ----------------------------------------------------------------------------

    def _demand_vector(self, i: int) -> tuple[float, ...]:
        """What ``i`` asks of each limited pool, in :attr:`pools` order. Tasks share a few
        resource maps: the vector of each is made once (a recovery's override is not kept)."""
        if i in self._overrides:
            res = self._overrides[i][0]
            return tuple(float(res.get(p, 0.0)) for p in self.pools)
        resources = self.graph.tasks[i].resources
        kept = self._vectors.get(id(resources))
        if kept is None:
            res = self.graph.tasks[i].demand
            kept = self._vectors[id(resources)] = (
                resources,
                tuple(float(res.get(p, 0.0)) for p in self.pools),
            )
        return kept[1]

    def _class_of(self, i: int) -> _Class:
        """The class of ready task ``i``: its demand vector and semaphore (made when new)."""
        semaphore = self.graph.tasks[i].semaphore
        demand = self._demand_vector(i)
        cls = self._classes.get((demand, semaphore))
        if cls is None:
            cls = self._classes[(demand, semaphore)] = _Class(demand, semaphore)
        return cls

    def _push(self, i: int) -> None:
        heapq.heappush(self._class_of(i).heap, (self._keys[i], i))

    def _fits(self, demand: tuple[float, ...]) -> bool:
        used, cap = self._used, self._cap
        for k, d in enumerate(demand):  # noqa: SIM110 (a loop: twice as fast as all() here)
            if d and used[k] + d > cap[k] + EPS:
                return False
        return True

    def _fill(self) -> list[Decision]:
        """Start, in key order, every ready task that fits (see the module docstring)."""
        if self._halted:
            return []
        out: list[Decision] = []
        heads = [(c.heap[0][0], id(c), c) for c in self._classes.values() if c.heap]
        heapq.heapify(heads)
        top = True  # the first head looked at is the first task in key order
        while heads and len(self._running) - len(self._groups) < self._max_tasks:
            _, _, cls = heads[0]
            i = cls.heap[0][1]
            if cls.semaphore is not None and cls.semaphore in self._held:
                heapq.heappop(heads)  # waits for the semaphore, not for resources
                continue
            if not self._fits(cls.demand):
                heapq.heappop(heads)  # nothing in this class can start until something ends
                if top and not self._note_blocked(i):
                    break  # drain: let the blocked task have the next free resources
                top = False
                continue
            heapq.heappop(cls.heap)
            out.append(self._launch(i, cls))
            if not top:
                self._bypass += 1
            elif self._blocked == i:
                self._blocked, self._bypass = None, 0
            if cls.heap:
                heapq.heapreplace(heads, (cls.heap[0][0], id(cls), cls))
            else:
                heapq.heappop(heads)
        return out

    def _note_blocked(self, i: int) -> bool:
        """Record that ``i``, first in order, cannot start; False when it is time to drain."""
        if self._blocked != i:
            self._blocked, self._bypass = i, 0
        return self._bypass < self.max_bypass

    def _launch(self, i: int, cls: _Class) -> Start:
        self._set(i, RUN)
        self.attempts[i] += 1
        self._running[i] = cls.demand
        for k, d in enumerate(cls.demand):
            self._used[k] += d
        if cls.semaphore is not None:
            self._held.add(cls.semaphore)
        res, timeout = self._overrides.get(i, (None, self.graph.tasks[i].timeout))
        return Start(i, self.attempts[i], res if res is not None else self.demand(i), timeout)

    def _release(self, i: int) -> None:
        demand = self._running.pop(i)
        for k, d in enumerate(demand):
            self._used[k] -= d
        sem = self.graph.tasks[i].semaphore
        if sem is not None:
            self._held.discard(sem)

    # --- invariants -------------------------------------------------------------------------

    def validate(self) -> None:
        """Check every invariant; tests call this after every event."""
        n = len(self.graph)
        assert sum(self.counts.values()) == n
        for s in TaskState:
            assert self.counts[s] == sum(1 for x in self.state if x is s), s
        running = [i for i in range(n) if self.state[i] is RUN]
        assert sorted(running) == sorted(self._running)
        assert len(running) - len(self._groups) <= self._max_tasks
        for g, left in self._groups.items():
            assert self.state[g] is RUN and not any(self._running[g]), self.graph.name(g)
            members = [m for m, group in self._member_of.items() if group == g]
            assert left == len(members), (self.graph.name(g), left, members)
            assert all(not self.state[m].finished for m in members), self.graph.name(g)
        for k, cap in enumerate(self._cap):
            used = sum(self._running[i][k] for i in running)
            assert abs(used - self._used[k]) < 1e-6, (self.pools[k], used, self._used[k])
            assert used <= cap + 1e-6, (self.pools[k], used, cap)
        sems = [self.graph.tasks[i].semaphore for i in running if self.graph.tasks[i].semaphore]
        assert len(sems) == len(set(sems)), sems
        for i, cause in self._cancelled_by.items():
            assert self.state[i] is CANCEL and self.state[cause] is FAIL, self.graph.name(i)
        queued = sorted(i for c in self._classes.values() for _, i in c.heap)
        assert queued == sorted(i for i in range(n) if self.state[i] is R), "ready != queued"
        for i in range(n):
            if self.state[i] in (W, R):
                done = sum(1 for p in self.graph.parents(i) if self.state[p] in (OK, SKIP))
                assert self.unmet[i] == len(self.graph.parents(i)) - done, self.graph.name(i)
                assert (self.unmet[i] == 0) == (self.state[i] is R), self.graph.name(i)
