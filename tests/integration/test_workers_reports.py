"""What workers leave for the reports, seen from any host: ``herd status`` takes back the attempts
of silent workers (or says it may not), ``herd analyze`` shows the log tails workers stored when
the log files are not on this host. On both stores, through the ``herd`` command."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from herd.core.model import TaskState
from herd.store.base import Store

from .helpers import herd, worker, write_spec


def _silent_worker_holding(store: Store, lease: float = 0.2) -> int:
    """A worker that claims every ready task and then never renews its lease (as if killed)."""
    worker = store.register_worker(
        host="elsewhere", pid=1, user="u", resources={"cpu": 4}, now=time.time(), lease=lease
    )
    assert store.claim(worker, {"cpu": 4}, now=time.time(), lease=lease)
    time.sleep(lease + 0.1)  # the lease runs out: nothing to await but the clock
    return worker


def test_herd_status_reaps_the_attempts_of_silent_workers_once(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    spec = write_spec(tmp_path, [{"name": n, "cmd": "true", "retries": 1} for n in "ab"])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    worker = _silent_worker_holding(shared)

    first = herd("status", "--store", store_url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for task in ("a", "b"):
        assert f"reaped {task} attempt 1 of silent worker {worker}: ready" in first.stdout
    wid = shared.workflow("wf")
    assert wid is not None
    assert shared.queue_counts([wid.id]) == {TaskState.READY: 2}
    assert [w.state for w in shared.workers()] == ["lost"]

    again = json.loads(herd("status", "--json", "--store", store_url, cwd=tmp_path).stdout)
    assert again["reaped"] == [] and again["unreaped"] == ""  # reaping is idempotent


@pytest.fixture
def reader_url(postgres_url: str) -> Iterator[str]:
    """``postgres_url`` as a role that may read herd's tables and change nothing."""
    role = f"herd_reader_{uuid.uuid4().hex[:8]}"
    schema = postgres_url.rsplit("search_path%3D", 1)[1]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        conn.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role}"
        )
    parts = urlsplit(postgres_url)
    yield urlunsplit(parts._replace(netloc=parts.netloc.replace("postgres@", f"{role}@", 1)))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_status_on_a_store_it_may_only_read_shows_and_says_who_can_reap(
    tmp_path: Path, postgres_url: str, reader_url: str
) -> None:
    from herd.store import open_store

    spec = write_spec(tmp_path, [{"name": "a", "cmd": "true"}])
    assert herd("submit", str(spec), "--store", postgres_url, cwd=tmp_path).returncode == 0
    store = open_store(postgres_url)
    try:
        worker = _silent_worker_holding(store)
    finally:
        store.close()

    shown = herd("status", "--store", reader_url, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "running" in shown.stdout
    assert f"worker(s) {worker} stopped renewing their leases" in shown.stdout
    assert "`herd reap` by a user who may write the store" in shown.stdout
    reaped = herd("reap", "--store", postgres_url, cwd=tmp_path)
    assert "herd: reaped 1 attempt(s)" in reaped.stdout, reaped.stderr


def test_analyze_shows_the_tail_a_worker_stored_when_the_logs_are_elsewhere(
    tmp_path: Path, store_url: str
) -> None:
    cmd = "echo starting; echo 'boom: detector map missing' >&2; exit 3"
    spec = write_spec(tmp_path, [{"name": "reco", "cmd": cmd}])
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    ran = herd("worker", "--store", store_url, "--cpus", "1", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    here = herd("analyze", "--store", store_url, cwd=tmp_path).stdout
    assert "| boom: detector map missing" in here and "stored by the worker" not in here

    for log in (tmp_path / ".herd" / "logs").rglob("*"):
        if log.is_file():
            log.unlink()  # as seen from a host that does not share the worker's disk
    elsewhere = herd("analyze", "--store", store_url, cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert f"log tail: stored by the worker on {os.uname().nodename}" in elsewhere.stdout
    assert "    | boom: detector map missing" in elsewhere.stdout
    data = json.loads(herd("analyze", "--json", "--store", store_url, cwd=tmp_path).stdout)
    (attempt,) = data["failures"][0]["attempts"]
    assert attempt["stored"]["lines"] == ["boom: detector map missing"]


def temp_spec(tmp_path: Path) -> Path:
    """``sim`` writes two temp files: ``digi`` and ``qc`` read the one, ``bad`` (which fails)
    the other."""
    temp = {"path": "hits.tmp", "temp": True}
    spare = {"path": "spare.tmp", "temp": True}
    tasks: list[dict[str, Any]] = [
        {
            "name": "sim",
            "cmd": "echo hits > hits.tmp; echo s > spare.tmp",
            "outputs": [temp, spare],
        },
        {
            "name": "digi",
            "cmd": "sleep 0.3; cat hits.tmp > digi.out",
            "needs": ["sim"],
            "inputs": ["hits.tmp"],
            "outputs": ["digi.out"],
        },
        {
            "name": "qc",
            "cmd": "cat hits.tmp > qc.out",
            "needs": ["sim"],
            "inputs": ["hits.tmp"],
            "outputs": ["qc.out"],
        },
        {"name": "bad", "cmd": "cat spare.tmp; exit 1", "needs": ["sim"], "inputs": ["spare.tmp"]},
    ]
    return write_spec(tmp_path, tasks)


def test_workers_remove_a_temp_file_once_every_reader_succeeded(
    tmp_path: Path, store_url: str
) -> None:
    """As ``herd run`` does: the worker whose finish leaves every reader succeeded removes it;
    a temp file whose reader failed is kept for its rerun."""
    spec = temp_spec(tmp_path)
    assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    workers = [worker(store_url, tmp_path, "--cpus", "1") for _ in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
    assert (tmp_path / "digi.out").read_text() == (tmp_path / "qc.out").read_text() == "hits\n"
    assert not (tmp_path / "hits.tmp").exists()
    assert (tmp_path / "spare.tmp").exists()  # its reader failed: kept for the rerun
