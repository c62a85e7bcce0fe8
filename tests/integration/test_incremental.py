"""Incremental reruns with real files: torc's three restart cases, temp files, why, user data."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from herd.core.model import Kill, Limits, TaskState
from herd.plan.files import _Snapshot
from herd.reports.analyze import analyze
from herd.store import open_store
from herd.store.workdir import Workdir
from tests.integration.helpers import attempts, herd_cmd, run, states, write_spec

PY = "python3 -c"


def pipeline(
    mem_mb: int = 500, timeout: float = 30.0, hog: bool = False, slow: bool = False
) -> list[dict[str, Any]]:
    """prep -> {sim_1, sim_2} -> reco (reads both) -> report. Real files all the way."""
    reco = "cat hits_1.txt hits_2.txt > reco.txt"
    if hog:  # takes ~300 MB for real, far beyond its declared memory
        reco = f"{PY} \"import time; b = b'x' * 300_000_000; time.sleep(5)\" && {reco}"
    report = "wc -l < reco.txt > report.txt"
    if slow:
        report = f"sleep 5 && {report}"
    return [
        {
            "name": "prep",
            "cmd": "sort params.txt > cfg.txt",
            "inputs": ["params.txt"],
            "outputs": ["cfg.txt"],
        },
        {
            "name": "sim_1",
            "cmd": "cat cfg.txt > hits_1.txt",
            "inputs": ["cfg.txt"],
            "outputs": ["hits_1.txt"],
        },
        {
            "name": "sim_2",
            "cmd": "cat cfg.txt > hits_2.txt",
            "inputs": ["cfg.txt"],
            "outputs": ["hits_2.txt"],
        },
        {
            "name": "reco",
            "cmd": reco,
            "inputs": ["hits_1.txt", "hits_2.txt"],
            "outputs": ["reco.txt"],
            "resources": {"cpu": 1, "mem": mem_mb},
        },
        {
            "name": "report",
            "cmd": report,
            "inputs": ["reco.txt"],
            "outputs": ["report.txt"],
            "timeout": timeout,
        },
        {"name": "side", "cmd": "echo side > side.txt", "outputs": ["side.txt"]},
    ]


LIMITS = Limits({"cpu": 2, "mem": 8000})


def first_run(tmp_path: Path, **kw: Any) -> Path:
    (tmp_path / "params.txt").write_text("b\na\n")
    spec = write_spec(tmp_path, pipeline(**kw))
    run(spec, tmp_path, limits=LIMITS, keep_going=True)
    return spec


def test_torc_case_1_edited_input_reruns_everything_downstream(tmp_path: Path) -> None:
    spec = first_run(tmp_path)
    assert set(states(tmp_path).values()) == {TaskState.SUCCEEDED}
    (tmp_path / "params.txt").write_text("c\nb\na\n")
    plan = json.loads(
        subprocess.run(
            herd_cmd("run", str(spec), "-C", str(tmp_path), "--dry-run", "--json"),
            capture_output=True,
            text=True,
        ).stdout
    )
    assert {t["task"]: t["reason"] for t in plan["tasks"] if t["run"]} == {
        "prep": "input params.txt changed",
        "sim_1": "upstream prep reran",
        "sim_2": "upstream prep reran",
        "reco": "upstream sim_1 reran",
        "report": "upstream reco reran",
    }
    run(spec, tmp_path, limits=LIMITS)
    assert attempts(tmp_path) == {
        "prep": 2,
        "sim_1": 2,
        "sim_2": 2,
        "reco": 2,
        "report": 2,
        "side": 1,
    }
    assert (tmp_path / "report.txt").read_text().strip() == "6"


def test_files_stat_ed_by_a_child_process_while_the_store_is_read(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """What a workflow with a million inputs does (a forked child stats them), on a small one:
    the first run, a resume with nothing to do and an edit behave as in-process, and the child
    is reaped each time."""
    monkeypatch.setattr(_Snapshot, "BACKGROUND_AFTER", 0)
    spec = first_run(tmp_path)
    assert set(states(tmp_path).values()) == {TaskState.SUCCEEDED}
    assert run(spec, tmp_path, limits=LIMITS).status == "succeeded"
    assert set(attempts(tmp_path).values()) == {1}
    (tmp_path / "params.txt").write_text("c\nb\na\n")
    run(spec, tmp_path, limits=LIMITS)
    assert attempts(tmp_path) == {
        "prep": 2,
        "sim_1": 2,
        "sim_2": 2,
        "reco": 2,
        "report": 2,
        "side": 1,
    }
    assert not _zombie_children()


def _zombie_children() -> list[int]:
    zombies = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == os.getpid():
            zombies.append(int(stat.parent.name))
    return zombies


def test_torc_case_2_out_of_memory_reruns_only_it_and_descendants(tmp_path: Path) -> None:
    spec = first_run(tmp_path, mem_mb=50, hog=True)
    s = states(tmp_path)
    assert s["reco"] is TaskState.FAILED and s["report"] is TaskState.CANCELLED
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    reason = store.task_records(wf.id)["reco"].reason
    (killed,) = next(f for f in analyze(store, wf.id).failures if f.task == "reco").attempts
    store.close()
    assert reason.startswith("killed: memory") and "> 100.0 MB limit" in reason, reason
    assert killed.kill is Kill.MEMORY  # the kind the runner stored, as analyze reads it
    # the user gives it the memory it needs; nothing else changed
    spec.write_text(json.dumps({"name": "wf", "tasks": pipeline(mem_mb=1000, hog=True)}))
    r = run(spec, tmp_path, limits=LIMITS)
    assert r.status == "succeeded"
    assert attempts(tmp_path) == {
        "prep": 1,
        "sim_1": 1,
        "sim_2": 1,
        "reco": 2,
        "report": 1,
        "side": 1,
    }


def test_torc_case_3_timed_out_last_task_reruns_alone(tmp_path: Path) -> None:
    spec = first_run(tmp_path, timeout=0.5, slow=True)
    assert states(tmp_path)["report"] is TaskState.FAILED
    spec.write_text(json.dumps({"name": "wf", "tasks": pipeline(timeout=30, slow=False)}))
    run(spec, tmp_path, limits=LIMITS)
    # the command changed (no more sleep): still only the failed last task runs
    assert attempts(tmp_path) == {
        "prep": 1,
        "sim_1": 1,
        "sim_2": 1,
        "reco": 1,
        "report": 2,
        "side": 1,
    }


def test_memory_recovery_retries_with_more_memory(tmp_path: Path) -> None:
    hog = f"{PY} \"import time; b = b'x' * 200_000_000; time.sleep(3)\""
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "hog",
                "cmd": hog,
                "resources": {"mem": 40},
                "recover": {"mem_factor": 10, "attempts": 1},
            }
        ],
    )
    r = run(spec, tmp_path, limits=LIMITS)
    assert r.status == "succeeded"
    store = open_store(Workdir(tmp_path).db_path)
    wf = store.workflow("wf")
    assert wf is not None
    first, second = store.attempts(wf.id)
    store.close()
    assert first.kill_reason.startswith("memory") and first.resources["mem"] == 40
    assert second.resources["mem"] == 400 and second.state is TaskState.SUCCEEDED


def test_temp_files_removed_when_readers_succeed_and_regenerated_when_needed(
    tmp_path: Path,
) -> None:
    tasks = [
        {
            "name": "make",
            "cmd": "seq 100 > big.tmp",
            "outputs": [{"path": "big.tmp", "temp": True}],
        },
        {
            "name": "use1",
            "cmd": "head -1 big.tmp > a.txt",
            "inputs": ["big.tmp"],
            "outputs": ["a.txt"],
        },
        {
            "name": "use2",
            "cmd": "tail -1 big.tmp > b.txt",
            "inputs": ["big.tmp"],
            "outputs": ["b.txt"],
        },
    ]
    spec = write_spec(tmp_path, tasks)
    run(spec, tmp_path, limits=LIMITS)
    assert not (tmp_path / "big.tmp").exists()
    assert (tmp_path / "b.txt").read_text() == "100\n"
    assert run(spec, tmp_path, limits=LIMITS).counts[TaskState.SKIPPED] == 3  # no rerun for a temp
    (tmp_path / "a.txt").unlink()
    r = subprocess.run(
        herd_cmd("why", "make", "-f", str(spec), "-C", str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "make runs: output big.tmp missing (temp, needed by use1)"
    run(spec, tmp_path, limits=LIMITS)
    assert attempts(tmp_path) == {"make": 2, "use1": 2, "use2": 1}
    assert (tmp_path / "a.txt").read_text() == "1\n"


def test_why_follows_the_chain_to_the_root_cause(tmp_path: Path) -> None:
    spec = first_run(tmp_path)
    (tmp_path / "params.txt").write_text("z\n")
    r = subprocess.run(
        herd_cmd("why", "report", "-f", str(spec), "-C", str(tmp_path)),
        capture_output=True,
        text=True,
    )
    assert r.stdout.splitlines() == [
        "report runs: upstream reco reran",
        "  because reco runs: upstream sim_1 reran",
        "  because sim_1 runs: upstream prep reran",
        "  because prep runs: input params.txt changed",
    ]
    r = subprocess.run(
        herd_cmd("why", "side", "-f", str(spec), "-C", str(tmp_path), "--json"),
        capture_output=True,
        text=True,
    )
    assert json.loads(r.stdout) == [{"task": "side", "run": False, "reason": "up to date"}]


def test_reset_downstream_forget_and_clean(tmp_path: Path) -> None:
    spec = first_run(tmp_path)
    cmd = ["-f", str(spec), "-C", str(tmp_path)]
    assert (
        subprocess.run(
            herd_cmd("reset", "sim_1", "--downstream", *cmd), capture_output=True
        ).returncode
        == 0
    )
    run(spec, tmp_path, limits=LIMITS)
    assert attempts(tmp_path) == {
        "prep": 1,
        "sim_1": 2,
        "sim_2": 1,
        "reco": 2,
        "report": 2,
        "side": 1,
    }
    r = subprocess.run(herd_cmd("clean", *cmd, "--intermediate"), capture_output=True, text=True)
    assert "removed 4 file(s)" in r.stdout  # cfg, hits_1, hits_2, reco
    assert not (tmp_path / "cfg.txt").exists() and (tmp_path / "report.txt").exists()
    assert subprocess.run(herd_cmd("forget", *cmd), capture_output=True).returncode == 0
    assert run(spec, tmp_path, limits=LIMITS).counts[TaskState.SUCCEEDED] == 6


def test_emit_and_provenance(tmp_path: Path) -> None:
    herd = " ".join(herd_cmd())
    cmd = f'{herd} emit events 1000 && {herd} emit --event \'{{"stage": "merged"}}\' && echo out'
    spec = write_spec(tmp_path, [{"name": "t", "cmd": cmd, "inputs": [], "outputs": []}])
    assert run(spec, tmp_path, limits=LIMITS).status == "succeeded"
    r = subprocess.run(
        herd_cmd("provenance", "t", "-C", str(tmp_path), "--attempt", "1"),
        capture_output=True,
        text=True,
    )
    rec = json.loads(r.stdout)
    assert rec["user_data"] == {"events": 1000}
    assert rec["user_events"][0]["stage"] == "merged"
    for field in (
        "host",
        "user",
        "pid",
        "start",
        "end",
        "exit_code",
        "utime",
        "stime",
        "max_rss",
        "cmd",
        "cwd",
    ):
        assert rec[field] not in (None, ""), field
    r = subprocess.run(herd_cmd("emit", "x", "1"), capture_output=True, text=True)
    assert r.returncode == 2 and "HERD_USER_DATA" in r.stderr


def test_after_forget_no_file_of_the_forgotten_attempt_survives(tmp_path: Path) -> None:
    """Attempt numbers start again at 1 after `herd forget`: logs and user data of the forgotten
    attempt 1 must not pass for those of the new one, which prints and records nothing."""
    loud = write_spec(
        tmp_path,
        [
            {
                "name": "t",
                "cmd": 'echo out; echo err >&2; echo \'{"key": "k", "value": 1}\' > "$HERD_USER_DATA"',
            }
        ],
    )
    assert run(loud, tmp_path, limits=LIMITS).status == "succeeded"
    logs = Workdir(tmp_path).workflow_logs_dir("wf")
    assert sorted(p.name for p in logs.iterdir()) == ["t.1.data.jsonl", "t.1.err", "t.1.out"]
    assert (
        subprocess.run(
            herd_cmd("forget", "-f", str(loud), "-C", str(tmp_path)), capture_output=True
        ).returncode
        == 0
    )
    quiet = write_spec(tmp_path, [{"name": "t", "cmd": "true"}])
    assert run(quiet, tmp_path, limits=LIMITS).status == "succeeded"
    assert attempts(tmp_path) == {"t": 1}
    assert list(logs.iterdir()) == []
    with open_store(Workdir(tmp_path).db_path) as store:
        wf = store.workflow("wf")
        assert wf is not None and store.user_data(wf.id) == []
