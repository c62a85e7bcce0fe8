"""The PostgreSQL store's statements: a change of a batch as the statement and arguments that record
it, the named queries run on a connection, and the transaction :mod:`herd.store.queue` works in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import groupby
from typing import Any

import msgspec
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
    """An open transaction, as :mod:`herd.store.queue` uses it. In pipeline mode (the store's
    queue transactions) what is sent waits for the next read or sync; :meth:`check` then says
    whether every change matched its row."""

    def __init__(self, conn: _Conn) -> None:
        self.conn = conn
        self._must_match: list[tuple[psycopg.Cursor[tuple[Any, ...]], Sequence[Change]]] = []

    def run(self, name: str, values: Mapping[str, Any]) -> psycopg.Cursor[tuple[Any, ...]]:
        return query(self.conn, name, values)

    def send(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        query = _QUERIES[name]
        many = MANY.get(name)
        if many is not None and len(rows) > 1:
            _send_rows(self.conn, many, [{p: v[p] for p in query.params} for v in rows])
        elif len(rows) == 1:  # (executemany costs psycopg more, even for one row)
            self.conn.cursor().execute(query.sql, query.args(rows[0]))
        else:
            self.conn.cursor().executemany(query.sql, [query.args(values) for values in rows])

    def apply(self, changes: Sequence[Change]) -> None:
        # a run of one kind of change is one statement (MANY_CHANGES) or one executemany
        for kind, group in groupby(changes, type):
            run = list(group)
            statements = [STATEMENT[kind](change) for change in run]
            many = MANY_CHANGES.get(kind)
            if many is not None and len(run) > 1 and _distinct(run):
                params = _QUERIES[many[0]].params
                # (a key left out is NULL to json_to_recordset, as null is: less to encode
                # here and to parse there)
                rows = [
                    {p: v for p, v in zip(params, args, strict=True) if v is not None}
                    for _, args in statements
                ]
                cursor = _send_rows(self.conn, many[1], rows)
            elif len(statements) == 1:
                cursor = self.conn.cursor()
                cursor.execute(*statements[0])
            else:
                cursor = self.conn.cursor()
                cursor.executemany(statements[0][0], [args for _, args in statements])
            if kind in MUST_MATCH:
                self._must_match.append((cursor, run))

    def check(self) -> None:
        """Raise LookupError when a change sent since matched no row (after a sync)."""
        for cursor, run in self._must_match:
            if cursor.rowcount != len(run):
                change = run[0]
                what = describe(change) if len(run) == 1 else f"one of {len(run)} changes"
                raise LookupError(f"{what}: {MUST_MATCH[type(change)]}")
        self._must_match.clear()

    def notify(self) -> None:
        """Wake the workers waiting for work, when (and if) the transaction commits."""
        self.conn.execute(f"NOTIFY {CHANNEL}")


#: the queue's one-row statements, and the statement for many rows at once (queries.sql)
MANY = {
    "take_task": "take_tasks",
    "attempt_ended": "attempts_ended",
    "queue_ended": "queues_ended",
}
#: the same for changes: the one-row query whose parameters name the rows' keys, and the other
MANY_CHANGES: dict[type, tuple[str, str]] = {
    AttemptStarted: ("insert_attempt", "insert_attempts"),
    AttemptFinished: ("finish_attempt", "finish_attempts"),
    TaskChanged: ("change_task", "change_tasks"),
}
#: rows as JSON text (msgspec: 12 times faster than json's encoder on a claim's attempts)
_encode_json = msgspec.json.encode


def _encode_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    return _encode_json(rows).decode()


def _send_rows(
    conn: _Conn, name: str, rows: Sequence[Mapping[str, Any]]
) -> psycopg.Cursor[tuple[Any, ...]]:
    """One statement for many rows: ``rows`` go as one JSON parameter."""
    cursor = conn.cursor()
    cursor.execute(_QUERIES[name].sql, (_encode_rows(rows),))
    return cursor


def _distinct(changes: Sequence[Change]) -> bool:
    """No two changes of the run update one row (a statement for many rows changes each once;
    new attempts are inserted)."""
    keys = set()
    for c in changes:
        if isinstance(c, AttemptStarted):
            return True
        if isinstance(c, AttemptFinished):
            keys.add((c.workflow_id, c.task, c.number))
        elif isinstance(c, TaskChanged):
            keys.add((c.workflow_id, c.task, 0))
    return len(keys) == len(changes)


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
