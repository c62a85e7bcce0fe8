"""``herd ... --store postgresql://...``, run as a user runs it: every command that reads or writes
state works on a real PostgreSQL server, and its faults end in one line and exit 3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests import pgserver

WORKFLOW = """\
name: pg
tasks:
- {name: make, cmd: "echo 41 > a.txt", outputs: [a.txt]}
- {name: add, cmd: "echo $(( $(cat a.txt) + 1 )) > b.txt", needs: [make], inputs: [a.txt], outputs: [b.txt]}
- {name: flaky, cmd: "echo boom >&2; exit 3", needs: [make]}
"""


def herd(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herd.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_every_state_command_works_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    store = ("--store", postgres_url)
    run = herd("run", "wf.yaml", "-k", *store, cwd=tmp_path)
    assert run.returncode == 1, run.stderr  # flaky failed, the rest ran
    assert (tmp_path / "b.txt").read_text() == "42\n"
    assert not (tmp_path / ".herd" / "herd.db").exists()  # the state is in PostgreSQL

    status = json.loads(herd("status", "--json", *store, cwd=tmp_path).stdout)
    assert (status["counts"]["succeeded"], status["counts"]["failed"]) == (2, 1)

    why = herd("why", "add", "wf.yaml", *store, cwd=tmp_path)
    assert why.returncode == 0 and "up to date" in why.stdout, why.stdout + why.stderr
    stats = json.loads(herd("stats", "--json", *store, cwd=tmp_path).stdout)
    assert (stats["tasks"], stats["failed"], stats["runs"]) == (3, 1, 1)
    analyze = herd("analyze", *store, cwd=tmp_path)
    assert analyze.returncode == 0 and "flaky" in analyze.stdout and "boom" in analyze.stdout
    prov = json.loads(herd("provenance", "add", *store, cwd=tmp_path).stdout)
    assert prov[0]["state"] == "succeeded" and prov[0]["exit_code"] == 0
    plot = herd("plot", "-o", "gantt.svg", *store, cwd=tmp_path)
    assert plot.returncode == 0 and (tmp_path / "gantt.svg").stat().st_size > 0, plot.stderr
    export = herd("export", "wf.yaml", "-o", "run.json", *store, cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert (
        len(json.loads((tmp_path / "run.json").read_text())["workflow"]["execution"]["tasks"]) == 3
    )

    # the next run reruns only what failed, and what a reset names
    assert herd("reset", "add", "-f", "wf.yaml", *store, cwd=tmp_path).returncode == 0
    dry = herd("run", "wf.yaml", "--dry-run", *store, cwd=tmp_path).stdout
    assert "run   add" in dry and "run   flaky" in dry and "skip  make" in dry
    assert herd("forget", "wf.yaml", *store, cwd=tmp_path).returncode == 0
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM workflows").fetchone() == (0,)


def test_herd_store_in_the_environment_names_the_store(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    env = {"HERD_STORE": postgres_url}
    herd("run", "wf.yaml", "-k", cwd=tmp_path, env=env)
    assert not (tmp_path / ".herd" / "herd.db").exists()
    status = herd("status", cwd=tmp_path, env=env)
    assert status.returncode == 0 and "flaky" in status.stdout, status.stderr


def _one_line_exit_3(r: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    for text in expected:
        assert text in r.stderr, r.stderr


def test_store_faults_end_in_one_line_and_exit_3(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    cases = {
        "postgresql://postgres@127.0.0.1:notaport/x": "write the URL as",
        "postgresql://postgres:wrong@127.0.0.1:1/x": "check the host and port",
        "postgresql://no_such_role_here@127.0.0.1:5432/postgres": "user name",
        "mysql://root@127.0.0.1/herd": "SQLite file or in PostgreSQL",
    }
    for url, advice in cases.items():
        for command in (["run", "wf.yaml"], ["status"]):
            r = herd(*command, "--store", url, cwd=tmp_path)
            _one_line_exit_3(r, advice)
            assert "wrong" not in r.stderr  # no password in messages


def test_a_schema_from_a_newer_herd_is_refused(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    herd("run", "wf.yaml", "-k", "--store", postgres_url, cwd=tmp_path)
    with psycopg.connect(postgres_url) as conn:
        conn.execute("UPDATE herd_schema SET version = version + 1")
    for command in (["run", "wf.yaml"], ["status"], ["stats"]):
        _one_line_exit_3(herd(*command, "--store", postgres_url, cwd=tmp_path), "newer herd")


def test_a_wrong_password_is_one_line_and_exit_3(tmp_path: Path) -> None:
    """On a cluster of the test's own that asks for passwords (the shared server trusts)."""
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    try:
        with pgserver.throwaway_cluster(password="s3cret") as cluster:
            right = herd("run", "wf.yaml", "-k", "--store", cluster.url, cwd=tmp_path)
            assert right.returncode == 1, right.stderr  # it runs (flaky fails) with the password
            wrong = cluster.url.replace(":s3cret@", ":wrong@")
            for command in (["run", "wf.yaml"], ["status"], ["submit", "wf.yaml"], ["worker"]):
                r = herd(*command, "--store", wrong, cwd=tmp_path)
                _one_line_exit_3(r, "password authentication failed", "check the password")
                assert "wrong" not in r.stderr  # no password in messages
    except pgserver.NoServer as exc:
        pytest.fail(str(exc), pytrace=False)
