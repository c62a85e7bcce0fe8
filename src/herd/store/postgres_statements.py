"""The PostgreSQL store's statements: a change of a batch as the statement and arguments that record
it, the named queries run on a connection, and the transaction :mod:`herd.store.queue` works in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg.types.json import set_json_dumps

from herd.core.model import TaskState
from herd.store.base import (
    AttemptFinished,
    AttemptStarted,
    Change,
    Sample,
    TaskChanged,
    UserData,
    UserEvent,
)
from herd.store.queries import POSTGRES
from herd.store.rows import (
    TaskRow,
    describe,
    encode,
    encode_map,
)

#: the columns of copy_new_tasks, as binary COPY needs them named
_NEW_TASK_TYPES = ("int8", "text", "text", "float8", "text", "jsonb", "jsonb", "int4")


def copy_new_tasks(conn: _Conn, workflow_id: int, now: float, rows: Sequence[TaskRow]) -> None:
    """The tasks of a workflow new to the store: nothing to upsert, so they are copied straight
    into ``tasks`` (a million in a few seconds, most of it the server's index and key checks)."""
    waiting = TaskState.WAITING.value
    cursor = conn.cursor()
    # labels and resources are JSON text already (rows.py encodes each shared value once): the
    # jsonb dumper of this cursor passes the text through instead of encoding it as a string
    set_json_dumps(_as_is, cursor)
    with cursor.copy(_QUERIES["copy_new_tasks"].sql) as copy:
        copy.set_types(list(_NEW_TASK_TYPES))
        write = copy.write_row
        for name, cmd, labels, resources, timeframe in rows:
            write((workflow_id, name, waiting, now, cmd, labels, resources, timeframe))


def _as_is(text: Any) -> str:
    """A value that is JSON text already, as the jsonb dumper's ``dumps``."""
    return str(text)


_Conn = psycopg.Connection[tuple[Any, ...]]
_QUERIES = POSTGRES.queries
#: the channel that transactions making work claimable notify, and idle workers listen on
CHANNEL = "herd_work"


def query(conn: _Conn, name: str, values: Mapping[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
    query = _QUERIES[name]
    return conn.execute(query.sql, query.args(values))


def one_row(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    row = cursor.fetchone()
    assert row is not None, "an INSERT ... RETURNING returned no row"
    return row


def _with(name: str, obj: object, **encoded: Any) -> tuple[str, tuple[Any, ...]]:
    query = _QUERIES[name]
    return query.sql, query.args_of(obj, **encoded)


def _start_attempt(change: AttemptStarted) -> tuple[str, tuple[Any, ...]]:
    attempt = change.attempt
    return _with(
        "insert_attempt",
        attempt,
        state=attempt.state.value,
        inputs=encode_map(attempt.inputs),
        outputs=encode_map(attempt.outputs),
        resources=encode_map(attempt.resources),
    )


def _finish_attempt(change: AttemptFinished) -> tuple[str, tuple[Any, ...]]:
    return _with(
        "finish_attempt",
        change,
        state=change.state.value,
        inputs=encode_map(change.inputs) if change.inputs else None,
        outputs=encode_map(change.outputs) if change.outputs else None,
    )


def _change_task(change: TaskChanged) -> tuple[str, tuple[Any, ...]]:
    inputs = None if change.inputs is None else encode_map(change.inputs)
    return _with("change_task", change, state=change.state.value, inputs=inputs)


STATEMENT: dict[type, Callable[[Any], tuple[str, tuple[Any, ...]]]] = {
    AttemptStarted: _start_attempt,
    AttemptFinished: _finish_attempt,
    TaskChanged: _change_task,
    Sample: lambda change: _with("insert_sample", change),
    UserData: lambda change: _with("insert_user_data", change, value=encode(change.value)),
    UserEvent: lambda change: _with("insert_user_event", change, data=encode(dict(change.data))),
}


#: changes that must match exactly one row, and what it means when they match none
MUST_MATCH: dict[type, str] = {
    AttemptFinished: "no such attempt was started",
    TaskChanged: "no such task in the workflow",
}


def by_task(
    conn: _Conn, table: str, workflow_id: int, task: str | None
) -> psycopg.Cursor[tuple[Any, ...]]:
    """Read ``table`` for a whole workflow, or for one of its tasks."""
    if task is None:
        return query(conn, f"{table}_of_workflow", {"workflow_id": workflow_id})
    return query(conn, f"{table}_of_task", {"workflow_id": workflow_id, "task": task})


class Tx:
    """An open transaction, as :mod:`herd.store.queue` uses it."""

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn

    def run(self, name: str, values: Mapping[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        return query(self.conn, name, values)

    def apply(self, changes: Sequence[Change]) -> None:
        statements = [STATEMENT[type(change)](change) for change in changes]
        unmatched = pipelined(self.conn, changes, statements)
        if unmatched is not None:
            change = changes[unmatched]
            raise LookupError(f"{describe(change)}: {MUST_MATCH[type(change)]}")

    def notify(self) -> None:
        """Wake the workers waiting for work, when (and if) the transaction commits."""
        self.conn.execute(f"NOTIFY {CHANNEL}")


def pipelined(
    conn: _Conn, changes: Sequence[Change], statements: Sequence[tuple[str, tuple[Any, ...]]]
) -> int | None:
    """Execute the statements of ``changes`` in one round trip (pipeline mode), inside the
    caller's transaction; the index of the first change that had to match one row and did not,
    or None."""
    with conn.pipeline():
        cursors = [conn.cursor() for _ in statements]
        for cursor, (query, args) in zip(cursors, statements, strict=True):
            cursor.execute(query, args)
    for index, cursor in enumerate(cursors):
        if type(changes[index]) in MUST_MATCH and cursor.rowcount != 1:
            return index
    return None
