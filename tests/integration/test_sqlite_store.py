"""What the SQLite store adds to the contract: WAL, concurrent readers, surviving kill -9, versions.

The protocol behaviour itself is in ``test_store_contract.py``.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from herd.core.model import FrozenDict, Task, TaskState, Workflow
from herd.errors import StoreError
from herd.reports.analyze import analyze, cancel_cause
from herd.store import open_store
from herd.store.base import (
    AttemptRecord,
    RunRecord,
    Sample,
    TaskChanged,
    TaskRecord,
    UserData,
    UserEvent,
    WorkflowRecord,
)
from herd.store.queries import MIGRATIONS, QUERIES, SCHEMA_VERSION
from herd.store.sqlite import SQLiteStore
from tests.integration.helpers import LEGACY_CANCELLED


def make_db(path: Path, tasks: int = 3) -> int:
    with SQLiteStore(path) as store:
        return store.add_workflow(Workflow("w", tuple(Task(f"t{i}", "true") for i in range(tasks))))


@pytest.fixture
def raw() -> Iterator[Callable[[Path], sqlite3.Connection]]:
    """Open plain connections to a database (closed after the test), as a user's script would."""
    opened: list[sqlite3.Connection] = []

    def connect(path: Path) -> sqlite3.Connection:
        opened.append(sqlite3.connect(path, isolation_level=None))
        return opened[-1]

    yield connect
    for conn in opened:
        conn.close()


Raw = Callable[[Path], sqlite3.Connection]


def test_database_is_in_wal_mode_at_the_current_version(tmp_path: Path, raw: Raw) -> None:
    make_db(tmp_path / "herd.db")
    conn = raw(tmp_path / "herd.db")
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_open_store_gives_an_sqlite_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "herd.db")
    assert isinstance(store, SQLiteStore)
    store.close()


def test_tasks_are_described_for_sql_readers(tmp_path: Path, raw: Raw) -> None:
    task = Task(
        "reco_1",
        ("o2-reco", "--input", "hits 1.root"),
        labels=("reco", "tf1"),
        resources=FrozenDict({"cpu": 2.0, "mem": 4000.0}),
        timeframe=1,
    )
    with SQLiteStore(tmp_path / "herd.db") as store:
        store.add_workflow(Workflow("w", (task,)))
    row = raw(tmp_path / "herd.db").execute(
        "SELECT cmd, json_extract(labels, '$[1]'), json_extract(resources, '$.mem'), timeframe,"
        " is_current FROM tasks"
    )
    assert row.fetchone() == ("o2-reco --input 'hits 1.root'", "tf1", 4000.0, 1, 1)


def test_adding_again_updates_the_description(tmp_path: Path, raw: Raw) -> None:
    with SQLiteStore(tmp_path / "herd.db") as store:
        store.add_workflow(Workflow("w", (Task("a", "old", labels=("x",)), Task("b", "b"))))
        store.add_workflow(Workflow("w", (Task("a", "new", timeframe=3),)))
    rows = raw(tmp_path / "herd.db").execute(
        "SELECT name, cmd, labels, timeframe, is_current FROM tasks ORDER BY name"
    )
    assert rows.fetchall() == [("a", "new", "[]", 3, 1), ("b", "b", "[]", None, 0)]


def test_an_unchanged_workflow_is_not_upserted_again(tmp_path: Path, raw: Raw) -> None:
    """Adding the same tasks again (every `herd run` does) only touches the workflow row; any
    change in a task's description is still written."""
    old, new = Workflow("w", (Task("a", "old"),)), Workflow("w", (Task("a", "new"),))
    with SQLiteStore(tmp_path / "herd.db") as store:
        store.add_workflow(old)
        db = raw(tmp_path / "herd.db")
        db.execute("UPDATE tasks SET cmd = 'marked'")  # what an upsert would overwrite
        store.add_workflow(old)
        assert db.execute("SELECT cmd FROM tasks").fetchall() == [("marked",)]
        store.add_workflow(new)
        assert db.execute("SELECT cmd FROM tasks").fetchall() == [("new",)]
        store.add_workflow(old)
        assert db.execute("SELECT cmd FROM tasks").fetchall() == [("old",)]


# --- many readers, one writer ----------------------------------------------------------------


def test_reader_is_not_blocked_by_an_open_write(tmp_path: Path, raw: Raw) -> None:
    wid = make_db(tmp_path / "herd.db")
    writer = raw(tmp_path / "herd.db")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE tasks SET state = 'failed'")
    with SQLiteStore(tmp_path / "herd.db", readonly=True, timeout=0) as reader:
        assert reader.task_records(wid)["t0"].state is TaskState.WAITING  # the last commit
        writer.execute("COMMIT")
        assert reader.task_records(wid)["t0"].state is TaskState.FAILED


def test_writer_is_not_blocked_by_an_open_read(tmp_path: Path, raw: Raw) -> None:
    wid = make_db(tmp_path / "herd.db")
    reader = raw(tmp_path / "herd.db")
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM tasks WHERE state = 'failed'").fetchone() == (0,)
    with SQLiteStore(tmp_path / "herd.db", timeout=0) as writer:
        writer.write([TaskChanged(wid, "t0", TaskState.FAILED, 1.0)])
    # the reader keeps its snapshot until it ends its transaction
    assert reader.execute("SELECT count(*) FROM tasks WHERE state = 'failed'").fetchone() == (0,)
    reader.execute("COMMIT")
    assert reader.execute("SELECT count(*) FROM tasks WHERE state = 'failed'").fetchone() == (1,)


def test_second_writer_gets_a_store_error_naming_the_database(tmp_path: Path, raw: Raw) -> None:
    wid = make_db(tmp_path / "herd.db")
    other = raw(tmp_path / "herd.db")
    other.execute("BEGIN IMMEDIATE")
    with (
        SQLiteStore(tmp_path / "herd.db", timeout=0.05) as store,
        pytest.raises(StoreError, match="another process is writing"),
    ):
        store.write([TaskChanged(wid, "t0", TaskState.FAILED, 1.0)])
    other.execute("ROLLBACK")


def test_readonly_store_reads_but_refuses_writes(tmp_path: Path) -> None:
    wid = make_db(tmp_path / "herd.db")
    with SQLiteStore(tmp_path / "herd.db", readonly=True) as store:
        assert set(store.task_records(wid)) == {"t0", "t1", "t2"}
        with pytest.raises(StoreError, match="read-only"):
            store.reset(wid, ["t0"])


def test_readonly_store_needs_an_existing_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no herd database"):
        SQLiteStore(tmp_path / "herd.db", readonly=True)
    assert not (tmp_path / "herd.db").exists()


# --- kill -9 ---------------------------------------------------------------------------------

#: writes batch after batch, printing each batch number once it is committed
WRITER = """
import sys
from herd.core.model import TaskState
from herd.store.base import AttemptRecord, AttemptStarted, TaskChanged
from herd.store.sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
wid, run, tasks = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for number in range(1, 100_000):
    changes = []
    for i in range(tasks):
        attempt = AttemptRecord(wid, run, f"t{i}", number, "h", "u", 1, float(number), "true", "",
                                "", "new")
        changes.append(AttemptStarted(attempt))
        changes.append(TaskChanged(wid, f"t{i}", TaskState.RUNNING, float(number), attempts=number))
    store.write(changes)
    print(number, flush=True)
"""


def test_kill_9_while_writing_loses_no_committed_batch(tmp_path: Path, raw: Raw) -> None:
    db, tasks = tmp_path / "herd.db", 50
    wid = make_db(db, tasks)
    with SQLiteStore(db) as store:
        run = store.begin_run(wid, started=0.0, host="h", user="u", pid=1, argv=[], limits={})
    argv = [sys.executable, "-c", WRITER, str(db), str(wid), str(run), str(tasks)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        committed = [int(child.stdout.readline()) for _ in range(40)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    conn = raw(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    per_batch = dict(conn.execute("SELECT number, count(*) FROM attempts GROUP BY number"))
    last = max(per_batch)
    assert last >= committed[-1]
    assert per_batch == {number: tasks for number in range(1, last + 1)}  # whole batches only
    with SQLiteStore(db) as store:
        assert {r.attempts for r in store.task_records(wid).values()} == {last}


# --- versions and damaged files ----------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_database_of_an_older_version_is_migrated_on_open(
    tmp_path: Path, version: int, raw: Raw
) -> None:
    conn = raw(tmp_path / "herd.db")
    for migration in MIGRATIONS[:version]:
        conn.executescript(migration.sql)
        conn.execute(f"PRAGMA user_version = {migration.version}")
    wid = make_db(tmp_path / "herd.db")
    assert raw(tmp_path / "herd.db").execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    with SQLiteStore(tmp_path / "herd.db") as store:
        assert len(store.task_records(wid)) == 3


def test_cancel_causes_of_a_store_from_before_the_column_are_read_from_the_reason(
    tmp_path: Path, raw: Raw
) -> None:
    (column,) = [m.version for m in MIGRATIONS if m.name == "tasks_cancelled_by"]
    conn = raw(tmp_path / "herd.db")
    for migration in MIGRATIONS[: column - 1]:
        conn.executescript(migration.sql)
        conn.execute(f"PRAGMA user_version = {migration.version}")
    conn.execute(
        "INSERT INTO workflows (id, name, format, created, updated, task_count)"
        " VALUES (1, 'w', 'native', 1.0, 1.0, 4)"
    )
    conn.executemany(
        "INSERT INTO tasks (workflow_id, name, state, reason, updated, cmd)"
        " VALUES (1, ?, ?, ?, 1.0, 'true')",
        LEGACY_CANCELLED,
    )
    with SQLiteStore(tmp_path / "herd.db") as store:  # migrates: the column is NULL
        records = store.task_records(1)
        assert {r.cancelled_by for r in records.values()} == {None}
        causes = {n: cancel_cause(r) for n, r in records.items()}
        assert causes == {"a": None, "b": "a", "c": "a", "d": None}
        (failure,) = analyze(store, 1).failures
        assert (failure.task, failure.cancelled_names) == ("a", ("b", "c"))


def test_database_of_a_newer_herd_is_refused(tmp_path: Path, raw: Raw) -> None:
    make_db(tmp_path / "herd.db")
    raw(tmp_path / "herd.db").execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer herd"):
        SQLiteStore(tmp_path / "herd.db")
    with pytest.raises(StoreError, match="newer herd"):
        SQLiteStore(tmp_path / "herd.db", readonly=True)


def test_readonly_store_does_not_migrate(tmp_path: Path, raw: Raw) -> None:
    raw(tmp_path / "herd.db").execute("PRAGMA user_version = 0")  # an empty database
    with pytest.raises(StoreError, match="run any writing herd command"):
        SQLiteStore(tmp_path / "herd.db", readonly=True)


def test_foreign_sqlite_database_is_refused(tmp_path: Path, raw: Raw) -> None:
    raw(tmp_path / "data.db").execute("CREATE TABLE results (x)")
    with pytest.raises(StoreError, match="not herd's"):
        SQLiteStore(tmp_path / "data.db")


def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "herd.db").write_bytes(b"definitely not SQLite\n" * 100)
    with pytest.raises(StoreError, match="move it aside") as caught:
        SQLiteStore(tmp_path / "herd.db")
    assert str(tmp_path / "herd.db") in str(caught.value)


def test_missing_folder_is_reported_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="folder exists") as caught:
        SQLiteStore(tmp_path / "nowhere" / "herd.db")
    assert str(tmp_path / "nowhere" / "herd.db") in str(caught.value)


# --- queries feed records by column name ---------------------------------------------------------

RECORD_QUERIES = {
    "workflow_by_name": WorkflowRecord,
    "all_workflows": WorkflowRecord,
    "task_records": TaskRecord,
    "runs_of_workflow": RunRecord,
    "attempts_of_workflow": AttemptRecord,
    "attempts_of_task": AttemptRecord,
    "samples_of_attempt": Sample,
    "user_data_of_workflow": UserData,
    "user_data_of_task": UserData,
    "user_events_of_workflow": UserEvent,
    "user_events_of_task": UserEvent,
}


@pytest.mark.parametrize("name", sorted(RECORD_QUERIES))
def test_query_selects_the_fields_of_its_record(tmp_path: Path, name: str, raw: Raw) -> None:
    make_db(tmp_path / "herd.db")
    query = QUERIES[name]
    cursor = raw(tmp_path / "herd.db").execute(query.sql, (None,) * len(query.params))
    columns = tuple(column[0] for column in cursor.description)
    record = RECORD_QUERIES[name]
    names = getattr(record, "_fields", None)  # a named tuple, or a dataclass
    assert columns == (names or tuple(f.name for f in fields(record)))
