"""``coalesce``: a batch and its coalesced form leave identical databases.

Random histories of a few tasks (attempts started and finished, task states with and without
digests, samples, user data), cut into random batches, are written to two real SQLite stores: one
applies each batch change by change, the other its coalesced form. Every row must agree.
"""

from __future__ import annotations

import sqlite3
from dataclasses import fields, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from herd.core.model import Kill, TaskState
from herd.store.base import (
    AttemptFinished,
    AttemptRecord,
    AttemptStarted,
    Change,
    Sample,
    TaskChanged,
    UserData,
)
from herd.store.batch import coalesce
from herd.store.sqlite import SQLiteStore
from tests.integration.test_store_contract import attempt, workflow

TASKS = ("a", "b", "c")
STATES = (TaskState.RUNNING, TaskState.SUCCEEDED, TaskState.FAILED, TaskState.RETRYING)


@st.composite
def histories(draw: st.DrawFn) -> list[list[Change]]:
    """Batches of changes as a runner makes them: an attempt finishes after it started; samples
    and user data belong to a started attempt."""
    changes: list[Change] = []
    numbers = dict.fromkeys(TASKS, 0)
    running: dict[str, int] = {}
    t = 0.0
    for _ in range(draw(st.integers(1, 40))):
        t += 1.0
        task = draw(st.sampled_from(TASKS))
        kind = draw(st.sampled_from(("start", "finish", "state", "sample", "data")))
        if kind == "start" and task not in running:
            numbers[task] += 1
            running[task] = numbers[task]
            stamps = draw(st.sampled_from(({}, {"in.txt": (1, 2, "")})))
            started = replace(attempt(1, 1, task, numbers[task], start=t), inputs=stamps)
            changes.append(AttemptStarted(started))
            changes.append(TaskChanged(1, task, TaskState.RUNNING, t, attempts=numbers[task]))
        elif kind == "finish" and task in running:
            number = running.pop(task)
            ok = draw(st.booleans())
            inputs = draw(st.sampled_from(({}, {"in.txt": (1, 3, "y")})))
            outputs = draw(st.sampled_from(({}, {"out.txt": (3, 7, "x")})))
            changes.append(
                AttemptFinished(
                    1,
                    task,
                    number,
                    t,
                    TaskState.SUCCEEDED if ok else TaskState.FAILED,
                    exit_code=0 if ok else 1,
                    utime=0.5,
                    inputs=inputs,
                    outputs=outputs,
                )
            )
        elif kind == "state":
            digests = draw(st.booleans())
            changes.append(
                TaskChanged(
                    1,
                    task,
                    draw(st.sampled_from(STATES)),
                    t,
                    attempts=draw(st.sampled_from((None, numbers[task]))),
                    reason=draw(st.sampled_from(("", "exit 1"))),
                    fingerprint=f"fp{t}" if digests else None,
                    cmd_digest=f"cmd{t}" if digests else None,
                    inputs={"in.txt": (1, 2, "")} if digests else None,
                )
            )
        elif kind == "sample" and task in running:
            changes.append(
                Sample(1, task, running[task], t, rss=int(t) * 1000, cpu=0.5, processes=1)
            )
        elif kind == "data" and task in running:
            changes.append(UserData(1, task, running[task], "events", int(t)))
    cuts = sorted(draw(st.lists(st.integers(0, len(changes)), max_size=5)))
    bounds = [0, *cuts, len(changes)]
    return [changes[i:j] for i, j in pairwise(bounds) if j > i]


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            for table in ("tasks", "attempts", "samples", "user_data")
        }
    finally:
        conn.close()


def store_at(path: Path) -> SQLiteStore:
    store = SQLiteStore(path, clock=lambda: 0.0)  # the same stamps in both
    assert store.add_workflow(workflow("wf", *TASKS)) == 1
    assert store.begin_run(1, started=0.0, host="h", user="u", pid=1, argv=(), limits={}) == 1
    return store


@settings(max_examples=100, deadline=None)
@given(batches=histories())
def test_a_coalesced_batch_writes_what_the_batch_writes(
    tmp_path_factory, batches: list[list[Change]]
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("coalesce")
    plain, folded = store_at(root / "plain.db"), store_at(root / "folded.db")
    try:
        for batch in batches:
            for change in batch:  # one change at a time: nothing to fold
                plain.write([change])
            assert len(coalesce(batch)) <= len(batch)
            folded.write(batch)  # SQLiteStore.write coalesces
    finally:
        plain.close()
        folded.close()
    assert dump(root / "plain.db") == dump(root / "folded.db")


def test_a_short_task_within_one_batch_takes_two_writes() -> None:
    start = attempt(1, 1, "a")
    batch: list[Change] = [
        AttemptStarted(start),
        TaskChanged(1, "a", TaskState.RUNNING, 10.0, attempts=1),
        Sample(1, "a", 1, 10.5, rss=100, cpu=1.0, processes=1),
        AttemptFinished(1, "a", 1, 11.0, TaskState.SUCCEEDED, exit_code=0),
        TaskChanged(1, "a", TaskState.SUCCEEDED, 11.0, exit_code=0, fingerprint="f"),
    ]
    folded = coalesce(batch)  # grouped by kind: attempts, then tasks, then the rest
    assert [type(c).__name__ for c in folded] == ["AttemptStarted", "TaskChanged", "Sample"]
    first, last, _ = folded
    assert isinstance(first, AttemptStarted) and first.attempt.state is TaskState.SUCCEEDED
    assert first.attempt.end == 11.0 and first.attempt.exit_code == 0
    assert isinstance(last, TaskChanged) and last.state is TaskState.SUCCEEDED
    assert last.attempts == 1 and last.fingerprint == "f"


def test_folding_keeps_every_field() -> None:
    """``coalesce`` builds the folded records field by field (faster than dataclasses.replace):
    every field, including one added later, comes through as replace would give it."""
    unique: dict[str, Any] = {f.name: f"v-{f.name}" for f in fields(AttemptRecord)}
    start = AttemptRecord(**unique | {"workflow_id": 1, "task": "a", "number": 1})
    end = AttemptFinished(1, "a", 1, 11.0, TaskState.FAILED, 3, 9, "why", Kill.MEMORY, 1.0, 2.0,
                          3, 4, 0.5, {"i": (1, 2, "")}, {"o": (3, 4, "")})  # fmt: skip
    (folded,) = coalesce([AttemptStarted(start), end])
    assert isinstance(folded, AttemptStarted)
    outcome: dict[str, Any] = {
        f.name: getattr(end, f.name)
        for f in fields(end)
        if f.name not in ("workflow_id", "task", "number")
    }
    assert folded.attempt == replace(start, **outcome)

    earlier = TaskChanged(1, "a", TaskState.RUNNING, 1.0, 2, "r", None, None, "fp", "cd", "ed",
                          {"i": (1, 2, "")})  # fmt: skip
    values: dict[str, Any] = {f.name: f"v-{f.name}" for f in fields(TaskChanged)}
    keeps: dict[str, Any] = {"attempts": None, "fingerprint": None, "inputs": None}
    later = TaskChanged(**values | {"workflow_id": 1, "task": "a"} | keeps)
    (merged,) = coalesce([earlier, later])
    assert merged == replace(later, attempts=2, fingerprint="fp", inputs={"i": (1, 2, "")})
