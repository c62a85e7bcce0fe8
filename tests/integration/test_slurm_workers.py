"""``herd slurm submit``: workers in Slurm allocations on PostgreSQL, one allocation cancelled.

Real Slurm (scripts/slurm.sh: four nodes on this machine), real PostgreSQL, real ``herd worker``
processes started by ``srun`` inside the allocations.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import TaskState
from herd.store import open_store

from .helpers import herd_cmd, wait_for, write_spec

pytestmark = pytest.mark.usefixtures("slurm")


def squeue(name: str, states: str = "RUNNING") -> list[str]:
    out = subprocess.run(
        ["squeue", "--me", "--noheader", f"--name={name}", f"--states={states}", "--format=%i"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def workers_in_store(rows: list[dict[str, Any]]) -> int:
    return sum(1 for row in rows for w in row["workers"] if w["state"] is not None)


#: two-core tasks from this one on wait for the file ``gate`` before they end
GATED = 20


def spec_of_200(root: Path, name: str) -> Path:
    """100 one-core and 100 two-core tasks, each appending one line to its own file; the
    two-core tasks from :data:`GATED` on first wait for the file ``gate`` (so that their
    allocation still has work when it is cancelled, however fast the machine)."""
    gate = "until [ -e gate ]; do sleep 0.1; done; "
    tasks = [
        {
            "name": f"{kind}{i}",
            "cmd": f"sleep 0.2; {gate if cores == 2 and i >= GATED else ''}"
            f"echo $HERD_ATTEMPT >> out/{kind}{i}",
            "resources": {"cpu": cores, "mem": 500 * cores},
            "duration": 60,
            "retries": 2,
        }
        for kind, cores in (("one", 1), ("two", 2))
        for i in range(100)
    ]
    return write_spec(root, tasks, name=name)


@pytest.mark.slow
def test_200_tasks_through_two_allocations_one_cancelled_each_succeeds_once(
    tmp_path: Path, postgres_url: str
) -> None:
    name = f"alloc{os.getpid()}"
    spec = spec_of_200(tmp_path, name)
    (tmp_path / "out").mkdir()
    argv = herd_cmd(
        "slurm", "submit", str(spec), "-C", str(tmp_path), "--store", postgres_url,
        "--nodes", "2", "--time", "10", "--idle-exit", "5", "--watch",
    )  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def status() -> list[dict[str, Any]]:
        """``herd slurm status --json``: the allocations, each with its workers."""
        done = subprocess.run(
            herd_cmd(
                "slurm", "status", str(spec), "-C", str(tmp_path), "--store", postgres_url, "--json"
            ),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows

    try:
        # both allocations running, their four workers known to the store (other test sessions
        # may hold nodes for a while), and some work done: then one allocation is cancelled
        started = tmp_path / ".herd" / "slurm" / name / "allocations" / "workers"
        wait_for(started.exists, timeout=120)  # the store is made: status may read it
        wait_for(lambda: workers_in_store(status()) == 4, timeout=120)
        # the two-core allocation still works: its tasks past GATED wait for the gate (else it
        # could finish its 100 quick tasks and leave while the other waits for nodes)
        wait_for(lambda: len(list((tmp_path / "out").iterdir())) >= 40, timeout=120)
        [victim] = squeue(f"herd.{name}.cpu2-mem1000")
        subprocess.run(["scancel", victim], check=True)
        (tmp_path / "gate").touch()
        out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    allocations = [line for line in out.splitlines() if line.startswith("allocation ")]
    assert len(allocations) >= 2, out
    assert any("2 node(s)" in line for line in allocations), out

    store = open_store(postgres_url)
    try:
        wf = store.workflow(name)
        assert wf is not None
        records = store.task_records(wf.id)
        attempts = store.attempts(wf.id)
    finally:
        store.close()
    assert len(records) == 200
    assert {r.state for r in records.values()} == {TaskState.SUCCEEDED}
    succeeded: dict[str, int] = {}
    for a in attempts:
        if a.state is TaskState.SUCCEEDED:
            succeeded[a.task] = succeeded.get(a.task, 0) + 1
    assert succeeded == {task: 1 for task in records}
    for task in records:  # the task's own record: it ran to its end once (or was cut short)
        assert (tmp_path / "out" / task).read_text().count("\n") >= 1

    rows = status()
    assert {row["job_id"]: row["state"] for row in rows}[int(victim)] == "CANCELLED"
    assert workers_in_store(rows) >= 4  # one per node of each allocation, found in the store


def test_dry_run_prints_the_batch_scripts_and_submits_nothing(tmp_path: Path) -> None:
    name = f"dry{os.getpid()}"
    spec = spec_of_200(tmp_path, name)
    done = subprocess.run(
        herd_cmd(
            "slurm",
            "submit",
            str(spec),
            "-C",
            str(tmp_path),
            "--store",
            str(tmp_path / "s.db"),
            "--nodes",
            "2",
            "--time",
            "1:00:00",
            "--partition",
            "debug",
            "--dry-run",
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    scripts = done.stdout.split("#!/bin/bash")[1:]
    assert len(scripts) == 2
    assert f"#SBATCH --job-name=herd.{name}.cpu1-mem500" in scripts[0]
    assert "#SBATCH --partition=debug" in scripts[0] and "#SBATCH --signal=B:TERM@120" in scripts[0]
    assert "herd.cli worker --store" in scripts[1]
    assert done.stdout.endswith("0 task(s) wait for later stages\n")
    assert not (tmp_path / "s.db").exists() and not squeue(f"herd.{name}.cpu1-mem500", "all")


def test_sbatch_refused_is_one_line_and_the_workflow_stays_submitted(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}], name=f"refused{os.getpid()}")
    store = str(tmp_path / "s.db")
    base = herd_cmd("slurm", "submit", str(spec), "-C", str(tmp_path), "--store", store)
    for extra, said in (
        (["--partition", "nope"], "sinfo lists no node in partition nope: check --partition"),
        (["--extra=--constraint=nosuch"], "Invalid feature specification"),
    ):
        done = subprocess.run([*base, *extra], capture_output=True, text=True)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert "the workflow is in the store: fix the allocation and run" in done.stderr
