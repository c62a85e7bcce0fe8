"""The loaded workflow and its graph, kept in ``.herd/cache`` between runs: real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import herd.formats.built
from herd.core.graph import build
from herd.errors import SpecError, ValidationError
from herd.formats import load
from herd.formats.built import load_built


def spec(tmp_path: Path, cmd: str = "gen", needs: tuple[str, ...] = ("a",)) -> Path:
    path = tmp_path / "wf.json"
    tasks = [
        {"name": "a", "cmd": cmd, "inputs": ["in.txt"], "outputs": ["a.out"]},
        {"name": "b", "cmd": "use", "inputs": ["a.out"], "outputs": ["b.out"]},
        {"name": "c", "cmd": "end", "needs": list(needs)},
    ]
    path.write_text(json.dumps({"name": "w", "tasks": tasks}))
    return path


def cached(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / ".herd" / "cache").glob("*.pickle"))


@pytest.fixture
def small_is_big(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(herd.formats.built, "CACHE_FROM", 0)


def fail_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def no(path: str, **kw: object) -> None:
        raise AssertionError("loaded the spec instead of reading the cache")

    monkeypatch.setattr(herd.formats.built, "load", no)


@pytest.mark.usefixtures("small_is_big")
def test_a_run_keeps_the_workflow_and_the_next_one_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec(tmp_path)
    workflow, _ = load_built(str(path), tmp_path, save=True)
    assert len(cached(tmp_path)) == 1
    fail_to_load(monkeypatch)
    again, again_graph = load_built(str(path), tmp_path, save=True)
    assert again == workflow == load(str(path))
    assert again_graph.workflow is again
    expected = build(workflow)
    for field in ("parent_ptr", "parent_ids", "child_ptr", "child_ids", "order"):
        assert getattr(again_graph, field) == getattr(expected, field), field
    assert again_graph.index == expected.index
    assert list(again_graph.input_keys) == list(expected.input_keys)
    assert list(again_graph.output_keys) == list(expected.output_keys)


@pytest.mark.usefixtures("small_is_big")
def test_an_edited_spec_or_another_herd_loads_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec(tmp_path)
    load_built(str(path), tmp_path, save=True)
    spec(tmp_path, cmd="gen --more")
    workflow, _ = load_built(str(path), tmp_path, save=True)
    assert workflow.tasks[0].cmd == "gen --more"
    assert len(cached(tmp_path)) == 1  # replaced, not added
    monkeypatch.setattr(herd.formats.built, "_code", lambda: "another herd")
    loads = []
    monkeypatch.setattr(
        herd.formats.built, "load", lambda p, **kw: loads.append(p) or load(p, **kw)
    )
    load_built(str(path), tmp_path, save=True)
    assert loads == [str(path)]


@pytest.mark.usefixtures("small_is_big")
def test_a_corrupt_file_is_ignored_and_replaced(tmp_path: Path) -> None:
    path = spec(tmp_path)
    load_built(str(path), tmp_path, save=True)
    (file,) = cached(tmp_path)
    key = file.read_bytes().split(b"\n", 1)[0]
    file.write_bytes(key + b"\nnot a pickle")  # the right name, then garbage
    workflow, _ = load_built(str(path), tmp_path, save=True)
    assert workflow == load(str(path))
    assert file.read_bytes() != key + b"\nnot a pickle"


def test_small_specs_and_runs_that_only_look_keep_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = spec(tmp_path)
    load_built(str(path), tmp_path, save=True)  # 3 tasks: below CACHE_FROM
    monkeypatch.setattr(herd.formats.built, "CACHE_FROM", 0)
    load_built(str(path), tmp_path, save=False)  # a dry run
    assert not (tmp_path / ".herd").exists()


@pytest.mark.usefixtures("small_is_big")
def test_errors_in_the_spec_are_reported_as_without_it(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="file not found"):
        load_built(str(tmp_path / "missing.json"), tmp_path, save=True)
    path = spec(tmp_path, needs=("nope",))
    with pytest.raises(ValidationError, match="nope"):
        load_built(str(path), tmp_path, save=True)
    assert not cached(tmp_path)


@pytest.mark.usefixtures("small_is_big")
def test_a_kept_workflow_whose_paths_used_herds_environment_holds_while_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SRC", "one")
    path = spec(tmp_path)
    text = path.read_text().replace('"in.txt"', '"$SRC/in.txt"')
    path.write_text(text)
    first, _ = load_built(str(path), tmp_path, save=True)
    assert first.task("a").inputs == ("one/in.txt",)
    monkeypatch.setenv("SRC", "two")
    again, _ = load_built(str(path), tmp_path, save=True)
    assert again.task("a").inputs == ("two/in.txt",)
