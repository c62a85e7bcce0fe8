"""How many tasks a worker claims ahead, what a claim may take, and which starts next
(:mod:`herd.run.ahead`): pure, no store."""

from __future__ import annotations

from herd.run.ahead import MOST, WINDOW, Ahead
from herd.store.queued import Claimed, QueuedTask


def claimed(name: str, **resources: float) -> Claimed:
    task = QueuedTask(name, "true", "/tmp", {}, resources, seq=0)
    return Claimed(1, 1, "wf", 1, 1, 0, resources, None, task)


def test_depth_follows_the_durations_of_ended_tasks() -> None:
    ahead = Ahead({"cpu": 2.0, "mem": 1000.0})
    assert ahead.depth() == 0  # nothing seen yet: claims only what runs
    ahead.observe(WINDOW / 5)
    assert ahead.depth() == 5
    ahead.observe(0.0)
    assert 5 < ahead.depth() <= MOST
    for _ in range(50):
        ahead.observe(10 * WINDOW)  # long tasks: a round trip costs nothing worth saving
    assert ahead.depth() == 0
    assert Ahead({"cpu": 1.0}, per_core=3).depth() == 3  # --ahead fixes it


def test_a_claim_takes_the_free_cores_and_the_buffer_until_half_full() -> None:
    ahead = Ahead({"cpu": 2.0, "mem": 1000.0}, per_core=2)
    # nothing free runs, the buffer is empty: the free cores plus 2 x 2 cores ahead; of memory
    # at most the worker's whole, so that every task held fits it
    assert ahead.request({"cpu": 1.0, "mem": 200.0}) == {"cpu": 5.0, "mem": 1000.0}
    ahead.add([claimed("a", cpu=1.0, mem=600.0)])
    assert ahead.request({"cpu": 0.0, "mem": 0.0}) == {"cpu": 3.0, "mem": 400.0}
    ahead.add([claimed("b", cpu=1.0), claimed("c", cpu=0.5)])
    assert ahead.request({"cpu": 0.0, "mem": 0.0}) is None  # above half: wait for it to run down
    assert Ahead({"cpu": 2.0}).request({"cpu": 0.0}) is None  # no depth: only free cores
    assert Ahead({"cpu": 2.0}).request({"cpu": 1.5}) == {"cpu": 1.5}


def test_the_next_task_starts_in_order_when_it_fits() -> None:
    ahead = Ahead({"cpu": 4.0, "mem": 1000.0}, per_core=1)
    ahead.add([claimed("big", cpu=1.0, mem=800.0), claimed("small", cpu=1.0, mem=10.0)])
    assert ahead.next({"cpu": 3.0, "mem": 500.0}) is None  # not passed by the smaller one
    assert ahead.next({"cpu": 0.0, "mem": 1000.0}) is None  # no core free
    big = ahead.next({"cpu": 1.0, "mem": 1000.0})
    assert big is not None and big.task.name == "big"
    (small,) = ahead.drop({(1, "small", 1)})
    assert small.task.name == "small" and not ahead
