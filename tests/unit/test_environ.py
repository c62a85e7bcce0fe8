"""Variables in file paths, resolved from the spec's env and herd's environment at load."""

from __future__ import annotations

import json
from pathlib import Path

from herd.core.graph import build
from herd.formats import load, load_text


def spec(tmp_path: Path, **top: object) -> Path:
    tasks = [
        {"name": "make", "cmd": "cp $SRCDIR/in.txt $OUT/mid", "inputs": ["${SRCDIR}/in.txt"],
         "outputs": ["$OUT/mid"], "env": {"OUT": "work"}},
        {"name": "use", "cmd": "cat work/mid", "inputs": ["work/mid", "${NOWHERE}/x"]},
    ]  # fmt: skip
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"name": "wf", "tasks": tasks, **top}))
    return path


def test_paths_take_task_env_then_workflow_env_then_herds_environment(tmp_path: Path) -> None:
    wf = load(spec(tmp_path, env={"OUT": "ignored", "SRCDIR": "spec"}), environ={"SRCDIR": "e"})
    make = wf.task("make")
    assert make.inputs == ("spec/in.txt",)  # the workflow env beats herd's environment
    assert make.outputs == ("work/mid",)  # the task env beats the workflow's
    assert make.cmd == "cp $SRCDIR/in.txt $OUT/mid"  # the command is the shell's business
    graph = build(wf)
    assert list(graph.parents(graph.index["use"])) == [graph.index["make"]]


def test_herds_environment_is_recorded_and_unset_variables_are_named(tmp_path: Path) -> None:
    wf = load(spec(tmp_path), environ={"SRCDIR": "/data/src"})
    assert wf.task("make").inputs == ("/data/src/in.txt",)
    assert wf.task("use").inputs == ("work/mid", "${NOWHERE}/x")
    assert dict(wf.meta["environment"]) == {"NOWHERE": None, "SRCDIR": "/data/src"}
    (line,) = wf.meta["warnings"]
    assert line.startswith(f"{tmp_path / 'wf.json'}: task 'use': field 'inputs': ${{NOWHERE}}")
    assert "set NOWHERE before running herd" in line


def test_no_environment_keeps_paths_as_written() -> None:
    text = '{"name": "w", "tasks": [{"name": "a", "cmd": "true", "inputs": ["$X/y"]}]}'
    assert load_text(text, environ=None).task("a").inputs == ("$X/y",)
    assert load_text(text, environ={"X": "x"}).task("a").inputs == ("x/y",)
