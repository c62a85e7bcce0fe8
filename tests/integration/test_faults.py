"""Faults under a running herd, each its own test: SIGHUP, clean and the store touched during a
run, an unwritable log folder, a dead herd in status, a memory spike between samples, and the
script herd writes run by bash against herd run itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import alive, herd_cmd, wait_for, write_spec

#: a task that says it started (its pid in started.pid) and waits until the test lets it go
WAITER = "echo $$ > started.pid; while [ ! -e go ]; do sleep 0.02; done"


def herd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(herd_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """``herd run`` of a workflow whose first task waits for ``go``; yields once it runs."""
    spec = write_spec(
        tmp_path,
        [
            {"name": "wait", "cmd": WAITER, "outputs": ["mid.txt"], "stdout": "mid.txt"},
            {
                "name": "after",
                "cmd": "cat mid.txt > end.txt",
                "inputs": ["mid.txt"],
                "outputs": ["end.txt"],
            },
        ],
    )
    with subprocess.Popen(
        herd_cmd("run", spec.name, "-q"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            wait_for(
                lambda: (
                    (tmp_path / "started.pid").is_file()
                    and (tmp_path / "started.pid").read_text().strip() != ""
                )
            )
            yield proc, tmp_path
        finally:
            (tmp_path / "go").touch()
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=60)


def task_pid(folder: Path) -> int:
    return int((folder / "started.pid").read_text())


def test_sighup_stops_every_task_and_records_the_run(
    running: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, folder = running
    pid = task_pid(folder)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err
    assert not alive(pid)
    status = herd("status", "--json", cwd=folder)
    data = json.loads(status.stdout)
    assert data["last_run"]["status"] == "interrupted"
    assert {t["name"]: t["state"] for t in data["tasks"]}["wait"] == "cancelled"


def test_clean_is_refused_while_herd_runs(running: tuple[subprocess.Popen[str], Path]) -> None:
    _, folder = running
    (folder / "end.txt").write_text("from before\n")  # an intermediate output clean would delete
    r = herd("clean", "wf.json", "--intermediate", cwd=folder)
    assert r.returncode == 3 and "in use by another herd process" in r.stderr, r.stderr
    assert (folder / "end.txt").is_file()


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_store_removed_or_replaced_under_herd_stops_it_with_exit_3(
    running: tuple[subprocess.Popen[str], Path], how: str
) -> None:
    proc, folder = running
    db = folder / ".herd" / "herd.db"
    if how == "removed":
        db.unlink()
    else:
        shutil.copy(db, folder / "copy.db")
        os.replace(folder / "copy.db", db)
    (folder / "go").touch()  # the task ends: herd commits its exit
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err
    assert f"{db} was {how}" in err and err.count("\n") == 1, err


def test_status_tells_a_dead_herd_from_a_live_one(
    running: tuple[subprocess.Popen[str], Path],
) -> None:
    proc, folder = running
    live = herd("status", cwd=folder)
    assert "running on" in live.stdout and "interrupted" not in live.stdout, live.stdout
    proc.kill()
    proc.wait(timeout=60)
    try:
        dead = herd("status", cwd=folder)
        assert f"interrupted: herd pid {proc.pid} is not running" in dead.stdout, dead.stdout
        assert json.loads(herd("status", "--json", cwd=folder).stdout)["interrupted"] is True
    finally:
        os.kill(task_pid(folder), signal.SIGKILL)  # what the killed herd left behind


def read_only(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``herd ARGS`` run where ``folder`` is mounted read-only, in a mount namespace of its own
    (root writes through permission bits, not through a read-only mount)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to mount a folder read-only")
    mount = f"mount --bind {folder} {folder} && mount -o remount,bind,ro {folder}"
    probe = subprocess.run(["unshare", "-m", "sh", "-c", mount], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount in a new mount namespace here: {probe.stderr.strip()}")
    argv = " ".join(herd_cmd(*args))
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", f"{mount} && exec {argv}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unwritable_log_folder_fails_the_task_with_the_reason(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, [{"name": "talk", "cmd": "echo hello"}, {"name": "quiet", "cmd": "true"}]
    )
    logs = tmp_path / ".herd" / "logs" / "wf"
    logs.mkdir(parents=True)
    r = read_only(logs, "run", str(spec), "-C", str(tmp_path), "-k", "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot write its log" in r.stdout and "Read-only file system" in r.stdout, r.stdout
    tasks = {
        t["name"]: t for t in json.loads(herd("status", "--json", cwd=tmp_path).stdout)["tasks"]
    }
    assert tasks["talk"]["state"] == "failed" and "talk.1.out" in tasks["talk"]["reason"]
    assert tasks["quiet"]["state"] == "succeeded"  # a task that prints nothing needs no log


def test_a_memory_spike_between_samples_is_flagged_in_analyze_and_stats(tmp_path: Path) -> None:
    spike = "b = bytearray(300_000_000); b[::4096] = b'x' * len(b[::4096])"
    spec = write_spec(
        tmp_path,
        [
            {"name": "spike", "cmd": ["python3", "-c", spike], "resources": {"mem": 100}},
            {"name": "calm", "cmd": "true", "resources": {"mem": 100}},
        ],
    )
    r = herd("run", spec.name, "-q", "--mem-kill-ratio", "0", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    over = json.loads(herd("stats", "--json", cwd=tmp_path).stdout)["over_memory"]
    assert [(o["task"], o["declared"]) for o in over] == [("spike", 100_000_000)]
    assert over[0]["peak"] > 250_000_000
    analyze = herd("analyze", cwd=tmp_path).stdout
    assert "spike attempt 1: peak" in analyze and "> declared 100 MB" in analyze, analyze


TRICKY = [
    {"name": "comment", "cmd": "echo hi # a comment", "stdout": "out1.txt"},
    {"name": "background", "cmd": "sleep 0.1 & echo started > out2.txt; wait"},
    {
        "name": "lines",
        "cmd": "# first a comment\necho 'one' > out3.txt\nfalse\n# and another\necho \"two\" >> out3.txt\n",
    },
    {
        "name": "quote'name",
        "cmd": ["printf", "%s|%s\\n", "a b", "$HOME"],
        "stdout": "out4.txt",
        "cwd": "sub dir",
    },
    {"name": "env", "cmd": 'echo "$GREETING $LOCAL" > out5.txt', "env": {"LOCAL": "it's"}},
    {"name": "semicolons", "cmd": "echo a; echo b;; echo c", "stdout": "out6.txt"},
    {"name": "heredoc", "cmd": "cat > out7.txt <<'EOF'\n$not expanded\nEOF", "needs": ["comment"]},
    {"name": "braces", "cmd": "{ echo x; } > out8.txt && ( echo y ) >> out8.txt"},
]


def test_the_script_herd_writes_runs_in_bash_as_herd_runs_it(tmp_path: Path) -> None:
    # "echo a; echo b;; echo c" is a syntax error in sh: both must fail it alike
    tasks = [t for t in TRICKY if t["name"] != "semicolons"]
    spec = write_spec(tmp_path, tasks, env={"GREETING": "hello world"})
    by_herd, by_bash = tmp_path / "herd", tmp_path / "bash"
    by_herd.mkdir()
    by_bash.mkdir()
    assert herd("run", str(spec), "-C", str(by_herd), "-q", cwd=tmp_path).returncode == 0
    script = herd("script", str(spec), cwd=tmp_path).stdout
    assert (
        subprocess.run(
            ["bash", "-c", script], cwd=by_bash, capture_output=True, timeout=60
        ).returncode
        == 0
    )
    outputs = [
        "out1.txt",
        "out2.txt",
        "out3.txt",
        "sub dir/out4.txt",
        "out5.txt",
        "out7.txt",
        "out8.txt",
    ]
    for name in outputs:
        assert (by_bash / name).read_text() == (by_herd / name).read_text(), name
    assert (by_herd / "out3.txt").read_text() == "one\ntwo\n"
    assert (by_herd / "out7.txt").read_text() == "$not expanded\n"


def test_a_failing_command_stops_the_script_as_it_fails_the_run(tmp_path: Path) -> None:
    tasks = [TRICKY[5], {"name": "next", "cmd": "touch next.txt", "needs": ["semicolons"]}]
    spec = write_spec(tmp_path, tasks)
    assert herd("run", str(spec), "-q", cwd=tmp_path).returncode == 1
    script = herd("script", str(spec), cwd=tmp_path).stdout
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert (
        subprocess.run(
            ["bash", "-c", script], cwd=fresh, capture_output=True, timeout=60
        ).returncode
        != 0
    )
    assert not (fresh / "next.txt").exists() and not (tmp_path / "next.txt").exists()


@pytest.mark.parametrize("which", ["working directory", ".herd"])
def test_a_read_only_working_directory_or_herd_folder_is_exit_3(tmp_path: Path, which: str) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    folder = workdir
    if which == ".herd":
        assert herd("run", str(spec), "-C", str(workdir), "-q", cwd=tmp_path).returncode == 0
        folder = workdir / ".herd"
    r = read_only(folder, "run", str(spec), "-C", str(workdir), "--force", "a")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 3 and len(lines) == 1, r.stderr
    assert "read-only" in lines[0].lower() and "Traceback" not in r.stderr, lines
