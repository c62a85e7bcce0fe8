"""The ``herd`` command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from herd.cli import COMMANDS


def herd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herd.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_an_example(command: str) -> None:
    r = herd(command, "--help")
    assert r.returncode == 0
    assert "example:" in r.stdout and f"herd {command}" in r.stdout


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    r = herd("--help")
    assert r.returncode == 0
    for command in COMMANDS:
        assert command in r.stdout
    assert "exit codes" in r.stdout


BAD_SPECS = {
    "malformed.yaml": ("name: x\ntasks: [\n", "malformed.yaml"),
    "cycle.yaml": (
        "name: c\ntasks:\n- {name: a, cmd: x, needs: [b]}\n- {name: b, cmd: x, needs: [a]}\n",
        "cycle: a -> b -> a",
    ),
    "unknown_need.yaml": (
        "name: u\ntasks:\n- {name: a, cmd: x, needs: [nope]}\n",
        "task 'a': field 'needs'",
    ),
    "duplicate.yaml": (
        "name: d\ntasks:\n- {name: a, cmd: x}\n- {name: a, cmd: y}\n",
        "duplicate task name",
    ),
    "unknown_field.yaml": ("name: f\ntasks:\n- {name: a, cmd: x, retires: 2}\n", "retires"),
    "too_big.yaml": (
        "name: b\ntasks:\n- {name: a, cmd: x, resources: {cpu: 64}}\n",
        "--cpu-limit 64",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
@pytest.mark.parametrize("command", ["run", "validate"])
def test_bad_input_gives_one_clear_message_and_exit_2(
    tmp_path: Path, name: str, command: str
) -> None:
    text, expected = BAD_SPECS[name]
    spec = write(tmp_path / name, text)
    r = herd(command, str(spec), "--cpu-limit", "2", cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert expected in r.stderr and name in r.stderr
    assert not (tmp_path / ".herd").exists() or command == "run"


def test_missing_file_and_missing_argument(tmp_path: Path) -> None:
    r = herd("run", "nope.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "nope.yaml" in r.stderr and "Traceback" not in r.stderr
    r = herd("run", cwd=tmp_path)
    assert r.returncode == 2 and "name a workflow file" in r.stderr


SPEC = """
name: acc
tasks:
  - name: gen
    cmd: echo 1 > a.txt
    outputs: [a.txt]
    labels: [gen]
  - name: use
    cmd: cat a.txt > b.txt
    inputs: [a.txt]
    outputs: [b.txt]
"""


def test_run_status_list_script_graph_dry_run(tmp_path: Path) -> None:
    spec = write(tmp_path / "wf.yaml", SPEC)
    r = herd("run", "-f", str(spec), "--cpu-limit", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "run succeeded" in r.stdout
    assert (tmp_path / "b.txt").read_text() == "1\n"

    r = herd("status", "--json", cwd=tmp_path)
    status = json.loads(r.stdout)
    assert status["counts"]["succeeded"] == 2 and status["workflow"] == "acc"

    r = herd("run", str(spec), "--dry-run", "--json", cwd=tmp_path)
    plan = json.loads(r.stdout)
    assert [t["run"] for t in plan["tasks"]] == [False, False]
    (tmp_path / "a.txt").write_text("2\n")
    r = herd("run", str(spec), "--dry-run", cwd=tmp_path)
    assert "run   use  input a.txt changed" in r.stdout, r.stdout

    r = herd("list", str(spec), "--json")
    assert [t["name"] for t in json.loads(r.stdout)] == ["gen", "use"]
    assert json.loads(r.stdout)[1]["needs"] == ["gen"]

    r = herd("run", str(spec), "--list-tasks")
    assert r.returncode == 0 and "use" in r.stdout

    r = herd("script", str(spec))
    assert r.stdout.index("# --- task gen") < r.stdout.index("# --- task use")
    script = tmp_path / "fresh"
    script.mkdir()
    r = herd("run", str(spec), "--produce-script", str(script / "run.sh"))
    assert subprocess.run(["bash", "run.sh"], cwd=script).returncode == 0
    assert (script / "b.txt").read_text() == "1\n"

    r = herd("graph", str(spec), cwd=tmp_path)
    assert '"gen" -> "use"' in r.stdout and "#8ce99a" in r.stdout  # succeeded colour


def test_o2dpg_flags(shared_data: Path, tmp_path: Path) -> None:
    data = json.loads((shared_data / "o2dpg" / "o2dpg_pp_3tf.json").read_text())
    for stage in data["stages"]:
        stage["cmd"] = "true"
    spec = write(tmp_path / "workflow.json", json.dumps(data))
    limits = ["--cpu-limit", "8", "--mem-limit", "16000"]
    r = herd(
        "run",
        "-f",
        str(spec),
        "-jmax",
        "4",
        *limits,
        "-tt",
        "tpcdigi_1",
        "--dry-run",
        "--json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    names = [t["task"] for t in json.loads(r.stdout)["tasks"]]
    assert "tpcdigi_1" in names and "tpcdigi_2" not in names
    r = herd("run", "-f", str(spec), "-jmax", "4", *limits, "-tt", "tpcdigi_1", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = herd(
        "run",
        "-f",
        str(spec),
        *limits,
        "--rerun-from",
        "tpcdigi_1",
        "--dry-run",
        "--json",
        cwd=tmp_path,
    )
    rerun = [t for t in json.loads(r.stdout)["tasks"] if t["run"] and t["reason"] == "forced"]
    assert rerun and rerun[0]["task"] == "tpcdigi_1"
    r = herd("validate", str(spec), *limits)
    assert r.returncode == 0 and "113 tasks" in r.stdout
