"""The Python API: builders, the model they make, the spec they write, and misuse."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from herd.api import File, Task, Workflow
from herd.core.graph import build as build_graph
from herd.core.model import Recovery
from herd.errors import SpecError, UsageError, ValidationError
from herd.formats import load

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api_example.py"


def demo() -> Workflow:
    raw, rec = File("raw.dat"), File("rec.root")
    wf = Workflow("demo", env={"X": "1"})
    sim = (
        Task("sim", "o2-sim")
        .add_args("-n", 10, "-o", raw)
        .add_outputs(raw)
        .set_resources(cpu=2, mem=2000)
        .add_labels("sim")
    )
    reco = Task("reco", "o2-reco").add_args("-i", raw, "-o", rec).add_inputs(raw).add_outputs(rec)
    return wf.add_tasks(sim, reco)


def edges(wf: Workflow) -> set[tuple[str, str]]:
    graph = build_graph(wf.build())
    return {(graph.name(p), graph.name(c)) for c in range(len(graph)) for p in graph.parents(c)}


def test_the_demo_builds_the_right_model() -> None:
    model = demo().build()
    assert (model.name, model.format, dict(model.env)) == ("demo", "api", {"X": "1"})
    sim, reco = model.tasks
    assert sim.cmd == ("o2-sim", "-n", "10", "-o", "raw.dat")
    assert (sim.outputs, dict(sim.resources), sim.labels) == (
        ("raw.dat",),
        {"cpu": 2.0, "mem": 2000.0},
        ("sim",),
    )
    assert (reco.inputs, reco.outputs, reco.needs) == (("raw.dat",), ("rec.root",), ())
    assert edges(demo()) == {("sim", "reco")}  # inferred from the file


def test_explicit_dependencies() -> None:
    wf = demo().add_tasks(Task("report", "echo"), Task("setup", "true"))
    wf.add_dependency("sim", parents=["setup"], children=[wf.task("report")])
    wf.add_dependency(wf.task("reco"), children=["report"])
    model = wf.build()
    assert model.task("sim").needs == ("setup",)
    assert model.task("report").needs == ("sim", "reco")
    assert edges(wf) == {("setup", "sim"), ("sim", "reco"), ("sim", "report"), ("reco", "report")}


def test_keyword_arguments_and_setters() -> None:
    task = Task(
        "t",
        "run.sh",
        timeout=60,
        retries=2,
        backoff=5,
        priority=3,
        semaphore="db",
        env={"A": "1"},
        cwd="tf1",
        duration=12.5,
        timeframe=1,
    )
    task.add_needs("x").add_outputs("tmp.dat", temp=True).set_stdio(
        stdout="out.log", stderr=File("err.log")
    )
    task.set_done_marker("t.done").set_recovery(mem_factor=2.0).add_env(B=2).add_meta(origin="test")
    built = task.build()
    assert (built.timeout, built.retries, built.backoff, built.priority, built.semaphore) == (
        60.0,
        2,
        5.0,
        3,
        "db",
    )
    assert (built.cwd, built.duration, built.timeframe, built.needs) == ("tf1", 12.5, 1, ("x",))
    assert (built.outputs, built.temp, built.stdout, built.stderr) == (
        ("tmp.dat",),
        ("tmp.dat",),
        "out.log",
        "err.log",
    )
    assert (built.done_marker, built.recovery) == ("t.done", Recovery(mem_factor=2.0))
    assert dict(built.env) == {"A": "1", "B": "2"}
    assert dict(built.meta) == {"origin": "test"}
    assert Task("s", shell="echo hi > out").build().cmd == "echo hi > out"


def test_write_gives_a_native_spec_that_loads_back(tmp_path: Path) -> None:
    wf = demo()
    path = wf.write(tmp_path / "wf.yaml")
    loaded = load(path)
    assert loaded.tasks == wf.build().tasks
    assert loaded.format == "native"
    assert load(wf.write(tmp_path / "wf.json")).tasks == wf.build().tasks


def test_build_validates_the_graph() -> None:
    wf = Workflow("w").add_tasks(Task("a", "x").add_needs("b"), Task("b", "x").add_needs("a"))
    with pytest.raises(ValidationError, match="cycle"):
        wf.build()
    with pytest.raises(ValidationError, match="did you mean 'a'"):
        Workflow("w").add_tasks(Task("a", "x"), Task("c", "x").add_needs("aa")).build()


@pytest.mark.parametrize(
    ("make", "error", "task", "field"),
    [
        (
            lambda: Workflow("w").add_tasks(Task("a", "x"), Task("a", "y")),
            ValidationError,
            "a",
            "name",
        ),
        (lambda: Task(File("x"), "y"), SpecError, None, "name"),  # type: ignore[arg-type]
        (lambda: Task("a", File("prog")), SpecError, "a", "executable"),  # type: ignore[arg-type]
        (lambda: Task("a", "x").add_labels(File("l")), SpecError, "a", "labels"),  # type: ignore[arg-type]
        (lambda: Task("a", "x").add_args(True), SpecError, "a", "args[0]"),
        (lambda: Task("a", "x").add_args("ok", None), SpecError, "a", "args[1]"),  # type: ignore[arg-type]
        (lambda: Task("a", shell="ls").add_args("-l"), SpecError, "a", "args"),
        (lambda: Task("a"), SpecError, "a", "executable"),
        (lambda: Task("a", "x", shell="y"), SpecError, "a", "executable"),
        (lambda: Task("a", "x").set_resources(cpu=-1), SpecError, "a", "resources.cpu"),
        (lambda: Task("a", "x").set_resources(mem="lots"), SpecError, "a", "resources.mem"),  # type: ignore[arg-type]
        (lambda: Task("a", "x", timeout=0), SpecError, "a", "timeout"),
        (lambda: Task("a", "x", retries=-1), SpecError, "a", "retries"),
        (lambda: Task("a", "x", env={"K": File("f")}), SpecError, "a", "env.K"),  # type: ignore[dict-item]
        (
            lambda: Workflow("w").add_tasks(Task("a", "x")).add_dependency("a", parents=["ghost"]),
            SpecError,
            "ghost",
            "needs",
        ),
        (lambda: Workflow("w").add_tasks("a"), SpecError, None, "tasks"),  # type: ignore[arg-type]
    ],
)
def test_misuse_raises_spec_errors_naming_task_and_field(
    make: object, error: type[Exception], task: str | None, field: str
) -> None:
    with pytest.raises(error) as info:
        make()  # type: ignore[operator]
    assert isinstance(info.value, SpecError)
    assert (info.value.task, info.value.field) == (task, field)


def test_a_file_where_a_string_must_be_says_what_to_do() -> None:
    with pytest.raises(SpecError, match=r"use str\(file\)"):
        Task("a", "x").add_labels(File("l"))  # type: ignore[arg-type]


def test_files_compare_by_path() -> None:
    assert File("a") == File(Path("a")) == File(File("a"))
    assert len({File("a"), File("a")}) == 1
    assert str(File("x/y")) == "x/y"
    with pytest.raises(SpecError):
        File("")


def test_workflow_container_protocol() -> None:
    wf = demo()
    assert len(wf) == 2 and "sim" in wf and wf.task("sim") in wf and "nope" not in wf
    assert [t.name for t in wf] == ["sim", "reco"]
    with pytest.raises(SpecError, match="no such task"):
        wf.task("nope")


def test_unknown_run_options_are_usage_errors(tmp_path: Path) -> None:
    pytest.importorskip("herd.run.local", reason="runner not available")
    with pytest.raises(UsageError, match="unknown run option 'fast'"):
        demo().run(workdir=tmp_path, fast=True)


def test_run_executes_the_workflow(tmp_path: Path) -> None:
    try:
        import herd.run.local  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"runner not available: {exc}")
    out = File("out.txt")
    wf = Workflow("r").add_tasks(
        Task("write", shell="echo hello > out.txt").add_outputs(out),
        Task("copy", shell="cp out.txt copy.txt").add_inputs(out).add_outputs("copy.txt"),
    )
    result = wf.run(workdir=tmp_path)
    assert result.status == "succeeded"
    assert (tmp_path / "copy.txt").read_text() == "hello\n"


def test_the_example_builds_and_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("api_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_example"] = module
    try:
        spec.loader.exec_module(module)
        path = module.main([str(tmp_path / "mc.yaml")])
    finally:
        del sys.modules["api_example"]
    loaded = load(path)
    names = [t.name for t in loaded.tasks]
    assert names[:3] == ["sim_1", "digi_1", "reco_1"] and names[-1] == "analysis"
    assert len(names) == 10
    assert loaded.task("analysis").needs == ("reco_1", "reco_2", "reco_3")
    assert loaded.task("digi_2").inputs == ("tf2/sim.root",)
    assert {t.timeframe for t in loaded.tasks} == {1, 2, 3, None}
