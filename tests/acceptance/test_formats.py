"""Every format herd reads, through the CLI: validate, convert, dry-run, and real runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def herd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "herd.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def shared_files(data: Path) -> list[Path]:
    files = [*sorted((data / "o2dpg").glob("*.json")), *sorted((data / "pegasus").glob("*.yml"))]
    return files + sorted((data / "wfinstances").glob("*.json.gz"))


BIG = ["--cpu-limit", "64", "--mem-limit", "1000000"]


# 75 herd processes, about 21 s of CPU: 216 s of wall time at load 15 on 2 cores (each start
# waits for a core), past the suite's 120 s default
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_shared_file_validates_converts_and_dry_runs(
    shared_data: Path, tmp_path: Path
) -> None:
    files = shared_files(shared_data)
    assert len(files) == 15
    for path in files:
        r = herd("validate", str(path), *BIG)
        assert r.returncode == 0, (path.name, r.stderr)
        native = tmp_path / (path.name.split(".")[0] + ".yaml")
        r = herd("convert", str(path), str(native))
        assert r.returncode == 0, (path.name, r.stderr)
        r = herd("run", str(native), "--dry-run", "--json", *BIG, cwd=tmp_path)
        assert r.returncode == 0, (path.name, r.stderr)
        plan = json.loads(r.stdout)
        assert plan["tasks"] and all(t["reason"] == "new" for t in plan["tasks"])
        # the converted file describes the same DAG as the original
        original = json.loads(herd("list", str(path), "--json").stdout)
        converted = json.loads(herd("list", str(native), "--json").stdout)
        assert [(t["name"], sorted(t["needs"])) for t in original] == [
            (t["name"], sorted(t["needs"])) for t in converted
        ]


def _stub(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\nset -e\n" + body)
    path.chmod(0o755)
    return str(path)


def test_pegasus_diamond_runs_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    wf = yaml.safe_load((shared_data / "pegasus" / "diamond.yml").read_text())
    # pegasus-keg stand-in: concatenates the -i files into every -o file
    keg = _stub(
        tmp_path / "keg",
        'ins=""; outs=""; mode=""\n'
        'for a in "$@"; do case "$a" in -i) mode=i;; -o) mode=o;; *) if [ $mode = i ]; then ins="$ins $a"; else outs="$outs $a"; fi;; esac; done\n'
        'for o in $outs; do cat $ins > "$o"; echo "$PEGASUS_HOME" >> "$o"; done\n',
    )
    for tr in wf["transformationCatalog"]["transformations"]:
        for site in tr["sites"]:
            site["pfn"] = keg
    (tmp_path / "f.a.src").write_text("raw data\n")
    for replica in wf["replicaCatalog"]["replicas"]:
        for pfn in replica["pfns"]:
            pfn["pfn"] = str(tmp_path / "f.a.src")
    for site in wf["siteCatalog"]["sites"]:
        for directory in site["directories"]:  # not the catalog's /tmp/wf: this test's own
            directory["path"] = str(tmp_path / directory["path"].strip("/"))
            for server in directory.get("fileServers", ()):
                server["url"] = "file://" + directory["path"]
    spec = tmp_path / "diamond.yml"
    spec.write_text(yaml.safe_dump(wf))
    work = tmp_path / "run"
    r = herd("run", str(spec), "-C", str(work), "--cpu-limit", "4", "--mem-limit", "8000")
    assert r.returncode == 0, r.stdout + r.stderr
    # the 4 jobs, the stage-in of f.a and the stage-out of every job with stageOut outputs
    assert "8 succeeded" in r.stdout
    assert (work / "f.d").read_text().startswith("raw data\n")
    assert (tmp_path / "tmp/wf/output/f.d").read_text() == (work / "f.d").read_text()


def test_pegasus_fanout_runs_end_to_end(shared_data: Path, tmp_path: Path) -> None:
    wf = yaml.safe_load((shared_data / "pegasus" / "fanout.yml").read_text())
    stubs = {
        "split": _stub(
            tmp_path / "split",
            'for i in 0 1 2 3; do echo "chunk $i of $(cat "$3")" > chunk.$i; done\n',
        ),
        "work": _stub(
            tmp_path / "work.sh",
            'n=${2#out.}; tr a-z A-Z < "$1" > "$2"; touch work.$n.ckpt; echo "worked $n"\n',
        ),
        # merge concatenates its files; the 'notify' job also uses it, with the word "done"
        "merge": _stub(
            tmp_path / "merge",
            'for f in "$@"; do if [ -f "$f" ]; then cat "$f"; else echo "$f" > notified; fi; done\n',
        ),
    }
    for tr in wf["transformationCatalog"]["transformations"]:
        for site in tr["sites"]:
            site["pfn"] = stubs[tr["name"]]
    (tmp_path / "input.src").write_text("events\n")
    for replica in wf["replicaCatalog"]["replicas"]:
        for pfn in replica["pfns"]:
            pfn["pfn"] = str(tmp_path / "input.src")
        replica.pop("checksum", None)
    spec = tmp_path / "fanout.yml"
    spec.write_text(yaml.safe_dump(wf))
    work = tmp_path / "run"
    r = herd("run", str(spec), "-C", str(work), "--cpu-limit", "4", "--mem-limit", "8000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "work.2.log").read_text() == "worked 2\n"  # stdout redirection
    outputs = sorted(p.name for p in work.iterdir() if p.name.startswith("out."))
    assert outputs == ["out.0", "out.1", "out.2", "out.3"]
    assert (work / "notified").read_text() == "done\n"


def test_wfinstance_runs_with_a_command_template_and_exports(
    shared_data: Path, tmp_path: Path
) -> None:
    src = shared_data / "wfinstances" / "blast-chameleon-small-001.json.gz"
    native = tmp_path / "blast.yaml"
    assert herd("convert", str(src), str(native), "--command-template", "instant").returncode == 0
    r = herd("run", str(native), "--cpu-limit", "2", "--mem-limit", "100000", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    r = herd("export", str(native), "-o", "run.wfformat.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    exported = json.loads((tmp_path / "run.wfformat.json").read_text())
    tasks = exported["workflow"]["execution"]["tasks"]
    assert len(tasks) == len(exported["workflow"]["specification"]["tasks"])
    assert all(t["runtimeInSeconds"] >= 0 and t["machines"] for t in tasks)
    # the export reads back as a WfFormat workflow with the same DAG
    again = tmp_path / "again.yaml"
    assert herd("convert", str(tmp_path / "run.wfformat.json"), str(again)).returncode == 0
    a = json.loads(herd("list", str(native), "--json").stdout)
    b = json.loads(herd("list", str(again), "--json").stdout)
    assert [(t["name"], sorted(t["needs"])) for t in a] == [
        (t["name"], sorted(t["needs"])) for t in b
    ]


def test_dampe_xml_runs_end_to_end(tmp_path: Path) -> None:
    spec = ROOT / "tests" / "data" / "dampe" / "production.xml"
    (tmp_path / "macros").mkdir()
    # the production's input
    (tmp_path / "macros" / "electron.mac").write_text("/run/beamOn 1000\n")
    r = herd("run", str(spec), "-C", str(tmp_path), "--cpu-limit", "2", "--mem-limit", "100000")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "succeeded" in r.stdout
    r = herd("status", "--json", cwd=tmp_path)
    states = {t["name"]: t["state"] for t in json.loads(r.stdout)["tasks"]}
    assert states and set(states.values()) == {"succeeded"}


def test_api_example_writes_a_spec_that_runs(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_example.py"), str(tmp_path / "wf.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    r = herd(
        "run",
        str(tmp_path / "wf.yaml"),
        "--cpu-limit",
        "2",
        "--mem-limit",
        "100000",
        "-q",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("fmt", ["wfformat"])
def test_native_to_wfformat_to_native_keeps_dag_and_resources(tmp_path: Path, fmt: str) -> None:
    spec = ROOT / "examples" / "quickstart.yaml"
    out = tmp_path / "q.wfformat.json"
    assert herd("convert", str(spec), str(out), "--to", fmt).returncode == 0
    back = tmp_path / "back.yaml"
    assert herd("convert", str(out), str(back)).returncode == 0
    a = json.loads(herd("list", str(spec), "--json").stdout)
    b = json.loads(herd("list", str(back), "--json").stdout)
    assert [(t["name"], sorted(t["needs"]), t["resources"]) for t in a] == [
        (t["name"], sorted(t["needs"]), t["resources"]) for t in b
    ]
