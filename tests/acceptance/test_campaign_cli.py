"""``herd campaign`` in a subprocess: bad input ends in one line and the documented exit code,
``watch`` survives a failing or babbling source and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TEMPLATE = """
name: ecal
tasks:
  - name: reco
    cmd: reco {run}
  - name: calib
    group_by: fill
    needs: [reco]
    cmd: calib {fill} {runs}
  - name: plots
    run_types: [collisions]
    needs: [reco]
    cmd: plots {run} {lumi}
"""


def herd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herd.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "ecal.yaml").write_text(TEMPLATE)
    done = herd(tmp_path, "campaign", "create", "prompt", "--template", "ecal.yaml")
    assert done.returncode == 0, done.stderr
    return tmp_path


def one_line_error(done: subprocess.CompletedProcess[str], code: int) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert lines and all(line.startswith("herd: error: ") for line in lines), done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr


def test_a_malformed_runs_file_names_its_line_and_adds_nothing(root: Path) -> None:
    (root / "runs.jsonl").write_text('{"run": 1, "fill": 7, "run_type": "cosmics"}\n{"run": 2,\n')
    err = one_line_error(herd(root, "campaign", "add-runs", "prompt", "runs.jsonl"), 2)
    assert "runs.jsonl: line 2: not JSON" in err
    status = json.loads(herd(root, "campaign", "status", "prompt", "--json").stdout)
    assert status["runs"] == {}


def test_a_run_lacking_a_field_is_refused_by_name_and_the_others_go_in(root: Path) -> None:
    lines = [
        {"run": 1, "fill": 7, "run_type": "collisions", "lumi": 3},
        {"run": 2, "fill": 7, "run_type": "collisions"},  # plots uses {lumi}
        {"run": 3, "fill": 7, "run_type": "cosmics"},  # plots does not apply: no lumi needed
    ]
    (root / "runs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    done = herd(root, "campaign", "add-runs", "prompt", "runs.jsonl")
    err = one_line_error(done, 2)
    assert "run 2 refused: task 'plots' uses field 'lumi', which the run lacks" in err
    assert "2 run(s) added" in done.stdout
    status = json.loads(herd(root, "campaign", "status", "prompt", "--json").stdout)
    assert sorted(status["runs"]) == ["1", "3"]
    assert status["runs"]["3"] == {"reco": "new", "calib": "new", "plots": "skipped"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("campaign", "status", "nope"), "no campaign 'nope'"),
        (("campaign", "create", "prompt", "--template", "ecal.yaml"), "campaign 'prompt' exists"),
        (("campaign", "create", "x", "--template", "missing.yaml"), "missing.yaml: file not found"),
        (("campaign", "add-runs", "prompt"), "give a RUNS.jsonl file or --run N"),
        (("campaign", "add-runs", "prompt", "--run", "x1"), "field '--run'"),
        (("campaign", "status", "prompt", "--runs", "9-3"), "the first run is after the last"),
        (("campaign", "status", "prompt", "--task", "nope"), "has no task 'nope'"),
        (("campaign", "close", "prompt", "--task", "reco"), "has no group_by"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(
    root: Path, args: tuple[str, ...], message: str
) -> None:
    assert message in one_line_error(herd(root, *args), 2)


def test_a_bad_template_names_file_task_and_field(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("name: x\ntasks:\n  - {name: a, cmd: 'x {runs}'}\n")
    err = one_line_error(herd(tmp_path, "campaign", "create", "x", "--template", "t.yaml"), 2)
    assert "t.yaml: task 'a': field 'cmd': {runs} is for grouped tasks" in err


def test_a_closed_campaign_takes_no_runs(root: Path) -> None:
    assert herd(root, "campaign", "close", "prompt").returncode == 0
    done = herd(root, "campaign", "add-runs", "prompt", "--run", "5", "--field", "fill=1")
    assert "is closed and takes no more runs" in one_line_error(done, 2)


def test_watch_warns_about_a_bad_source_and_stops_cleanly_on_sigterm(root: Path) -> None:
    # round 1: two good runs and garbage; round 2: the source fails; then a third run
    (root / "source.sh").write_text(
        "n=$(cat count 2>/dev/null || echo 0); echo $((n + 1)) > count\n"
        'if [ "$n" = 0 ]; then\n'
        '  echo \'{"run": 1, "fill": 7, "run_type": "cosmics"}\'\n'
        "  echo 'this is not json'\n"
        '  echo \'{"run": 2, "fill": 7, "run_type": "cosmics"}\'\n'
        'elif [ "$n" = 1 ]; then echo broken >&2; exit 3\n'
        'else echo \'{"run": 3, "fill": 8, "run_type": "cosmics"}\'; fi\n'
    )
    argv = [sys.executable, "-m", "herd.cli", "campaign", "watch", "prompt"]
    proc = subprocess.Popen(
        [*argv, "--source", "sh source.sh", "--every", "0.3"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = json.loads(herd(root, "campaign", "status", "prompt", "--json").stdout)
            if "3" in status["runs"]:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        assert sorted(status["runs"]) == ["1", "2", "3"]
        assert status["runs"]["1"]["calib"] == "new"  # fill 7 closed by run 3: calib queued
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "source output line 2: not JSON" in err
    assert "the source failed (exit 3): broken; next round" in err
    assert "watch stopped: 3 run(s) added" in out
    assert "Traceback" not in err
