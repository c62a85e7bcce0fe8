"""Format detection from the content, file reading and parse errors, the loader registry, dump."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from herd import formats
from herd.core.model import Task, Workflow
from herd.errors import HerdError, SpecError
from herd.formats import FORMATS, LOADERS, detect, dump, load, load_text, loader

NATIVE_YAML = "name: demo\ntasks:\n  - {name: a, cmd: echo a}\n"


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (NATIVE_YAML, "native"),
        ('{"name": "d", "tasks": []}', "native"),
        ("{name: d, tasks: []}", "native"),  # YAML flow style, not JSON
        ('{"stages": [], "meta": {}}', "o2dpg"),
        ("pegasus: 5.0.4\nname: x\njobs: []\n", "pegasus"),
        ('{"jobs": [{"id": "j1"}]}', "pegasus"),
        ('{"schemaVersion": "1.5", "workflow": {"specification": {"tasks": []}}}', "wfformat"),
        ('{"schemaVersion": "1.4", "workflow": {"tasks": []}}', "wfformat"),
        ("<Jobs><Job/></Jobs>", "dampe"),
        ('<?xml version="1.0"?>\n<!-- a comment -->\n<Jobs>\n</Jobs>', "dampe"),
        ("\ufeff<Jobs/>", "dampe"),
    ],
)
def test_detect_from_the_content(text: str, fmt: str) -> None:
    assert detect("any.name", text) == fmt


def test_the_extension_does_not_matter(tmp_path: Path) -> None:
    path = tmp_path / "workflow.json"  # YAML in a .json file
    path.write_text(NATIVE_YAML)
    assert load(path).name == "demo"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"steps": []}', "not a workflow format herd reads"),
        ("- a\n- b\n", "not a workflow format herd reads"),
        ("just text\n", "not a workflow format herd reads"),
        ("<adag/>", "XML with root <adag>"),
        ('{"workflow": {"tasks": []}}', "no schemaVersion"),
    ],
)
def test_unknown_formats_say_what_herd_reads(text: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        detect("x.yml", text)
    assert info.value.file == "x.yml"
    assert words in str(info.value)
    assert "hint" not in words and info.value.hint


def test_the_registry_names_every_format() -> None:
    assert set(LOADERS) == set(FORMATS) == {"native", "o2dpg", "pegasus", "wfformat", "dampe"}
    assert all(":" in target for target in LOADERS.values())
    assert loader("native") is formats.native.load_data


def test_a_missing_loader_module_is_a_spec_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LOADERS, "native", "herd.formats.no_such_module:load_data")
    with pytest.raises(SpecError, match="cannot read native files"):
        load_text(NATIVE_YAML, "x.yaml")


# -- reading and parse errors ------------------------------------------------------------------


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load(path)
    assert (info.value.file, info.value.problem) == (str(path), "file not found")


def test_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="is a directory"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{"name": "x",\n "tasks": [}', "invalid JSON at line 2, column 12"),
        ("name: x\ntasks:\n  - a: [1\n", "invalid YAML at line 4, column 1"),
        ("name: x\n  bad: indentation\n", "invalid YAML at line 2, column 6"),
        ("<Jobs>\n  <Job>\n</Jobs>", "invalid XML at line 3"),
        ("<Jobs", "invalid XML at line 1"),
    ],
)
def test_parse_errors_give_line_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "bad.spec"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.file == str(path)
    assert where in info.value.problem


def test_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("  \n")
    with pytest.raises(SpecError, match="the file is empty"):
        load(path)


def test_a_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        load(path)


def test_gzip_files_are_read(tmp_path: Path) -> None:
    path = tmp_path / "wf.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"name": "z", "tasks": []}).encode()))
    assert load(path).name == "z"


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "wf.gz"
    path.write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(SpecError, match="corrupt gzip"):
        load(path)


def test_real_files_are_detected(shared_data: Path) -> None:
    found = {}
    for path in sorted(shared_data.rglob("*")):
        if path.suffix in (".json", ".yml", ".gz") and "schema" not in str(path):
            found[path.name] = formats.detect_data(
                formats.parse(formats.read_text(str(path)), str(path))
            )
    assert found["o2dpg_pp_3tf.json"] == "o2dpg"
    assert found["diamond.yml"] == "pegasus"
    assert found["montage-chameleon-2mass-01d-001.json.gz"] == "wfformat"
    assert set(found.values()) == {"o2dpg", "pegasus", "wfformat"}


# -- writing -----------------------------------------------------------------------------------

WORKFLOW = Workflow(
    name="w",
    tasks=(
        Task(name="a", cmd="echo a\necho b", resources={"cpu": 1.5}, outputs=("x",)),
        Task(name="b", cmd=("cat", "x"), needs=("a",), inputs=("x",)),
    ),
    env={"A": "1"},
)


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".YAML"])
def test_dump_then_load(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    dump(WORKFLOW, path)
    back = load(path)
    assert (back.tasks, back.env, back.name) == (WORKFLOW.tasks, WORKFLOW.env, WORKFLOW.name)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    if suffix == ".json":
        assert json.loads(path.read_text())["tasks"][1]["cmd"] == ["cat", "x"]


def test_dump_needs_a_known_extension(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\.yaml, \.yml or \.json"):
        dump(WORKFLOW, tmp_path / "out.txt")


def test_dump_into_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(HerdError, match="cannot write"):
        dump(WORKFLOW, tmp_path / "missing" / "out.yaml")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "j", "tasks": [{"name": "a", "cmd": "echo \\u00e9", "duration": 1e3}]}',
        b'\xef\xbb\xbf \r\n\t{"name": "j", "tasks": [{"name": "a", "cmd": "echo \xc3\xa9"}]}',
        b'{"name": "j", "tasks": [{"name": "a", "cmd": "x", "meta": {"v": NaN}}]}',
        b'{"name": "j", "tasks": [{"name": "a", "cmd": "x", "meta": {"s": "\\ud800"}}]}',
        b'{"name": "j", "tasks": [{"name": "a", "cmd": "x", "meta": {"big": 1e400}}]}',
        b"{name: j, tasks: [{name: a, cmd: x}]}",
    ],
)
def test_json_from_bytes_loads_as_the_text_does(tmp_path: Path, raw: bytes) -> None:
    """load() decodes JSON straight from the file's bytes; whatever that decoder refuses (NaN,
    lone surrogates, 1e400, YAML that starts with a brace) goes the text path: same result."""
    path = tmp_path / "wf.json"
    path.write_bytes(raw)
    via_text = load_text(raw.decode("utf-8-sig"), str(path))
    got = load(path)
    assert repr(got) == repr(via_text)  # repr: NaN != NaN
    assert got.tasks[0].name == "a"


def test_invalid_utf8_in_json_is_reported_as_such(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_bytes(b'{"name": "j", "tasks": [{"name": "\xff", "cmd": "x"}]}')
    with pytest.raises(SpecError, match="not UTF-8"):
        load(path)
