"""Conversion between formats: target choice, round trips, and what cannot be written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from herd.core.model import Task, Workflow
from herd.errors import SpecError, UsageError
from herd.formats import load
from herd.formats.convert import convert, target_format

DAMPE = Path(__file__).resolve().parents[1] / "data" / "dampe"


def schema_validate(doc: dict[str, Any], shared: Path) -> None:
    schema = json.loads((shared / "wfinstances" / "wfformat-1.5-schema.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)


@pytest.mark.parametrize(
    ("dst", "to", "expected"),
    [
        ("wf.yaml", None, "native"),
        ("wf.yml", None, "native"),
        ("wf.json", None, "native"),
        ("wf.wfformat.json", None, "wfformat"),
        ("wf.WfFormat.json.gz", None, "wfformat"),
        ("wf.json", "wfformat", "wfformat"),
        ("wf.wfformat.json", "native", "native"),
    ],
)
def test_target_format(dst: str, to: str | None, expected: str) -> None:
    assert target_format(dst, to) == expected


@pytest.mark.parametrize(
    ("dst", "to", "words"),
    [
        ("wf.txt", None, "cannot tell the target format"),
        ("wf.yaml", "pegasus", "cannot write 'pegasus'"),
    ],
)
def test_unknown_targets_are_usage_errors(dst: str, to: str | None, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        target_format(dst, to)


@pytest.mark.parametrize("name", ["diamond.yml", "fanout.yml"])
def test_pegasus_to_native_and_to_wfformat_and_back(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    src = shared_data / "pegasus" / name
    original = convert(src, tmp_path / "wf.yaml")
    assert load(tmp_path / "wf.yaml").tasks == original.tasks
    convert(src, tmp_path / "wf.wfformat.json")
    doc = json.loads((tmp_path / "wf.wfformat.json").read_text())
    schema_validate(doc, shared_data)
    back = convert(tmp_path / "wf.wfformat.json", tmp_path / "back.yaml")
    assert back.tasks == original.tasks
    assert back.init == original.init


def test_wfformat_to_native_with_a_template(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "wfinstances" / "srasearch-chameleon-50a-001.json.gz"
    convert(src, tmp_path / "sra.yaml", command_template="sleep {runtime:.0f}")
    loaded = load(tmp_path / "sra.yaml")
    assert loaded.task("bowtie2-build_ID0000001").cmd == "sleep 17"
    assert len(loaded.tasks) == 104
    assert loaded.init is not None and "reference.fna" in loaded.init


def test_dampe_to_gzipped_wfformat(shared_data: Path, tmp_path: Path) -> None:
    dst = tmp_path / "prod.wfformat.json.gz"
    workflow = convert(DAMPE / "production.xml", dst)
    doc = json.loads(gzip.decompress(dst.read_bytes()))
    schema_validate(doc, shared_data)
    assert [t["id"] for t in doc["workflow"]["specification"]["tasks"]] == [
        t.name for t in workflow.tasks
    ]
    assert load(dst).tasks == workflow.tasks


def test_native_to_wfformat_keeps_the_workflow(tmp_path: Path) -> None:
    wf = Workflow(
        "n",
        (
            Task("a", ("gen", ""), outputs=("x",), env={"A": "1"}, cwd="d"),
            Task("b", "use d/x", inputs=("d/x",), semaphore="s", retries=3),
        ),
        init="mkdir -p d",
    )
    from herd.formats import dump

    dump(wf, tmp_path / "n.yaml")
    convert(tmp_path / "n.yaml", tmp_path / "n.wfformat.json")
    back = convert(tmp_path / "n.wfformat.json", tmp_path / "n2.json")
    assert back.tasks == load(tmp_path / "n.yaml").tasks
    assert back.init == "mkdir -p d"


def test_a_template_only_applies_to_wfformat(shared_data: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"WfFormat instances only; .*is a pegasus workflow"):
        convert(
            shared_data / "pegasus" / "diamond.yml", tmp_path / "d.yaml", command_template="replay"
        )


def test_what_the_target_cannot_express_is_refused(tmp_path: Path) -> None:
    from herd.formats import dump

    dump(Workflow("w", (Task("with space", "true"),)), tmp_path / "w.yaml")
    with pytest.raises(SpecError) as info:
        convert(tmp_path / "w.yaml", tmp_path / "w.wfformat.json")
    assert info.value.task == "with space"
    assert "would be lost" in info.value.problem
    assert not (tmp_path / "w.wfformat.json").exists()
