"""The simulator and a real run make the same decisions for the same durations."""

from __future__ import annotations

from pathlib import Path

from herd.core.graph import build
from herd.core.model import Limits
from herd.formats import load
from herd.run.simulate import durations_of, simulate
from herd.store import open_store
from herd.store.workdir import Workdir
from tests.integration.helpers import run, write_spec

#: (name, duration, cpu, needs): finish times are 0.25 s apart or more, so jitter cannot swap them
SHAPE = [
    ("gen", 0.25, 1, []),
    ("sim_a", 1.0, 2, ["gen"]),
    ("sim_b", 0.5, 1, ["gen"]),
    ("sim_c", 0.25, 1, ["gen"]),
    ("digi_b", 0.5, 1, ["sim_b"]),
    ("digi_c", 1.25, 1, ["sim_c"]),
    ("reco_a", 0.25, 1, ["sim_a"]),
    ("merge", 0.25, 2, ["reco_a", "digi_b", "digi_c"]),
    ("qc", 0.5, 1, ["gen"]),
]


def spec(tmp_path: Path) -> Path:
    tasks = [
        {"name": n, "cmd": f"sleep {d}", "duration": d, "resources": {"cpu": c}, "needs": needs}
        for n, d, c, needs in SHAPE
    ]
    return write_spec(tmp_path, tasks)


def test_same_order_of_starts_as_a_real_run(tmp_path: Path) -> None:
    path = spec(tmp_path)
    limits = Limits({"cpu": 3})
    graph = build(load(path))
    sim = simulate(graph, limits, durations_of(graph, None), keep_schedule=True)
    run(path, tmp_path, limits=limits)
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    real = sorted(store.attempts(wf.id), key=lambda a: a.start)
    store.close()
    assert [a.task for a in real] == [s.task for s in sim.schedule]
    # and the real makespan is the simulated one plus process overhead
    t0 = real[0].start
    makespan = max(a.end or 0 for a in real) - t0
    assert sim.makespan <= makespan < sim.makespan + 1.0
