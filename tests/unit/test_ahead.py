"""How many tasks a worker claims ahead, what a claim may take, and which starts next
(:mod:`herd.run.ahead`): pure, no store."""

from __future__ import annotations

from herd.run.ahead import FLUSH_AFTER, MOST, TRIPS, WINDOW, Ahead
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


def test_slow_round_trips_to_the_store_widen_the_window() -> None:
    ahead = Ahead({"cpu": 1.0})
    ahead.observe(WINDOW / 5)
    ahead.add([], trip=WINDOW / TRIPS / 2)  # a claim at a database's round trip: it stands
    assert (ahead.window(), ahead.depth(), ahead.flush_after()) == (WINDOW, 5, FLUSH_AFTER)
    for _ in range(50):
        ahead.observe_trip(WINDOW / TRIPS * 2)  # an HTTP server's, loaded
    assert ahead.window() > 1.9 * WINDOW
    assert 9 <= ahead.depth() <= 10  # twice the work held: as many round trips per task
    ahead.observe_trip(WINDOW)  # slower still: an ended attempt waits for half the window
    assert ahead.flush_after() == ahead.window() / 2 > FLUSH_AFTER
    tiny = Ahead({"cpu": 1.0})
    tiny.observe(WINDOW / MOST / 10)  # tasks of a fraction of a millisecond
    assert tiny.depth() == MOST
    for _ in range(50):
        tiny.observe_trip(WINDOW / TRIPS * 2)
    assert 2 * MOST - 1 <= tiny.depth() <= 2 * MOST  # at most MOST per WINDOW of the window
    for _ in range(50):
        ahead.observe(3 * WINDOW)  # as long as the window: still no round trip worth saving
    assert ahead.depth() == 0
    assert Ahead({"cpu": 1.0}, per_core=3).depth() == 3


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
