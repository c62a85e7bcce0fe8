"""A PostgreSQL server that restarts in the middle of a run: herd reconnects and carries on,
losing nothing and running nothing twice. On a throwaway cluster of the test's own (the shared
server is not ours to restart)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import pgserver

TASKS = 30


def _succeeded(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM attempts WHERE state = 'succeeded'").fetchone()
    except psycopg.Error:  # no table yet, or the server is away
        return 0
    return int(row[0]) if row else 0


def _spec(root: Path) -> Path:
    spec = root / "wf.yaml"
    lines = ["name: restart", "tasks:"]
    lines += [f"- {{name: t{i}, cmd: 'sleep 0.1; echo t{i} >> done.log'}}" for i in range(TASKS)]
    spec.write_text("\n".join(lines) + "\n")
    return spec


def _each_ran_once(root: Path, url: str) -> None:
    """Every task ran once (the tasks' own log) and succeeded once (the store)."""
    done = (root / "done.log").read_text().split()
    assert sorted(done) == sorted(f"t{i}" for i in range(TASKS))
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT task, count(*) FROM attempts WHERE state = 'succeeded' GROUP BY task"
        ).fetchall()
    assert sorted(rows) == sorted((f"t{i}", 1) for i in range(TASKS))


@pytest.fixture
def cluster() -> Iterator[pgserver.Cluster]:
    try:
        with pgserver.throwaway_cluster() as cluster:
            yield cluster
    except pgserver.NoServer as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.mark.slow
def test_a_run_carries_on_across_a_server_restart(
    tmp_path: Path, cluster: pgserver.Cluster
) -> None:
    spec = _spec(tmp_path)
    cmd = [sys.executable, "-m", "herd.cli", "run", str(spec), "-q", "--cpu-limit", "2"]
    run = subprocess.Popen(
        [*cmd, "--store", cluster.url], cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while _succeeded(cluster.url) < 4 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before the restart: make its tasks longer"
    cluster.restart()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert "reconnecting" in stderr  # it did lose the connection
    _each_ran_once(tmp_path, cluster.url)


@pytest.mark.slow
def test_workers_carry_on_across_a_server_restart(
    tmp_path: Path, cluster: pgserver.Cluster
) -> None:
    spec = _spec(tmp_path)
    herd = [sys.executable, "-m", "herd.cli"]
    submitted = subprocess.run(
        [*herd, "submit", str(spec), "--store", cluster.url], cwd=tmp_path, capture_output=True
    )
    assert submitted.returncode == 0, submitted.stderr
    argv = [*herd, "worker", "--store", cluster.url, "--cpus", "1", "--mem", "1000"]
    workers = [
        subprocess.Popen(
            argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 60
    while _succeeded(cluster.url) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(w.poll() is None for w in workers), "the workers ended before the restart"
    cluster.restart()
    errors = []
    for w in workers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err
        assert "the workflows it serves are finished" in out
        errors.append(err)
    assert any("reconnecting" in err for err in errors)  # they did lose the connection
    _each_ran_once(tmp_path, cluster.url)
