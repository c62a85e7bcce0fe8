"""herd run against real processes and a real SQLite store."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from herd.core.model import Limits, TaskState
from herd.store import open_store
from herd.store.workdir import Workdir
from tests.integration.helpers import (
    attempts,
    herd_cmd,
    processes_with_token_of,
    run,
    states,
    wait_for,
    write_spec,
)

# --- plain runs ------------------------------------------------------------------------------


def test_dag_runs_with_files_env_cwd_and_provenance(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "gen",
                "cmd": "echo $GREETING > data.txt",
                "outputs": ["data.txt"],
                "cwd": "tf1",
            },
            {
                "name": "sim",
                "cmd": ["sh", "-c", "tr a-z A-Z < data.txt > hits.txt"],
                "cwd": "tf1",
                "inputs": ["data.txt"],
                "outputs": ["hits.txt"],
            },
            {"name": "ana", "cmd": "cat tf1/hits.txt; echo err >&2", "inputs": ["tf1/hits.txt"]},
        ],
        env={"GREETING": "hello"},
    )
    result = run(spec, tmp_path)
    assert result.status == "succeeded" and result.exit_code == 0
    assert (tmp_path / "tf1" / "hits.txt").read_text() == "HELLO\n"
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    ana = store.attempts(wf.id, "ana")[0]
    store.close()
    assert Path(ana.stdout_path).read_text() == "HELLO\n"
    assert Path(ana.stderr_path).read_text() == "err\n"
    assert ana.exit_code == 0 and ana.state is TaskState.SUCCEEDED and ana.host and ana.pid > 0
    assert ana.end is not None and ana.end >= ana.start
    assert ana.reason == "new" and ana.utime is not None and ana.max_rss


def test_second_run_skips_everything_and_input_change_reruns_downstream(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("1")
    spec = write_spec(
        tmp_path,
        [
            {"name": "a", "cmd": "cp in.txt a.txt", "inputs": ["in.txt"], "outputs": ["a.txt"]},
            {"name": "b", "cmd": "cp a.txt b.txt", "inputs": ["a.txt"], "outputs": ["b.txt"]},
            {"name": "other", "cmd": "echo x > o.txt", "outputs": ["o.txt"]},
        ],
    )
    run(spec, tmp_path)
    again = run(spec, tmp_path)
    assert again.counts[TaskState.SKIPPED] == 3 and again.status == "succeeded"
    (tmp_path / "in.txt").write_text("2")
    third = run(spec, tmp_path)
    assert third.counts[TaskState.SUCCEEDED] == 2
    assert attempts(tmp_path) == {"a": 2, "b": 2, "other": 1}
    assert (tmp_path / "b.txt").read_text() == "2"


def test_failure_stops_new_starts_and_keep_going_runs_the_rest(tmp_path: Path) -> None:
    tasks = [
        {"name": "bad", "cmd": "exit 3", "priority": 10},
        {"name": "child", "cmd": "true", "needs": ["bad"]},
        {"name": "x1", "cmd": "true"},
        {"name": "x2", "cmd": "true"},
    ]
    spec = write_spec(tmp_path, tasks)
    r = run(spec, tmp_path, limits=Limits({"cpu": 1, "mem": 8000}))
    assert r.exit_code == 1 and r.status == "failed"
    s = states(tmp_path)
    assert s["bad"] is TaskState.FAILED and s["child"] is TaskState.CANCELLED
    assert s["x1"] is TaskState.CANCELLED and s["x2"] is TaskState.CANCELLED
    r = run(spec, tmp_path, limits=Limits({"cpu": 1, "mem": 8000}), keep_going=True)
    s = states(tmp_path)
    assert s["x1"] is TaskState.SUCCEEDED and s["x2"] is TaskState.SUCCEEDED
    assert s["bad"] is TaskState.FAILED and r.exit_code == 1


def test_retries_then_success(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "flaky",
                "cmd": "test -f m || { touch m; exit 1; }",
                "retries": 2,
                "backoff": 0.05,
            }
        ],
    )
    r = run(spec, tmp_path)
    assert r.status == "succeeded"
    assert attempts(tmp_path) == {"flaky": 2}


def test_timeout_kills_and_records_why(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": "slow", "cmd": "sleep 30", "timeout": 0.3}])
    t0 = time.monotonic()
    r = run(spec, tmp_path)
    assert time.monotonic() - t0 < 10 and r.exit_code == 1
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    (a,) = store.attempts(wf.id)
    rec = store.task_records(wf.id)["slow"]
    store.close()
    assert a.kill_reason.startswith("timeout")
    assert rec.reason.startswith("killed: timeout")


def test_semaphore_and_resources_are_honoured(tmp_path: Path) -> None:
    # each task appends start/end stamps; overlapping semaphore holders would interleave
    cmd = "echo start $HERD_TASK >> ../log; sleep 0.2; echo end $HERD_TASK >> ../log"
    tasks = [{"name": f"s{i}", "cmd": cmd, "semaphore": "db", "cwd": "w"} for i in range(3)]
    spec = write_spec(tmp_path, tasks)
    run(spec, tmp_path, limits=Limits({"cpu": 4, "mem": 8000}))
    lines = (tmp_path / "log").read_text().split("\n")[:-1]
    for k in range(0, len(lines), 2):
        assert lines[k].split()[1] == lines[k + 1].split()[1], lines


def test_user_data_and_events_land_in_the_store(tmp_path: Path) -> None:
    cmd = (
        'echo \'{"key": "events", "value": 42}\' >> $HERD_USER_DATA; '
        'echo \'{"stage": "done", "time": 5}\' >> $HERD_USER_DATA'
    )
    spec = write_spec(tmp_path, [{"name": "t", "cmd": cmd}])
    run(spec, tmp_path)
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    data, events = store.user_data(wf.id), store.user_events(wf.id)
    store.close()
    assert [(d.key, d.value) for d in data] == [("events", 42)]
    assert [(e.time, dict(e.data)) for e in events] == [(5.0, {"stage": "done"})]


def test_o2dpg_done_marker_written_and_honoured(tmp_path: Path) -> None:
    stages = [
        {
            "name": "__global_init_task__",
            "cmd": "echo init > init.txt",
            "needs": [],
            "resources": {"cpu": 1, "mem": 1},
            "timeframe": -1,
            "labels": [],
            "cwd": "./",
            "env": {"GLOBAL": "g"},
        },
        {
            "name": "sim_1",
            "cmd": "echo $GLOBAL > out.txt",
            "needs": [],
            "resources": {"cpu": "1", "mem": "100"},
            "timeframe": 1,
            "labels": ["SIM"],
            "cwd": "tf1",
        },
        {
            "name": "reco_1",
            "cmd": "cat out.txt",
            "needs": ["sim_1"],
            "resources": {"cpu": 1, "mem": 100},
            "timeframe": 1,
            "labels": [],
            "cwd": "tf1",
        },
    ]
    spec = tmp_path / "workflow.json"
    spec.write_text(json.dumps({"stages": stages}))
    r = run(spec, tmp_path)
    assert r.status == "succeeded"
    assert (tmp_path / "init.txt").read_text() == "init\n"
    assert (tmp_path / "tf1" / "out.txt").read_text() == "g\n"
    assert (tmp_path / "tf1" / "sim_1.log_done").exists()
    # a directory where another tool finished sim_1: herd trusts the marker
    other = tmp_path / "other"
    (other / "tf1").mkdir(parents=True)
    (other / "tf1" / "sim_1.log_done").touch()
    (other / "tf1" / "out.txt").write_text("from the O2DPG runner\n")
    r = run(spec, other)
    assert r.counts[TaskState.SKIPPED] == 1 and r.counts[TaskState.SUCCEEDED] == 1


# --- the real O2DPG workflows ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["o2dpg_pp_3tf.json", "o2dpg_pp_20tf.json", "o2dpg_pp_20tf_qc_ana.json"]
)
def test_o2dpg_workflows_run_to_completion(shared_data: Path, tmp_path: Path, name: str) -> None:
    data = json.loads((shared_data / "o2dpg" / name).read_text())
    for stage in data["stages"]:
        stage["cmd"] = "true"  # harmless: the real commands need the ALICE software
    spec = tmp_path / name
    spec.write_text(json.dumps(data))
    work = tmp_path / "run"
    r = run(spec, work, limits=Limits({"cpu": 8, "mem": 16000}))
    n = len(data["stages"]) - 1  # the global init is not a task
    assert r.status == "succeeded" and r.counts[TaskState.SUCCEEDED] == n
    again = run(spec, work, limits=Limits({"cpu": 8, "mem": 16000}))
    assert again.counts[TaskState.SKIPPED] == n


# --- interruption ------------------------------------------------------------------------------


def test_kill_9_then_resume_reruns_only_unfinished(tmp_path: Path) -> None:
    tasks = [
        {"name": f"t{i}", "cmd": f"sleep 0.15; echo {i} > out{i}", "outputs": [f"out{i}"]}
        for i in range(12)
    ]
    spec = write_spec(tmp_path, tasks)
    proc = subprocess.Popen(herd_cmd("run", str(spec), "-C", str(tmp_path), "-j", "2", "-q"))
    wait_for(lambda: sum((tmp_path / f"out{i}").exists() for i in range(12)) >= 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {n for n, s in states(tmp_path).items() if s is TaskState.SUCCEEDED}
    assert done_before  # some successes were committed before the kill
    r = subprocess.run(
        herd_cmd("run", str(spec), "-C", str(tmp_path), "-j", "2", "-q"),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    counts = attempts(tmp_path)
    for name in done_before:
        assert counts[name] == 1, f"{name} finished before the kill but ran again"
    assert all(s is TaskState.SUCCEEDED for s in states(tmp_path).values())
    assert not processes_with_token_of(proc.pid)


def test_resume_after_kill_9_stops_tasks_the_dead_herd_left_running(tmp_path: Path) -> None:
    # silent long tasks outlive a kill -9 of herd; the second run finds them at once
    cmd = "test -f resume && exit 0; touch started_$HERD_TASK; sleep 60"
    spec = write_spec(
        tmp_path, [{"name": f"t{i}", "cmd": cmd, "resources": {"cpu": 0}} for i in range(2)]
    )
    first = subprocess.Popen(herd_cmd("run", str(spec), "-C", str(tmp_path), "-q"))
    wait_for(lambda: all((tmp_path / f"started_t{i}").exists() for i in range(2)))
    # the tasks run before herd commits their starts (group commit): kill it once they are on
    # record, so the second run finds both attempts to stop and count
    wait_for(lambda: attempts(tmp_path) == {"t0": 1, "t1": 1})
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert len(processes_with_token_of(first.pid)) >= 2  # orphaned, still running
    (tmp_path / "resume").touch()
    r = subprocess.run(
        herd_cmd("run", str(spec), "-C", str(tmp_path)), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "left running by herd pid" in r.stderr
    assert not processes_with_token_of(first.pid)
    assert attempts(tmp_path) == {"t0": 2, "t1": 2}


def test_ctrl_c_stops_every_process_tree(tmp_path: Path) -> None:
    cmd = "touch started_$HERD_TASK; sleep 60 & sleep 60 & wait"
    spec = write_spec(
        tmp_path, [{"name": f"t{i}", "cmd": cmd, "resources": {"cpu": 0}} for i in range(3)]
    )
    proc = subprocess.Popen(
        herd_cmd("run", str(spec), "-C", str(tmp_path), "-q"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: all((tmp_path / f"started_t{i}").exists() for i in range(3)))
    wait_for(lambda: len(processes_with_token_of(proc.pid)) >= 9)  # 3 shells + 6 sleeps
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert not processes_with_token_of(proc.pid)
    assert set(states(tmp_path).values()) == {TaskState.CANCELLED}
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    assert store.runs(wf.id)[-1].status == "interrupted"
    store.close()


def test_second_herd_in_the_same_directory_refuses(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, [{"name": "hold", "cmd": "touch started; sleep 30"}])
    first = subprocess.Popen(herd_cmd("run", str(spec), "-C", str(tmp_path), "-q"))
    try:
        wait_for(lambda: (tmp_path / "started").exists())
        second = subprocess.run(
            herd_cmd("run", str(spec), "-C", str(tmp_path)),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert second.returncode == 3
        assert str(first.pid) in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 143


def test_a_rerun_is_scheduled_with_the_durations_the_first_run_measured(tmp_path: Path) -> None:
    """One slot; a long task heading a short chain, beside a longer chain of quick tasks. Blind
    (no hints, no history) the longer chain goes first; forced again, the measured durations
    make the long task's chain the critical one, and it starts first."""
    tasks = [
        {"name": "long", "cmd": "sleep 0.6"},
        {"name": "after_long", "cmd": "true", "needs": ["long"]},
        {"name": "q1", "cmd": "true"},
        {"name": "q2", "cmd": "true", "needs": ["q1"]},
        {"name": "q3", "cmd": "true", "needs": ["q2"]},
    ]
    spec = write_spec(tmp_path, tasks)
    limits = Limits({"cpu": 1, "mem": 8000})

    def first_started() -> str:
        with open_store(Workdir(tmp_path).db_path) as store:
            wf = store.workflow("wf")
            assert wf is not None
            last_run = store.runs(wf.id)[-1].id
            started = [a for a in store.attempts(wf.id) if a.run_id == last_run]
            return min(started, key=lambda a: a.start).task

    assert run(spec, tmp_path, limits=limits).status == "succeeded"
    assert first_started() == "q1"  # blind: three tasks ahead beat two
    assert run(spec, tmp_path, limits=limits, force=(".*",)).status == "succeeded"
    assert first_started() == "long"  # 0.6 s ahead beats three quick tasks
