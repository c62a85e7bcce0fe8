"""Campaigns over HTTP against a real ``herd serve``: the list, the matrix (the same JSON as
``herd campaign status --json``), ``/metrics`` read back by Prometheus' own parser, and the
error shape for an unknown campaign; on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests import pgserver
from tests.httpserver import Answer, Server, call, running

TEMPLATE = """
name: ecal
tasks:
  - {name: reco, cmd: 'test {run} != 2'}
  - {name: calib, group_by: fill, needs: [reco], cmd: 'echo {runs}'}
  - {name: plots, run_types: [collisions], needs: [reco], cmd: 'echo {run}'}
"""
RUNS = [
    {"run": 1, "fill": 7, "run_type": "collisions"},
    {"run": 2, "fill": 7, "run_type": "collisions"},
    {"run": 3, "fill": 8, "run_type": "cosmics"},
]


def herd(*args: str, cwd: Path, store: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "herd.cli", *args, "--store", store],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path, str]]:
    workdir = tmp_path_factory.mktemp("campaign")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            store = str(workdir / ".herd" / "herd.db")
        else:
            database = request.getfixturevalue("postgres_database")
            store = stack.enter_context(pgserver.fresh_schema(database))
        (workdir / "ecal.yaml").write_text(TEMPLATE)
        (workdir / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RUNS))
        herd("campaign", "create", "prompt", "--template", "ecal.yaml", cwd=workdir, store=store)
        herd("campaign", "add-runs", "prompt", "runs.jsonl", cwd=workdir, store=store)
        herd("worker", "--idle-exit", "1", "--cpus", "2", "--mem", "1000", cwd=workdir, store=store)
        server = stack.enter_context(running(store, workdir, "--public-read"))
        yield server, workdir, store


def test_the_matrix_is_what_the_cli_prints(served: tuple[Server, Path, str]) -> None:
    server, workdir, store = served
    got = call("GET", server.api + "/campaigns/prompt")
    assert got.status == 200, got.body
    cli = json.loads(herd("campaign", "status", "prompt", "--json", cwd=workdir, store=store))
    assert got.body == cli
    assert got.body["runs"] == {
        "1": {"reco": "done", "calib": "failed", "plots": "done"},
        "2": {"reco": "failed", "calib": "merged", "plots": "failed"},
        "3": {"reco": "done", "calib": "new", "plots": "skipped"},
    }
    some = call("GET", server.api + "/campaigns/prompt?runs=2-3&task=plots")
    assert some.body["runs"] == {"2": {"plots": "failed"}, "3": {"plots": "skipped"}}
    listed = call("GET", server.api + "/campaigns").body["items"]
    assert [(c["name"], c["runs"], c["open"]) for c in listed] == [("prompt", 3, True)]
    assert listed[0]["status"] == {"done": 3, "failed": 3, "merged": 1, "new": 1, "skipped": 1}


def test_an_unknown_campaign_or_range_is_the_one_error_shape(
    served: tuple[Server, Path, str],
) -> None:
    server, _, _ = served
    missing = call("GET", server.api + "/campaigns/nope")
    assert missing.status == 404 and "no campaign 'nope'" in missing.error["message"]
    bad = call("GET", server.api + "/campaigns/prompt?runs=9-1")
    assert bad.status in (400, 422) and "first run is after the last" in bad.error["message"]


def test_metrics_are_prometheus_text(served: tuple[Server, Path, str]) -> None:
    server, _, _ = served
    got = call("GET", server.url + "/metrics")
    assert got.status == 200
    assert got.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(got.body)
        for s in family.samples
    }
    key = ("herd_campaign_tasks", (("campaign", "prompt"), ("status", "failed"), ("task", "reco")))
    assert values[key] == 1
    assert values[("herd_campaign_runs", (("campaign", "prompt"),))] == 3
    assert values[("herd_workers", (("state", "stopped"),))] == 1


def test_a_token_for_another_workflow_sees_no_campaign(served: tuple[Server, Path, str]) -> None:
    server, workdir, store = served
    mine, other = (
        herd("token", "create", "--scope", "read", "--workflow", name, cwd=workdir, store=store)
        .strip()
        .splitlines()[-1]
        for name in ("prompt", "other")
    )
    assert [c["name"] for c in _get(server, "/campaigns", mine).body["items"]] == ["prompt"]
    assert _get(server, "/campaigns/prompt", mine).status == 200
    assert _get(server, "/campaigns", other).body["items"] == []
    refused = [
        _get(server, "/campaigns/prompt", other),
        call("GET", server.url + "/metrics", token=mine),
    ]
    assert [r.error["code"] for r in refused] == ["forbidden", "forbidden"]
    assert "every workflow" in refused[1].error["message"]


def _get(server: Server, path: str, token: str) -> Answer:
    return call("GET", server.api + path, token=token)
