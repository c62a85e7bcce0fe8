"""``herd export --to dagman``: files HTCondor's own bindings parse, with the workflow's DAG.

No pool runs here: every submit description goes through ``htcondor2.Submit`` (HTCondor's parser),
the DAG file is read back line by line and compared with herd's graph, and the wrappers of a
small workflow are run in DAG order, as DAGMan would run them, to show they do the task's work.
"""

from __future__ import annotations

import math
import shlex
import subprocess
from pathlib import Path

import htcondor2
import pytest

from herd.core.graph import build
from herd.core.model import Workflow
from herd.formats import load
from herd.launch.dagman import INIT_NODE, export_dagman, node_names, render

from .helpers import write_spec


def _shared_specs() -> list[str]:
    return ["o2dpg/*.json", "wfinstances/*.json.gz", "pegasus/*.yml"]


def _read_dag(path: Path) -> tuple[dict[str, str], set[tuple[str, str]], dict[str, list[str]]]:
    """(node -> submit file or sub-DAG, edges, other statements by keyword) of a .dag file."""
    nodes: dict[str, str] = {}
    edges: set[tuple[str, str]] = set()
    other: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        key = words[0]
        if key == "JOB":
            nodes[words[1]] = words[2]
        elif key == "SUBDAG":
            assert words[1] == "EXTERNAL", line
            nodes[words[2]] = f"{words[5]}/{words[3]}"
        elif key == "PARENT":
            cut = words.index("CHILD")
            edges |= {(p, c) for p in words[1:cut] for c in words[cut + 1 :]}
        else:
            other.setdefault(key, []).append(line)
    return nodes, edges, other


def _check(workflow: Workflow, out: Path) -> None:
    graph = build(workflow)
    names = node_names(workflow.tasks)
    nodes, edges, other = _read_dag(out / f"{workflow.name}.dag")
    expected = {
        (names[graph.name(p)], names[graph.name(c)])
        for c in range(len(graph))
        for p in graph.parents(c)
    }
    if workflow.init:  # herd_init is a parent of every root, and only of them
        roots = {names[graph.name(i)] for i in range(len(graph)) if not len(graph.parents(i))}
        assert {c for p, c in edges if p == INIT_NODE} == roots
        edges = {(p, c) for p, c in edges if p != INIT_NODE}
        assert nodes.pop(INIT_NODE) == f"tasks/{INIT_NODE}.sub"
    assert edges == expected
    assert set(nodes) == set(names.values())
    retries = {line.split()[1]: int(line.split()[2]) for line in other.get("RETRY", [])}
    for task in workflow.tasks:
        node = names[task.name]
        assert retries.get(node, 0) == task.retries, task.name
        submit = htcondor2.Submit((out / nodes[node]).read_text())
        demand = task.demand
        assert int(submit["request_cpus"]) == max(1, math.ceil(demand["cpu"])), task.name
        if demand.get("mem"):
            assert int(submit["request_memory"]) == math.ceil(demand["mem"]), task.name
        assert submit.get("request_gpus") == (
            str(math.ceil(demand["gpu"])) if demand.get("gpu") else None
        )
        assert (out / submit["executable"]).stat().st_mode & 0o111
        assert submit["output"] == f"logs/{node}.$(attempt).out"
        assert submit["getenv"] == "false"


@pytest.mark.slow
@pytest.mark.parametrize("pattern", _shared_specs())
def test_every_shared_workflow_exports_a_dag_htcondor_parses(
    shared_data: Path, tmp_path: Path, pattern: str
) -> None:
    specs = sorted(shared_data.glob(pattern))
    assert specs, f"no {pattern} in {shared_data}"
    for spec in specs:
        workflow = load(spec)
        out = tmp_path / spec.name
        done = export_dagman(workflow, out, tmp_path / "work")
        assert done.nodes == len(workflow.tasks) + bool(workflow.init)
        _check(workflow, out)


def test_the_export_is_reproducible_and_commented(shared_data: Path, tmp_path: Path) -> None:
    workflow = load(shared_data / "o2dpg" / "o2dpg_pp_3tf.json")
    first = render(build(workflow), tmp_path)
    assert first == render(build(load(shared_data / "o2dpg" / "o2dpg_pp_3tf.json")), tmp_path)
    for rel, text in first.items():
        assert text.splitlines()[0].startswith(("#", "#!")), rel
    assert "submit with: condor_submit_dag o2dpg_pp_3tf.dag" in first["o2dpg_pp_3tf.dag"]


def test_priorities_semaphores_odd_names_and_a_nested_workflow(tmp_path: Path) -> None:
    inner = write_spec(
        tmp_path,
        [{"name": "x", "cmd": "true"}, {"name": "y", "cmd": "true", "needs": ["x"]}],
        name="inner",
    )
    spec = write_spec(
        tmp_path,
        [
            {"name": "a b+c", "cmd": "true", "priority": 5, "semaphore": "tape", "retries": 2},
            {"name": "PARENT", "cmd": "true", "needs": ["a b+c"], "semaphore": "tape"},
            {
                "name": "sub",
                "cmd": "true",
                "needs": ["PARENT"],
                "meta": {"subworkflow": str(inner)},
            },
            {
                "name": "gpu",
                "cmd": "true",
                "needs": ["sub"],
                "resources": {"cpu": 0.5, "gpu": 1, "tape_drive": 1},
            },
        ],
    )
    workflow = load(spec)
    out = tmp_path / "dag"
    export_dagman(workflow, out, tmp_path)
    nodes, edges, other = _read_dag(out / "wf.dag")
    assert nodes == {
        "a_b_c": "tasks/a_b_c.sub",
        "PARENT_": "tasks/PARENT_.sub",
        "sub": "sub/sub.dag",
        "gpu": "tasks/gpu.sub",
    }
    assert edges == {("a_b_c", "PARENT_"), ("PARENT_", "sub"), ("sub", "gpu")}
    assert other["PRIORITY"] == ["PRIORITY a_b_c 5"]
    assert other["CATEGORY"] == ["CATEGORY a_b_c sem_tape", "CATEGORY PARENT_ sem_tape"]
    assert other["MAXJOBS"] == ["MAXJOBS sem_tape 1"]
    inner_nodes, inner_edges, _ = _read_dag(out / "sub" / "sub.dag")
    assert inner_edges == {("x", "y")} and set(inner_nodes) == {"x", "y"}
    assert (
        htcondor2.Submit((out / "sub" / "tasks" / "x.sub").read_text())["executable"]
        == "tasks/x.sh"
    )
    gpu = htcondor2.Submit((out / "tasks" / "gpu.sub").read_text())
    assert (gpu["request_cpus"], gpu["request_gpus"], gpu["request_tape_drive"]) == ("1", "1", "1")


def test_a_missing_nested_spec_is_a_clear_error(tmp_path: Path) -> None:
    from herd.errors import UsageError

    spec = write_spec(
        tmp_path, [{"name": "sub", "cmd": "true", "meta": {"subworkflow": "later.yaml"}}]
    )
    with pytest.raises(
        UsageError, match=r"task sub: its nested workflow .*later\.yaml does not exist"
    ):
        export_dagman(load(spec), tmp_path / "dag", tmp_path)


def test_the_wrappers_do_the_tasks_work_in_dag_order(tmp_path: Path) -> None:
    """What DAGMan would do, without a pool: run each node's executable from the DAG's folder."""
    spec = write_spec(
        tmp_path,
        [
            {
                "name": "make",
                "cmd": "echo $GREETING > a.txt",
                "cwd": "sub",
                "outputs": ["a.txt"],
                "env": {"GREETING": "hi there"},
            },
            {
                "name": "copy",
                "cmd": "cp sub/a.txt b.txt",
                "needs": ["make"],
                "outputs": ["b.txt"],
                "done_marker": "copy.done",
            },
            {"name": "liar", "cmd": "true", "outputs": ["never.txt"]},
            {"name": "slow", "cmd": "sleep 30", "timeout": 1},
        ],
        init="echo init > init.txt",
    )
    workflow = load(spec)
    work, out = tmp_path / "work", tmp_path / "dag"
    export_dagman(workflow, out, work)

    def node(name: str) -> subprocess.CompletedProcess[str]:
        executable = htcondor2.Submit((out / "tasks" / f"{name}.sub").read_text())["executable"]
        return subprocess.run(
            [str(out / executable)], cwd=out, capture_output=True, text=True, timeout=30
        )

    assert node(INIT_NODE).returncode == 0 and (work / "init.txt").read_text() == "init\n"
    assert node("make").returncode == 0
    assert (work / "sub" / "a.txt").read_text() == "hi there\n"
    assert node("copy").returncode == 0 and (work / "copy.done").exists()
    (work / "b.txt").unlink()
    assert node("copy").returncode == 0 and not (work / "b.txt").exists()  # done: skipped
    liar = node("liar")
    assert liar.returncode == 1 and "declared output never.txt was not created" in liar.stderr
    assert node("slow").returncode == 124


def test_export_cli(tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path, [{"name": "a", "cmd": "true"}, {"name": "b", "cmd": "true", "needs": ["a"]}]
    )
    done = subprocess.run(
        [
            "herd",
            "export",
            str(spec),
            "--to",
            "dagman",
            "-o",
            str(tmp_path / "d"),
            "-C",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        done.stdout
        == f"wrote {tmp_path / 'd' / 'wf.dag'}: 2 nodes, 1 dependencies (condor_submit_dag)\n"
    )
    assert (tmp_path / "d" / "logs").is_dir()


def test_a_pegasus_sub_workflow_becomes_a_subdag(tmp_path: Path) -> None:
    """A pegasusWorkflow job (Pegasus.api's SubWorkflow) whose file exists at export time."""
    pytest.importorskip("Pegasus.api", reason="pegasus-wms.api is in the test extra")
    from .test_pegasus_api import _hierarchy

    outer = _hierarchy(tmp_path)
    (tmp_path / "inner.yml").write_text((tmp_path / "inner.src.yml").read_text())
    workflow = load(outer)
    out = tmp_path / "dag"
    export_dagman(workflow, out, tmp_path)
    nodes, edges, _ = _read_dag(out / "outer.dag")
    assert nodes["sub"] == "sub/sub.dag"
    assert {("gen", "sub"), ("sub", "final")} <= edges
    inner_nodes, inner_edges, _ = _read_dag(out / "sub" / "sub.dag")
    assert inner_edges == {("a", "b")} and set(inner_nodes) == {"a", "b"}
    for node in ("a", "b"):
        submit = htcondor2.Submit((out / "sub" / "tasks" / f"{node}.sub").read_text())
        assert submit["executable"] == f"tasks/{node}.sh"
