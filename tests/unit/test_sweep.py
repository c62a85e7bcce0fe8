"""Parameter sweeps: ranges, product/zip, placeholders in every field, stream-aligned and gather
needs, and the errors of each."""

from __future__ import annotations

import time
from typing import Any

import pytest

from herd.core.model import Task, Workflow
from herd.errors import SpecError
from herd.formats import load_text
from herd.formats.native import load_data
from herd.formats.sweep import compile_template, parse_values

SRC = "sweep.yaml"


def load(*tasks: dict[str, Any], **top: Any) -> Workflow:
    return load_data({"name": "wf", "tasks": list(tasks), **top}, SRC)


def by_name(wf: Workflow) -> dict[str, Task]:
    return {t.name: t for t in wf.tasks}


def error(*tasks: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        load(*tasks)
    assert info.value.file == SRC
    return info.value


# -- values and points --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1:5", [1, 2, 3, 4, 5]),
        ("1:10:4", [1, 5, 9]),
        (" 0 : 6 : 3 ", [0, 3, 6]),
        ("5:1:-2", [5, 3, 1]),
        ("-2:0", [-2, -1, 0]),
        (["a", 2, 0.5], ["a", 2, 0.5]),
    ],
)
def test_parameter_values(value: Any, expected: list[Any]) -> None:
    assert parse_values(value, SRC, "t", "p") == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1:5:0", "must not be 0"),
        ("5:1", "no values"),
        ([], "no values"),
        ("a:b", "expected a list or a range"),
        (90, "base-60"),
        ([[1]], "scalars"),
        ([True], "scalars"),
    ],
)
def test_bad_parameter_values(value: Any, words: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_values(value, SRC, "t", "p")
    assert (info.value.task, info.value.field) == ("t", "foreach.p")
    assert words in str(info.value)


def test_product_varies_the_last_parameter_fastest() -> None:
    wf = load({"name": "s_{a}_{b}", "foreach": {"a": "1:2", "b": ["x", "y"]}, "cmd": "run"})
    assert [t.name for t in wf.tasks] == ["s_1_x", "s_1_y", "s_2_x", "s_2_y"]


def test_zip_pairs_the_parameters() -> None:
    wf = load(
        {"name": "s_{a}_{b}", "foreach": {"a": "1:2", "b": ["x", "y"]}, "mode": "zip", "cmd": "r"}
    )
    assert [t.name for t in wf.tasks] == ["s_1_x", "s_2_y"]


def test_zip_needs_equal_lengths() -> None:
    err = error(
        {"name": "s_{a}_{b}", "foreach": {"a": "1:3", "b": ["x"]}, "mode": "zip", "cmd": "r"}
    )
    assert (err.task, err.field) == ("s_{a}_{b}", "mode")
    assert "a: 3, b: 1" in err.problem


def test_unknown_mode() -> None:
    err = error({"name": "s_{a}", "foreach": {"a": "1:2"}, "mode": "cross", "cmd": "r"})
    assert (err.task, err.field) == ("s_{a}", "mode")


@pytest.mark.parametrize("foreach", [[1, 2], {}, {"not id": [1]}, "1:3"])
def test_bad_foreach(foreach: Any) -> None:
    err = error({"name": "s", "foreach": foreach, "cmd": "r"})
    assert (err.task, err.field) == ("s", "foreach")


# -- placeholders -------------------------------------------------------------------------------


def test_placeholders_are_replaced_in_every_templated_field() -> None:
    (task,) = load(
        {
            "name": "sim_{tf}",
            "foreach": {"tf": [7]},
            "cmd": "sim --tf {tf} > out_{tf}.root",
            "inputs": ["in_{tf}.txt"],
            "outputs": ["out_{tf}.root", {"path": "tmp_{tf}", "temp": True}],
            "labels": ["L{tf}"],
            "cwd": "tf{tf}",
            "env": {"TF": "{tf}", "N": 3},
            "stdin": "i{tf}",
            "stdout": "o{tf}",
            "stderr": "e{tf}",
            "done_marker": "d{tf}",
            "semaphore": "sem{tf}",
            "timeframe": "{tf}",
        }
    ).tasks
    assert task == Task(
        name="sim_7",
        cmd="sim --tf 7 > out_7.root",
        inputs=("in_7.txt",),
        outputs=("out_7.root", "tmp_7"),
        temp=("tmp_7",),
        labels=("L7", "tf=7"),
        cwd="tf7",
        env={"TF": "7", "N": "3"},
        stdin="i7",
        stdout="o7",
        stderr="e7",
        done_marker="d7",
        semaphore="sem7",
        timeframe=7,
        meta={"params": {"tf": 7}},
    )


def test_argv_items_are_templated() -> None:
    (task,) = load({"name": "a{i}", "foreach": {"i": [1]}, "cmd": ["prog", "--i={i}", 5]}).tasks
    assert task.cmd == ("prog", "--i=1", "5")


def test_shell_variables_and_doubled_braces_survive() -> None:
    (task,) = load(
        {
            "name": "a{i}",
            "foreach": {"i": [1]},
            "cmd": "echo ${HOME} ${X:-{i}} $Y {{i}} {{ }} awk '{{print}}' {i}",
        }
    ).tasks
    assert task.cmd == "echo ${HOME} ${X:-1} $Y {i} { } awk '{print}' 1"


def test_compiled_templates_know_their_parameters() -> None:
    template = compile_template("a{x}_${y}_{{z}}_{x}")
    assert template.names == frozenset({"x"})
    assert template.render({"x": "1"}) == "a1_${y}_{z}_1"
    assert compile_template("{{plain}}").constant == "{plain}"


def test_tasks_without_foreach_are_left_alone() -> None:
    (task,) = load({"name": "a", "cmd": "awk '{print}' {{x}}"}).tasks
    assert task.cmd == "awk '{print}' {{x}}"


@pytest.mark.parametrize(
    "field, value",
    [("cmd", "run {seed}"), ("cwd", "d{seed}"), ("needs", ["x{seed}"]), ("env", {"A": "{seed}"})],
)
def test_unknown_placeholder(field: str, value: Any) -> None:
    task = {"name": "s_{tf}", "foreach": {"tf": [1]}, "cmd": "x", field: value}
    err = error(task)
    assert err.task in ("s_{tf}", "s_1")
    assert err.field is not None and err.field.startswith(field)
    assert "{seed}" in err.problem
    assert err.hint is not None and "{{seed}}" in err.hint


def test_an_unquoted_yaml_placeholder_is_explained() -> None:
    with pytest.raises(SpecError) as info:
        load_text("name: w\ntasks:\n- {name: a, cmd: x, needs: [b_{tf}]}\n", SRC)
    assert "line 3" in info.value.problem
    assert info.value.hint is not None and "quote" in info.value.hint


def test_a_yaml_mapping_where_a_placeholder_was_meant_gets_a_hint() -> None:
    err = error({"name": "a_{tf}", "foreach": {"tf": [1]}, "cmd": "x", "cwd": {"tf": None}})
    assert err.field == "cwd"
    assert err.hint is not None and "quote" in err.hint


def test_duplicate_instance_names() -> None:
    err = error({"name": "s_{a}", "foreach": {"a": [1, 2], "b": [1, 2]}, "cmd": "x"})
    assert (err.task, err.field) == ("s_{a}", "name")
    assert "s_1" in err.problem
    assert err.hint is not None and "{b}" in err.hint


def test_instances_get_params_meta_and_labels_after_their_own() -> None:
    (task,) = load(
        {
            "name": "s_{a}_{b}",
            "foreach": {"a": [1], "b": ["x"]},
            "cmd": "c",
            "labels": ["sim"],
            "meta": {"k": [1, {"n": 2}]},
        }
    ).tasks
    assert task.labels == ("sim", "a=1", "b=x")
    assert task.meta == {"k": (1, {"n": 2}), "params": {"a": 1, "b": "x"}}
    assert task.meta["k"] == (1, {"n": 2})  # frozen: a tuple, and hashable
    assert hash(task)


@pytest.mark.parametrize("labels", ["sim", ["sim"]])
def test_a_single_label_string_is_a_list_of_one(labels: Any) -> None:
    (task,) = load({"name": "s{i}", "foreach": {"i": [1]}, "cmd": "c", "labels": labels}).tasks
    assert task.labels == ("sim", "i=1")


def test_defaults_apply_to_every_instance() -> None:
    wf = load(
        {"name": "s{i}", "foreach": {"i": "1:2"}, "cmd": "c", "resources": {"cpu": 2}},
        defaults={"resources": {"mem": 10}, "retries": 3, "cwd": "w{i}"},
    )
    for i, task in enumerate(wf.tasks, 1):
        assert (task.resources, task.retries, task.cwd) == ({"cpu": 2.0, "mem": 10.0}, 3, f"w{i}")


# -- dependencies ------------------------------------------------------------------------------

PIPELINE = """
name: pipeline
tasks:
  - name: gen_{tf}
    foreach: {tf: "1:3"}
    cmd: gen {tf}
  - name: sim_{tf}_{seed}
    foreach: {tf: "1:3", seed: [10, 20]}
    cmd: sim {tf} {seed}
    needs: ["gen_{tf}"]
  - name: ana_{tf}
    foreach: {tf: "1:3"}
    cmd: ana {tf}
    needs: ["sim_{tf}_{seed}", prep]
  - name: plot_{seed}
    foreach: {seed: [10, 20]}
    cmd: plot
    needs: ["sim_{tf}_{seed}"]
  - name: prep
    cmd: prep
  - name: merge
    cmd: merge
    needs: ["ana_{tf}", prep]
"""


def test_stream_aligned_partial_and_gather_needs() -> None:
    tasks = by_name(load_text(PIPELINE, SRC))
    assert tasks["sim_2_20"].needs == ("gen_2",)
    assert tasks["ana_2"].needs == ("sim_2_10", "sim_2_20", "prep")
    assert tasks["plot_20"].needs == ("sim_1_20", "sim_2_20", "sim_3_20")
    assert tasks["merge"].needs == ("ana_1", "ana_2", "ana_3", "prep")
    assert len(tasks) == 3 + 6 + 3 + 2 + 2


def test_declaration_order_is_kept() -> None:
    wf = load_text(PIPELINE, SRC)
    assert [t.name for t in wf.tasks][:4] == ["gen_1", "gen_2", "gen_3", "sim_1_10"]
    assert [t.name for t in wf.tasks][-2:] == ["prep", "merge"]


def test_a_family_may_be_split_over_several_swept_tasks() -> None:
    wf = load(
        {"name": "s_{i}", "foreach": {"i": "1:2"}, "cmd": "small"},
        {"name": "s_{i}", "foreach": {"i": "3:4"}, "cmd": "big", "resources": {"mem": 9}},
        {"name": "m", "cmd": "m", "needs": ["s_{i}"]},
    )
    assert by_name(wf)["m"].needs == ("s_1", "s_2", "s_3", "s_4")


def test_a_stream_aligned_need_outside_the_sweep() -> None:
    err = error(
        {"name": "gen_{tf}", "foreach": {"tf": "1:2"}, "cmd": "g"},
        {"name": "sim_{tf}", "foreach": {"tf": "1:3"}, "cmd": "s", "needs": ["gen_{tf}"]},
    )
    assert (err.task, err.field) == ("sim_{tf}", "needs")
    assert "the instance tf=3 needs 'gen_{tf}' with tf=3" in err.problem


def test_a_partial_slice_that_is_empty() -> None:
    err = error(
        {"name": "s_{a}_{b}", "foreach": {"a": [1], "b": [1, 2]}, "cmd": "s"},
        {"name": "t_{a}", "foreach": {"a": [1, 2]}, "cmd": "t", "needs": ["s_{a}_{b}"]},
    )
    assert (err.task, err.field) == ("t_{a}", "needs")
    assert "the instance a=2 needs 's_{a}_{b}' with a=2" in err.problem


def test_an_unswept_task_naming_no_template() -> None:
    err = error(
        {"name": "sim_{tf}", "foreach": {"tf": [1]}, "cmd": "s"},
        {"name": "m", "cmd": "m", "needs": ["sim_{t}"]},
    )
    assert (err.task, err.field) == ("m", "needs")
    assert err.hint == "did you mean 'sim_{tf}'?"


def test_a_literal_task_name_with_braces_is_still_a_need() -> None:
    wf = load(
        {"name": "s{i}", "foreach": {"i": [1]}, "cmd": "s"},
        {"name": "odd{x}", "cmd": "o"},
        {"name": "m", "cmd": "m", "needs": ["odd{x}"]},
    )
    assert by_name(wf)["m"].needs == ("odd{x}",)


def test_a_large_sweep_expands_quickly() -> None:
    # CPU time, not wall time: on a loaded machine the wall clock counts the wait for a core
    start = time.process_time()
    wf = load(
        {
            "name": "sim_{i}",
            "foreach": {"i": "1:50000"},
            "cmd": "sim {i} > out_{i}",
            "outputs": ["out_{i}"],
            "timeframe": "{i}",
            "resources": {"cpu": 1},
        },
        {"name": "merge", "cmd": "merge", "needs": ["sim_{i}"]},
    )
    elapsed = time.process_time() - start
    assert len(wf.tasks) == 50_001
    assert wf.tasks[49_999].timeframe == 50_000
    assert len(wf.tasks[-1].needs) == 50_000
    assert wf.tasks[0].resources is wf.tasks[1].resources
    assert elapsed < 5, f"50,000 instances took {elapsed:.2f} s of CPU (expected well under 1 s)"
