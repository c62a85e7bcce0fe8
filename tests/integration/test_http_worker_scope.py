"""A worker token made for one workflow (``herd token create --scope worker --workflow W``)
against a real ``herd serve``, on SQLite and on PostgreSQL: its ``herd worker --server`` runs
W's tasks and no other workflow's, and stops once W is finished; asked directly, the server
refuses it another workflow's claims, releases, finishes and records (docs/api.md,
"Authentication")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from herd.core.model import TaskState
from herd.store.base import Store
from tests.httpserver import call, running, token

from .helpers import herd, write_spec


def test_a_worker_token_for_one_workflow_runs_that_workflow_alone(
    tmp_path: Path, store_url: str, shared: Store
) -> None:
    for name in ("mine", "theirs"):
        spec = write_spec(
            tmp_path, [{"name": f"{name}_{i}", "cmd": "true"} for i in range(3)], name
        )
        assert herd("submit", str(spec), "--store", store_url, cwd=tmp_path).returncode == 0
    scoped = token(store_url, tmp_path, "worker", "--workflow", "mine")
    with running(store_url, tmp_path) as server:
        env = {k: v for k, v in os.environ.items() if k != "HERD_STORE"}
        ran = subprocess.run(
            [sys.executable, "-m", "herd.cli", "worker", "--server", server.url, "--cpus", "2"],
            cwd=tmp_path,
            env={**env, "HERD_TOKEN": scoped},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert ran.returncode == 0, ran.stderr
        assert "the workflows it serves are finished" in ran.stdout, ran.stdout
        mine, theirs = (shared.workflow(n) for n in ("mine", "theirs"))
        assert mine is not None and theirs is not None
        assert {r.state for r in shared.task_records(mine.id).values()} == {TaskState.SUCCEEDED}
        assert {r.state for r in shared.task_records(theirs.id).values()} == {TaskState.READY}

        api, auth = server.api + "/queue", {"token": scoped}
        me = {"host": "h", "pid": 1, "user": "u", "resources": {"cpu": 1}, "lease": 30}
        wid = call("POST", f"{api}/workers", json_body=me, **auth).body["id"]
        claim = {"free": {"cpu": 1}, "lease": 30, "workflows": [theirs.id]}
        refused = [
            call("POST", f"{api}/workers/{wid}/claim", json_body=claim, **auth),
            call("GET", f"{api}/workflows/theirs", **auth),
            call("GET", f"{api}/runs?workflow_id={theirs.id}", **auth),
            call("GET", f"{api}/counts?workflow={theirs.id}", **auth),
            call(
                "POST",
                f"{api}/workers/{wid}/release",
                json_body={
                    "attempts": [{"workflow_id": theirs.id, "task": "theirs_0", "number": 1}],
                    "reason": "no",
                },
                **auth,
            ),
        ]
        for answer in refused:
            assert answer.status == 403, answer.body
            assert "workflow 'mine' only" in answer.error["message"]
        # a claim naming no workflow gets the token's alone: all of it is done
        claim = {"free": {"cpu": 4}, "lease": 30}
        assert call("POST", f"{api}/workers/{wid}/claim", json_body=claim, **auth).body == {
            "claimed": []
        }
        counts = call("GET", f"{api}/counts", **auth).body
        assert counts == {"counts": {"succeeded": 3}}, counts  # none of theirs, ready
    assert {r.state for r in shared.task_records(theirs.id).values()} == {TaskState.READY}
