"""``herd run --executor slurm`` on a real single-node Slurm cluster (scripts/slurm.sh).

Each task becomes a Slurm job submitted by herd's own scheduler; the results must equal a local
run's. Faults: sbatch refused, the controller unreachable, a job cancelled in Slurm mid-task, a
task's timeout, Ctrl-C.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import Kill, Limits, TaskState, Workflow
from herd.formats import load
from herd.launch.slurm.executor import slurm_executor
from herd.launch.slurm.jobs import SlurmOptions
from herd.run.local import RunOptions, RunResult, run_workflow
from herd.run.progress import QuietReporter
from herd.store import open_store
from herd.store.base import AttemptRecord
from herd.store.workdir import Workdir

from .helpers import herd_cmd, states, wait_for, write_spec

pytestmark = pytest.mark.usefixtures("slurm")

#: in job names, so that test sessions sharing the cluster never find each other's jobs
ME = f"p{os.getpid()}"
UNBOUNDED = Limits({"cpu": float("inf"), "mem": float("inf"), "gpu": float("inf")})


def run_on_slurm(workflow: Workflow, workdir: Path, **slurm: Any) -> RunResult:
    options = RunOptions(
        workdir=workdir, limits=UNBOUNDED, grace=1.0, executor=slurm_executor(SlurmOptions(**slurm))
    )
    return run_workflow(workflow, options, QuietReporter(io.StringIO()))


def run_locally(workflow: Workflow, workdir: Path) -> RunResult:
    options = RunOptions(workdir=workdir, limits=Limits({"cpu": 8, "mem": 64000}), grace=1.0)
    return run_workflow(workflow, options, QuietReporter(io.StringIO()))


def harmless(workflow: Workflow) -> Workflow:
    """The workflow with every command replaced by one that writes what it saw, in place."""
    from dataclasses import replace

    tasks = tuple(
        t._replace(cmd=f'echo "{t.name} $ALICEO2_CCDB_LOCALCACHE $HERD_TASK" > {t.name}.result')
        for t in workflow.tasks
    )
    return replace(workflow, tasks=tasks, init="echo init > init.result")


def results(workdir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(workdir)): p.read_text()
        for p in workdir.rglob("*")
        if p.is_file() and ".herd" not in p.parts
    }


def attempts_of(workdir: Path) -> list[AttemptRecord]:
    store = open_store(Workdir(workdir).db_path)
    try:
        wf = store.workflow("wf")
        assert wf is not None
        return list(store.attempts(wf.id))
    finally:
        store.close()


@contextlib.contextmanager
def herd_on_slurm(spec: Path, workdir: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``herd run --executor slurm`` in a subprocess, interrupted if the test fails early."""
    proc = subprocess.Popen(
        herd_cmd("run", str(spec), "-C", str(workdir), "--executor", "slurm", "-q", *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=60)


def squeue_job(name: str) -> str:
    """The id of the running Slurm job with this name, or ''."""
    out = subprocess.run(
        ["squeue", "--noheader", f"--name={name}", "--states=RUNNING", "--format=%i"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.slow
def test_o2dpg_3tf_as_slurm_jobs_matches_a_local_run(shared_data: Path, tmp_path: Path) -> None:
    workflow = harmless(load(shared_data / "o2dpg" / "o2dpg_pp_3tf.json"))
    local, batch = tmp_path / "local", tmp_path / "slurm"
    assert run_locally(workflow, local).status == "succeeded"
    result = run_on_slurm(workflow, batch)
    assert result.status == "succeeded", result
    assert results(batch) == results(local)
    assert len(results(batch)) > 2 * len(workflow.tasks)  # a result and a done marker each
    assert set(states(batch, workflow.name).values()) == {TaskState.SUCCEEDED}
    scripts = list((batch / ".herd" / "slurm" / workflow.name).glob("*.sh"))
    assert len(scripts) == len(workflow.tasks) + 1  # one job per task, and the init command


def test_short_tasks_share_jobs_and_keep_their_own_outcomes(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        [
            *(
                {"name": f"t{i}", "cmd": f"echo {i} > t{i}.txt", "outputs": [f"t{i}.txt"]}
                for i in range(5)
            ),
            {"name": "bad", "cmd": "exit 3"},
            {"name": "big", "cmd": "true", "resources": {"cpu": 2, "mem": 200}},
        ],
    )
    result = run_on_slurm(load(spec), tmp_path, group=3)
    assert result.status == "failed"
    got = states(tmp_path)
    assert got.pop("bad") is TaskState.FAILED
    assert set(got.values()) == {TaskState.SUCCEEDED}
    jobs = sorted(p.name for p in (tmp_path / ".herd" / "slurm" / "wf").glob("*.sh"))
    assert jobs == ["big.1.sh", "t0.1.sh", "t3.1.sh"]  # t0,t1,t2 | t3,t4,bad | big
    header = (tmp_path / ".herd" / "slurm" / "wf" / "big.1.sh").read_text()
    assert "#SBATCH --cpus-per-task=2" in header and "#SBATCH --mem=200M" in header


def test_a_job_cancelled_in_slurm_is_a_failed_attempt_then_retried(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        [
            {
                "name": f"victim{ME}",
                "cmd": "if [ -e again ]; then echo done > out.txt; else touch again; sleep 60; fi",
                "retries": 1,
                "backoff": 0.1,
            }
        ],
    )
    with herd_on_slurm(spec, tmp_path) as proc:
        wait_for(lambda: bool(squeue_job(f"victim{ME}")) and (tmp_path / "again").exists())
        subprocess.run(["scancel", squeue_job(f"victim{ME}")], check=True)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert (tmp_path / "out.txt").read_text() == "done\n"
    assert "cancelled in Slurm: job" in err
    assert [a.kill for a in attempts_of(tmp_path)] == [Kill.INTERRUPTED, None]


def test_a_timeout_is_herds_timeout(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": "slow", "cmd": "sleep 30", "timeout": 1}])
    assert run_on_slurm(load(spec), tmp_path).status == "failed"
    [attempt] = attempts_of(tmp_path)
    assert re.fullmatch(r"timeout \d+\.\d s > 1 s limit", attempt.kill_reason), attempt
    assert attempt.kill is Kill.TIMEOUT  # the kind the Slurm executor gave, as stored


def test_sbatch_refused_fails_the_tasks_with_slurms_reason(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, [{"name": "a", "cmd": "true"}, {"name": "b", "cmd": "true", "needs": ["a"]}]
    )
    done = subprocess.run(
        herd_cmd(
            "run", str(spec), "-C", str(tmp_path), "--executor", "slurm", "--partition", "nope"
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert (
        "sbatch a.1.sh failed: sbatch: error: Batch job submission failed: Invalid partition"
        in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert states(tmp_path) == {"a": TaskState.FAILED, "b": TaskState.CANCELLED}


def test_slurm_down_is_one_clear_message(tmp_path: Path, slurm: str) -> None:
    conf = tmp_path / "slurm.conf"
    text = Path(slurm).read_text()
    conf.write_text(text + "SlurmctldPort=6999\n")  # nobody listens there
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    done = subprocess.run(
        herd_cmd("run", str(spec), "-C", str(tmp_path), "--executor", "slurm"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SLURM_CONF": str(conf)},
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "Slurm controller does not answer" in done.stderr


def test_ctrl_c_cancels_what_herd_submitted(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": f"long{i}{ME}", "cmd": "sleep 60"} for i in range(2)])
    with herd_on_slurm(spec, tmp_path) as proc:
        wait_for(lambda: bool(squeue_job(f"long0{ME}")) and bool(squeue_job(f"long1{ME}")))
        ids = [squeue_job(f"long0{ME}"), squeue_job(f"long1{ME}")]
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    left = subprocess.run(
        ["squeue", "--noheader", "--states=all", f"--jobs={','.join(ids)}", "--format=%T"],
        capture_output=True,
        text=True,
    )
    assert left.stdout.split() == ["CANCELLED", "CANCELLED"]
    assert set(states(tmp_path).values()) == {TaskState.CANCELLED}


@pytest.mark.slow
def test_a_node_whose_slurmd_stops_loses_its_job_and_the_task_runs_elsewhere(
    tmp_path: Path, slurm: str
) -> None:
    spec = write_spec(
        tmp_path,
        [
            {
                "name": f"stranded{ME}",
                "cmd": "if [ -e again ]; then hostname > out.txt; else touch again; sleep 600; fi",
                "retries": 1,
                "backoff": 0.1,
            }
        ],
    )
    script = Path(__file__).resolve().parents[2] / "scripts" / "slurm.sh"
    with herd_on_slurm(spec, tmp_path, "--partition", "faults") as proc:
        wait_for(lambda: bool(squeue_job(f"stranded{ME}")) and (tmp_path / "again").exists())
        node = subprocess.run(
            ["squeue", "--noheader", f"--name=stranded{ME}", "--format=%N"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        pidfile = Path(slurm).parent / f"slurmd.{node}.pid"
        os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the node dies, its job with it
        # and the controller is told at once: another test session's `slurm.sh up` may start
        # that slurmd again before Slurm notices it was gone
        down = ["scontrol", "update", f"nodename={node}", "state=down", "reason=herd test"]
        subprocess.run(down, check=True)
        try:
            _, err = proc.communicate(timeout=90)
        finally:
            subprocess.run(["bash", str(script), "up"], capture_output=True, check=True)
    assert proc.returncode == 0, err
    assert "lost in Slurm: job" in err and f"node {node} failed" in err
    assert (tmp_path / "out.txt").exists()


def test_pegasus_clusters_size_groups_a_transformations_jobs(tmp_path: Path) -> None:
    """Pegasus's horizontal clustering: ``clusters.size`` 3 on a transformation, 7 of its jobs."""
    api = pytest.importorskip("Pegasus.api", reason="pegasus-wms.api is in the test extra")
    tool = api.Transformation("sh", site="local", pfn="/bin/sh", is_stageable=False)
    tool.add_pegasus_profile(clusters_size=3)
    wf = api.Workflow(f"clustered{ME}").add_transformation_catalog(
        api.TransformationCatalog().add_transformations(tool)
    )
    for i in range(7):
        out = api.File(f"o{i}.txt")
        job = api.Job("sh", _id=f"j{i}").add_args("-c", f"'echo {i} > o{i}.txt'")
        wf.add_jobs(job.add_outputs(out, stage_out=False, register_replica=False))
    wf.write(str(tmp_path / "wf.yml"))
    assert run_on_slurm(load(tmp_path / "wf.yml"), tmp_path).status == "succeeded"
    jobs = list((tmp_path / ".herd" / "slurm" / f"clustered{ME}").glob("*.sh"))
    assert len(jobs) == 3  # 3 + 3 + 1
    assert {(tmp_path / f"o{i}.txt").read_text() for i in range(7)} == {f"{i}\n" for i in range(7)}
