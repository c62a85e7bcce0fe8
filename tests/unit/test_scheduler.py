"""The pure scheduling core, driven directly: no processes, no clock, no sleeping."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herd.core.graph import build
from herd.core.model import Limits, Recovery, Task, TaskState, Workflow, frozen_map
from herd.core.scheduler import (
    Cancel,
    Decision,
    Finished,
    Kill,
    Policy,
    RetryAt,
    RetryDue,
    Scheduler,
    Start,
    Stop,
)


def wf(*tasks: Task) -> Workflow:
    return Workflow("t", tasks)


def task(name: str, needs: Sequence[str] = (), cpu: float = 1, **kw: object) -> Task:
    return Task(name, "true", needs=tuple(needs), resources=frozen_map({"cpu": cpu}), **kw)  # type: ignore[arg-type]


def starts(decisions: list[Decision]) -> list[int]:
    return [d.task for d in decisions if isinstance(d, Start)]


def names(s: Scheduler, ids: list[int]) -> list[str]:
    return [s.graph.name(i) for i in ids]


def run_virtual(
    s: Scheduler, durations: Sequence[float], fails: frozenset[int] = frozenset()
) -> list[tuple[float, str]]:
    """Drive ``s`` on a virtual clock, validating after every event; returns (start, name)."""
    now = 0.0
    events: list[tuple[float, int, int]] = []  # (time, kind 0=finish 1=retry, task)
    log: list[tuple[float, str]] = []

    def apply(decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Start):
                log.append((now, s.graph.name(d.task)))
                heapq.heappush(events, (now + durations[d.task], 0, d.task))
            elif isinstance(d, RetryAt):
                heapq.heappush(events, (d.at, 1, d.task))

    apply(s.start())
    s.validate()
    while events:
        now, kind, i = heapq.heappop(events)
        if kind == 0:
            apply(s.handle(Finished(i, ok=i not in fails, now=now)))
        else:
            apply(s.handle(RetryDue(i, now)))
        s.validate()
    assert not s.active
    return log


def test_dependencies_order_and_success() -> None:
    s = Scheduler(build(wf(task("a"), task("b", ["a"]), task("c", ["b"]))), Limits({"cpu": 4}))
    log = run_virtual(s, [1.0, 1.0, 1.0])
    assert log == [(0.0, "a"), (1.0, "b"), (2.0, "c")]
    assert s.succeeded


def test_never_exceeds_cpu_limit_and_packs_small_tasks_past_a_big_one() -> None:
    # big needs all 4 cores; while 'hold' runs, the small ones must not wait behind big
    w = wf(
        task("hold", priority=9), task("big", cpu=4, priority=5), task("s1"), task("s2"), task("s3")
    )
    s = Scheduler(build(w), Limits({"cpu": 4}))
    first = names(s, starts(s.start()))
    assert "big" not in first  # hold is using a core
    assert set(first) == {"hold", "s1", "s2", "s3"}
    s.validate()


def test_big_task_is_not_starved_by_a_stream_of_small_ones() -> None:
    small = [task(f"s{i}", priority=0) for i in range(200)]
    w = wf(task("hold", cpu=1, priority=9), task("big", cpu=4, priority=5), *small)
    s = Scheduler(build(w), Limits({"cpu": 4}), max_bypass=8)
    log = run_virtual(s, [1.0] * len(w.tasks))
    order = [name for _, name in log]
    # at most max_bypass small tasks start ahead of big once it is blocked
    assert order.index("big") <= 1 + 3 + 8
    assert s.succeeded


def test_semaphore_serialises() -> None:
    w = wf(*(task(f"t{i}", semaphore="tpc") for i in range(3)), task("free"))
    s = Scheduler(build(w), Limits({"cpu": 8}))
    log = run_virtual(s, [1.0] * 4)
    sem_starts = sorted(t for t, n in log if n.startswith("t"))
    assert sem_starts == [0.0, 1.0, 2.0]
    assert (0.0, "free") in log


def test_max_tasks_cap() -> None:
    s = Scheduler(build(wf(*(task(f"t{i}", cpu=0) for i in range(5)))), Limits({}, max_tasks=2))
    assert len(starts(s.start())) == 2


def test_critical_path_first() -> None:
    # 'long' heads a chain of 3, 'short' is alone: with 1 core the chain must start first
    w = wf(task("short"), task("long"), task("l2", ["long"]), task("l3", ["l2"]))
    s = Scheduler(build(w), Limits({"cpu": 1}))
    assert names(s, starts(s.start())) == ["long"]


def test_user_priority_beats_critical_path() -> None:
    w = wf(task("short", priority=1), task("long"), task("l2", ["long"]))
    s = Scheduler(build(w), Limits({"cpu": 1}))
    assert names(s, starts(s.start())) == ["short"]


def test_timeframe_policy_finishes_early_timeframes_first() -> None:
    w = wf(task("tf2", timeframe=2), task("tf1", timeframe=1), task("x", ["tf2"]))
    s = Scheduler(build(w), Limits({"cpu": 1}), policy=Policy.TIMEFRAME)
    assert names(s, starts(s.start())) == ["tf1"]


def test_retries_with_backoff_then_failure_cancels_descendants() -> None:
    w = wf(task("a", retries=2, backoff=2.0), task("b", ["a"]), task("c"))
    s = Scheduler(build(w), Limits({"cpu": 2}), keep_going=True)
    first = starts(s.start())
    assert names(s, first) == ["a", "c"]
    d = s.handle(Finished(0, ok=False, now=10.0))
    assert RetryAt(0, 12.0) in d
    assert s.state[0] is TaskState.RETRYING
    s.handle(RetryDue(0, 12.0))
    d = s.handle(Finished(0, ok=False, now=13.0))
    assert RetryAt(0, 17.0) in d  # back-off doubles
    s.handle(RetryDue(0, 17.0))
    d = s.handle(Finished(0, ok=False, now=18.0))
    assert Cancel(1, "needs 'a', which failed", cause=0) in d
    assert s.state[0] is TaskState.FAILED and s.state[1] is TaskState.CANCELLED
    s.validate()


def test_without_keep_going_nothing_new_starts_after_a_failure() -> None:
    w = wf(task("a"), task("b"), task("c"), task("d"))
    s = Scheduler(build(w), Limits({"cpu": 2}))
    assert names(s, starts(s.start())) == ["a", "b"]
    d = s.handle(Finished(0, ok=False, now=1.0))
    assert not starts(d)
    assert {x.task for x in d if isinstance(x, Cancel)} == {2, 3}
    s.handle(Finished(1, ok=True, now=2.0))
    assert not s.active and not s.succeeded
    s.validate()


def test_every_cancel_names_the_failure_that_caused_it() -> None:
    w = wf(task("a"), task("b", ["a"]), task("c", ["b"]), task("d"), task("e"))
    s = Scheduler(build(w), Limits({"cpu": 2}))
    s.start()
    d = s.handle(Finished(0, ok=False, now=1.0))
    assert Cancel(1, "needs 'a', which failed", cause=0) in d
    assert Cancel(2, "needs 'a', which failed", cause=0) in d
    assert Cancel(4, "not started: 'a' failed (--keep-going runs the rest)", cause=0) in d
    assert {x.cause for x in d if isinstance(x, Cancel)} == {0}
    s.validate()


def test_a_stopped_run_cancels_with_no_cause() -> None:
    s = Scheduler(build(wf(task("a"), task("b"), task("c", ["a"]))), Limits({"cpu": 1}))
    s.start()
    d = s.handle(Stop(now=1.0))
    assert [x.cause for x in d if isinstance(x, Cancel)] == [None, None]
    s.validate()


def test_stop_cancels_pending_and_running_become_cancelled() -> None:
    s = Scheduler(build(wf(task("a"), task("b"), task("c", ["a"]))), Limits({"cpu": 1}))
    s.start()
    d = s.handle(Stop(now=1.0))
    assert {x.task for x in d if isinstance(x, Cancel)} == {1, 2}
    s.handle(Finished(0, ok=False, now=2.0))
    assert s.state[0] is TaskState.CANCELLED
    assert not s.active
    s.validate()


def test_memory_recovery_retries_with_more_memory_capped_at_limit() -> None:
    t = Task(
        "a",
        "x",
        resources=frozen_map({"cpu": 1, "mem": 1000}),
        recovery=Recovery(mem_factor=2.0, attempts=2),
    )
    s = Scheduler(build(wf(t)), Limits({"cpu": 1, "mem": 3000}))
    first = s.start()
    assert first[0].resources["mem"] == 1000  # type: ignore[union-attr]
    d = s.handle(Finished(0, ok=False, now=1.0, kill=Kill.MEMORY))
    assert starts(d) == [0] and d[0].resources["mem"] == 2000  # type: ignore[union-attr]
    d = s.handle(Finished(0, ok=False, now=2.0, kill=Kill.MEMORY))
    assert d[0].resources["mem"] == 3000  # type: ignore[union-attr]
    d = s.handle(Finished(0, ok=False, now=3.0, kill=Kill.MEMORY))
    assert s.state[0] is TaskState.FAILED  # recoveries used up, no retries
    s.validate()


def test_timeout_recovery_scales_timeout() -> None:
    t = Task("a", "x", timeout=10.0, recovery=Recovery(time_factor=3.0))
    s = Scheduler(build(wf(t)), Limits({"cpu": 1}))
    s.start()
    d = s.handle(Finished(0, ok=False, now=10.0, kill=Kill.TIMEOUT))
    assert isinstance(d[0], Start) and d[0].timeout == 30.0


def test_todo_subset_skips_done_tasks() -> None:
    s = Scheduler(build(wf(task("a"), task("b", ["a"]))), Limits({"cpu": 1}), todo=[1])
    assert s.state[0] is TaskState.SKIPPED
    assert names(s, starts(s.start())) == ["b"]


def test_illegal_transition_names_task_and_states() -> None:
    from herd.errors import TransitionError

    s = Scheduler(build(wf(task("a"))), Limits({"cpu": 1}))
    with pytest.raises(TransitionError, match="task 'a' cannot go from ready to succeeded"):
        s._set(0, TaskState.SUCCEEDED)


# --- properties -----------------------------------------------------------------------------


@st.composite
def random_workflows(draw: st.DrawFn) -> tuple[Workflow, Limits, list[float], frozenset[int]]:
    n = draw(st.integers(1, 25))
    tasks = []
    for i in range(n):
        needs = draw(st.sets(st.integers(0, i - 1), max_size=3)) if i else set()
        res = {
            "cpu": draw(st.sampled_from([0, 0.5, 1, 2, 3])),
            "mem": draw(st.sampled_from([0, 100, 500, 1000])),
            "tape": draw(st.sampled_from([0, 0, 1])),
        }
        tasks.append(
            Task(
                f"t{i}",
                "true",
                needs=tuple(f"t{j}" for j in sorted(needs)),
                resources=frozen_map(res),
                semaphore=draw(st.sampled_from([None, None, "s"])),
                priority=draw(st.integers(0, 2)),
                retries=draw(st.integers(0, 2)),
                backoff=0.5,
            )
        )
    limits = Limits(
        {"cpu": draw(st.sampled_from([3, 4, 8])), "mem": 1000, "tape": 1},
        max_tasks=draw(st.sampled_from([None, 1, 3])),
    )
    durations = draw(st.lists(st.sampled_from([0.5, 1.0, 3.0]), min_size=n, max_size=n))
    fails = frozenset(draw(st.sets(st.integers(0, n - 1), max_size=3)))
    return Workflow("rand", tuple(tasks)), limits, durations, fails


@settings(max_examples=150, deadline=None)
@given(random_workflows(), st.sampled_from(list(Policy)), st.booleans())
def test_invariants_hold_on_random_dags(
    case: tuple[Workflow, Limits, list[float], frozenset[int]], policy: Policy, keep_going: bool
) -> None:
    w, limits, durations, fails = case
    graph = build(w)
    s = Scheduler(graph, limits, policy=policy, keep_going=keep_going)
    log = run_virtual(s, durations, fails)
    started = {n for _, n in log}
    for _, name in log:
        i = graph.index[name]
        for p in graph.parents(i):
            assert s.state[p] is TaskState.SUCCEEDED, (name, graph.name(p))
    if not fails:
        assert s.succeeded and started == {t.name for t in w.tasks}
    # deterministic: the same inputs give the same schedule
    again = Scheduler(graph, limits, policy=policy, keep_going=keep_going)
    assert run_virtual(again, durations, fails) == log


class _PushedOneByOne(Scheduler):
    """The set-up before the bulk one: every ready task pushed on its class's heap in turn."""

    def _init_todo(self, todo: set[int]) -> None:
        ptr, ids = self.graph.parent_ptr, self.graph.parent_ids
        ready = []
        for i in sorted(todo):
            unmet = sum(1 for p in ids[ptr[i] : ptr[i + 1]] if p in todo)
            self.unmet[i] = unmet
            self.state[i] = TaskState.WAITING
            self.counts[TaskState.SKIPPED] -= 1
            self.counts[TaskState.WAITING] += 1
            if unmet == 0:
                ready.append(i)
        for i in ready:
            self._set(i, TaskState.READY)
            self._push(i)


@settings(max_examples=150, deadline=None)
@given(random_workflows(), st.sampled_from(list(Policy)), st.integers(0, 2**16))
def test_the_bulk_set_up_schedules_as_pushing_each_ready_task_did(
    case: tuple[Workflow, Limits, list[float], frozenset[int]], policy: Policy, subset: int
) -> None:
    w, limits, durations, fails = case
    graph = build(w)
    todo = [i for i in range(len(graph)) if subset >> (i % 16) & 1] if subset % 3 else None
    bulk = Scheduler(graph, limits, policy=policy, todo=todo)
    pushed = _PushedOneByOne(graph, limits, policy=policy, todo=todo)
    assert bulk.counts == pushed.counts and bulk.state == pushed.state
    assert bulk.unmet == pushed.unmet
    assert run_virtual(bulk, durations, fails) == run_virtual(pushed, durations, fails)
