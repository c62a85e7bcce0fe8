"""Pegasus 5 workflows written by the official Pegasus Python API (PyPI ``pegasus-wms.api``),
run for real: arguments, catalogs, staging, checkpoints, hooks and sub-workflows."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import subprocess
import threading
from pathlib import Path

import yaml
from Pegasus.api import (
    Directory,
    EventType,
    File,
    FileServer,
    Job,
    Operation,
    ReplicaCatalog,
    Site,
    SiteCatalog,
    SubWorkflow,
    Transformation,
    TransformationCatalog,
    Workflow,
)

from herd.core.model import Limits, TaskState
from herd.formats import load
from herd.run.local import RunOptions, run_workflow
from herd.run.progress import PlainReporter

from .helpers import attempts, herd_cmd, run, states


def test_arguments_are_split_as_pegasus_splits_them(tmp_path: Path) -> None:
    out = File("listing.txt")
    wf = Workflow("args")
    tc = TransformationCatalog().add_transformations(
        Transformation("ls", site="local", pfn="/bin/ls", is_stageable=False)
    )
    wf.add_transformation_catalog(tc)
    (tmp_path / "a b").mkdir()
    (tmp_path / "a b" / "inside").write_text("")
    # "-l -a" is one element, as the blackdiamond tests write it; 'a b' is a quoted word
    job = (
        Job("ls", _id="list")
        .add_args("-1 -a", "'a b'")
        .set_stdout(out, stage_out=False, register_replica=False)
    )
    wf.add_jobs(job)
    wf.write(str(tmp_path / "workflow.yml"))

    workflow = load(tmp_path / "workflow.yml")
    assert workflow.task("list").cmd == ("/bin/ls", "-1", "-a", "a b")
    result = run(tmp_path / "workflow.yml", tmp_path)
    assert result.status == "succeeded"
    assert states(tmp_path, "args") == {"list": TaskState.SUCCEEDED}
    assert (tmp_path / "listing.txt").read_text().split() == [".", "..", "inside"]


# --- catalogs beside the workflow and data movement -----------------------------------------


def _diamond_like(tmp_path: Path, data: Path, checksum: str) -> Path:
    """workflow.yml with transformations.yml, replicas.yml and sites.yml beside it, as the
    Pegasus 5 tutorials write them (pegasus-plan reads them from its directory)."""
    tool = data / "upper.sh"
    tool.write_text('#!/bin/sh\ntr a-z A-Z < "$1" > "$2"\n')
    (data / "in.txt").write_text("hello\n")
    wf_dir = tmp_path / "wf"
    wf_dir.mkdir()
    storage = tmp_path / "storage"
    SiteCatalog().add_sites(
        Site("local").add_directories(
            Directory(Directory.LOCAL_STORAGE, storage).add_file_servers(
                FileServer(f"file://{storage}", Operation.ALL)
            )
        )
    ).write(str(wf_dir / "sites.yml"))
    ReplicaCatalog().add_replica(
        "local", "in.txt", data / "in.txt", checksum={"sha256": checksum}
    ).write(str(wf_dir / "replicas.yml"))
    TransformationCatalog().add_transformations(
        Transformation("upper", site="local", pfn=tool, is_stageable=True)
    ).write(str(wf_dir / "transformations.yml"))
    inp, out = File("in.txt"), File("out.txt")
    wf = Workflow("upper")
    wf.add_jobs(
        Job("upper", _id="up")
        .add_args(inp, out)
        .add_inputs(inp)
        .add_outputs(out, stage_out=True, register_replica=True)
    )
    wf.write(str(wf_dir / "workflow.yml"))
    return wf_dir / "workflow.yml"


def test_separate_catalogs_stage_in_run_a_staged_executable_and_stage_out(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    spec = _diamond_like(tmp_path, data, hashlib.sha256(b"hello\n").hexdigest())
    work = tmp_path / "run"
    work.mkdir()
    assert run(spec, work).status == "succeeded"
    assert set(states(work, "upper")) == {"stage_in_in.txt", "stage_exe_upper", "up",
                                          "stage_out_up"}  # fmt: skip
    assert (tmp_path / "storage" / "out.txt").read_text() == "HELLO\n"
    catalog = yaml.safe_load((work / "upper.replicas.yml").read_text())
    (entry,) = catalog["replicas"]
    assert entry["lfn"] == "out.txt"
    assert entry["pfns"] == [{"site": "local", "pfn": str(tmp_path / "storage" / "out.txt")}]
    assert entry["checksum"] == {"sha256": hashlib.sha256(b"HELLO\n").hexdigest()}
    # staging is in the provenance records like any task
    shown = subprocess.run(
        herd_cmd("provenance", "stage_in_in.txt", "-C", str(work)),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (record,) = json.loads(shown.stdout)
    assert "herd.exec.stage in" in record["cmd"] and str(data / "in.txt") in record["cmd"]
    assert record["state"] == "succeeded" and "in.txt" in record["outputs"]
    # the replica is stamped: editing it stages it again and reruns the job
    (data / "in.txt").write_text("again\n")
    spec_text = spec.parent / "replicas.yml"
    spec_text.write_text(spec_text.read_text().replace(
        hashlib.sha256(b"hello\n").hexdigest(), hashlib.sha256(b"again\n").hexdigest()
    ))  # fmt: skip
    assert run(spec, work).status == "succeeded"
    assert (tmp_path / "storage" / "out.txt").read_text() == "AGAIN\n"
    assert attempts(work, "upper") == {"stage_in_in.txt": 2, "stage_exe_upper": 1, "up": 2,
                                       "stage_out_up": 2}  # fmt: skip


def test_a_checksum_mismatch_fails_the_stage_in_and_analyze_says_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    spec = _diamond_like(tmp_path, data, "0" * 64)
    work = tmp_path / "run"
    work.mkdir()
    assert run(spec, work).status == "failed"
    found = states(work, "upper")
    assert found["stage_in_in.txt"] is TaskState.FAILED
    assert found["up"] is TaskState.CANCELLED
    assert not (work / "in.txt").exists()  # nothing half-checked is left behind
    report = subprocess.run(
        herd_cmd("analyze", "-C", str(work)), capture_output=True, text=True, check=False
    )
    assert "stage_in_in.txt" in report.stdout
    assert f"checksum mismatch for {data / 'in.txt'}" in report.stdout
    assert "0" * 64 in report.stdout


def test_replicas_come_over_http_and_other_schemes_fail_clearly(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "remote.txt").write_text("from the web\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/remote.txt"
        rc = ReplicaCatalog()
        rc.add_replica("web", "remote.txt", url)
        rc.add_replica("grid", "grid.txt", "gsiftp://grid.example.org/grid.txt")
        wf = Workflow("fetch").add_replica_catalog(rc)
        wf.add_transformation_catalog(TransformationCatalog().add_transformations(
            Transformation("cat", site="local", pfn="/bin/cat", is_stageable=False)
        ))  # fmt: skip
        wf.add_jobs(
            Job("cat", _id="web").add_args("remote.txt").add_inputs(File("remote.txt")),
            Job("cat", _id="grid").add_args("grid.txt").add_inputs(File("grid.txt")),
        )
        wf.write(str(tmp_path / "workflow.yml"))
        assert run(tmp_path / "workflow.yml", tmp_path, keep_going=True).status == "failed"
    finally:
        server.shutdown()
        server.server_close()
    found = states(tmp_path, "fetch")
    assert (found["web"], found["grid"]) == (TaskState.SUCCEEDED, TaskState.CANCELLED)
    assert (tmp_path / "remote.txt").read_text() == "from the web\n"
    log = (tmp_path / ".herd" / "logs" / "fetch" / "stage_in_grid.txt.1.err").read_text()
    assert log.startswith("herd stage: cannot fetch gsiftp://grid.example.org/grid.txt:")
    assert "copy the file to grid.txt in the working directory" in log


# --- checkpoints and workflow hooks ---------------------------------------------------------

RESUMABLE = """#!/bin/sh
# a long computation: SIGTERM makes it write where it is; a later attempt resumes from there
if [ -f state.ckpt ]; then
  echo "resumed from $(cat state.ckpt)" > result.txt
  exit 0
fi
trap 'echo step-7 > state.ckpt; exit 0' TERM
while :; do sleep 0.05; done
"""


def test_a_checkpointing_job_is_signalled_then_retried_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    script = tmp_path / "resumable.sh"
    script.write_text(RESUMABLE)
    script.chmod(0o755)
    wf = Workflow("ckpt")
    wf.add_transformation_catalog(TransformationCatalog().add_transformations(
        Transformation("resumable", site="local", pfn=script, is_stageable=False)
    ))  # fmt: skip
    job = (
        Job("resumable", _id="long")
        .add_checkpoint(File("state.ckpt"), stage_out=False, register_replica=False)
        .add_outputs(File("result.txt"), stage_out=False, register_replica=False)
        .add_pegasus_profile(checkpoint_time=0.02)  # minutes: SIGTERM after 1.2 s
        .add_dagman_profile(retry=2)
    )
    wf.add_jobs(job)
    wf.write(str(tmp_path / "workflow.yml"))
    assert run(tmp_path / "workflow.yml", tmp_path).status == "succeeded"
    assert attempts(tmp_path, "ckpt") == {"long": 2}
    assert (tmp_path / "result.txt").read_text() == "resumed from step-7\n"
    first = (tmp_path / ".herd" / "logs" / "ckpt" / "long.1.err").read_text()
    assert "checkpoint time (1.2 s) reached: the job was sent SIGTERM" in first


def test_workflow_hooks_run_at_start_and_on_the_outcome(tmp_path: Path) -> None:
    wf = Workflow("hooked")
    wf.add_transformation_catalog(TransformationCatalog().add_transformations(
        Transformation("sh", site="local", pfn="/bin/sh", is_stageable=False)
    ))  # fmt: skip
    wf.add_jobs(Job("sh", _id="fails").add_args("-c", "'exit 3'"))
    for event in (EventType.START, EventType.SUCCESS, EventType.ERROR, EventType.END):
        wf.add_shell_hook(event, f'echo "{event.value} $PEGASUS_STATUS" >> events.txt')
    wf.write(str(tmp_path / "workflow.yml"))
    assert run(tmp_path / "workflow.yml", tmp_path).status == "failed"
    assert (tmp_path / "events.txt").read_text().splitlines() == ["start 0", "error 1", "end 1"]
    assert run(tmp_path / "workflow.yml", tmp_path).status == "failed"  # runs again: hooks too
    assert len((tmp_path / "events.txt").read_text().splitlines()) == 6


# --- hierarchical workflows -----------------------------------------------------------------


def _hierarchy(tmp_path: Path, inner_fails: bool = False) -> Path:
    """outer: gen writes inner.yml (a copy of a file Pegasus.api wrote), sub runs it, final reads
    what the inner workflow made."""
    shell = TransformationCatalog().add_transformations(
        Transformation("sh", site="local", pfn="/bin/sh", is_stageable=False)
    )
    inner = Workflow("inner").add_transformation_catalog(shell)
    x, y = File("x.txt"), File("y.txt")
    second = "'exit 4'" if inner_fails else "'tr a-z A-Z < x.txt > y.txt'"
    inner.add_jobs(
        Job("sh", _id="a")
        .add_args("-c", "'echo inner > x.txt'")
        .add_outputs(x, stage_out=False, register_replica=False),
        Job("sh", _id="b")
        .add_args("-c", second)
        .add_inputs(x)
        .add_outputs(y, stage_out=False, register_replica=False),
    )
    inner.write(str(tmp_path / "inner.src.yml"))
    outer = Workflow("outer").add_transformation_catalog(shell)
    made = File("inner.yml")
    gen = (
        Job("sh", _id="gen")
        .add_args("-c", "'cp inner.src.yml inner.yml'")
        .add_outputs(made, stage_out=False, register_replica=False)
    )
    sub = SubWorkflow(made, is_planned=False, _id="sub")
    final = (
        Job("sh", _id="final")
        .add_args("-c", "'cat y.txt > z.txt'")
        .add_outputs(File("z.txt"), stage_out=False, register_replica=False)
    )
    outer.add_jobs(gen, sub, final)
    outer.add_dependency(gen, children=[sub])
    outer.add_dependency(sub, children=[final])
    outer.write(str(tmp_path / "outer.yml"))
    return tmp_path / "outer.yml"


def test_a_sub_workflow_made_by_an_earlier_job_runs_nested(tmp_path: Path) -> None:
    spec = _hierarchy(tmp_path)
    assert not (tmp_path / "inner.yml").exists()  # made at run time, by 'gen'
    shown = io.StringIO()
    options = RunOptions(workdir=tmp_path, limits=Limits({"cpu": 1}), grace=1.0)
    assert run_workflow(load(spec), options, PlainReporter(shown)).status == "succeeded"
    lines = [line.split(" (")[0] for line in shown.getvalue().splitlines()]  # (no seconds)
    assert lines[1] == "[1/3] succeeded gen"  # then the sub-workflow's two tasks join the run
    assert lines[-3:-1] == ["[4/5] succeeded sub", "[5/5] succeeded final"]
    assert states(tmp_path, "outer") == dict.fromkeys(
        ["gen", "sub", "sub/a", "sub/b", "final"], TaskState.SUCCEEDED
    )
    assert (tmp_path / "z.txt").read_text() == "INNER\n"
    assert run(spec, tmp_path).status == "succeeded"  # done: nothing runs again
    assert attempts(tmp_path, "outer") == dict.fromkeys(
        ["gen", "sub", "sub/a", "sub/b", "final"], 1
    )


def test_a_failing_sub_workflow_fails_its_job(tmp_path: Path) -> None:
    spec = _hierarchy(tmp_path, inner_fails=True)
    assert run(spec, tmp_path).status == "failed"
    found = states(tmp_path, "outer")
    assert (found["sub/b"], found["sub"], found["final"]) == (
        TaskState.FAILED, TaskState.FAILED, TaskState.CANCELLED
    )  # fmt: skip
    report = subprocess.run(
        herd_cmd("analyze", "-C", str(tmp_path)), capture_output=True, text=True, check=False
    )
    assert "sub/b" in report.stdout and "exit 4" in report.stdout
