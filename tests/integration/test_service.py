"""The service layer every front end calls: real specs, a real SQLite store, real processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from herd.core.model import Limits, RunStatus, SpecFormat, TaskState
from herd.errors import UsageError
from herd.service import changes, runs, views, workers
from herd.service.state import reading

from .helpers import run, states, write_spec

LIMITS = Limits({"cpu": 2, "mem": 8000})


def chain(tmp_path: Path) -> Path:
    return write_spec(
        tmp_path,
        [
            {"name": "a", "cmd": "echo a > a.txt", "outputs": ["a.txt"]},
            {"name": "b", "cmd": "cat a.txt > b.txt", "inputs": ["a.txt"], "outputs": ["b.txt"]},
        ],
    )


def test_submit_records_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    spec = chain(tmp_path)
    assert run(spec, tmp_path, targets=("a",)).status is RunStatus.SUCCEEDED
    options = runs.RunOptions(workdir=tmp_path, limits=LIMITS)
    submitted = workers.submit(runs.load(str(spec)), options)
    assert (submitted.queued, submitted.skipped) == (1, 1)
    assert states(tmp_path)["a"] is TaskState.SUCCEEDED
    assert states(tmp_path)["b"] is not TaskState.SUCCEEDED
    assert not (tmp_path / "b.txt").exists()  # queued for workers, not run
    status = views.status(tmp_path)
    assert status.workflow.id == submitted.workflow_id
    assert status.workflow.format is SpecFormat.NATIVE  # typed facts read back from the store
    assert status.last_run is not None and status.last_run.status is RunStatus.RUNNING


def test_reading_a_directory_where_herd_never_ran_says_what_to_do(tmp_path: Path) -> None:
    never = r"has not run anything in .* yet: run `herd run FILE` first"
    with pytest.raises(UsageError, match=never), reading(tmp_path, None):
        pass
    assert not (tmp_path / ".herd").exists()  # reading creates nothing


def test_reset_then_plan_reruns_the_task_and_what_needs_it(tmp_path: Path) -> None:
    spec = chain(tmp_path)
    run(spec, tmp_path)
    workflow, options = runs.load(str(spec)), runs.RunOptions(workdir=tmp_path, limits=LIMITS)
    assert changes.reset(tmp_path, workflow, ["a"], downstream=True) == ["a", "b"]
    plan = runs.plan(workflow, options).plan
    assert len(plan.todo) == 2
    assert views.why(workflow, options, "b")[0].run
    assert changes.forget(tmp_path, None, str(spec)) == "wf"
    with pytest.raises(UsageError, match="no workflow 'wf'"):
        views.status(tmp_path, "wf")


def test_dag_and_chart_views_of_a_run(tmp_path: Path) -> None:
    spec = chain(tmp_path)
    assert run(spec, tmp_path).status is RunStatus.SUCCEEDED
    with reading(tmp_path, None) as (store, record):
        drawn = views.dag_of(store, record)
        chart = views.chart_of(store, record)
    assert [(n.name, n.state) for n in drawn.nodes] == [
        ("a", TaskState.SUCCEEDED),
        ("b", TaskState.SUCCEEDED),
    ]
    assert drawn.edges == ((0, 1),)  # through a.txt
    assert [(b.task, b.failed) for b in chart.bars] == [("a", False), ("b", False)]
    spec.unlink()  # the spec moved away: the tasks are still drawn, without edges, saying why
    with reading(tmp_path, None) as (store, record):
        drawn = views.dag_of(store, record)
    assert [n.name for n in drawn.nodes] == ["a", "b"]
    assert drawn.edges == ()
    assert drawn.problem.startswith(f"cannot read {spec}")
