"""What HTTP workers ask the server besides their turns, as database workers ask the store:
the queue states of a temp file's readers (the worker whose finish leaves every reader
succeeded removes the file) and whether a campaign is open (a worker serving one waits for its
runs rather than stop on an empty queue)."""

from __future__ import annotations

from pathlib import Path

from herd.core.model import TaskState
from herd.store.base import Store
from herd.store.remote import RemoteQueue
from tests.httpserver import call, free_port

from .test_http_workers import finish, herd, serving, token, worker
from .test_workers import workflow_id
from .test_workers_reports import temp_spec


def test_http_workers_remove_a_temp_file_once_every_reader_succeeded(
    tmp_path: Path, store_url: str
) -> None:
    assert (
        herd("submit", str(temp_spec(tmp_path)), "--store", store_url, cwd=tmp_path).returncode == 0
    )
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        finish(*[worker(server, secret, tmp_path, "--cpus", "1") for _ in range(2)])
    assert (tmp_path / "digi.out").read_text() == (tmp_path / "qc.out").read_text() == "hits\n"
    assert not (tmp_path / "hits.tmp").exists()
    assert (tmp_path / "spare.tmp").exists()  # its reader failed: kept for the rerun


def test_the_queue_states_of_named_tasks(tmp_path: Path, store_url: str, shared: Store) -> None:
    assert (
        herd("submit", str(temp_spec(tmp_path)), "--store", store_url, cwd=tmp_path).returncode == 0
    )
    wid = workflow_id(shared)
    secret, reader = token(store_url, tmp_path), token(store_url, tmp_path, "read")
    with serving(store_url, tmp_path, free_port()) as server:
        queue = RemoteQueue(server.url, secret, retry_for=10)
        try:
            asked = ["sim", "digi", "nothing"]
            assert queue.queue_states(wid, asked) == shared.queue_states(wid, asked)
            assert queue.queue_states(wid, asked) == {
                "sim": TaskState.READY,
                "digi": TaskState.WAITING,
            }
        finally:
            queue.close()
        body = {"workflow_id": wid, "tasks": ["sim"]}
        refused = call("POST", f"{server.api}/queue/states", token=reader, json_body=body)
        assert refused.status == 403 and refused.error["code"] == "forbidden"


def test_open_campaigns_as_the_store_counts_them(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "t.yaml").write_text("name: t\ntasks:\n  - {name: reco, cmd: 'echo {run}'}\n")
    made = herd(
        "campaign", "create", "c", "--template", "t.yaml", "--store", store_url, cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    secret = token(store_url, tmp_path)
    with serving(store_url, tmp_path, free_port()) as server:
        queue = RemoteQueue(server.url, secret, retry_for=10)
        try:
            record = queue.workflow("c")
            assert record is not None
            assert queue.open_campaigns() == 1
            assert queue.open_campaigns([record.id]) == 1
            assert queue.open_campaigns([record.id + 1]) == queue.open_campaigns([]) == 0
            closed = herd("campaign", "close", "c", "--store", store_url, cwd=tmp_path)
            assert closed.returncode == 0, closed.stderr
            assert queue.open_campaigns([record.id]) == 0
        finally:
            queue.close()
        refused = call("GET", f"{server.api}/queue/campaigns/open")
        assert refused.status == 401 and refused.error["code"] == "unauthorized"
