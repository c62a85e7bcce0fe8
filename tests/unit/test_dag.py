"""The DAG as data for the dashboard (herd.reports.dag): stages, edges, states, no spec."""

from __future__ import annotations

from herd.core.graph import build
from herd.core.model import SpecFormat, Task, TaskState, Workflow
from herd.reports.dag import dag
from herd.reports.plot import stem
from herd.store.base import TaskRecord, WorkflowRecord

RECORD = WorkflowRecord(1, "w", "/specs/w.yaml", SpecFormat.NATIVE, 0.0, 4)


def workflow() -> Workflow:
    return Workflow(
        "w",
        (
            Task("sim_1", "true", outputs=("hits_1",)),
            Task("sim_2", "true", outputs=("hits_2",), labels=("GEANT",)),
            Task("reco_1", "true", inputs=("hits_1",)),  # a file edge, not a need
            Task("merge", "true", needs=("reco_1", "sim_2")),
        ),
    )


def test_nodes_carry_stage_and_state_edges_are_index_pairs() -> None:
    records = {
        "sim_1": TaskRecord("sim_1", TaskState.SUCCEEDED, attempts=1),
        "sim_2": TaskRecord("sim_2", TaskState.FAILED, attempts=2, exit_code=3, reason="exit 3"),
        "reco_1": TaskRecord("reco_1", TaskState.RUNNING, attempts=1),
    }
    d = dag(RECORD, records, build(workflow()), "")
    assert [(n.name, n.stage, n.state) for n in d.nodes] == [
        ("sim_1", "sim", TaskState.SUCCEEDED),
        ("sim_2", "sim", TaskState.FAILED),
        ("reco_1", "reco", TaskState.RUNNING),
        ("merge", "merge", TaskState.WAITING),  # not in the store yet
    ]
    assert sorted(d.edges) == [(0, 2), (1, 3), (2, 3)]
    assert d.stages == {
        "sim": {"succeeded": 1, "failed": 1},
        "reco": {"running": 1},
        "merge": {"waiting": 1},
    }
    data = d.to_json()
    assert data["nodes"][1] == {
        "name": "sim_2",
        "stage": "sim",
        "state": "failed",
        "labels": ["GEANT"],
        "attempts": 2,
        "exit_code": 3,
        "reason": "exit 3",
    }
    assert data["edges"][0] in ([0, 2], [1, 3], [2, 3])
    assert data["stages"][0] == {"name": "sim", "counts": {"succeeded": 1, "failed": 1}}
    assert data["problem"] == ""


def test_without_a_spec_the_tasks_come_from_the_store_and_the_reason_is_given() -> None:
    records = {"a_1": TaskRecord("a_1", TaskState.READY), "b": TaskRecord("b", TaskState.WAITING)}
    d = dag(RECORD, records, None, "cannot read /specs/w.yaml: gone")
    assert [n.name for n in d.nodes] == ["a_1", "b"]
    assert d.edges == ()
    assert d.to_json()["problem"] == "cannot read /specs/w.yaml: gone"


def test_stage_is_the_name_without_its_trailing_number() -> None:
    assert stem("tpcdigi_12") == "tpcdigi"
    assert stem("qc_ITS-3") == "qc_ITS"
    assert stem("merge") == "merge"
    assert stem("42") == "42"  # nothing left: the name itself
