"""Tasks added to a running scheduler (AddTasks) and the group task that stands for them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from herd.core.graph import Graph, build, extend
from herd.core.model import Limits, Task, TaskState, Workflow, frozen_map
from herd.core.scheduler import (
    AddTasks,
    Cancel,
    Decision,
    Finished,
    Scheduler,
    Settled,
    Start,
    Stop,
)
from herd.errors import ValidationError


def task(name: str, needs: Sequence[str] = (), **kw: object) -> Task:
    return Task(name, "true", needs=tuple(needs), resources=frozen_map({"cpu": 1}), **kw)  # type: ignore[arg-type]


def started(s: Scheduler, decisions: list[Decision]) -> list[str]:
    return [s.graph.name(d.task) for d in decisions if isinstance(d, Start)]


def handle(s: Scheduler, event: object) -> list[Decision]:
    out = s.handle(event)  # type: ignore[arg-type]
    s.validate()
    return out


def outer(keep_going: bool = False, cpu: float = 2) -> tuple[Scheduler, Graph]:
    graph = build(Workflow("t", (task("prep"), task("sub", ["prep"]), task("after", ["sub"]))))
    s = Scheduler(graph, Limits({"cpu": cpu}), keep_going=keep_going)
    return s, graph


def expand(s: Scheduler, now: float = 1.0) -> tuple[Graph, list[Decision]]:
    """prep runs and succeeds, then 'sub' starts and turns into a group of two tasks."""
    assert started(s, s.start()) == ["prep"]
    assert started(s, handle(s, Finished(0, True, 0.5))) == ["sub"]
    graph = extend(s.graph, [task("sub/a"), task("sub/b", ["sub/a"])])
    return graph, handle(s, AddTasks(graph, frozenset({3, 4}), now, group=1))


def test_a_group_holds_no_slot_and_ends_when_its_members_succeed() -> None:
    s, _ = outer(cpu=1)  # one core: the group task must not keep it
    _, out = expand(s)
    assert started(s, out) == ["sub/a"]
    assert s.used() == {"cpu": 1.0} and s.state[1] is TaskState.RUNNING
    assert started(s, handle(s, Finished(3, True, 2.0))) == ["sub/b"]
    out = handle(s, Finished(4, True, 3.0))
    assert [d for d in out if isinstance(d, Settled)] == [Settled(1, True)]
    assert started(s, out) == ["after"]
    handle(s, Finished(2, True, 4.0))
    assert s.succeeded and not s.active


def test_a_failed_member_fails_the_group_and_cancels_what_needs_it() -> None:
    s, _ = outer()
    expand(s)
    out = handle(s, Finished(3, False, 2.0))
    assert Settled(1, False, "'sub/a' failed") in out
    cancelled = {s.graph.name(d.task) for d in out if isinstance(d, Cancel)}
    assert cancelled == {"sub/b", "after"}
    assert s.state[1] is TaskState.FAILED and not s.active


def test_what_a_failed_group_cancels_names_the_group_as_cause() -> None:
    s, _ = outer(keep_going=True)
    expand(s)
    out = handle(s, Finished(3, False, 2.0))
    causes = {s.graph.name(d.task): d.cause for d in out if isinstance(d, Cancel)}
    assert causes == {"sub/b": 3, "after": 1}  # sub/b needs sub/a; after needs the group
    s, _ = outer()  # without keep_going, sub/a's failure stops everything else first
    expand(s)
    out = handle(s, Finished(3, False, 2.0))
    assert {d.cause for d in out if isinstance(d, Cancel)} == {3}


def test_tasks_added_after_a_failure_are_cancelled_with_its_cause() -> None:
    graph = build(Workflow("t", (task("a"), task("b", ["a"]), task("c"))))
    s = Scheduler(graph, Limits({"cpu": 4}), keep_going=True)
    s.start()
    assert [d.cause for d in handle(s, Finished(0, False, 1.0)) if isinstance(d, Cancel)] == [0]
    bigger = extend(graph, [task("x", ["a"]), task("y", ["b"]), task("z", ["c"])])
    out = handle(s, AddTasks(bigger, frozenset({3, 4, 5}), 2.0))
    assert Cancel(3, "needs 'a', which failed", cause=0) in out
    assert Cancel(4, "needs 'b', which was cancelled", cause=0) in out
    assert started(s, out) == []  # z waits for c, which runs
    assert s.state[5] is TaskState.WAITING


def test_tasks_added_to_a_halted_run_are_cancelled_with_the_first_failure() -> None:
    graph = build(Workflow("t", (task("a"), task("b"))))
    s = Scheduler(graph, Limits({"cpu": 4}))
    s.start()
    handle(s, Finished(0, False, 1.0))
    out = handle(s, AddTasks(extend(graph, [task("x")]), frozenset({2}), 2.0))
    assert out == [Cancel(2, "not started: 'a' failed (--keep-going runs the rest)", cause=0)]


def test_a_stop_cancels_the_group() -> None:
    s, _ = outer()
    expand(s)
    out = handle(s, Stop(2.0))
    assert Settled(1, False, "'sub/b' was cancelled") in out
    assert s.state[1] is TaskState.CANCELLED
    handle(s, Finished(3, False, 2.5))  # the running member ends, killed
    assert not s.active


def test_added_tasks_without_a_group_run_after_their_parents() -> None:
    graph = build(Workflow("t", (task("a"),)))
    s = Scheduler(graph, Limits({"cpu": 4}))
    assert started(s, s.start()) == ["a"]
    bigger = extend(graph, [task("b", ["a"]), task("c")])
    assert started(s, handle(s, AddTasks(bigger, frozenset({1, 2}), 0.1))) == ["c"]
    assert started(s, handle(s, Finished(0, True, 0.2))) == ["b"]


def test_an_empty_group_succeeds_at_once_and_old_ids_cannot_be_added() -> None:
    s, graph = outer()
    s.start()
    handle(s, Finished(0, True, 0.5))
    out = handle(s, AddTasks(graph, frozenset(), 1.0, group=1))
    assert Settled(1, True) in out and started(s, out) == ["after"]
    with pytest.raises(ValueError, match="not new"):
        s.handle(AddTasks(graph, frozenset({0}), 2.0))


def test_extend_keeps_old_edges_adds_file_edges_into_new_tasks_only() -> None:
    make = Task("make", "true", outputs=("x",))
    use_old = Task("use_old", "true", inputs=("y",))
    graph = build(Workflow("t", (make, use_old)))
    bigger = extend(graph, [Task("new", "true", inputs=("x",), outputs=("y",))])
    assert list(bigger.parents(2)) == [0]
    assert list(bigger.parents(1)) == []  # an old task gains no parent
    with pytest.raises(ValidationError, match="also written"):
        extend(graph, [Task("again", "true", outputs=("x",))])
    with pytest.raises(ValidationError, match="cycle"):
        extend(graph, [task("p", ["q"]), task("q", ["p"])])


def test_an_added_task_is_held_at_its_own_demand_while_resource_maps_come_and_go() -> None:
    """The scheduler makes each resource map's demand vector once: a map that went away with the
    graph holding it must not lend its id, and so its vector, to a new map of another size."""
    s = Scheduler(build(Workflow("t", (task("first"),))), Limits({"cpu": 8}))
    (first,) = [d for d in s.start() if isinstance(d, Start)]
    handle(s, Finished(first.task, True, 0.0))
    for n in range(1, 60):
        # every task anew (the same names, needs and resources, new objects), and one more
        tasks = [
            Task(t.name, "true", needs=t.needs, resources=frozen_map(dict(t.resources)))
            for t in s.graph.tasks
        ]
        cpu = float(1 + n % 5)
        tasks.append(Task(f"x{n}", "true", resources=frozen_map({"cpu": cpu})))
        graph = build(Workflow("t", tuple(tasks)))
        out = handle(s, AddTasks(graph, frozenset({n}), float(n)))
        assert started(s, out) == [f"x{n}"]
        assert s.used() == {"cpu": cpu}, f"x{n}"
        handle(s, Finished(n, True, float(n)))
