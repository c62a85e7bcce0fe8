"""WfCommons WfFormat: the real instances, 1.4 documents, templates, export and round trips."""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herd.core.graph import build
from herd.core.model import Recovery, Task, TaskState, Workflow, frozen_map
from herd.errors import HerdError, SpecError
from herd.formats import load
from herd.formats.wfformat import (
    TEMPLATES,
    load_data,
    load_file,
    read_maybe_gzip,
)
from herd.formats.wfformat_write import dump_data, dump_run
from herd.store.base import AttemptRecord

INSTANCES = [
    ("1000genome-chameleon-2ch-100k-001", 52),
    ("blast-chameleon-small-001", 43),
    ("cycles-chameleon-1l-1c-9p-001", 67),
    ("epigenomics-chameleon-hep-1seq-50k-001", 73),
    ("montage-chameleon-2mass-01d-001", 103),
    ("montage-chameleon-dss-15d-001", 2122),
    ("rnaseq-dirt02-001", 197),
    ("seismology-chameleon-100p-001", 101),
    ("soykb-chameleon-10fastq-10ch-001", 96),
    ("srasearch-chameleon-50a-001", 104),
]


def instance(shared: Path, name: str) -> Path:
    return shared / "wfinstances" / f"{name}.json.gz"


def raw_instance(shared: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(instance(shared, name).read_bytes()))
    return data


@pytest.fixture
def schema(shared_data: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (shared_data / "wfinstances" / "wfformat-1.5-schema.json").read_text()
    )
    return loaded


def validate(doc: dict[str, Any], schema: dict[str, Any]) -> None:
    """Validate with draft 7: the 1.5 schema names the unversioned ``schema#`` meta-schema."""
    jsonschema.Draft7Validator(schema).validate(doc)


def edges(workflow: Workflow) -> set[tuple[str, str]]:
    graph = build(workflow)
    return {(graph.name(p), graph.name(c)) for c in range(len(graph)) for p in graph.parents(c)}


def spec_edges(data: dict[str, Any]) -> set[tuple[str, str]]:
    tasks = data["workflow"]["specification"]["tasks"]
    return {(p, t["id"]) for t in tasks for p in t["parents"]}


# --- the real instances ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), INSTANCES, ids=[n for n, _ in INSTANCES])
def test_every_instance_loads_with_its_dag(shared_data: Path, name: str, count: int) -> None:
    workflow = load(instance(shared_data, name))
    data = raw_instance(shared_data, name)
    assert workflow.format == "wfformat"
    assert len(workflow.tasks) == count
    assert edges(workflow) == spec_edges(data)
    runs = {t["id"]: t for t in data["workflow"]["execution"]["tasks"]}
    for task in workflow.tasks:
        assert task.duration == runs[task.name]["runtimeInSeconds"]
        assert task.resource("cpu") == runs[task.name].get("coreCount", 1)


def test_resources_files_and_labels_of_blast(shared_data: Path) -> None:
    wf = load(instance(shared_data, "blast-chameleon-small-001"))
    split = wf.task("split_fasta_ID000001")
    assert dict(split.resources) == {"cpu": 1.0, "mem": 3.0}  # 3,000,000 bytes
    assert split.duration == 0.054023
    assert split.inputs == ("small.fasta", "split_fasta")
    assert len(split.outputs) == 40
    assert split.labels == ("split_fasta",)
    assert split.meta["wfformat"]["files"]["small.fasta"] == 203
    assert split.cmd == ("split_fasta", "./split_fasta", "5", "small.fasta")


def test_nextflow_absolute_file_ids_become_relative(shared_data: Path) -> None:
    wf = load(instance(shared_data, "rnaseq-dirt02-001"))
    paths = {p for t in wf.tasks for p in (*t.inputs, *t.outputs)}
    assert not [p for p in paths if p.startswith("/")]
    assert "c3/939792588c576e6c298ccb479dce57/samplesheet.valid.csv" in paths
    assert "677 file ids are absolute paths" in wf.meta["warnings"][0]
    first = wf.tasks[0]
    assert isinstance(first.cmd, str) and first.cmd.startswith("check_samplesheet.py")  # a script


def test_read_maybe_gzip_reads_both(shared_data: Path, tmp_path: Path) -> None:
    text = read_maybe_gzip(instance(shared_data, "blast-chameleon-small-001"))
    plain = tmp_path / "blast.json"
    plain.write_text(text)
    assert read_maybe_gzip(plain) == text
    assert (
        load_file(plain).tasks
        == load_file(instance(shared_data, "blast-chameleon-small-001")).tasks
    )


# --- schema 1.4 -----------------------------------------------------------------------------


def test_a_14_document_reads_like_its_15_migration() -> None:
    old = {
        "name": "w",
        "schemaVersion": "1.4",
        "workflow": {
            "makespanInSeconds": 10,
            "executedAt": "20200101T000000+0000",
            "tasks": [
                {"name": "split_ID01", "id": "ID01", "type": "compute", "parents": [], "runtimeInSeconds": 2, "cores": 2, "memoryInBytes": 5e6,
                 "command": {"program": "split", "arguments": ["in.txt"]},
                 "files": [{"link": "input", "name": "in.txt", "sizeInBytes": 10}, {"link": "output", "name": "a.txt", "sizeInBytes": 5}]},
                {"name": "count_ID02", "id": "ID02", "type": "compute", "parents": ["split_ID01"], "runtimeInSeconds": 1.5, "machine": "n1",
                 "files": [{"link": "input", "name": "a.txt", "sizeInBytes": 5}, {"link": "output", "name": "n.txt", "sizeInBytes": 1}]},
            ],
        },
    }  # fmt: skip
    new = {
        "name": "w",
        "schemaVersion": "1.5",
        "workflow": {
            "specification": {
                "tasks": [
                    {"name": "split_ID01", "id": "split_ID01", "parents": [], "children": ["count_ID02"], "inputFiles": ["in.txt"], "outputFiles": ["a.txt"]},
                    {"name": "count_ID02", "id": "count_ID02", "parents": ["split_ID01"], "children": [], "inputFiles": ["a.txt"], "outputFiles": ["n.txt"]},
                ],
                "files": [{"id": "in.txt", "sizeInBytes": 10}, {"id": "a.txt", "sizeInBytes": 5}, {"id": "n.txt", "sizeInBytes": 1}],
            },
            "execution": {
                "makespanInSeconds": 10,
                "executedAt": "20200101T000000+0000",
                "tasks": [
                    {"id": "split_ID01", "runtimeInSeconds": 2, "coreCount": 2, "memoryInBytes": 5e6, "command": {"program": "split", "arguments": ["in.txt"]}},
                    {"id": "count_ID02", "runtimeInSeconds": 1.5, "machines": ["n1"]},
                ],
            },
        },
    }  # fmt: skip
    assert load_data(old, "w.json").tasks == load_data(new, "w.json").tasks
    split = load_data(old, "w.json").task("split_ID01")
    assert (split.cmd, dict(split.resources), split.labels) == (
        ("split", "in.txt"),
        {"cpu": 2.0, "mem": 5.0},
        ("split",),
    )


def test_an_unknown_version_is_read_with_a_warning() -> None:
    doc = {
        "name": "w",
        "schemaVersion": "2.0",
        "workflow": {
            "specification": {"tasks": [{"id": "a", "name": "a", "parents": [], "children": []}]}
        },
    }
    wf = load_data(doc, "w.json")
    assert "schemaVersion '2.0' is not 1.4 to 1.6" in wf.meta["warnings"][0]
    assert wf.tasks[0].duration is None


# --- commands and templates -----------------------------------------------------------------


def one_task(**execution: Any) -> dict[str, Any]:
    spec = {
        "id": "t_ID1",
        "name": "t",
        "parents": [],
        "children": [],
        "inputFiles": ["in/a b.txt"],
        "outputFiles": ["out/x.dat", "y.dat"],
    }
    return {
        "name": "w",
        "schemaVersion": "1.5",
        "workflow": {
            "specification": {
                "tasks": [spec],
                "files": [
                    {"id": "in/a b.txt", "sizeInBytes": 3},
                    {"id": "out/x.dat", "sizeInBytes": 7},
                    {"id": "y.dat", "sizeInBytes": 0},
                ],
            },
            "execution": {
                "makespanInSeconds": 1,
                "executedAt": "now",
                "tasks": [{"id": "t_ID1", "runtimeInSeconds": 2.5, **execution}],
            },
        },
    }


def test_template_fields() -> None:
    template = "run {id} {name} {runtime:.0f} {cores} {mem} [{inputs}] [{outputs}] {program} {arguments} | {command}"
    wf = load_data(
        one_task(
            coreCount=2, memoryInBytes=1e9, command={"program": "prog", "arguments": ["-x", "a b"]}
        ),
        "w.json",
        template,
    )
    assert (
        wf.tasks[0].cmd
        == "run t_ID1 t 2 2 1000 ['in/a b.txt'] [out/x.dat y.dat] prog -x 'a b' | prog -x 'a b'"
    )


def test_replay_template_creates_outputs_and_init_creates_inputs(tmp_path: Path) -> None:
    wf = load_data(one_task(), "w.json", "replay")
    assert (
        wf.tasks[0].cmd
        == "sleep 2.5 && mkdir -p out && truncate -s 7 out/x.dat && truncate -s 0 y.dat"
    )
    assert (
        wf.init == "set -e\n[ -e 'in/a b.txt' ] || { mkdir -p in && truncate -s 3 'in/a b.txt'; }"
    )
    assert TEMPLATES["instant"] == "{make_outputs}"


def test_without_command_or_template_the_task_fails_clearly(tmp_path: Path) -> None:
    wf = load_data(one_task(), "w.json")
    result = subprocess.run(
        ["/bin/sh", "-c", str(wf.tasks[0].cmd)], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "WfFormat task t_ID1 has no command" in result.stderr
    assert "--command-template" in result.stderr


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("sleep {runtme}", "unknown template field {runtme}"),
        ("echo {", "invalid template"),
        ("{runtime:d}", "does not render"),
    ],
)
def test_bad_templates_are_spec_errors(template: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        load_data(one_task(), "w.json", template)
    assert words in str(info.value)
    assert info.value.field == "command_template"


def test_an_instance_replays_end_to_end_with_a_template(shared_data: Path, tmp_path: Path) -> None:
    wf = load_file(
        instance(shared_data, "1000genome-chameleon-2ch-100k-001"), command_template="instant"
    )
    assert wf.init is not None
    subprocess.run(["/bin/sh", "-c", wf.init], cwd=tmp_path, check=True)
    graph = build(wf)
    for i in graph.order:
        task = graph.tasks[i]
        for path in task.inputs:
            assert (tmp_path / path).exists(), f"{task.name} runs before {path} exists"
        subprocess.run(["/bin/sh", "-c", str(task.cmd)], cwd=tmp_path, check=True)
    sizes = {
        f["id"]: f["sizeInBytes"]
        for f in raw_instance(shared_data, "1000genome-chameleon-2ch-100k-001")["workflow"][
            "specification"
        ]["files"]
    }
    for task in wf.tasks:
        for path in task.outputs:
            assert os.path.getsize(tmp_path / path) == sizes[path]


# --- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), INSTANCES, ids=[n for n, _ in INSTANCES])
def test_export_is_valid_and_reads_back_identical(
    shared_data: Path, schema: dict[str, Any], name: str, count: int
) -> None:
    wf = load(instance(shared_data, name))
    doc = json.loads(json.dumps(dump_data(wf, executed_at="2026-01-01T00:00:00+00:00")))
    validate(doc, schema)
    assert len(doc["workflow"]["specification"]["tasks"]) == count
    assert not [t for t in doc["workflow"]["specification"]["tasks"] if "herd" in t]  # nothing lost
    assert load_data(doc, "again.json").tasks == wf.tasks


def attempt(
    task: str, number: int, start: float, end: float, state: TaskState, **fields: Any
) -> AttemptRecord:
    return AttemptRecord(
        workflow_id=1, run_id=1, task=task, number=number, host="node1", user="u", pid=1, start=start,
        cmd="x", env_digest="", fingerprint="", reason="new", end=end, state=state, **fields,
    )  # fmt: skip


def test_dump_run_records_real_attempts(schema: dict[str, Any]) -> None:
    wf = Workflow(
        "run",
        (
            Task("a", ("gen", "-o", "x.dat"), outputs=("x.dat",), resources=frozen_map({"cpu": 2.0, "mem": 100.0}), env=frozen_map({"K": "v"})),
            Task("b", "count x.dat > n.txt", inputs=("x.dat",), outputs=("n.txt",), resources=frozen_map({"cpu": 1.0})),
            Task("c", "never", needs=("b",)),
        ),
    )  # fmt: skip
    attempts = [
        attempt("a", 1, 1000.0, 1004.0, TaskState.FAILED, exit_code=1),
        attempt("a", 2, 1005.0, 1015.5, TaskState.SUCCEEDED, mean_cpu=1.5, peak_mem=52_000_000, resources=frozen_map({"cpu": 2.0}), outputs=frozen_map({"x.dat": (4096, 0, "")})),
        attempt("b", 1, 1016.0, 1017.0, TaskState.SUCCEEDED, utime=0.5, stime=0.25, max_rss=3_000_000),
    ]  # fmt: skip
    doc = json.loads(json.dumps(dump_run(wf, attempts, name="run-1")))
    validate(doc, schema)
    execution = doc["workflow"]["execution"]
    assert doc["name"] == "run-1"
    assert execution["makespanInSeconds"] == 17.0
    assert execution["executedAt"] == "1970-01-01T00:16:40+00:00"
    assert execution["machines"] == [{"nodeName": "node1"}]
    runs = {t["id"]: t for t in execution["tasks"]}
    assert set(runs) == {"a", "b"}  # c never ran
    assert runs["a"]["runtimeInSeconds"] == 10.5
    assert runs["a"]["coreCount"] == 2
    assert runs["a"]["avgCPU"] == 150.0
    assert runs["a"]["memoryInBytes"] == 52_000_000
    assert runs["a"]["herd"] == {"attempt": 2, "state": "succeeded", "exit_code": None}
    assert runs["b"]["avgCPU"] == 75.0
    assert runs["a"]["command"] == {"program": "gen", "arguments": ["-o", "x.dat"]}
    files = {f["id"]: f["sizeInBytes"] for f in doc["workflow"]["specification"]["files"]}
    assert files["x.dat"] == 4096
    back = load_data(doc, "run.json")
    assert back.task("a").duration == 10.5  # the measured runtime
    assert dict(back.task("a").env) == {"K": "v"}  # kept in the herd extension
    assert edges(back) == {("a", "b"), ("b", "c")}


def test_dump_run_needs_attempts() -> None:
    with pytest.raises(HerdError, match="no attempts"):
        dump_run(Workflow("w", (Task("a", "x"),)), [])


@pytest.mark.parametrize(
    ("task", "field", "words"),
    [
        (Task("bad name", "x"), "name", "cannot be a WfFormat task id"),
        (
            Task("a", "x", outputs=("out file.txt",)),
            "outputs",
            "the file and the dependency through it would be lost",
        ),
    ],
)
def test_what_wfformat_cannot_express_is_refused(task: Task, field: str, words: str) -> None:
    with pytest.raises(SpecError) as info:
        dump_data(Workflow("w", (task,), source="w.yaml"))
    assert (info.value.file, info.value.task, info.value.field) == ("w.yaml", task.name, field)
    assert words in info.value.problem


@pytest.mark.parametrize(
    ("change", "task", "field"),
    [
        (
            lambda d: d["workflow"]["execution"]["tasks"][0].update(runtimeInSeconds="slow"),
            "t_ID1",
            "runtimeInSeconds",
        ),
        (
            lambda d: d["workflow"]["specification"]["tasks"][0].update(children=["ghost"]),
            "t_ID1",
            "children",
        ),
        (
            lambda d: d["workflow"]["specification"]["tasks"][0].update(parents="p"),
            "t_ID1",
            "parents",
        ),
        (
            lambda d: d["workflow"]["specification"]["tasks"][0].pop("id"),
            None,
            "workflow.specification.tasks[0].id",
        ),
        (
            lambda d: d["workflow"]["specification"]["tasks"][0].update(herd={"retries": -1}),
            "t_ID1",
            "herd.retries",
        ),
    ],
)
def test_bad_documents_name_file_task_and_field(change: Any, task: str | None, field: str) -> None:
    doc = one_task()
    change(doc)
    with pytest.raises(SpecError) as info:
        load_data(doc, "w.json")
    assert (info.value.file, info.value.task, info.value.field) == ("w.json", task, field)


# --- round trip: native -> WfFormat -> native -----------------------------------------------

_words = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
_amounts = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.5, 8.0])


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    count = draw(st.integers(1, 7))
    tasks: list[Task] = []
    for i in range(count):
        earlier = [t.name for t in tasks]
        produced = [p for t in tasks for p in t.outputs]
        resources = {"cpu": draw(_amounts)}
        if draw(st.booleans()):
            resources["mem"] = draw(st.sampled_from([100.0, 2000.0, 0.25]))
        if draw(st.booleans()):
            resources["tape"] = 1.0
        argv = draw(st.lists(_words, min_size=1, max_size=3))
        cmd: str | tuple[str, ...] = (
            tuple(argv) if draw(st.booleans()) else " ".join(argv) + " > log"
        )
        outputs = tuple(f"d{i}/out{k}.dat" for k in range(draw(st.integers(0, 2))))
        tasks.append(
            Task(
                name=f"t{i}",
                cmd=cmd,
                needs=tuple(draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)))
                if earlier
                else (),
                inputs=tuple(
                    draw(st.lists(st.sampled_from([*produced, "ext.txt"]), unique=True, max_size=3))
                ),
                outputs=outputs,
                temp=outputs[:1] if draw(st.booleans()) else (),
                resources=frozen_map(resources),
                labels=tuple(draw(st.lists(_words, unique=True, max_size=2))),
                env=frozen_map(
                    draw(st.dictionaries(st.sampled_from(["A", "B"]), _words, max_size=2))
                ),
                timeout=draw(st.sampled_from([None, 60.0])),
                retries=draw(st.integers(0, 2)),
                priority=draw(st.integers(-1, 3)),
                duration=draw(st.sampled_from([None, 0.0, 1.5, 30.0])),
                timeframe=draw(st.sampled_from([None, 1, 2])),
                recovery=draw(st.sampled_from([None, Recovery(mem_factor=2.0)])),
                meta=frozen_map(draw(st.sampled_from([{}, {"k": "v"}]))),
            )
        )
    return Workflow(
        "rt",
        tuple(tasks),
        env=frozen_map({"G": "1"}),
        init="echo init",
        limits=frozen_map({"tape": 1.0}),
    )


@given(workflows())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_native_to_wfformat_to_native_keeps_everything(workflow: Workflow) -> None:
    doc = json.loads(json.dumps(dump_data(workflow)))
    back = load_data(doc, "rt.wfformat.json")
    assert back.tasks == workflow.tasks
    assert (back.env, back.init, back.limits) == (workflow.env, workflow.init, workflow.limits)


@given(workflows())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_plain_wfformat_keeps_the_dag_and_resources(workflow: Workflow) -> None:
    """Without herd's extension objects (a tool dropped them) the DAG and cores/memory survive."""
    doc = json.loads(json.dumps(dump_data(workflow)))
    plain = copy.deepcopy(doc)
    plain.pop("herd", None)
    for task in plain["workflow"]["specification"]["tasks"]:
        task.pop("herd", None)
    back = load_data(plain, "plain.json")
    assert [t.name for t in back.tasks] == [t.name for t in workflow.tasks]
    assert edges(back) == edges(workflow)
    for old, new in zip(workflow.tasks, back.tasks, strict=True):
        assert (new.inputs, new.outputs) == (old.inputs, old.outputs)
        # WfFormat core counts are at least 1: fewer reads back as the default, 1
        assert new.resource("cpu") == max(old.resource("cpu"), 1.0)
        if old.resource("mem"):
            assert new.resources["mem"] == pytest.approx(old.resource("mem"))
        assert new.duration == (old.duration or 0.0)
