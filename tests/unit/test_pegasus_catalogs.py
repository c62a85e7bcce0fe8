"""Pegasus catalogs found as pegasus-plan finds them: files beside the workflow, properties."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from herd.errors import SpecError
from herd.formats import Setup, load
from herd.formats.pegasus_catalogs import parse_properties


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def transformations(pfn: str, name: str = "tool") -> dict[str, Any]:
    site = {"name": "local", "pfn": pfn, "type": "installed"}
    return {"pegasus": "5.0", "transformations": [{"name": name, "sites": [site]}]}


def workflow(tmp_path: Path, **top: Any) -> Path:
    jobs = [{"type": "job", "name": "tool", "id": "a", "arguments": [], "uses": [
        {"lfn": "in.txt", "type": "input"}]}]  # fmt: skip
    return write(tmp_path / "workflow.yml", {"pegasus": "5.0", "name": "w", "jobs": jobs, **top})


def test_catalog_files_beside_the_workflow_are_read(tmp_path: Path) -> None:
    write(tmp_path / "transformations.yml", transformations("/opt/tool"))
    rc = {"replicas": [{"lfn": "in.txt", "pfns": [{"site": "local", "pfn": "/data/in.txt"}]}]}
    write(tmp_path / "replicas.yml", rc)
    wf = load(workflow(tmp_path))
    assert wf.task("a").cmd == ("/opt/tool",)
    assert wf.task("stage_in_in.txt").outputs == ("in.txt",)
    assert dict(wf.meta["catalogs"]) == {
        "replica": str(tmp_path / "replicas.yml"),
        "transformation": str(tmp_path / "transformations.yml"),
    }


def test_inline_entries_win_entry_by_entry(tmp_path: Path) -> None:
    catalog = transformations("/from/file")
    catalog["transformations"].append(transformations("/other", "other")["transformations"][0])
    write(tmp_path / "transformations.yml", catalog)
    spec = workflow(tmp_path, transformationCatalog=transformations("/inline"))
    wf = load(spec)
    assert wf.task("a").cmd == ("/inline",)
    assert not any("not in the inline" in w for w in wf.meta.get("warnings", ()))


def test_properties_name_the_files_and_define_beats_conf(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    write(tmp_path / "cat" / "tc.yml", transformations("/by/properties"))
    write(tmp_path / "cat" / "tc2.yml", transformations("/by/define"))
    (tmp_path / "pegasus.properties").write_text(
        "# catalogs\npegasus.catalog.transformation.file = cat/tc.yml\n"
    )
    spec = workflow(tmp_path)
    assert load(spec).task("a").cmd == ("/by/properties",)
    define = Setup(defines={"pegasus.catalog.transformation.file": "cat/tc2.yml"})
    assert load(spec, setup=define).task("a").cmd == ("/by/define",)
    result = subprocess.run(
        [sys.executable, "-m", "herd.cli", "run", str(spec), "--list-tasks",
         "-D", "pegasus.catalog.transformation.file=cat/tc2.yml"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "a" in result.stdout.split()


def test_a_named_file_that_is_missing_is_an_error_and_other_kinds_are_reported(
    tmp_path: Path,
) -> None:
    spec = workflow(tmp_path)
    missing = Setup(defines={"pegasus.catalog.replica.file": "nowhere.yml"})
    with pytest.raises(SpecError, match=r"workflow\.yml.*pegasus\.catalog\.replica\.file.*nowhere"):
        load(spec, setup=missing)
    text = Setup(defines={"pegasus.catalog.replica": "File"})
    warnings = "\n".join(load(spec, setup=text).meta["warnings"])
    assert "'pegasus.catalog.replica': File catalogs are not read" in warnings


def test_a_broken_catalog_file_names_itself(tmp_path: Path) -> None:
    (tmp_path / "sites.yml").write_text("sites: [\n")
    with pytest.raises(SpecError, match=r"sites\.yml.*invalid YAML at line"):
        load(workflow(tmp_path))


def test_java_properties_syntax() -> None:
    text = "# c\n! c\na = 1\nb: 2\nc 3\nd = long \\\n   value\n"
    assert parse_properties(text) == {"a": "1", "b": "2", "c": "3", "d": "long value"}
