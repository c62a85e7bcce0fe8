"""The virtual-clock driver around the real scheduler."""

from __future__ import annotations

import pytest

from herd.core.graph import build
from herd.core.model import Limits, Task, Workflow, frozen_map
from herd.errors import UsageError
from herd.run.simulate import durations_of, lower_bound, simulate


def t(name: str, d: float, needs: tuple[str, ...] = (), cpu: float = 1) -> Task:
    return Task(name, "x", needs=needs, duration=d, resources=frozen_map({"cpu": cpu}))


def test_chain_makespan_is_the_critical_path() -> None:
    g = build(Workflow("c", (t("a", 2), t("b", 3, ("a",)), t("c", 1, ("b",)))))
    r = simulate(g, Limits({"cpu": 4}), durations_of(g, None), keep_schedule=True)
    assert r.makespan == 6 and r.lower_bound == 6 and r.ratio == 1
    assert [(s.task, s.start, s.end) for s in r.schedule] == [("a", 0, 2), ("b", 2, 5), ("c", 5, 6)]


def test_work_bound_and_utilisation() -> None:
    g = build(Workflow("w", tuple(t(f"t{i}", 1.0) for i in range(8))))
    r = simulate(g, Limits({"cpu": 2}), durations_of(g, None))
    assert r.makespan == 4 and r.lower_bound == 4 and r.bound_by == "cpu"
    assert r.peak["cpu"] == 1.0 and r.mean["cpu"] == pytest.approx(1.0)


def test_critical_path_first_beats_blind_order() -> None:
    # one long chain and many short independent tasks on 2 cores: ranking by duration wins
    tasks = [t("long1", 5), t("long2", 5, ("long1",))] + [t(f"s{i}", 1) for i in range(10)]
    g = build(Workflow("cp", tuple(tasks)))
    limits = Limits({"cpu": 2})
    informed = simulate(g, limits, durations_of(g, None))
    assert informed.makespan == 10  # the chain runs from t=0 while the other core takes the rest
    lb, _ = lower_bound(g, limits, durations_of(g, None))
    assert informed.makespan / lb == informed.ratio


def test_missing_duration_is_a_clear_error() -> None:
    g = build(Workflow("d", (Task("a", "x"),)))
    with pytest.raises(UsageError, match=r"task 'a' has no expected duration.*--duration"):
        durations_of(g, None)
    assert durations_of(g, 2.5) == [2.5]
