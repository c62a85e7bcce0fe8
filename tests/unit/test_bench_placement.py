"""bench/placement.py: its reading of a scheduler trace, on a trace written by hand (the bench
itself needs perf and root)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests import bench


@pytest.fixture(scope="module")
def placement() -> ModuleType:
    return bench.load("placement")


def new(comm: str, pid: int, cpu: int, t: float, child: int, target: int) -> str:
    return (
        f"{comm:>16} {pid:5d} [{cpu:03d}] {t:12.6f}:   sched:sched_wakeup_new: comm={comm}"
        f" pid={child} prio=120 target_cpu={target:03d}"
    )


def switch(comm: str, pid: int, cpu: int, t: float, nxt: int) -> str:
    return (
        f"{comm:>16} {pid:5d} [{cpu:03d}] {t:12.6f}:       sched:sched_switch: prev_comm={comm}"
        f" prev_pid={pid} prev_prio=120 prev_state=S ==> next_comm=x next_pid={nxt} next_prio=120"
    )


def test_placement_and_overlap_from_the_first_task(placement: ModuleType) -> None:
    # herd (pid 100, on vCPU 0) starts 201 and 203 on vCPU 1 and 202 on its own; a shell
    # starts one process (fewer: not the driver)
    trace = "\n".join(
        [
            switch("swapper", 0, 0, 0.5, 100),  # before the first task: not counted
            new("python", 100, 0, 1.0, 201, 1),
            switch("swapper", 0, 1, 1.0, 201),
            new("bash", 300, 1, 1.5, 301, 1),
            new("python", 100, 0, 2.0, 202, 0),
            switch("python", 100, 0, 2.0, 202),
            switch("true", 201, 1, 3.0, 0),
            switch("true", 202, 0, 4.0, 100),
            new("python", 100, 0, 4.5, 203, 1),
            switch("swapper", 0, 1, 4.5, 203),
            switch("python", 100, 0, 5.0, 0),
            switch("true", 203, 1, 5.5, 0),
            "a line perf prints that is no event",
        ]
    )
    got = placement.summarise(trace)
    assert (got.driver, got.tasks, got.same_cpu) == ("python", 3, 1)
    # from 1.0 to 5.5: none 0.5 s, one 3 s, both 1 s
    assert got.running == pytest.approx({0: 1 / 9, 1: 6 / 9, 2: 2 / 9})


def test_a_trace_without_process_creation_says_so(placement: ModuleType) -> None:
    assert placement.summarise(switch("swapper", 0, 0, 1.0, 5)) is None
