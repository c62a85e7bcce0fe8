"""Graph building and validation."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herd.core.graph import (
    ancestors,
    build,
    check_limits,
    critical_path,
    descendants,
    file_key,
    select,
    upward_ranks,
)
from herd.core.model import Limits, Task, Workflow, frozen_map
from herd.errors import ValidationError


def wf(*tasks: Task) -> Workflow:
    return Workflow("g", tasks, source="wf.yaml")


def test_explicit_and_file_edges() -> None:
    g = build(
        wf(
            Task("gen", "x", outputs=("data/raw.txt",)),
            Task("sim", "x", cwd="data", inputs=("raw.txt",), outputs=("hits.root",)),
            Task("reco", "x", inputs=("data/hits.root",), needs=("gen",)),
        )
    )
    assert list(g.parents(1)) == [0]
    assert sorted(g.parents(2)) == [0, 1]
    assert list(g.children(0)) == [1, 2]
    assert list(g.order) == [0, 1, 2]


def test_cycle_prints_its_path() -> None:
    w = wf(Task("a", "x", needs=("c",)), Task("b", "x", needs=("a",)), Task("c", "x", needs=("b",)))
    with pytest.raises(ValidationError) as e:
        build(w)
    msg = str(e.value)
    assert msg.startswith("wf.yaml: task 'a': field 'needs': cycle: a -> b -> c -> a")


def test_cycle_through_files() -> None:
    w = wf(
        Task("a", "x", inputs=("y",), outputs=("x",)),
        Task("b", "x", inputs=("x",), outputs=("y",)),
    )
    with pytest.raises(ValidationError, match="cycle: a -> b -> a"):
        build(w)


def test_unknown_need_suggests() -> None:
    with pytest.raises(ValidationError) as e:
        build(wf(Task("reco", "x"), Task("ana", "x", needs=("rec",))))
    assert "task 'ana': field 'needs': needs 'rec'" in str(e.value)
    assert "did you mean 'reco'?" in str(e.value)


def test_duplicate_name() -> None:
    with pytest.raises(ValidationError, match="task 'a': field 'name': duplicate task name"):
        build(wf(Task("a", "x"), Task("a", "y")))


def test_two_writers_of_one_file() -> None:
    with pytest.raises(ValidationError, match=r"field 'outputs'.*also written by task 'a'"):
        build(wf(Task("a", "x", outputs=("o",)), Task("b", "x", outputs=("./o",))))


def test_limits_rejected_with_flag_hint() -> None:
    g = build(wf(Task("big", "x", resources=frozen_map({"cpu": 8, "tape": 2}))))
    with pytest.raises(ValidationError) as e:
        check_limits(g, Limits({"cpu": 4}))
    assert "task 'big': field 'resources.cpu': needs cpu 8 but the limit is 4" in str(e.value)
    assert "--cpu-limit 8" in str(e.value)
    with pytest.raises(ValidationError, match="--limit tape=2"):
        check_limits(g, Limits({"cpu": 8, "tape": 1}))
    with pytest.raises(ValidationError, match=r"uses resource .tape., which has no limit"):
        check_limits(g, Limits({"cpu": 8}))


def test_selection_ancestors_descendants_ranks() -> None:
    g = build(
        wf(
            Task("a", "x"),
            Task("b", "x", needs=("a",), labels=("sim",)),
            Task("c", "x", needs=("b",)),
            Task("d", "x"),
        )
    )
    assert select(g, ["c"]) == {0, 1, 2}
    assert select(g, [], ["sim"]) == {0, 1}
    assert select(g, []) == {0, 1, 2, 3}
    assert ancestors(g, [1]) == {0, 1}
    assert descendants(g, [0]) == {0, 1, 2}
    assert upward_ranks(g, [1, 2, 3, 1]) == [6, 5, 3, 1]
    assert critical_path(g, [1, 2, 3, 1]) == 6


_PATHS = st.text(alphabet="./ab", max_size=10)


_CWDS = st.one_of(st.none(), st.sampled_from([".", "./", "tf1", "tf1/", "/abs", "./x/"]), _PATHS)


@given(cwd=_CWDS, path=_PATHS)
def test_file_key_is_the_normalised_join_of_cwd_and_path(cwd: str | None, path: str) -> None:
    task = Task(name="t", cmd="true", cwd=cwd or None)
    expected = posixpath.normpath(posixpath.join(cwd, path) if cwd else path)
    assert file_key(task, path) == expected
