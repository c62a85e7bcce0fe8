"""The SQLite store: herd's embedded default, one file per working directory (``.herd/herd.db``).

Implements :class:`herd.store.base.Store`; the contract is documented there. The schema is in
``sql/schema.sql`` (every column is commented there), the queries in ``sql/queries.sql``.

Tables
------
``workflows``    one row per workflow name
``tasks``        the last known state of every task a workflow ever had (``is_current`` = still in it)
``runs``         one row per ``herd run``
``attempts``     one row per execution of a task: its provenance
``samples``      monitoring time series of attempts (process-tree RSS and CPU)
``user_data``    key/value results recorded by tasks
``user_events``  timestamped structured events recorded by tasks

Durability and concurrency
--------------------------
- ``journal_mode=WAL`` with ``synchronous=NORMAL``: a committed transaction survives the death of
  the process at any moment (``kill -9``), which is what herd promises. A power loss or an OS crash
  may lose the last commits (the database stays consistent); herd then reruns those tasks.
- One writer: a run holds ``.herd/lock`` (see ``herd.store.workdir``), and every write is one
  ``BEGIN IMMEDIATE`` transaction, rolled back whole when any part fails. Readers (``herd status``)
  read a snapshot and never block the writer, nor does the writer block them.
- ``busy_timeout`` makes a connection wait, rather than fail, while another takes the write lock
  for a moment (a migration, a checkpoint).

Schema versions
---------------
``PRAGMA user_version`` is the number of the last migration applied. A new database is created from
``schema.sql``; an older one is brought up to date by ``migrations/NNNN_*.sql`` when opened for
writing; a newer one (written by a later herd) is refused.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import groupby
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from herd.core.bulk import gc_paused
from herd.core.model import RunStatus, Workflow
from herd.errors import StoreError
from herd.store.base import (
    INTERRUPTED,
    AttemptRecord,
    Change,
    RunRecord,
    Sample,
    TaskRecord,
    UserData,
    UserEvent,
    WorkflowRecord,
)
from herd.store.batch import coalesce
from herd.store.campaigns import CampaignMethods, Work
from herd.store.leftovers import WorkerLeftovers
from herd.store.queries import QUERIES
from herd.store.queue_methods import QueueMethods
from herd.store.rows import (
    attempt_record,
    describe,
    encode,
    rows_digest,
    run_record,
    task_record,
    task_rows,
    user_data_record,
    user_event_record,
    workflow_record,
)
from herd.store.served import Served
from herd.store.sqlite_schema import advice, check_version, connect, migrate
from herd.store.sqlite_statements import Tx, by_task, run_query

__all__ = ["INTERRUPTED", "SQLiteStore", "migrate"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: seconds between two looks at the database while a worker waits for work (SQLite cannot notify)
_WORK_POLL = 0.02


class SQLiteStore(QueueMethods, WorkerLeftovers, Served, CampaignMethods):
    """The :class:`~herd.store.base.Store` in one SQLite file.

    ``readonly`` opens an existing database without taking any write lock and without migrating it
    (for ``herd status``). ``timeout`` is how long to wait for another connection's write lock.
    ``clock`` gives the times the store stamps itself (workflow added, task reset).
    Use a store from one thread at a time.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.readonly = readonly
        self._clock = clock
        self._data_version = -1
        self._conn = connect(self.path, readonly=readonly, timeout=timeout)
        self._file = _identity(self.path)
        try:
            with self._errors("open the database"):
                if readonly:
                    check_version(self._conn, self.path)
                else:
                    migrate(self._conn, self.path)
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._errors("close the database"):
            self._conn.close()

    # --- workflows and tasks ---------------------------------------------------------------

    def add_workflow(self, workflow: Workflow) -> int:
        now = self._clock()
        rows = task_rows(workflow.tasks)
        digest = rows_digest(rows)
        with self._transaction(f"add workflow '{workflow.name}'") as conn:
            known = run_query(conn, "workflow_tasks_digest", {"name": workflow.name}).fetchone()
            (workflow_id,) = run_query(
                conn,
                "upsert_workflow",
                {
                    "name": workflow.name,
                    "source": workflow.source,
                    "format": workflow.format,
                    "now": now,
                    "task_count": len(rows),
                    "tasks_digest": digest,
                },
            ).fetchone()
            if known is not None and known[1] == digest:
                return int(workflow_id)  # the same tasks as last time (a resumed run)
            names = {row[0] for row in rows}
            conn.executemany(
                _UPSERT_TASK.sql, ((workflow_id, name, now, *rest) for name, *rest in rows)
            )
            (stored,) = run_query(conn, "count_tasks", {"workflow_id": workflow_id}).fetchone()
            if stored > len(names):  # some rows are not tasks of the workflow now: retire them
                current = run_query(conn, "current_task_names", {"workflow_id": workflow_id})
                gone = [(workflow_id, name) for (name,) in current if name not in names]
                conn.executemany(QUERIES["retire_task"].sql, gone)
        return int(workflow_id)

    def workflow(self, name: str) -> WorkflowRecord | None:
        with self._errors(f"read workflow '{name}'"):
            row = run_query(self._conn, "workflow_by_name", {"name": name}).fetchone()
        return None if row is None else workflow_record(row)

    def workflows(self) -> list[WorkflowRecord]:
        with self._errors("read the workflows"):
            return [workflow_record(row) for row in run_query(self._conn, "all_workflows", {})]

    def task_records(self, workflow_id: int) -> dict[str, TaskRecord]:
        with self._errors(f"read the tasks of workflow {workflow_id}"), gc_paused():
            rows = run_query(self._conn, "task_records", {"workflow_id": workflow_id})
            return {row[0]: task_record(row) for row in rows}

    def reset(self, workflow_id: int, tasks: Sequence[str]) -> None:
        now = self._clock()
        query = QUERIES["reset_task"]
        params = [query.args({"workflow_id": workflow_id, "task": t, "time": now}) for t in tasks]
        with self._transaction(f"reset {len(params)} tasks of workflow {workflow_id}") as conn:
            conn.executemany(query.sql, params)

    def forget(self, workflow_id: int) -> None:
        with self._transaction(f"forget workflow {workflow_id}") as conn:
            run_query(conn, "forget_workflow", {"workflow_id": workflow_id})

    # --- runs ------------------------------------------------------------------------------

    def begin_run(
        self,
        workflow_id: int,
        *,
        started: float,
        host: str,
        user: str,
        pid: int,
        argv: Sequence[str],
        limits: Mapping[str, float],
    ) -> int:
        closing = {"workflow_id": workflow_id, "time": started, "reason": INTERRUPTED}
        run = {
            "workflow_id": workflow_id,
            "started": started,
            "host": host,
            "user": user,
            "pid": pid,
            "argv": encode(list(argv)),
            "limits": encode(dict(limits)),
        }
        with self._transaction(f"begin a run of workflow {workflow_id}") as conn:
            last = run_query(conn, "last_run_status", {"workflow_id": workflow_id}).fetchone()
            if last is not None and last[0] != "succeeded":
                # a run that succeeded left no task in flight (and the one before it requeued
                # those it did not run): only after another end is the scan of every task needed
                run_query(conn, "requeue_interrupted_tasks", closing)
            closed = run_query(conn, "interrupt_attempts", closing).rowcount
            run_query(conn, "interrupt_runs", closing)
            (run_id,) = run_query(conn, "insert_run", run).fetchone()
        if closed:
            logger.warning(
                "workflow %d: %d attempts were left running by a herd that stopped; "
                "they are recorded as interrupted and their tasks will run again",
                workflow_id,
                closed,
            )
        return int(run_id)

    def end_run(self, run_id: int, *, ended: float, status: RunStatus) -> None:
        params = {"run_id": run_id, "ended": ended, "status": status}
        with self._transaction(f"end run {run_id}") as conn:
            if run_query(conn, "end_run", params).rowcount != 1:
                raise StoreError(
                    f"could not end run {run_id} in {self.path}: there is no such run "
                    "(this is a bug in herd, please report it)"
                )

    def runs(self, workflow_id: int) -> list[RunRecord]:
        with self._errors(f"read the runs of workflow {workflow_id}"):
            rows = run_query(self._conn, "runs_of_workflow", {"workflow_id": workflow_id})
            return [run_record(row) for row in rows]

    # --- the batch -------------------------------------------------------------------------

    def write(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        changes = coalesce(changes)
        with self._transaction(f"write a batch of {len(changes)} changes") as conn:
            tx, index = Tx(conn), 0
            for kind, group in groupby(changes, type):  # coalesced: grouped by kind
                run = list(group)
                try:
                    tx.apply_run(kind, run)
                except (sqlite3.Error, LookupError, TypeError, ValueError) as exc:
                    raise StoreError(self._batch_message(changes, index, exc, len(run))) from exc
                index += len(run)

    def _batch_message(
        self, changes: Sequence[Change], index: int, exc: Exception, count: int = 1
    ) -> str:
        which = (
            f"change {index + 1}" if count == 1 else f"one of changes {index + 1}-{index + count}"
        )
        first = "" if count == 1 else "the first: "
        return (
            f"could not write a batch of {len(changes)} changes to {self.path}: {which} "
            f"({first}{describe(changes[index])}) failed: {exc}. Nothing of the batch was "
            f"written; {advice(exc)}"
        )

    # --- history ---------------------------------------------------------------------------

    def attempts(self, workflow_id: int, task: str | None = None) -> list[AttemptRecord]:
        with self._errors(f"read the attempts of workflow {workflow_id}"):
            return [
                attempt_record(row) for row in by_task(self._conn, "attempts", workflow_id, task)
            ]

    def durations(self, workflow_id: int) -> dict[str, float]:
        with self._errors(f"read the task durations of workflow {workflow_id}"):
            rows = run_query(self._conn, "durations", {"workflow_id": workflow_id})
            return {task: float(seconds) for task, seconds in rows}

    def samples(self, workflow_id: int, task: str, number: int) -> list[Sample]:
        params = {"workflow_id": workflow_id, "task": task, "number": number}
        with self._errors(f"read the samples of task '{task}' attempt {number}"):
            rows = run_query(self._conn, "samples_of_attempt", params)
            return [Sample(*row) for row in rows]

    def user_data(self, workflow_id: int, task: str | None = None) -> list[UserData]:
        with self._errors(f"read the user data of workflow {workflow_id}"):
            return [
                user_data_record(row) for row in by_task(self._conn, "user_data", workflow_id, task)
            ]

    def user_events(self, workflow_id: int, task: str | None = None) -> list[UserEvent]:
        with self._errors(f"read the user events of workflow {workflow_id}"):
            rows = by_task(self._conn, "user_events", workflow_id, task)
            return [user_event_record(row) for row in rows]

    # --- workers (queue_methods.py; the logic is in queue.py, shared by every SQL store) -------

    def wait_for_work(self, timeout: float) -> bool:
        # SQLite has no notifications: PRAGMA data_version changes when another connection
        # commits, and reading it costs no I/O (the WAL index is in shared memory)
        deadline = time.monotonic() + timeout
        while True:
            with self._errors("watch for new work"):
                (version,) = self._conn.execute("PRAGMA data_version").fetchone()
            if version != self._data_version:
                self._data_version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(_WORK_POLL, left))

    def _fetch(self, rows: Callable[[Any], _T], name: str, key: Mapping[str, Any]) -> _T:
        with self._errors(f"read {name.replace('_', ' ')}"):
            return rows(run_query(self._conn, name, key))

    def _campaign_read(self, doing: str, work: Work[_T]) -> _T:
        with self._errors(doing):
            return work(Tx(self._conn))

    def _queue(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        with self._transaction(doing) as conn:
            try:
                return work(Tx(conn))
            except (LookupError, TypeError, ValueError) as exc:
                raise StoreError(f"could not {doing} in {self.path}: {exc}; {advice(exc)}") from exc

    def _look(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        with self._errors(doing):
            return work(Tx(self._conn))

    _served = _queue  # (herd.store.served)
    _campaign_write = _queue

    # --- plumbing --------------------------------------------------------------------------

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn driver errors into a :class:`StoreError` saying what failed, where and what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"could not {doing} in {self.path}: {exc}; {advice(exc)}") from exc

    def _check_file(self, doing: str) -> None:
        """Refuse to write to a database whose file was removed or replaced since it was opened:
        the writes would go to a file nobody reads, and the run's state would be lost."""
        now = _identity(self.path)
        if now != self._file:
            what = "removed" if now is None else "replaced by another file"
            raise StoreError(
                f"could not {doing}: {self.path} was {what} while herd was using it; what this "
                "run did since is not recorded there: check who touches .herd/, then run again "
                "(finished tasks whose outputs exist are run again or skipped by their files)"
            )

    @contextmanager
    def _transaction(self, doing: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed whole, or rolled back whole."""
        if self.readonly:
            raise StoreError(f"could not {doing}: {self.path} was opened read-only")
        self._check_file(doing)
        with self._errors(doing):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.rollback()
                raise


# --- connection and schema -----------------------------------------------------------------


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the database file; None when it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


#: add_workflow binds a million of these tuples: built directly in the query's parameter order
_UPSERT_TASK = QUERIES["upsert_task"]
_TASK_ROW = ("workflow_id", "name", "now", "cmd", "labels", "resources", "timeframe")
if _UPSERT_TASK.params != _TASK_ROW:
    raise ImportError(f"queries.sql: upsert_task must take {_TASK_ROW}, not {_UPSERT_TASK.params}")
