"""Rows to records and back, for every store: the one place where rows become objects.

A store's queries select the columns of a record in the order of its fields (tests check it), so a
row becomes a record by position; JSON columns arrive as text in both dialects (PostgreSQL's
``jsonb`` is read as text, see ``postgres.py``) and are decoded here.
"""

from __future__ import annotations

import hashlib
import json
import marshal
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import msgspec

from herd.core.model import EMPTY, FrozenDict, Kill, RunStatus, SpecFormat, Task, TaskState
from herd.store.base import (
    AttemptRecord,
    AttemptStarted,
    Change,
    FileStamp,
    RunRecord,
    TaskChanged,
    TaskRecord,
    UserData,
    UserEvent,
    WorkflowRecord,
)
from herd.store.queued import ShippedLog, StaleReport, WorkerRecord

Row = tuple[Any, ...]
STATES: dict[str, TaskState] = {state.value: state for state in TaskState}
_ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AttemptRecord))
encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_raw_decode = json.JSONDecoder().raw_decode


def encode_map(mapping: Mapping[str, Any]) -> str:
    """A mapping as a JSON object (most stamp and resource maps are empty: no encoder call)."""
    return encode(dict(mapping)) if mapping else "{}"


def decode(text: str) -> Any:
    # raw_decode skips the checks json.loads makes on every call: much faster on small documents,
    # which counts when the resume path decodes the inputs of a million tasks
    return _raw_decode(text)[0]


# --- records -> rows -----------------------------------------------------------------------

#: what the store keeps of a task's description: (name, cmd, labels, resources, timeframe), in
#: the order of the upsert queries' parameters after workflow_id and now
TaskRow = tuple[str, str, str, str, int | None]


def task_rows(tasks: Sequence[Task]) -> list[TaskRow]:
    """The task descriptions the store keeps, JSON encoded."""
    # tasks share their labels and resources (the loaders share equal values): each object is
    # encoded once and found again by its id (the tasks keep it alive), equal ones by value
    labels_json: dict[int | tuple[str, ...], str] = {}
    resources_json: dict[int | tuple[tuple[str, float], ...], str] = {}
    rows: list[TaskRow] = []
    append = rows.append
    for task in tasks:
        labels = labels_json.get(id(task.labels))
        if labels is None:
            labels = labels_json.get(task.labels)
            if labels is None:
                labels = labels_json[task.labels] = encode(list(task.labels))
            labels_json[id(task.labels)] = labels
        resources = resources_json.get(id(task.resources))
        if resources is None:
            items = tuple(task.resources.items())
            resources = resources_json.get(items)
            if resources is None:
                resources = resources_json[items] = encode(dict(items))
            resources_json[id(task.resources)] = resources
        cmd = task.cmd
        command = cmd if type(cmd) is str else task.argv_or_shell
        append((task.name, command, labels, resources, task.timeframe))
    return rows


def rows_digest(rows: list[TaskRow]) -> str:
    """A digest of the task descriptions, in order, a slice at a time (no text of the whole
    workflow is ever held). Of their marshal form, version 2: it encodes equal rows alike
    (version 3 on marks shared and interned strings) and is faster than JSON."""
    h = hashlib.blake2b(digest_size=16)
    for start in range(0, len(rows), 10_000):
        h.update(marshal.dumps(rows[start : start + 10_000], 2))
    return h.hexdigest()


def describe(change: Change) -> str:
    if isinstance(change, AttemptStarted):
        return f"AttemptStarted of task '{change.attempt.task}' attempt {change.attempt.number}"
    if isinstance(change, TaskChanged):
        return f"TaskChanged of task '{change.task}' to {change.state.value}"
    return f"{type(change).__name__} of task '{change.task}' attempt {change.number}"


# --- rows -> records -------------------------------------------------------------------------


def workflow_record(row: Row) -> WorkflowRecord:
    workflow_id, name, source, format, created, tasks = row
    return WorkflowRecord(workflow_id, name, source, SpecFormat(format), created, tasks)


def task_record(row: Row, state_of: Mapping[str, TaskState] = STATES) -> TaskRecord:
    # the resume path reads a million of these: positional arguments, no call for empty inputs
    (
        name,
        state,
        attempts,
        fingerprint,
        cmd_digest,
        env_digest,
        inputs,
        reason,
        code,
        updated,
        cancelled_by,
    ) = row
    return TaskRecord(
        name,
        state_of[state],
        attempts,
        fingerprint,
        cmd_digest,
        env_digest,
        EMPTY if inputs == "{}" else stamps(inputs),
        reason,
        code,
        updated,
        cancelled_by,
    )


def run_record(row: Row) -> RunRecord:
    run_id, workflow_id, started, ended, status, host, user, pid, argv, limits = row
    return RunRecord(
        run_id,
        workflow_id,
        started,
        ended,
        RunStatus(status),
        host,
        user,
        pid,
        tuple(decode(argv)),
        floats(limits),
    )


def attempt_record(row: Row) -> AttemptRecord:
    values = dict(zip(_ATTEMPT_FIELDS, row, strict=True))
    values["state"] = STATES[values["state"]]
    values["kill"] = Kill(values["kill"]) if values["kill"] else None
    values["inputs"] = stamps(values["inputs"])
    values["outputs"] = stamps(values["outputs"])
    values["resources"] = floats(values["resources"])
    return AttemptRecord(**values)


def worker_record(row: Row) -> WorkerRecord:
    worker_id, host, pid, user, started, heartbeat, state, resources, held, lease, token = row
    return WorkerRecord(
        worker_id, host, pid, user, started, heartbeat, state, floats(resources), held, lease, token
    )


def failure_tail(cursor: Any) -> str | None:
    """The log tail of a failed attempt (``failure_log``), or None."""
    row = cursor.fetchone()
    return None if row is None else str(row[0])


def shipped_log(cursor: Any) -> ShippedLog | None:
    """The output a worker shipped with an attempt (``shipped_log``), or None."""
    row = cursor.fetchone()
    return None if row is None else ShippedLog(str(row[0]), str(row[1]), bool(row[2]))


def stale_reports(cursor: Any) -> list[StaleReport]:
    """The refused finishes of a workflow (``stale_reports``)."""
    return [
        StaleReport(wid, task, number, worker, reported, TaskState(state), code)
        for wid, task, number, worker, reported, state, code in cursor.fetchall()
    ]


def user_data_record(row: Row) -> UserData:
    workflow_id, task, number, key, value = row
    return UserData(workflow_id, task, number, key, decode(value))


def user_event_record(row: Row) -> UserEvent:
    workflow_id, task, number, at, data = row
    return UserEvent(workflow_id, task, number, at, decode(data))


#: the stamps herd writes, decoded straight into tuples (a resumed run reads a million of them)
_STAMPS_JSON = msgspec.json.Decoder(dict[str, tuple[int, int, str]])


def stamps(text: str) -> Mapping[str, FileStamp]:
    if text == "{}":
        return EMPTY
    try:
        return FrozenDict(_STAMPS_JSON.decode(text))
    except msgspec.MsgspecError:  # not the shape herd writes: the general decoder decides
        return FrozenDict({path: tuple(stamp) for path, stamp in decode(text).items()})


def floats(text: str) -> Mapping[str, float]:
    return EMPTY if text == "{}" else FrozenDict(decode(text))
