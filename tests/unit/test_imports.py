"""What a ``herd run`` imports: only what its spec and its options use. Every module imported is
start-up time (a 10,000-task run spent 250 ms of its 0.6 s start importing; docs/performance.md),
so the parsers of other formats, Slurm, the simulator and the reports load when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

#: what a local run of a JSON spec never needs
UNUSED = (
    "yaml",
    "xml.etree.ElementTree",
    "herd.formats.pegasus_catalogs",
    "herd.launch.slurm.executor",
    "herd.run.simulate",
    "herd.reports.script",
    "herd.reports.status",
)

RUN = """
import json, sys
from herd.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(tmp_path: Path, spec: Path, *options: str) -> set[str]:
    argv = [sys.executable, "-c", RUN, "run", str(spec), "-C", str(tmp_path), "-q", *options]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["code"] == 0
    return set(result["modules"])


def test_a_json_run_imports_no_other_formats_parser_nor_what_it_does_not_use(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "wf.json"
    tasks = [{"name": "a", "cmd": "true"}, {"name": "b", "cmd": "true", "needs": ["a"]}]
    spec.write_text(json.dumps({"name": "w", "tasks": tasks}))
    modules = imported(tmp_path, spec)
    assert "herd.run.local" in modules  # it ran
    assert not modules & set(UNUSED)


def test_a_yaml_spec_imports_the_yaml_parser(tmp_path: Path) -> None:
    spec = tmp_path / "wf.yaml"
    spec.write_text("name: w\ntasks:\n  - name: a\n    cmd: 'true'\n")
    modules = imported(tmp_path, spec)
    assert "yaml" in modules
    assert (tmp_path / ".herd").is_dir()
