"""The native spec: every field, strict validation with file/task/field messages, round trips."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herd.core.model import EMPTY, FrozenDict, Recovery, Task, Workflow
from herd.errors import SpecError
from herd.formats import dumps, load_text
from herd.formats.native import TaskParser, dump_data, dump_task, load_data

SRC = "spec.yaml"


def load(doc: dict[str, Any]) -> Workflow:
    return load_data(doc, SRC)


def one(task: dict[str, Any], **top: Any) -> Task:
    return load({"name": "wf", "tasks": [task], **top}).tasks[0]


def spec_error(doc: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(doc)
    return info.value


def task_error(task: dict[str, Any], **top: Any) -> SpecError:
    return spec_error({"name": "wf", "tasks": [task], **top})


def assert_where(err: SpecError, task: str | None, field: str | None) -> None:
    assert err.file == SRC
    assert err.task == task
    assert err.field == field
    assert SRC in str(err)
    if task:
        assert f"task '{task}'" in str(err)
    if field:
        assert f"field '{field}'" in str(err)


FULL = """
name: demo
env: {A: "1", N: 2}
init: "echo setup"
limits: {tape_drive: 2}
meta: {owner: me, tags: [a, b]}
tasks:
  - name: gen
    cmd: "echo hi > out.txt"
    needs: [other]
    inputs: [a.txt]
    outputs: [out.txt, {path: big.root, temp: true}]
    resources: {cpu: 2, mem: 2000, gpu: 0, tape_drive: 1}
    labels: [sim]
    cwd: tf1
    env: {X: "y"}
    timeout: 30
    retries: 2
    backoff: 1.5
    semaphore: s
    priority: 5
    timeframe: 1
    duration: 12.5
    done_marker: gen.done
    stdin: in.txt
    stdout: out.log
    stderr: err.log
    recover: {mem_factor: 1.5, time_factor: 2.0, attempts: 1}
    meta: {k: v}
  - name: other
    cmd: [prog, arg, 3]
"""


def test_every_field_is_read() -> None:
    wf = load_text(FULL, SRC)
    assert (wf.name, wf.init, wf.source, wf.format) == ("demo", "echo setup", SRC, "native")
    assert wf.env == {"A": "1", "N": "2"}
    assert wf.limits == {"tape_drive": 2.0}
    assert wf.meta == {"owner": "me", "tags": ("a", "b")}
    gen, other = wf.tasks
    assert gen == Task(
        name="gen",
        cmd="echo hi > out.txt",
        needs=("other",),
        inputs=("a.txt",),
        outputs=("out.txt", "big.root"),
        temp=("big.root",),
        resources={"cpu": 2.0, "mem": 2000.0, "gpu": 0.0, "tape_drive": 1.0},
        labels=("sim",),
        cwd="tf1",
        env={"X": "y"},
        timeout=30.0,
        retries=2,
        backoff=1.5,
        semaphore="s",
        priority=5,
        timeframe=1,
        duration=12.5,
        done_marker="gen.done",
        stdin="in.txt",
        stdout="out.log",
        stderr="err.log",
        recovery=Recovery(mem_factor=1.5, time_factor=2.0, attempts=1),
        meta={"k": "v"},
    )
    assert other.cmd == ("prog", "arg", "3")
    assert other.resources is EMPTY and other.env is EMPTY and other.meta is EMPTY


def test_a_minimal_task_gets_model_defaults() -> None:
    task = one({"name": "a", "cmd": "true"})
    assert task == Task(name="a", cmd="true")


def test_numbers_may_be_strings_and_are_coerced() -> None:
    task = one(
        {"name": "a", "cmd": "x", "retries": "2", "timeout": " 1.5 ", "resources": {"cpu": "0.5"}}
    )
    assert (task.retries, task.timeout, task.resources) == (2, 1.5, {"cpu": 0.5})
    assert type(task.retries) is int and type(task.resources["cpu"]) is float


def test_integral_floats_are_accepted_for_integer_fields() -> None:
    assert one({"name": "a", "cmd": "x", "priority": -3.0}).priority == -3


def test_a_single_string_is_a_list_of_one() -> None:
    task = one({"name": "a", "cmd": "x", "needs": "b", "labels": "l", "outputs": "o"})
    assert (task.needs, task.labels, task.outputs) == (("b",), ("l",), ("o",))


def test_null_means_the_default() -> None:
    task = one({"name": "a", "cmd": "x", "retries": None, "cwd": None, "env": None})
    assert task == Task(name="a", cmd="x")


def test_defaults_fill_unset_fields_and_merge_resources_and_env() -> None:
    wf = load(
        {
            "name": "wf",
            "defaults": {
                "resources": {"cpu": 1, "mem": 100},
                "env": {"A": "1", "B": "2"},
                "retries": 1,
                "labels": ["d"],
            },
            "tasks": [
                {"name": "a", "cmd": "x"},
                {"name": "b", "cmd": "x", "resources": {"cpu": 4}, "env": {"B": "3"}, "retries": 0},
                {"name": "c", "cmd": "x", "labels": ["own"], "retries": None},
            ],
        }
    )
    a, b, c = wf.tasks
    assert (a.resources, a.env, a.retries, a.labels) == (
        {"cpu": 1.0, "mem": 100.0},
        {"A": "1", "B": "2"},
        1,
        ("d",),
    )
    assert (b.resources, b.env, b.retries) == ({"cpu": 4.0, "mem": 100.0}, {"A": "1", "B": "3"}, 0)
    assert (c.labels, c.retries) == (("own",), 0)


def test_identical_values_are_shared_between_tasks() -> None:
    tasks = [
        {"name": f"t{i}", "cmd": "x", "resources": {"cpu": 1, "mem": 2}, "labels": ["a"]}
        for i in range(3)
    ]
    a, b, c = load({"name": "wf", "tasks": tasks}).tasks
    assert a.resources is b.resources is c.resources
    assert a.labels is b.labels is c.labels


def test_tasks_are_hashable_even_with_nested_meta() -> None:
    task = one({"name": "a", "cmd": "x", "meta": {"k": {"deep": [1, {"x": 2}]}}})
    assert isinstance(task.meta["k"], FrozenDict)
    assert task.meta["k"]["deep"] == (1, FrozenDict({"x": 2}))
    assert hash(task) == hash(
        one({"name": "a", "cmd": "x", "meta": {"k": {"deep": [1, {"x": 2}]}}})
    )


# -- bad input: every message names file, task and field ---------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "where", "words"),
    [
        ("retries", "x", "retries", "expected a number"),
        ("retries", True, "retries", "a boolean"),
        ("retries", -1, "retries", "at least 0"),
        ("retries", 1.5, "retries", "whole number"),
        ("timeout", -5, "timeout", "at least 0"),
        ("timeout", 0, "timeout", "more than 0"),
        ("backoff", "nan", "backoff", "finite"),
        ("resources", {"cpu": -1}, "resources.cpu", "at least 0"),
        ("resources", {"cpu": True}, "resources.cpu", "a boolean"),
        ("resources", {"tape-drive": 1}, "resources", "invalid resource name"),
        ("resources", [1], "resources", "a list"),
        ("env", {"X": [1]}, "env.X", "expected a string or number"),
        ("env", {"X": True}, "env.X", "a boolean"),
        ("env", {"X": None}, "env.X", "nothing"),
        ("env", "A=1", "env", "expected a mapping"),
        ("needs", [1], "needs", "list of strings"),
        ("needs", [""], "needs", "list of strings"),
        ("labels", {"a": 1}, "labels", "list of strings"),
        ("cwd", 5, "cwd", "expected a string"),
        ("cwd", "", "cwd", "must not be empty"),
        ("outputs", [{"path": "a", "temp": "yes"}], "outputs.temp", "true or false"),
        ("outputs", [{"path": "a", "tmp": True}], "outputs.tmp", "unknown field"),
        ("outputs", [{"temp": True}], "outputs.path", "expected a string"),
        ("outputs", [3], "outputs", "expected a path"),
        ("recover", {"mem_factor": 0.5}, "recover.mem_factor", "at least 1"),
        ("recover", {"attempt": 1}, "recover.attempt", "unknown field"),
        ("recover", 2, "recover", "expected a mapping"),
        ("meta", [1], "meta", "expected a mapping"),
        ("mode", "zip", "mode", "belongs to a sweep"),
    ],
)
def test_bad_field_values(field: str, value: Any, where: str, words: str) -> None:
    err = task_error({"name": "t", "cmd": "x", field: value})
    assert_where(err, "t", where)
    assert words in err.problem


@pytest.mark.parametrize("cmd", ["", "   ", [], [None], {"a": 1}])
def test_bad_cmd(cmd: Any) -> None:
    assert_where(task_error({"name": "t", "cmd": cmd}), "t", "cmd")


def test_missing_cmd() -> None:
    err = task_error({"name": "t"})
    assert_where(err, "t", "cmd")
    assert "required" in err.problem


def test_unknown_task_field_suggests_the_close_one() -> None:
    err = task_error({"name": "t", "cmd": "x", "retires": 1})
    assert_where(err, "t", "retires")
    assert err.hint == "did you mean 'retries'?"


def test_unknown_workflow_field_suggests_the_close_one() -> None:
    err = spec_error({"name": "wf", "task": [], "tasks": []})
    assert_where(err, None, "task")
    assert err.hint == "did you mean 'tasks'?"


def test_unknown_field_far_from_any_lists_the_known_ones() -> None:
    err = task_error({"name": "t", "cmd": "x", "zzzzzz": 1})
    assert err.hint is not None and "known fields" in err.hint and "retries" in err.hint


@pytest.mark.parametrize(
    ("name", "problem"), [(None, "required"), (3, "non-empty string"), ("", "non-empty string")]
)
def test_task_name_missing_or_not_a_string(name: Any, problem: str) -> None:
    err = spec_error(
        {"name": "wf", "tasks": [{"name": "a", "cmd": "x"}, {"name": name, "cmd": "x"}]}
    )
    assert_where(err, "#2", "name")
    assert problem in err.problem


def test_a_task_that_is_not_a_mapping() -> None:
    assert_where(spec_error({"name": "wf", "tasks": ["echo hi"]}), "#1", None)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"tasks": []}, "name"),
        ({"name": 3, "tasks": []}, "name"),
        ({"name": "wf"}, "tasks"),
        ({"name": "wf", "tasks": {"a": {}}}, "tasks"),
        ({"name": "wf", "tasks": [], "env": {"A": [1]}}, "env.A"),
        ({"name": "wf", "tasks": [], "limits": {"cpu": -1}}, "limits.cpu"),
        ({"name": "wf", "tasks": [], "init": ""}, "init"),
        ({"name": "wf", "tasks": [], "defaults": {"retries": "x"}}, "defaults.retries"),
        ({"name": "wf", "tasks": [], "defaults": {"retires": 1}}, "defaults.retires"),
        ({"name": "wf", "tasks": [], "defaults": {"name": "x"}}, "defaults.name"),
        ({"name": "wf", "tasks": [], "defaults": []}, "defaults"),
    ],
)
def test_bad_workflow_fields(doc: dict[str, Any], field: str) -> None:
    assert_where(spec_error(doc), None, field)


def test_not_a_mapping_at_the_top() -> None:
    with pytest.raises(SpecError, match=r"spec.yaml: expected a mapping"):
        load_data([1, 2], SRC)


def test_a_cached_good_mapping_does_not_let_a_boolean_through() -> None:
    err = spec_error(
        {
            "name": "wf",
            "tasks": [
                {"name": "a", "cmd": "x", "resources": {"cpu": 1}},
                {"name": "b", "cmd": "x", "resources": {"cpu": True}},
            ],
        }
    )
    assert_where(err, "b", "resources.cpu")


#: values on both sides of the loader's fast paths (strings, integers, amounts, lists of names)
NEAR_MISSES: list[Any] = [
    "x", " x ", "", " ", "\t\n", "2", " 1.5 ", "nan",
    0, 1, -1, 7, 2**70, True, False,
    0.0, -0.0, 1.5, -1.5, 2.0, float("nan"), float("inf"), float("-inf"),
    [], ["a"], ["a", "b"], ["a", ""], ["a", 1], ["a", True], [None], [["a"]], {}, {"a": 1},
]  # fmt: skip
FAST_FIELDS = [
    "cmd", "cwd", "semaphore", "done_marker", "stdin", "stdout", "stderr", "priority",
    "timeframe", "duration", "backoff", "needs", "inputs", "outputs", "labels",
]  # fmt: skip


def _outcome(call: Callable[..., Any], *args: Any) -> Any:
    try:
        value = call(*args)
    except SpecError as err:
        return ("error", err.problem, err.task, err.field, err.hint)
    return ("value", repr(value), type(value))


def _loaded(field: str, value: Any) -> Any:
    task = one({"name": "t", "cmd": "x", field: value})
    return (task.outputs, task.temp) if field == "outputs" else getattr(task, field)


@pytest.mark.parametrize("field", FAST_FIELDS)
def test_fast_paths_agree_with_the_field_parsers(field: str) -> None:
    parse = TaskParser(SRC).fields[field]
    for value in NEAR_MISSES:
        expected = _outcome(parse, value, SRC, "t", field)
        assert _outcome(_loaded, field, value) == expected, (field, value)


def test_an_empty_workflow_is_allowed() -> None:
    assert load({"name": "wf", "tasks": []}).tasks == ()


# -- writing -----------------------------------------------------------------------------------


def test_dump_leaves_defaults_out() -> None:
    assert dump_task(Task(name="a", cmd="x")) == {"name": "a", "cmd": "x"}
    wf = Workflow(name="w", tasks=(Task(name="a", cmd=("p", "q"), resources={"cpu": 1.0}),))
    assert dump_data(wf) == {
        "name": "w",
        "tasks": [{"name": "a", "cmd": ["p", "q"], "resources": {"cpu": 1}}],
    }


def test_dump_writes_temp_outputs_and_recovery() -> None:
    task = Task(name="a", cmd="x", outputs=("k", "t"), temp=("t",), recovery=Recovery(attempts=3))
    out = dump_task(task)
    assert out["outputs"] == ["k", {"path": "t", "temp": True}]
    assert out["recover"] == {"attempts": 3}


def test_the_full_example_round_trips_through_yaml_and_json() -> None:
    wf = load_text(FULL, SRC)
    for fmt in ("yaml", "json"):
        assert load_text(dumps(wf, fmt), SRC) == wf


def test_multi_line_commands_are_written_as_literal_blocks() -> None:
    wf = Workflow(name="w", tasks=(Task(name="a", cmd="set -e\necho a\necho b\n"),))
    text = dumps(wf)
    assert "cmd: |" in text
    assert load_text(text, SRC).tasks == wf.tasks


# -- property: load(dump(wf)) == wf ------------------------------------------------------------

names = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)
idents = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False, allow_infinity=False)
env_keys = names.filter(lambda k: "=" not in k)
meta_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | amounts | names,
    lambda inner: (
        st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(names, inner, max_size=3).map(FrozenDict)
    ),
    max_leaves=6,
)
maybe = st.none

recoveries = st.builds(
    Recovery,
    mem_factor=st.floats(1, 10),
    time_factor=st.floats(1, 10),
    attempts=st.integers(0, 5),
)


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    outputs = draw(st.lists(names, max_size=3, unique=True))
    return Task(
        name=draw(names),
        cmd=draw(names.filter(str.strip) | st.lists(names, min_size=1, max_size=3).map(tuple)),
        needs=tuple(draw(st.lists(names, max_size=3))),
        inputs=tuple(draw(st.lists(names, max_size=3))),
        outputs=tuple(outputs),
        temp=tuple(o for o in outputs if draw(st.booleans())),
        resources=FrozenDict(draw(st.dictionaries(idents, amounts, max_size=3))) or EMPTY,
        labels=tuple(draw(st.lists(names, max_size=2))),
        cwd=draw(maybe() | names),
        env=FrozenDict(draw(st.dictionaries(env_keys, st.text(max_size=5), max_size=2))) or EMPTY,
        timeout=draw(maybe() | st.floats(0.001, 1e6)),
        retries=draw(st.integers(0, 5)),
        backoff=draw(amounts),
        semaphore=draw(maybe() | names),
        priority=draw(st.integers(-100, 100)),
        timeframe=draw(maybe() | st.integers(-5, 10**6)),
        duration=draw(maybe() | amounts),
        done_marker=draw(maybe() | names),
        stdin=draw(maybe() | names),
        stdout=draw(maybe() | names),
        stderr=draw(maybe() | names),
        recovery=draw(maybe() | recoveries),
        meta=FrozenDict(draw(st.dictionaries(names, meta_values, max_size=2))) or EMPTY,
    )


workflows = st.builds(
    Workflow,
    name=names,
    tasks=st.lists(tasks(), max_size=4).map(tuple),
    env=st.dictionaries(env_keys, st.text(max_size=5), max_size=2).map(
        lambda d: FrozenDict(d) or EMPTY
    ),
    init=maybe() | names.filter(str.strip),
    source=st.just(SRC),
    format=st.just("native"),
    limits=st.dictionaries(idents, amounts, max_size=2).map(lambda d: FrozenDict(d) or EMPTY),
    meta=st.dictionaries(names, meta_values, max_size=2).map(lambda d: FrozenDict(d) or EMPTY),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows)
def test_round_trip_of_the_data(wf: Workflow) -> None:
    assert load_data(dump_data(wf), SRC) == wf


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workflows)
def test_round_trip_through_json_and_yaml_text(wf: Workflow) -> None:
    data = dump_data(wf)
    assert load_data(json.loads(json.dumps(data)), SRC) == wf
    assert load_text(dumps(wf, "yaml"), SRC, environ=None) == wf  # paths as written
    assert yaml.safe_load(dumps(wf, "yaml")) == data


def test_round_trip_keeps_the_source_and_sets_the_format() -> None:
    wf = Workflow(name="w", tasks=(), source="elsewhere", format="o2dpg")
    assert load_data(dump_data(wf), SRC) == replace(wf, source=SRC, format="native")


def test_the_complete_examples_in_the_spec_reference_load() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "spec.md"
    blocks = re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.DOTALL)
    complete = [b for b in blocks if b.startswith("name:")]
    assert len(complete) >= 2
    loaded = {wf.name: wf for wf in (load_text(b, "spec.md") for b in complete)}
    assert [t.name for t in loaded["pipeline"].tasks][-1] == "merge"
    assert loaded["pipeline"].task("merge").needs == ("ana_1", "ana_2", "ana_3")
    assert loaded["demo"].task("reco").resources == {"cpu": 4.0, "mem": 8000.0}
