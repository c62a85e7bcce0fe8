"""The pure campaign core: the template form of issue 17, expansion per run and per group,
group completion rules, refusals with the field named, and the status matrix from task states."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from herd.core import campaign as cc
from herd.core.campaign import Group, Run, Status
from herd.core.model import TaskState
from herd.core.templates import data, parse
from herd.errors import SpecError
from herd.formats.campaign import parse_runs, run_of

ISSUE = """
name: ecal
tasks:
  - name: reco                       # one instance per run
    cmd: ecal-reco --run {run} -o reco_{run}.root
  - name: calib                      # one instance per fill: the group of runs with the same fill
    group_by: fill                   # complete when a run of the next fill arrives
    needs: [reco]                    # the reco of every run in the group
    cmd: ecal-calib --fill {fill} --runs {runs}
  - name: plots
    run_types: [collisions]          # run_type is a run field; other runs show `skipped`
    needs: [reco]                    # the same run's reco
    cmd: ecal-plots --run {run}
"""


def template(text: str = ISSUE) -> cc.Template:
    return parse(yaml.safe_load(text), "ecal.yaml")


def run(number: int, fill: int, run_type: str = "collisions", **more: Any) -> Run:
    return Run(number, {"fill": fill, "run_type": run_type, **more})


def test_the_issue_template_expands_per_run_with_needs_of_the_same_run() -> None:
    t = template()
    made = cc.run_instances(t, run(101, 7), "prompt")
    assert [(i.name, i.cmd, i.needs) for i in made] == [
        ("reco[run=101]", "ecal-reco --run 101 -o reco_101.root", ()),
        ("plots[run=101]", "ecal-plots --run 101", ("reco[run=101]",)),
    ]
    cosmics = cc.run_instances(t, run(102, 7, "cosmics"), "prompt")
    assert [i.name for i in cosmics] == ["reco[run=102]"]  # plots only for collisions


def test_a_group_closes_when_the_next_fill_starts_and_needs_every_member() -> None:
    t = template()
    runs = [run(101, 7), run(102, 7, "cosmics"), run(103, 7)]
    assert cc.complete(t, runs, set()) == []  # fill 7 may still grow
    runs.append(run(104, 8))
    (group,) = cc.complete(t, runs, set())
    assert group == Group("calib", 7, (101, 102, 103))
    (inst,) = cc.group_instances(t, group, {r.run: r for r in runs}, "prompt")
    assert inst.name == "calib[fill=7]"
    assert inst.cmd == "ecal-calib --fill 7 --runs 101 102 103"
    assert inst.needs == ("reco[run=101]", "reco[run=102]", "reco[run=103]")
    assert cc.complete(t, runs, {("calib", group.key)}) == []  # closed once


def test_a_late_lower_run_of_another_fill_does_not_close_a_group() -> None:
    t = template()
    runs = [run(201, 9), run(150, 8)]  # fill 8's run arrived after fill 9's: 9 is not complete
    closed = cc.complete(t, runs, set())
    assert [g.value for g in closed] == [8]


def test_group_size_and_explicit_close() -> None:
    t = template(
        """
name: x
tasks:
  - {name: reco, cmd: 'r {run}'}
  - {name: sum, group_by: fill, group_size: 2, needs: [reco], cmd: 's {runs}'}
  - {name: hand, group_by: fill, complete: explicit, cmd: 'h {fill}'}
"""
    )
    runs = [run(1, 5), run(2, 6)]
    assert cc.complete(t, runs, set()) == []
    runs.append(run(3, 5))
    assert cc.complete(t, runs, set()) == [Group("sum", 5, (1, 3))]
    closing = cc.closing(t, runs, set(), "hand", ["6"])
    assert closing == [Group("hand", 6, (2,))]


def test_jobs_and_when() -> None:
    t = template(
        """
name: x
tasks:
  - {name: reco, cmd: 'r {run} {job}', jobs: 3}
  - name: check
    when: {beam: [stable, squeeze]}
    needs: [reco]
    cmd: 'c {run} {beam}'
"""
    )
    made = cc.run_instances(t, run(9, 1, beam="stable"), "p")
    assert [i.name for i in made[:3]] == [
        "reco[run=9,job=1]",
        "reco[run=9,job=2]",
        "reco[run=9,job=3]",
    ]
    assert made[3].needs == tuple(i.name for i in made[:3])
    assert made[3].cmd == "c 9 stable"
    assert [i.task for i in cc.run_instances(t, run(9, 1, beam="off"), "p")] == ["reco"] * 3


def test_field_values_are_shell_quoted() -> None:
    t = template("name: x\ntasks:\n  - {name: a, cmd: 'echo {tag}'}\n")
    (inst,) = cc.run_instances(t, Run(1, {"tag": "a b; rm -rf /"}), "p")
    assert inst.cmd == "echo 'a b; rm -rf /'"


def test_a_run_lacking_a_field_is_refused_with_the_field_named() -> None:
    t = template()
    assert cc.refusal(t, Run(1, {"run_type": "collisions"})) == (
        "task 'calib' uses field 'fill', which the run lacks"
    )
    assert "run_type" in (cc.refusal(t, Run(1, {"fill": 3})) or "")
    assert cc.refusal(t, run(1, 3)) is None
    assert "field 'x' is list" in (cc.refusal(t, Run(1, {"fill": 3, "x": [1]})) or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\ntasks: []\n", "field 'tasks': give a list of tasks"),
        ("name: x\ntasks:\n  - {name: a, cmd: x, needs: [b]}\n", "needs 'b', which is not a task"),
        ("name: x\ntasks:\n  - {name: a, cmd: 'x {runs}'}\n", "{runs} is for grouped tasks"),
        ("name: x\ntasks:\n  - {name: a, cmd: 'x {a.b}'}\n", "not a run field name"),
        ("name: x\ntasks:\n  - {name: a, cmd: x, colour: red}\n", "task 'a': field 'colour'"),
        ("name: x\ntasks:\n  - {name: a, cmd: x, complete: soon, group_by: f}\n", "next, size"),
        (
            "name: x\ntasks:\n  - {name: g, cmd: x, group_by: f}\n  - {name: r, cmd: y, needs: [g]}\n",
            "a per-run task cannot need the grouped task 'g'",
        ),
    ],
)
def test_bad_templates_name_file_task_and_field(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=r"^ecal\.yaml") as info:
        template(text)
    assert message in str(info.value)


def test_the_stored_form_reads_back_the_same() -> None:
    t = template()
    assert parse(data(t)) == t


def test_the_matrix_from_task_states_only() -> None:
    t = template()
    runs = [run(1, 7), run(2, 7, "cosmics"), run(3, 8)]
    groups = [Group("calib", 7, (1, 2))]
    states = {
        "reco[run=1]": TaskState.SUCCEEDED,
        "reco[run=2]": TaskState.FAILED,
        "plots[run=1]": TaskState.RUNNING,
        "calib[fill=7]": TaskState.CANCELLED,
        "reco[run=3]": TaskState.READY,
    }
    m = cc.matrix(t, runs, groups, states)
    status = {r: {k: c.status for k, c in row.items()} for r, row in m.items()}
    assert status == {
        1: {"reco": Status.DONE, "calib": Status.FAILED, "plots": Status.PROCESSING},
        2: {"reco": Status.FAILED, "calib": Status.MERGED, "plots": Status.SKIPPED},
        3: {"reco": Status.NEW, "calib": Status.NEW, "plots": Status.NEW},
    }


def test_several_jobs_make_one_status_and_counts() -> None:
    t = template("name: x\ntasks:\n  - {name: reco, cmd: 'r {run}', jobs: 3}\n")
    names = ["reco[run=1,job=1]", "reco[run=1,job=2]", "reco[run=1,job=3]"]
    states = {names[0]: TaskState.SUCCEEDED, names[1]: TaskState.RUNNING}
    cell = cc.matrix(t, [Run(1, {})], [], states)[1]["reco"]
    assert cell.status is Status.PROCESSING
    assert cell.jobs == {Status.DONE: 1, Status.PROCESSING: 1, Status.NEW: 1}
    states[names[2]] = TaskState.FAILED
    assert cc.matrix(t, [Run(1, {})], [], states)[1]["reco"].status is Status.FAILED


def test_runs_files_name_the_bad_line() -> None:
    text = '{"run": 1, "fill": 2}\n\n# a comment\n{"run": 2, fill: 3}\n'
    with pytest.raises(SpecError, match=r"runs.jsonl: line 4: not JSON"):
        parse_runs(text, "runs.jsonl")
    with pytest.raises(SpecError, match=r"line 1: .*field 'run'"):
        parse_runs('{"fill": 2}\n', "runs.jsonl")
    assert parse_runs('{"run": 5, "fill": 2}\n', "r") == [Run(5, {"fill": 2})]
    assert run_of("7", ["fill=8000", "run_type=collisions", "lumi=1.5"]) == Run(
        7, {"fill": 8000, "run_type": "collisions", "lumi": 1.5}
    )
