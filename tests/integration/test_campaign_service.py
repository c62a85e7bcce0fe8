"""The campaign service over an SQLite store: invalidate and rerun pick the right tasks, a late
run of a closed group is told, status filters, and the InfluxDB lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from herd.core.model import TaskState
from herd.errors import UsageError
from herd.service import campaigns
from herd.store import open_store
from herd.store.workdir import Workdir

from .test_queue_contract import CPU2, LEASE, outcome

TEMPLATE = """
name: ecal
tasks:
  - {name: reco, cmd: 'reco {run}'}
  - {name: calib, group_by: fill, needs: [reco], cmd: 'calib {runs}'}
  - {name: plots, run_types: [collisions], needs: [reco], cmd: 'plots {run}'}
"""


def work(root: Path, fail: tuple[str, ...] = ()) -> None:
    store = open_store(Workdir(root).db_path)
    try:
        worker = store.register_worker(
            host="h", pid=2, user="u", resources=CPU2, now=1.0, lease=LEASE
        )
        while claimed := store.claim(worker, {"cpu": 64.0}, now=2.0, lease=LEASE):
            outs = [
                outcome(c, TaskState.FAILED if c.task.name in fail else TaskState.SUCCEEDED)
                for c in claimed
            ]
            store.finish(worker, outs, now=3.0)
    finally:
        store.close()


def statuses(root: Path, **kw: object) -> dict[int, dict[str, str]]:
    st = campaigns.status("prompt", workdir=root, **kw)  # type: ignore[arg-type]
    return {r.run.run: {t: str(r.cells[t].status) for t in st.tasks} for r in st.rows}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "ecal.yaml").write_text(TEMPLATE)
    campaigns.create("prompt", str(tmp_path / "ecal.yaml"), workdir=tmp_path)
    runs = [
        campaigns.run_of("1", ["fill=7", "run_type=collisions"]),
        campaigns.run_of("2", ["fill=7", "run_type=cosmics"]),
        campaigns.run_of("3", ["fill=8", "run_type=collisions"]),
    ]
    added = campaigns.add_runs("prompt", runs, workdir=tmp_path)
    assert added.injected.added == (1, 2, 3) and added.refused == ()
    work(tmp_path)
    return tmp_path


def test_invalidate_runs_the_runs_tasks_and_their_groups_again(root: Path) -> None:
    assert statuses(root)[2] == {"reco": "done", "calib": "merged", "plots": "skipped"}
    back = campaigns.invalidate("prompt", (2, 2), workdir=root)
    assert set(back.tasks) == {"reco[run=2]", "calib[fill=7]"}  # the fill's calib holds run 2
    assert statuses(root) == {
        1: {"reco": "done", "calib": "new", "plots": "done"},
        2: {"reco": "new", "calib": "merged", "plots": "skipped"},
        3: {"reco": "done", "calib": "new", "plots": "done"},
    }
    work(root)
    assert statuses(root)[1]["calib"] == "done"


def test_rerun_of_a_chosen_task_whatever_its_status(root: Path) -> None:
    back = campaigns.rerun("prompt", (1, 3), task="plots", workdir=root)
    assert set(back.tasks) == {"plots[run=1]", "plots[run=3]"}
    assert campaigns.rerun("prompt", (1, 3), workdir=root).tasks == ()  # nothing failed


def test_a_late_run_of_a_closed_group_is_told(root: Path) -> None:
    late = campaigns.add_runs(
        "prompt", [campaigns.run_of("4", ["fill=7", "run_type=cosmics"])], workdir=root
    )
    assert late.injected.late == ((4, "calib"),)
    assert statuses(root)[4] == {"reco": "new", "calib": "new", "plots": "skipped"}


def test_filters_and_influx(root: Path) -> None:
    assert statuses(root, runs=(3, 3), task="plots") == {3: {"plots": "done"}}
    with pytest.raises(UsageError, match="has no task 'x'"):
        statuses(root, task="x")
    lines = campaigns.influx("prompt", workdir=root)
    assert len(lines) == 9
    first = lines[0]
    assert first.startswith(
        "herd_campaign,campaign=prompt,run=1,task=reco,status=done,run_type=collisions "
        'status="done",code=2i '
    )
    assert first.endswith(" 20000000000")  # when the task last changed (20 s), in nanoseconds
