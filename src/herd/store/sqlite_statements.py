"""The SQLite store's statements: each change of a batch as the rows it writes (one at a time, or many
at once for the attempts and task changes a claim or a finish applies together), the named queries
run on a connection, and the transaction :mod:`herd.store.queue` works in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from typing import Any

from herd.store.base import (
    AttemptFinished,
    AttemptRecord,
    AttemptStarted,
    Change,
    Sample,
    TaskChanged,
    UserData,
    UserEvent,
)
from herd.store.queries import QUERIES, Query
from herd.store.rows import (
    encode,
    encode_map,
)


def run_query(conn: sqlite3.Connection, name: str, values: Mapping[str, Any]) -> sqlite3.Cursor:
    query = QUERIES[name]
    return conn.execute(query.sql, query.args(values))


def run_with(conn: sqlite3.Connection, name: str, obj: object, **encoded: Any) -> sqlite3.Cursor:
    """Run query ``name`` with the attributes of ``obj`` (``encoded`` replaces some of them)."""
    query = QUERIES[name]
    return conn.execute(query.sql, query.args_of(obj, **encoded))


def _start_attempt(conn: sqlite3.Connection, change: AttemptStarted) -> None:
    attempt = change.attempt
    run_with(
        conn,
        "insert_attempt",
        attempt,
        state=attempt.state.value,
        inputs=encode_map(attempt.inputs),
        outputs=encode_map(attempt.outputs),
        resources=encode_map(attempt.resources),
    )


def _finish_attempt(conn: sqlite3.Connection, change: AttemptFinished) -> None:
    # stamps taken at the end replace those of the start; none given keeps those
    cursor = run_with(
        conn,
        "finish_attempt",
        change,
        state=change.state.value,
        inputs=encode_map(change.inputs) if change.inputs else None,
        outputs=encode_map(change.outputs) if change.outputs else None,
    )
    if cursor.rowcount != 1:
        raise LookupError(f"no attempt {change.number} of task '{change.task}' was started")


def _change_task(conn: sqlite3.Connection, change: TaskChanged) -> None:
    inputs = None if change.inputs is None else encode_map(change.inputs)
    cursor = run_with(conn, "change_task", change, state=change.state.value, inputs=inputs)
    if cursor.rowcount != 1:
        raise LookupError(f"no task '{change.task}' in workflow {change.workflow_id}")


def _start_attempts(conn: sqlite3.Connection, changes: Sequence[AttemptStarted]) -> None:
    query = QUERIES["insert_attempt"]
    conn.executemany(query.sql, [_attempt_args(query, c.attempt) for c in changes])


def _attempt_args(query: Query, attempt: AttemptRecord) -> tuple[Any, ...]:
    return query.args_of(
        attempt,
        state=attempt.state.value,
        inputs=encode_map(attempt.inputs),
        outputs=encode_map(attempt.outputs),
        resources=encode_map(attempt.resources),
    )


def _finish_attempts(conn: sqlite3.Connection, changes: Sequence[AttemptFinished]) -> None:
    query = QUERIES["finish_attempt"]
    rows = [
        query.args_of(
            c,
            state=c.state.value,
            inputs=encode_map(c.inputs) if c.inputs else None,
            outputs=encode_map(c.outputs) if c.outputs else None,
        )
        for c in changes
    ]
    if conn.executemany(query.sql, rows).rowcount != len(rows):
        raise LookupError(f"an attempt of {[c.task for c in changes]} was not started")


def _change_tasks(conn: sqlite3.Connection, changes: Sequence[TaskChanged]) -> None:
    query = QUERIES["change_task"]
    rows = [
        query.args_of(
            c,
            state=c.state.value,
            inputs=None if c.inputs is None else encode_map(c.inputs),
        )
        for c in changes
    ]
    if conn.executemany(query.sql, rows).rowcount != len(rows):
        raise LookupError(f"a task of {[c.task for c in changes]} is not in its workflow")


def _add_sample(conn: sqlite3.Connection, change: Sample) -> None:
    run_with(conn, "insert_sample", change)


def _add_user_data(conn: sqlite3.Connection, change: UserData) -> None:
    run_with(conn, "insert_user_data", change, value=encode(change.value))


def _add_user_event(conn: sqlite3.Connection, change: UserEvent) -> None:
    run_with(conn, "insert_user_event", change, data=encode(dict(change.data)))


#: changes applied many at a time (their runs in a batch)
MANY: dict[type, Callable[[sqlite3.Connection, Any], None]] = {
    AttemptStarted: _start_attempts,
    AttemptFinished: _finish_attempts,
    TaskChanged: _change_tasks,
}


APPLY: dict[type, Callable[[sqlite3.Connection, Any], None]] = {
    AttemptStarted: _start_attempt,
    AttemptFinished: _finish_attempt,
    TaskChanged: _change_task,
    Sample: _add_sample,
    UserData: _add_user_data,
    UserEvent: _add_user_event,
}


def by_task(
    conn: sqlite3.Connection, table: str, workflow_id: int, task: str | None
) -> sqlite3.Cursor:
    """Read ``table`` for a whole workflow, or for one of its tasks."""
    if task is None:
        return run_query(conn, f"{table}_of_workflow", {"workflow_id": workflow_id})
    return run_query(conn, f"{table}_of_task", {"workflow_id": workflow_id, "task": task})


class Tx:
    """An open transaction, as :mod:`herd.store.queue` uses it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def run(self, name: str, values: Mapping[str, Any]) -> sqlite3.Cursor:
        return run_query(self.conn, name, values)

    def send(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            query = QUERIES[name]
            self.conn.executemany(query.sql, [query.args(values) for values in rows])

    def apply(self, changes: Sequence[Change]) -> None:
        # runs of one kind of change go in one executemany (a claim or a finish of a batch)
        for kind, group in groupby(changes, type):
            self.apply_run(kind, list(group))

    def apply_run(self, kind: type, run: Sequence[Change]) -> None:
        """Changes of one ``kind``: one statement for them all where it has one."""
        many = MANY.get(kind)
        if many is None or len(run) == 1:
            for change in run:
                APPLY[kind](self.conn, change)
        else:
            many(self.conn, run)

    def notify(self) -> None:
        """(Workers see a commit in the file's data version: nothing to send.)"""
