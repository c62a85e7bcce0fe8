"""The PostgreSQL store: workflow state shared by every host that reaches one database.

Implements :class:`herd.store.base.Store` with the SQLite store's tables in PostgreSQL's types;
``--store postgresql://USER@HOST:PORT/DB`` or ``$HERD_STORE`` selects it (docs/operations.md).
Connecting, migrations, error advice: :mod:`~herd.store.postgres_schema`; statements:
:mod:`~herd.store.postgres_statements`.

Connection
----------
One psycopg 3 connection in autocommit mode; every write is one explicit transaction, rolled back
whole when any part fails. A batch (:meth:`PostgresStore.write`) is sent in pipeline mode: one
round trip for the whole batch, not one per change. A new workflow's tasks are copied (``COPY``),
others upserted from a copied temporary table. ``jsonb`` is read as text, decoded in ``rows.py``.

Faults
------
Errors become a :class:`~herd.errors.StoreError` saying what to do. When the connection is lost
(server restart, session ended, network), the store reconnects with exponential back-off for up to
``reconnect_for`` seconds and runs the call again: a read is repeated; a write's transaction either
committed or left nothing, so repeating it is safe except when the connection dropped during the
``COMMIT`` itself (the repeat then fails loudly on a duplicate rather than record anything twice).
Opening a store does not retry: a wrong URL, credentials or an unreachable server fail at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import psycopg

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
from herd.store.postgres_schema import (
    RETRY_AT_ONCE,
    check_version,
    connect,
    create_staging,
    errors,
    first_line,
    migrate,
    redact,
    sqlstate,
)
from herd.store.postgres_statements import (
    CHANNEL,
    MUST_MATCH,
    STATEMENT,
    Tx,
    by_task,
    copy_new_tasks,
    one_row,
    pipelined,
    query,
)
from herd.store.queries import POSTGRES, Dialect
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

__all__ = ["PostgresStore", "migrate", "redact"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Conn = psycopg.Connection[tuple[Any, ...]]
_QUERIES = POSTGRES.queries


#: what a status poll's counts need of the tasks' statistics (PostgresStore._submitted)
_ANALYZE_TASKS = "ANALYZE tasks (workflow_id, is_current, state)"


class PostgresStore(QueueMethods, WorkerLeftovers, Served, CampaignMethods):
    """The :class:`~herd.store.base.Store` in a PostgreSQL database.

    ``readonly`` opens an existing herd schema without migrating it, in read-only transactions
    (for ``herd status``); without ``create`` a database with no herd schema is left as it is
    (:class:`~herd.errors.NoStateError`). ``connect_timeout`` bounds each connection attempt
    (seconds); ``reconnect_for`` is how long a lost connection is retried before the call fails.
    ``clock`` gives the times the store stamps itself. Use a store from one thread at a time.
    """

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        create: bool = True,
        connect_timeout: float = 10.0,
        reconnect_for: float = 60.0,
        clock: Callable[[], float] = time.time,
        dialect: Dialect = POSTGRES,
    ) -> None:
        self.url, self.where, self.readonly = url, redact(url), readonly
        self._connect_timeout, self._reconnect_for = connect_timeout, reconnect_for
        self._clock, self._dialect = clock, dialect
        self._closed = False
        #: LISTEN was issued on the current connection; work may have come since the last wait
        self._listening, self._work = False, True
        self._conn = self._connect()
        try:
            with self._errors("open the database"):
                if readonly:
                    check_version(self._conn, self.where, dialect)
                else:
                    migrate(self._conn, self.where, dialect, create=create)
                    create_staging(self._conn)
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.where!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        with self._errors("close the connection"):
            self._conn.close()

    # --- workflows and tasks ---------------------------------------------------------------

    def add_workflow(self, workflow: Workflow) -> int:
        now = self._clock()
        rows = task_rows(workflow.tasks)
        digest = rows_digest(rows)
        values = {
            "name": workflow.name,
            "source": workflow.source,
            "format": workflow.format,
            "now": now,
            "task_count": len(rows),
            "tasks_digest": digest,
            "workflow_id": 0,
        }

        def add(conn: _Conn) -> int:
            known = query(conn, "workflow_tasks_digest", values).fetchone()
            (workflow_id,) = one_row(query(conn, "upsert_workflow", values))
            if known is None:
                copy_new_tasks(conn, workflow_id, now, rows)
                return int(workflow_id)
            if known[1] == digest:
                return int(workflow_id)  # the same tasks as last time (a resumed run)
            with conn.cursor().copy(_QUERIES["copy_task_staging"].sql) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.execute("ANALYZE task_staging")  # a good plan for the anti-join below
            ids = {**values, "workflow_id": workflow_id}
            query(conn, "upsert_staged_tasks", ids)
            query(conn, "retire_unstaged_tasks", ids)
            return int(workflow_id)

        return self._transaction(f"add workflow '{workflow.name}'", add)

    def workflow(self, name: str) -> WorkflowRecord | None:
        def read(conn: _Conn) -> WorkflowRecord | None:
            row = query(conn, "workflow_by_name", {"name": name}).fetchone()
            return None if row is None else workflow_record(row)

        return self._read(f"read workflow '{name}'", read)

    def workflows(self) -> list[WorkflowRecord]:
        return self._read(
            "read the workflows",
            lambda conn: [workflow_record(row) for row in query(conn, "all_workflows", {})],
        )

    def task_records(self, workflow_id: int) -> dict[str, TaskRecord]:
        def read(conn: _Conn) -> dict[str, TaskRecord]:
            with gc_paused():
                rows = query(conn, "task_records", {"workflow_id": workflow_id}).fetchall()
                return {row[0]: task_record(row) for row in rows}

        return self._read(f"read the tasks of workflow {workflow_id}", read)

    def reset(self, workflow_id: int, tasks: Sequence[str]) -> None:
        query, now = _QUERIES["reset_task"], self._clock()
        params = [query.args({"workflow_id": workflow_id, "task": t, "time": now}) for t in tasks]

        def reset(conn: _Conn) -> None:
            conn.cursor().executemany(query.sql, params)

        self._transaction(f"reset {len(params)} tasks of workflow {workflow_id}", reset)

    def forget(self, workflow_id: int) -> None:
        def forget(conn: _Conn) -> None:
            query(conn, "forget_workflow", {"workflow_id": workflow_id})

        self._transaction(f"forget workflow {workflow_id}", forget)

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

        def begin(conn: _Conn) -> tuple[int, int]:
            last = query(conn, "last_run_status", closing).fetchone()
            if last is not None and last[0] != "succeeded":
                query(conn, "requeue_interrupted_tasks", closing)
            closed = query(conn, "interrupt_attempts", closing).rowcount
            query(conn, "interrupt_runs", closing)
            (run_id,) = one_row(query(conn, "insert_run", run))
            return int(run_id), closed

        run_id, closed = self._transaction(f"begin a run of workflow {workflow_id}", begin)
        if closed:
            logger.warning(
                "workflow %d: %d attempts were left running by a herd that stopped; "
                "they are recorded as interrupted and their tasks will run again",
                workflow_id,
                closed,
            )
        return run_id

    def end_run(self, run_id: int, *, ended: float, status: RunStatus) -> None:
        params = {"run_id": run_id, "ended": ended, "status": status}

        def end(conn: _Conn) -> None:
            if query(conn, "end_run", params).rowcount != 1:
                raise StoreError(
                    f"could not end run {run_id} in {self.where}: there is no such run "
                    "(this is a bug in herd, please report it)"
                )

        self._transaction(f"end run {run_id}", end)

    def runs(self, workflow_id: int) -> list[RunRecord]:
        return self._read(
            f"read the runs of workflow {workflow_id}",
            lambda conn: [
                run_record(row)
                for row in query(conn, "runs_of_workflow", {"workflow_id": workflow_id})
            ],
        )

    # --- the batch -------------------------------------------------------------------------

    def write(self, changes: Sequence[Change]) -> None:
        if not changes:
            return
        changes = coalesce(changes)
        statements = [self._statement(changes, index) for index in range(len(changes))]

        def apply(conn: _Conn) -> None:
            unmatched = pipelined(conn, changes, statements)
            if unmatched is not None:
                problem = MUST_MATCH[type(changes[unmatched])]
                raise StoreError(self._batch_message(changes, unmatched, problem))

        self._transaction(f"write a batch of {len(changes)} changes", apply)

    def _statement(self, changes: Sequence[Change], index: int) -> tuple[str, tuple[Any, ...]]:
        change = changes[index]
        try:
            return STATEMENT[type(change)](change)
        except (TypeError, ValueError) as exc:  # encoding user data: before anything is sent
            raise StoreError(
                self._batch_message(
                    changes,
                    index,
                    f"{exc}; user data and events must be JSON-serialisable "
                    "(strings, numbers, lists, dicts)",
                )
            ) from exc

    def _batch_message(self, changes: Sequence[Change], index: int, problem: str) -> str:
        return (
            f"could not write a batch of {len(changes)} changes to {self.where}: change "
            f"{index + 1} ({describe(changes[index])}) failed: {problem}. Nothing of the batch "
            "was written"
        )

    # --- history ---------------------------------------------------------------------------

    def attempts(self, workflow_id: int, task: str | None = None) -> list[AttemptRecord]:
        return self._read(
            f"read the attempts of workflow {workflow_id}",
            lambda conn: [
                attempt_record(row) for row in by_task(conn, "attempts", workflow_id, task)
            ],
        )

    def durations(self, workflow_id: int) -> dict[str, float]:
        return self._read(
            f"read the task durations of workflow {workflow_id}",
            lambda conn: {
                task: float(seconds)
                for task, seconds in query(conn, "durations", {"workflow_id": workflow_id})
            },
        )

    def samples(self, workflow_id: int, task: str, number: int) -> list[Sample]:
        params = {"workflow_id": workflow_id, "task": task, "number": number}
        return self._read(
            f"read the samples of task '{task}' attempt {number}",
            lambda conn: [Sample(*row) for row in query(conn, "samples_of_attempt", params)],
        )

    def user_data(self, workflow_id: int, task: str | None = None) -> list[UserData]:
        return self._read(
            f"read the user data of workflow {workflow_id}",
            lambda conn: [
                user_data_record(row) for row in by_task(conn, "user_data", workflow_id, task)
            ],
        )

    def user_events(self, workflow_id: int, task: str | None = None) -> list[UserEvent]:
        return self._read(
            f"read the user events of workflow {workflow_id}",
            lambda conn: [
                user_event_record(row) for row in by_task(conn, "user_events", workflow_id, task)
            ],
        )

    # --- workers (queue_methods.py; the logic is in queue.py, shared by every SQL store) -------

    def _submitted(self) -> None:
        # statistics of the new rows: without them, a claim sorts every ready row (the planner
        # expects a few) rather than read the head of the queue_ready index, and a status poll's
        # counts sort every task (a bitmap scan for "a few" rows) rather than hash them on a
        # sequential scan: 2.5 ms -> 1 ms for 5,000 tasks. Only the columns that count:
        # sampling the specs' JSON of a million tasks would cost more than it saves
        self._read(
            "analyze the queue",
            lambda conn: [conn.execute(s) for s in ("ANALYZE queue", _ANALYZE_TASKS)],
        )

    def wait_for_work(self, timeout: float) -> bool:
        # every transaction that may make work claimable NOTIFYs herd_work; psycopg keeps the
        # notices that arrive while the connection runs other queries, and yields them first
        if not self._listening:
            self._read("listen for new work", lambda conn: conn.execute(f"LISTEN {CHANNEL}"))
            self._listening = True
        came = self._work or self._read(
            "wait for new work", lambda conn: self._await_notice(conn, timeout)
        )
        self._work = False
        return came

    def _await_notice(self, conn: _Conn, timeout: float) -> bool:
        # (the kept notices all come at once: the next wait waits)
        return any(True for _ in conn.notifies(timeout=timeout, stop_after=1))

    def _fetch(self, rows: Callable[[Any], _T], name: str, key: Mapping[str, Any]) -> _T:
        return self._read(f"read {name.replace('_', ' ')}", lambda c: rows(query(c, name, key)))

    def _campaign_read(self, doing: str, work: Work[_T]) -> _T:
        return self._read(doing, lambda conn: work(Tx(conn)))

    def _queue(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        # in pipeline mode: BEGIN, the writes whose results are not read and COMMIT travel with
        # the reads; one sync before the commit checks the rows the changes matched
        def transaction(conn: _Conn) -> _T:
            with conn.pipeline() as pipeline, conn.transaction():
                tx = Tx(conn)
                tx.send("plan_by_index", [{}])
                try:
                    done = work(tx)
                    pipeline.sync()
                    tx.check()
                except (LookupError, TypeError, ValueError) as exc:
                    raise StoreError(
                        f"could not {doing} in {self.where}: {exc}; this is a bug in herd, "
                        "please report it"
                    ) from exc
                return done

        return self._read(doing, self._writable(doing, transaction))

    def _look(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        return self._read(doing, lambda conn: work(Tx(conn)))

    def _served(self, doing: str, work: Callable[[Tx], _T]) -> _T:
        # (herd.store.served: outside pipeline mode, so that its statements' rowcounts are read
        # at once)
        def transaction(conn: _Conn) -> _T:
            tx = Tx(conn)
            tx.send("plan_by_index", [{}])
            try:
                done = work(tx)
                tx.check()
            except (LookupError, TypeError, ValueError) as exc:
                raise StoreError(
                    f"could not {doing} in {self.where}: {exc}; this is a bug in herd, "
                    "please report it"
                ) from exc
            return done

        return self._transaction(doing, transaction)

    _campaign_write = _served  # (outside pipeline mode, as _served)

    # --- plumbing --------------------------------------------------------------------------

    def _transaction(self, doing: str, work: Callable[[_Conn], _T]) -> _T:
        """``work`` in one transaction: committed whole, or rolled back whole."""

        def transaction(conn: _Conn) -> _T:
            with conn.transaction():
                return work(conn)

        return self._read(doing, self._writable(doing, transaction))

    def _writable(self, doing: str, work: Callable[[_Conn], _T]) -> Callable[[_Conn], _T]:
        if self.readonly:
            raise StoreError(f"could not {doing}: {self.where} was opened read-only")
        return work

    def _read(self, doing: str, work: Callable[[_Conn], _T]) -> _T:
        """``work`` on the connection; again on a new one while the connection is lost, and
        again at once when the server broke a deadlock by aborting it (its transaction left
        nothing behind)."""
        if self._closed:
            raise StoreError(f"could not {doing}: the connection to {self.where} was closed")
        deadline = time.monotonic() + self._reconnect_for
        delay = 0.1
        while True:
            try:
                with self._errors(doing):
                    return work(self._conn)
            except StoreError as exc:
                if sqlstate(exc) in RETRY_AT_ONCE and time.monotonic() < deadline:
                    logger.info("%s: %s; trying again", self.where, exc)
                    continue
                if not self._conn.broken or time.monotonic() + delay > deadline:
                    raise
            logger.warning("lost the connection to %s; reconnecting in %.1f s", self.where, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            self._reconnect()

    def _reconnect(self) -> None:
        try:
            self._conn.close()
            self._conn = self._connect()
            if not self.readonly:
                create_staging(self._conn)
            # notices sent while the connection was down are lost: look for work at once
            self._listening, self._work = False, True
        except (StoreError, psycopg.Error) as exc:
            logger.warning("could not reconnect to %s yet: %s", self.where, first_line(exc))

    def _connect(self) -> _Conn:
        return connect(self.url, self.where, self.readonly, self._connect_timeout)

    def _errors(self, doing: str) -> contextlib.AbstractContextManager[None]:
        return errors(self.where, doing)
