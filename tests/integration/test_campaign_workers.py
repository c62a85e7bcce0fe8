"""Issue 17's "done when": a campaign with a per-run reconstruction, a per-fill calibration and
plots for collision runs only; 30 runs injected in three batches while two ``herd worker``
processes run; one reconstruction fails; the matrix shows exactly the expected statuses;
``rerun`` fixes it; a second campaign over the same runs has its own state. Then a worker
killed mid-task. Real processes, on an SQLite file and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import wait_for

TEMPLATE = """
name: ecal
tasks:
  - name: reco
    cmd: echo reco {run} > reco_{run}.txt && test ! -e fail_{run} && herd emit output reco_{run}.txt
  - name: calib
    group_by: fill
    needs: [reco]
    cmd: echo {runs} > calib_{fill}.txt
  - name: plots
    run_types: [collisions]
    needs: [reco]
    cmd: herd emit plots_url https://plots.example/{run}
"""
FAILS = 13  # a collision run of fill 102 (runs 11-15), not the run that carries its calib


def fill_of(run: int) -> int:
    return 100 + (run - 1) // 5


def kind_of(run: int) -> str:
    return "cosmics" if run % 3 == 0 else "collisions"


@pytest.fixture
def env() -> dict[str, str]:
    """``herd`` on PATH for the tasks (``herd emit``)."""
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", "")}


class Campaign:
    def __init__(self, root: Path, store: str, env: dict[str, str]) -> None:
        self.root, self.store, self.env = root, store, env

    def herd(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "herd.cli", *args, "--store", self.store],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    def status(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.herd("campaign", "status", name, "--json").stdout)
        return data

    def settled(self, name: str) -> bool:
        runs = self.status(name)["runs"]
        return all(s not in ("new", "processing") for row in runs.values() for s in row.values())

    def worker(self, *args: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "herd.cli", "worker", "--store", self.store, "--cpus", "2"]
        return subprocess.Popen(
            [*argv, "--mem", "2000", *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def camp(tmp_path: Path, store_url: str, env: dict[str, str]) -> Iterator[Campaign]:
    (tmp_path / "ecal.yaml").write_text(TEMPLATE)
    c = Campaign(tmp_path, store_url, env)
    yield c


def expected(fixed: bool) -> dict[str, dict[str, str]]:
    out = {}
    for run in range(1, 31):
        carrier = (run - 1) % 5 == 0
        reco = "failed" if run == FAILS and not fixed else "done"
        calib = "merged" if not carrier else "done"
        if carrier and fill_of(run) == fill_of(FAILS) and not fixed:
            calib = "failed"  # the calib of the failed run's fill, carried by its first run
        plots = "skipped" if kind_of(run) == "cosmics" else reco
        out[str(run)] = {"reco": reco, "calib": calib, "plots": plots}
    return out


def batch(path: Path, runs: range) -> Path:
    lines = [json.dumps({"run": r, "fill": fill_of(r), "run_type": kind_of(r)}) for r in runs]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.timeout(300)
def test_thirty_runs_in_three_batches_two_workers_a_failure_a_rerun(camp: Campaign) -> None:
    root = camp.root
    camp.herd("campaign", "create", "prompt", "--template", "ecal.yaml")
    (root / f"fail_{FAILS}").touch()
    # started before either campaign exists: they wait for both
    workers = [camp.worker("--workflow", "prompt", "--workflow", "rereco") for _ in range(2)]
    try:
        for first in (1, 11, 21):
            added = camp.herd(
                "campaign",
                "add-runs",
                "prompt",
                str(batch(root / f"b{first}.jsonl", range(first, first + 10))),
            )
            assert "10 run(s) added" in added.stdout
            wait_for(lambda last=first + 9: (root / f"reco_{last}.txt").exists(), timeout=60)
        again = camp.herd("campaign", "add-runs", "prompt", str(root / "b11.jsonl"))
        assert "0 run(s) added" in again.stdout and "10 already" in again.stdout
        # fill 105 (runs 26-30) has no next fill yet: its calibration waits for an explicit close
        assert camp.status("prompt")["runs"]["26"]["calib"] == "new"
        camp.herd("campaign", "close", "prompt", "105", "--task", "calib")
        wait_for(lambda: camp.settled("prompt"), timeout=120)
        st = camp.status("prompt")
        assert st["runs"] == expected(fixed=False)
        assert st["fields"]["7"] == {"fill": 101, "run_type": "collisions"}
        assert st["jobs"]["1"]["plots"]["results"] == {
            "plots[run=1]": {"plots_url": "https://plots.example/1"}
        }
        assert all(w.poll() is None for w in workers)  # the campaign is open: they stay

        (root / f"fail_{FAILS}").unlink()
        back = camp.herd("campaign", "rerun", "prompt", "--runs", f"{FAILS}", "--json")
        assert set(json.loads(back.stdout)["queued"]) == {
            f"reco[run={FAILS}]",
            f"plots[run={FAILS}]",
            f"calib[fill={fill_of(FAILS)}]",
        }
        wait_for(lambda: camp.settled("prompt"), timeout=120)
        assert camp.status("prompt")["runs"] == expected(fixed=True)

        # re-processing: a second campaign over the same runs, its own state
        camp.herd("campaign", "create", "rereco", "--template", "ecal.yaml")
        everything = batch(root / "all.jsonl", range(1, 31))
        camp.herd("campaign", "add-runs", "rereco", str(everything))
        camp.herd("campaign", "close", "rereco")  # no more runs: every group closes
        assert camp.status("prompt")["runs"] == expected(fixed=True)
        camp.herd("campaign", "close", "prompt")
        for w in workers:  # both campaigns closed: the workers end when the queue is empty
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
            assert "the workflows it serves are finished" in out + err
        assert camp.status("rereco")["runs"] == expected(fixed=True)
        listed = json.loads(camp.herd("campaign", "list", "--json").stdout)
        assert [(c["name"], c["runs"], c["open"]) for c in listed] == [
            ("prompt", 30, False),
            ("rereco", 30, False),
        ]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.communicate()


@pytest.mark.timeout(200)
def test_a_worker_lost_mid_task_gives_the_task_back(camp: Campaign) -> None:
    root = camp.root
    (root / "slow.yaml").write_text(
        # a lost attempt spends a try, as for any queued task: one retry lets it run again
        "name: slow\ntasks:\n  - {name: reco, retries: 1, cmd: 'sleep 6 && echo {run} > done_{run}'}\n"
    )
    camp.herd("campaign", "create", "slow", "--template", "slow.yaml")
    camp.herd("campaign", "add-runs", "slow", "--run", "1", "--field", "fill=7")
    doomed = camp.worker("--lease", "2")
    try:
        wait_for(lambda: camp.status("slow")["runs"]["1"]["reco"] == "processing", timeout=60)
        doomed.send_signal(signal.SIGKILL)
        doomed.communicate()
        survivor = camp.worker("--lease", "2", "--idle-exit", "8")
        seen = set()

        def done() -> bool:
            seen.add(camp.status("slow")["runs"]["1"]["reco"])
            return (root / "done_1").exists()

        wait_for(done, timeout=90)
        assert "failed" not in seen, seen  # back to new, processing, never failed
        wait_for(lambda: camp.status("slow")["runs"]["1"]["reco"] == "done", timeout=30)
        survivor.send_signal(signal.SIGTERM)  # done: not --idle-exit's 8 s more
        survivor.communicate(timeout=60)
        attempts = json.loads(camp.herd("provenance", "--workflow", "slow", "reco[run=1]").stdout)
        assert [a["state"] for a in attempts] == ["failed", "succeeded"], attempts
        assert attempts[0]["kill_reason"].startswith("lost: worker")
    finally:
        for w in (doomed,):
            if w.poll() is None:
                w.kill()
