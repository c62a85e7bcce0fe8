"""bench/generate.py: the large-workflow generator, checked at small sizes."""

from __future__ import annotations

import io
from types import ModuleType

import pytest

from herd.core.graph import build, check_limits
from herd.core.model import Limits, Workflow
from herd.formats import load_text
from herd.run.simulate import durations_of, simulate
from tests import bench


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    return bench.load("generate")


def generated(generate: ModuleType, kind: str, size: int, links: str | None = None) -> Workflow:
    out = io.StringIO()
    count = generate.generate(kind, size, out, links)
    workflow = load_text(out.getvalue(), f"{kind}.json")
    assert len(workflow.tasks) == count
    return workflow


# 3 global tasks, 20 stages per timeframe, a merge per 100 timeframes, the final merge
O2DPG_10TF = 3 + 20 * 10 + 1 + 1
# per image: project and background; per pair of neighbours: a diff; per row: concat, imgtbl,
# add; one background model and one final add
MONTAGE_6 = 36 + 36 + 2 * 6 * 5 + 3 * 6 + 2


@pytest.mark.parametrize(
    ("kind", "size", "links", "count"),
    [
        ("o2dpg", 10, None, O2DPG_10TF),
        ("o2dpg", 10, "files", O2DPG_10TF),
        ("montage", 6, None, MONTAGE_6),
        ("montage", 6, "needs", MONTAGE_6),
    ],
)
def test_small_outputs_load_validate_and_simulate_near_the_bound(
    generate: ModuleType, kind: str, size: int, links: str | None, count: int
) -> None:
    workflow = generated(generate, kind, size, links)
    assert len(workflow.tasks) == count
    graph = build(workflow)
    for limits in (Limits({"cpu": 64, "mem": 1e6}), Limits({"cpu": 8, "mem": 32000})):
        check_limits(graph, limits)
        result = simulate(graph, limits, durations_of(graph, None))
        assert result.tasks == count
        assert result.ratio <= 1.5, (kind, links, limits, result.ratio)


def test_needs_and_files_give_the_same_graph(generate: ModuleType) -> None:
    for kind, size in (("o2dpg", 3), ("montage", 4)):
        by_needs = build(generated(generate, kind, size, "needs"))
        by_files = build(generated(generate, kind, size, "files"))
        assert [t.name for t in by_needs.tasks] == [t.name for t in by_files.tasks]
        assert by_needs.parent_ids == by_files.parent_ids
        assert by_needs.parent_ptr == by_files.parent_ptr


def test_o2dpg_stages_carry_timeframe_labels_and_resources(generate: ModuleType) -> None:
    workflow = generated(generate, "o2dpg", 2)
    sim = next(t for t in workflow.tasks if t.name == "sgnsim_2")
    assert sim.timeframe == 2 and sim.labels == ("GEANT",) and sim.cwd == "tf2"
    assert sim.resources == {"cpu": 7.0, "mem": 4000.0} and sim.duration == 600
    assert workflow.tasks[-1].name == "aodmerge"
