"""Sizing allocations of workers per resource class (``launch/slurm/allocations.py``): pure."""

from __future__ import annotations

import pytest

from herd.errors import UsageError
from herd.launch.slurm.allocations import (
    DRAIN,
    Demand,
    NodeShape,
    ResourceClass,
    Sizing,
    Target,
    classes,
    sbatch_options,
    script,
    size,
)

NODE = NodeShape(cpus=8, mem=16000, gpus=0)


def demands(n: int, cpu: float = 1, mem: float = 1000, duration: float | None = 60) -> list[Demand]:
    return [Demand(f"t{i}", {"cpu": cpu, "mem": mem}, duration) for i in range(n)]


def test_classes_group_by_cores_and_gpus_with_the_largest_memory() -> None:
    got = classes([*demands(2, mem=500), *demands(1, mem=2000), *demands(3, cpu=4)])
    assert {k: len(v) for k, v in got.items()} == {
        ResourceClass(1.0, 0.0, 2000.0): 3,
        ResourceClass(4.0, 0.0, 1000.0): 3,
    }


def test_one_node_when_the_work_fits_its_walltime() -> None:
    [a] = size(demands(40, duration=30), NODE, Sizing(time_cap=3600, max_nodes=4))
    assert (a.slots, a.nodes, a.tasks, a.work) == (8, 1, 40, 1200)
    assert a.seconds == 300  # 1200 s / 8 slots x 1.2, plus the drain, in whole minutes


def test_more_work_than_one_node_can_do_in_the_cap_takes_more_nodes_up_to_the_limit() -> None:
    sizing = Sizing(time_cap=3600, max_nodes=3, margin=1.0)
    [a] = size(demands(100, duration=600), NODE, sizing)  # 60,000 s of work, 8 slots a node
    assert a.nodes == 3 and a.seconds == 2640  # 60,000 / 24 slots + the drain, whole minutes
    [c] = size(demands(100, duration=600), NODE, Sizing(time_cap=1800, max_nodes=3))
    assert c.seconds == 1800  # capped by --time
    [b] = size(demands(100, duration=600), NODE, Sizing(time_cap=3600, max_nodes=50))
    assert b.nodes == 3  # the fewest that finish within the cap: 2500 s x 1.2 + the drain
    [f] = size(demands(10, duration=5000), NODE, Sizing(time_cap=3600, max_nodes=50))
    assert f.nodes == 2  # ceil(10 tasks / 8 slots): no node without a task


def test_memory_limits_the_slots_and_the_longest_task_sets_the_floor() -> None:
    [a] = size(
        [*demands(1, mem=6000, duration=1000), *demands(3, mem=6000, duration=10)], NODE, Sizing()
    )
    assert a.slots == 2
    assert a.seconds == 60 * -(-(1.2 * 1000 + DRAIN) // 60)


def test_unknown_durations_are_assumed_and_a_class_too_big_for_a_node_is_refused() -> None:
    [a] = size(demands(2, duration=None), NODE, Sizing(default_duration=100, margin=1.0))
    assert a.work == 200
    with pytest.raises(UsageError, match=r"class cpu16-mem1000 do not fit one node .*--partition"):
        size(demands(1, cpu=16), NODE, Sizing())


def test_the_script_starts_one_worker_per_node_that_drains_before_the_end() -> None:
    [a] = size(demands(16, duration=300), NODE, Sizing(max_nodes=2, margin=1.0))
    target = Target(
        "postgresql://db/herd", "wf", "/work", ("herd",), "/work/.herd/slurm/wf/allocations"
    )
    options = sbatch_options(a, target, ["--partition=short", "--account=alice"], gres="gpu:2")
    text = script(a, target, options)
    for line in (
        "#SBATCH --job-name=herd.wf.cpu1-mem1000",
        f"#SBATCH --nodes={a.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --time={a.minutes}",
        f"#SBATCH --signal=B:TERM@{DRAIN}",
        "#SBATCH --partition=short",
        "#SBATCH --account=alice",
        "#SBATCH --gres=gpu:2",
    ):
        assert line in text.splitlines(), line
    assert (
        f"herd worker --store postgresql://db/herd --workflow wf -C /work --idle-exit 60 --end-time +{a.seconds - DRAIN}"
        in text
    )
    assert "srun --kill-on-bad-exit=0" in text and "trap 'kill -TERM $workers" in text
