"""The Store contract, tested once for every implementation (huey's ``StorageTests`` pattern).

:class:`StoreContract` tests only what ``herd.store.base.Store`` promises. An implementation
subclasses it and provides ``make_store(tmp_path)``: ``TestSQLiteStore`` and ``TestPostgresStore``
below (each PostgreSQL test gets an empty schema of its own on a real server, see
tests/pgserver.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import Kill, Task, TaskState, Workflow
from herd.errors import StoreError
from herd.store.base import (
    AttemptFinished,
    AttemptRecord,
    AttemptStarted,
    Change,
    Sample,
    Store,
    TaskChanged,
    TaskRecord,
    UserData,
    UserEvent,
)
from herd.store.postgres import PostgresStore
from herd.store.sqlite import SQLiteStore

INTERRUPTED = "interrupted: herd stopped"
DIGEST = "d" * 64


def workflow(name: str, *tasks: str, **fields: Any) -> Workflow:
    return Workflow(name, tuple(Task(t, f"echo {t}") for t in tasks), **fields)


def attempt(wid: int, run: int, task: str, number: int = 1, start: float = 10.0) -> AttemptRecord:
    return AttemptRecord(
        workflow_id=wid,
        run_id=run,
        task=task,
        number=number,
        host="node1",
        user="alice",
        pid=4242,
        start=start,
        cmd=f"echo {task}",
        env_digest="e" * 64,
        fingerprint="f" * 64,
        reason="new",
    )


def succeeded(wid: int, task: str, time: float = 20.0, **fields: Any) -> TaskChanged:
    return TaskChanged(
        wid,
        task,
        TaskState.SUCCEEDED,
        time,
        attempts=1,
        exit_code=0,
        fingerprint=DIGEST,
        cmd_digest="c" * 64,
        env_digest="e" * 64,
        inputs={"in.txt": (12, 1_700_000_000_000_000_000, "abc")},
        **fields,
    )


class StoreContract:
    """Behaviour every :class:`~herd.store.base.Store` must have."""

    def make_store(self, tmp_path: Path) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def begin(self, store: Store, wid: int, started: float = 1.0) -> int:
        return store.begin_run(
            wid,
            started=started,
            host="node1",
            user="alice",
            pid=99,
            argv=["herd", "run"],
            limits={},
        )

    # --- workflows and tasks ---------------------------------------------------------------

    def test_add_workflow_records_the_workflow(self, store: Store) -> None:
        wid = store.add_workflow(workflow("sim", "a", "b", source="sim.yaml", format="native"))
        record = store.workflow("sim")
        assert record is not None
        assert (record.id, record.name, record.source, record.format, record.tasks) == (
            wid,
            "sim",
            "sim.yaml",
            "native",
            2,
        )
        assert record.created > 0
        assert store.workflow("other") is None

    def test_workflows_are_listed_oldest_first(self, store: Store) -> None:
        first = store.add_workflow(workflow("b-first", "a"))
        second = store.add_workflow(workflow("a-second", "a"))
        assert [w.id for w in store.workflows()] == [first, second]

    def test_new_tasks_wait_with_no_history(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        records = store.task_records(wid)
        assert set(records) == {"a", "b"}
        assert records["a"] == records["a"]._replace(state=TaskState.WAITING, attempts=0)
        assert (records["a"].fingerprint, records["a"].inputs, records["a"].exit_code) == (
            "",
            {},
            None,
        )

    def test_add_workflow_is_idempotent(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        before = store.task_records(wid)
        assert store.add_workflow(workflow("w", "a", "b")) == wid
        assert store.task_records(wid) == before
        assert len(store.workflows()) == 1

    def test_adding_again_keeps_state_and_history(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        store.write([AttemptStarted(attempt(wid, run, "a")), succeeded(wid, "a")])
        store.add_workflow(Workflow("w", (Task("a", "echo changed"), Task("new", "true"))))
        records = store.task_records(wid)
        assert records["a"].state is TaskState.SUCCEEDED
        assert records["a"].fingerprint == DIGEST
        assert records["new"].state is TaskState.WAITING
        assert len(store.attempts(wid, "a")) == 1

    def test_tasks_that_leave_the_workflow_keep_their_history(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        store.write([AttemptStarted(attempt(wid, run, "b")), succeeded(wid, "b")])
        store.add_workflow(workflow("w", "a"))
        assert set(store.task_records(wid)) == {"a"}
        record = store.workflow("w")
        assert record is not None
        assert record.tasks == 1
        assert [a.task for a in store.attempts(wid)] == ["b"]
        store.add_workflow(workflow("w", "a", "b"))
        assert store.task_records(wid)["b"].state is TaskState.SUCCEEDED

    def test_task_counts_count_current_tasks_by_state(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b", "c", "gone"))
        other = store.add_workflow(workflow("other", "a"))
        store.write([succeeded(wid, "a"), succeeded(wid, "gone")])
        store.add_workflow(workflow("w", "a", "b", "c"))
        assert store.task_counts(wid) == {TaskState.SUCCEEDED: 1, TaskState.WAITING: 2}
        assert store.task_counts(other) == {TaskState.WAITING: 1}
        assert store.task_counts(other + wid + 1) == {}

    def test_workflows_do_not_share_tasks(self, store: Store) -> None:
        one = store.add_workflow(workflow("one", "a"))
        two = store.add_workflow(workflow("two", "a"))
        store.write([succeeded(one, "a")])
        assert store.task_records(two)["a"].state is TaskState.WAITING

    def test_task_change_round_trips_every_field(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        store.write([succeeded(wid, "a", time=20.0, reason="exit 0")])
        assert store.task_records(wid)["a"] == TaskRecord(
            name="a",
            state=TaskState.SUCCEEDED,
            attempts=1,
            fingerprint=DIGEST,
            cmd_digest="c" * 64,
            env_digest="e" * 64,
            inputs={"in.txt": (12, 1_700_000_000_000_000_000, "abc")},
            reason="exit 0",
            exit_code=0,
            updated=20.0,
        )

    def test_task_change_keeps_what_it_leaves_out(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        store.write([succeeded(wid, "a")])
        store.write([TaskChanged(wid, "a", TaskState.FAILED, 30.0, reason="exit 3", exit_code=3)])
        record = store.task_records(wid)["a"]
        assert (record.state, record.reason, record.exit_code, record.updated) == (
            TaskState.FAILED,
            "exit 3",
            3,
            30.0,
        )
        assert (record.attempts, record.fingerprint, record.cmd_digest) == (1, DIGEST, "c" * 64)
        assert record.inputs == {"in.txt": (12, 1_700_000_000_000_000_000, "abc")}

    def test_a_cancelled_task_keeps_the_failure_that_cancelled_it(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b", "c"))
        why = "needs 'a', which failed"
        cancelled = TaskChanged(wid, "b", TaskState.CANCELLED, 5.0, reason=why, cancelled_by="a")
        stopped = TaskChanged(wid, "c", TaskState.CANCELLED, 5.0, reason="not started: stop")
        failed = TaskChanged(wid, "a", TaskState.FAILED, 5.0, reason="exit 1", exit_code=1)
        store.write([failed, cancelled, stopped])  # many at once
        records = store.task_records(wid)
        assert (records["b"].cancelled_by, records["b"].reason) == ("a", why)
        assert (records["a"].cancelled_by, records["c"].cancelled_by) == (None, None)
        store.write([TaskChanged(wid, "b", TaskState.RUNNING, 6.0, attempts=1)])  # one alone
        assert store.task_records(wid)["b"].cancelled_by is None  # a later run ran it
        store.write([cancelled])
        assert store.task_records(wid)["b"].cancelled_by == "a"
        store.reset(wid, ["b"])
        assert store.task_records(wid)["b"].cancelled_by is None

    @pytest.mark.parametrize("state", list(TaskState))
    def test_every_task_state_round_trips(self, store: Store, state: TaskState) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        store.write([TaskChanged(wid, "a", state, 5.0)])
        assert store.task_records(wid)["a"].state is state

    def test_reset_forgets_success_but_not_history(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        store.write(
            [AttemptStarted(attempt(wid, run, "a")), succeeded(wid, "a"), succeeded(wid, "b")]
        )
        store.reset(wid, ["a"])
        records = store.task_records(wid)
        assert records["a"].state is TaskState.WAITING
        assert (records["a"].fingerprint, records["a"].cmd_digest, records["a"].inputs) == (
            "",
            "",
            {},
        )
        assert records["b"].state is TaskState.SUCCEEDED
        assert len(store.attempts(wid, "a")) == 1

    def test_forget_drops_the_workflow_and_only_it(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        other = store.add_workflow(workflow("other", "a"))
        run = self.begin(store, wid)
        store.write(
            [
                AttemptStarted(attempt(wid, run, "a")),
                Sample(wid, "a", 1, 11.0, 1000, 0.5, 1),
                UserData(wid, "a", 1, "k", 1),
                UserEvent(wid, "a", 1, 12.0, {"e": 1}),
                succeeded(wid, "a"),
                succeeded(other, "a"),
            ]
        )
        store.forget(wid)
        assert store.workflow("w") is None
        assert [w.name for w in store.workflows()] == ["other"]
        assert store.task_records(other)["a"].state is TaskState.SUCCEEDED
        again = store.add_workflow(workflow("w", "a"))
        assert store.task_records(again)["a"].state is TaskState.WAITING
        assert store.attempts(again) == []
        assert store.runs(again) == []

    # --- runs ------------------------------------------------------------------------------

    def test_begin_run_opens_a_running_run(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = store.begin_run(
            wid,
            started=5.0,
            host="node1",
            user="alice",
            pid=99,
            argv=["herd", "run", "-j", "4"],
            limits={"cpu": 4.0, "mem": 8000.0},
        )
        (record,) = store.runs(wid)
        assert (record.id, record.workflow_id, record.started, record.ended, record.status) == (
            run,
            wid,
            5.0,
            None,
            "running",
        )
        assert (record.host, record.user, record.pid) == ("node1", "alice", 99)
        assert record.argv == ("herd", "run", "-j", "4")
        assert record.limits == {"cpu": 4.0, "mem": 8000.0}

    def test_end_run_records_status(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        first = self.begin(store, wid, started=1.0)
        store.end_run(first, ended=2.0, status="failed")
        second = self.begin(store, wid, started=3.0)
        store.end_run(second, ended=4.0, status="succeeded")
        assert [(r.id, r.ended, r.status) for r in store.runs(wid)] == [
            (first, 2.0, "failed"),
            (second, 4.0, "succeeded"),
        ]

    def test_end_run_of_unknown_run_fails(self, store: Store) -> None:
        with pytest.raises(StoreError):
            store.end_run(12345, ended=1.0, status="succeeded")

    def test_begin_run_closes_what_a_killed_herd_left_running(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "running", "done"))
        dead = self.begin(store, wid, started=1.0)
        store.write(
            [
                AttemptStarted(attempt(wid, dead, "running", start=2.0)),
                TaskChanged(wid, "running", TaskState.RUNNING, 2.0, attempts=1),
                AttemptStarted(attempt(wid, dead, "done", start=2.0)),
                AttemptFinished(wid, "done", 1, 3.0, TaskState.SUCCEEDED, exit_code=0),
                succeeded(wid, "done", time=3.0),
            ]
        )
        new = self.begin(store, wid, started=100.0)
        closed, finished = store.attempts(wid, "running")[0], store.attempts(wid, "done")[0]
        assert (closed.state, closed.end, closed.kill_reason, closed.kill) == (
            TaskState.CANCELLED,
            100.0,
            INTERRUPTED,
            Kill.INTERRUPTED,
        )
        assert (finished.state, finished.end) == (TaskState.SUCCEEDED, 3.0)
        records = store.task_records(wid)
        assert records["running"].state is TaskState.WAITING
        assert records["done"].state is TaskState.SUCCEEDED
        assert [(r.id, r.status) for r in store.runs(wid)] == [
            (dead, "interrupted"),
            (new, "running"),
        ]

    def test_begin_run_leaves_ended_runs_and_other_workflows_alone(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        other = store.add_workflow(workflow("other", "a"))
        ended = self.begin(store, wid, started=1.0)
        store.end_run(ended, ended=2.0, status="succeeded")
        elsewhere = self.begin(store, other, started=1.0)
        store.write([AttemptStarted(attempt(other, elsewhere, "a", start=1.5))])
        self.begin(store, wid, started=3.0)
        assert store.runs(wid)[0].status == "succeeded"
        assert store.runs(other)[0].status == "running"
        assert store.attempts(other)[0].state is TaskState.RUNNING

    # --- the batch -------------------------------------------------------------------------

    def test_empty_batch_is_fine(self, store: Store) -> None:
        store.write([])

    def test_batch_applies_changes_in_order(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        store.write(
            [
                AttemptStarted(attempt(wid, run, "a")),
                TaskChanged(wid, "a", TaskState.RUNNING, 10.0, attempts=1),
                AttemptFinished(wid, "a", 1, 11.0, TaskState.FAILED, exit_code=1),
                TaskChanged(wid, "a", TaskState.FAILED, 11.0, reason="exit 1", exit_code=1),
            ]
        )
        assert store.task_records(wid)["a"].state is TaskState.FAILED
        assert store.attempts(wid)[0].state is TaskState.FAILED

    @pytest.mark.parametrize(
        "bad",
        [
            lambda wid: TaskChanged(wid, "no-such-task", TaskState.RUNNING, 1.0),
            lambda wid: AttemptFinished(wid, "a", 7, 1.0, TaskState.SUCCEEDED),
            lambda wid: Sample(wid, "a", 7, 1.0, 10, 0.1, 1),
            lambda wid: UserData(wid, "a", 1, "key", object()),
        ],
        ids=["unknown task", "unknown attempt", "sample of unknown attempt", "not JSON"],
    )
    def test_failed_batch_leaves_nothing(self, store: Store, bad: Callable[[int], Change]) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        good: list[Change] = [AttemptStarted(attempt(wid, run, "a")), succeeded(wid, "a")]
        with pytest.raises(StoreError):
            store.write([*good, bad(wid)])
        assert store.attempts(wid) == []
        assert store.task_records(wid)["a"].state is TaskState.WAITING
        store.write(good)  # the store is still usable
        assert store.task_records(wid)["a"].state is TaskState.SUCCEEDED

    def test_starting_the_same_attempt_twice_fails(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        store.write([AttemptStarted(attempt(wid, run, "a"))])
        with pytest.raises(StoreError):
            store.write([AttemptStarted(attempt(wid, run, "a"))])

    # --- history ---------------------------------------------------------------------------

    def test_attempt_round_trips_every_field(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        started = replace(
            attempt(wid, run, "a"),
            cwd="sim",
            stdout_path=".herd/logs/w/a.1.out",
            stderr_path=".herd/logs/w/a.1.err",
            inputs={"in.txt": (12, 34, "abc")},
            resources={"cpu": 2.0, "mem": 1500.0},
        )
        finish = AttemptFinished(
            wid,
            "a",
            1,
            end=15.5,
            state=TaskState.FAILED,
            exit_code=None,
            signal=9,
            kill_reason="memory 5.1 GB > 4.0 GB limit",
            kill=Kill.MEMORY,
            utime=1.25,
            stime=0.5,
            max_rss=1 << 30,
            peak_mem=5 << 30,
            mean_cpu=1.75,
            outputs={"out.root": (1000, 56, "")},
        )
        store.write([AttemptStarted(started)])
        assert store.attempts(wid) == [started]
        store.write([finish])
        expected = replace(
            started,
            end=15.5,
            state=TaskState.FAILED,
            signal=9,
            kill_reason="memory 5.1 GB > 4.0 GB limit",
            kill=Kill.MEMORY,
            utime=1.25,
            stime=0.5,
            max_rss=1 << 30,
            peak_mem=5 << 30,
            mean_cpu=1.75,
            outputs={"out.root": (1000, 56, "")},
        )
        assert store.attempts(wid) == [expected]

    @pytest.mark.parametrize("kill", [*Kill, None])
    def test_kill_kind_round_trips_started_and_finished_at_once(
        self, store: Store, kill: Kill | None
    ) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        ended = AttemptFinished(
            wid, "a", 1, 2.0, TaskState.FAILED, exit_code=1, kill_reason="why", kill=kill
        )
        store.write([AttemptStarted(attempt(wid, run, "a")), ended])  # one insert (coalesced)
        (stored,) = store.attempts(wid, "a")
        assert (stored.kill, stored.kill_reason) == (kill, "why")
        assert stored.kill is None or type(stored.kill) is Kill

    def test_finish_with_input_stamps_replaces_those_of_the_start(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        run = self.begin(store, wid)
        started = replace(attempt(wid, run, "a"), inputs={"in.txt": (1, 2, "")})
        store.write([AttemptStarted(started)])
        store.write(
            [
                AttemptFinished(
                    wid, "a", 1, 11.0, TaskState.SUCCEEDED, inputs={"in.txt": (1, 2, "x")}
                )
            ]
        )
        assert store.attempts(wid)[0].inputs == {"in.txt": (1, 2, "x")}

    def test_attempts_come_in_start_order(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        store.write(
            [
                AttemptStarted(attempt(wid, run, "a", 2, start=30.0)),
                AttemptStarted(attempt(wid, run, "b", 1, start=20.0)),
                AttemptStarted(attempt(wid, run, "a", 1, start=10.0)),
            ]
        )
        assert [(a.task, a.number) for a in store.attempts(wid)] == [("a", 1), ("b", 1), ("a", 2)]
        assert [a.number for a in store.attempts(wid, "a")] == [1, 2]
        assert store.attempts(wid, "nobody") == []

    def test_attempts_span_runs(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a"))
        first = self.begin(store, wid, started=1.0)
        store.write([AttemptStarted(attempt(wid, first, "a", 1, start=2.0))])
        store.write([AttemptFinished(wid, "a", 1, 3.0, TaskState.FAILED, exit_code=1)])
        store.end_run(first, ended=4.0, status="failed")
        second = self.begin(store, wid, started=5.0)
        store.write([AttemptStarted(attempt(wid, second, "a", 2, start=6.0))])
        assert [(a.run_id, a.number) for a in store.attempts(wid, "a")] == [(first, 1), (second, 2)]

    def test_durations_are_the_mean_of_successful_attempts(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b", "c"))
        run = self.begin(store, wid)
        store.write(
            [
                AttemptStarted(attempt(wid, run, "a", 1, start=10.0)),
                AttemptFinished(wid, "a", 1, 14.0, TaskState.SUCCEEDED, exit_code=0),
                AttemptStarted(attempt(wid, run, "a", 2, start=20.0)),
                AttemptFinished(wid, "a", 2, 26.0, TaskState.SUCCEEDED, exit_code=0),
                AttemptStarted(attempt(wid, run, "b", 1, start=10.0)),
                AttemptFinished(wid, "b", 1, 100.0, TaskState.FAILED, exit_code=1),
                AttemptStarted(attempt(wid, run, "c", 1, start=10.0)),  # still running
            ]
        )
        assert store.durations(wid) == {"a": 5.0}

    def test_samples_of_one_attempt_in_time_order(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        late, early = (
            Sample(wid, "a", 1, 12.0, 2000, 1.5, 3),
            Sample(wid, "a", 1, 11.0, 1000, 0.5, 1),
        )
        store.write(
            [
                AttemptStarted(attempt(wid, run, "a")),
                AttemptStarted(attempt(wid, run, "b")),
                late,
                early,
                Sample(wid, "b", 1, 11.5, 10, 0.1, 1),
            ]
        )
        assert store.samples(wid, "a", 1) == [early, late]
        assert store.samples(wid, "a", 2) == []

    def test_user_data_in_recording_order(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        records = [
            UserData(wid, "b", 1, "events", 1000),
            UserData(wid, "a", 1, "histogram", {"bins": [1, 2, 3], "name": "pt", "ok": True}),
            UserData(wid, "a", 1, "events", None),
        ]
        store.write(
            [AttemptStarted(attempt(wid, run, "a")), AttemptStarted(attempt(wid, run, "b"))]
        )
        store.write(records)
        assert store.user_data(wid) == records
        assert store.user_data(wid, "a") == records[1:]

    def test_user_events_in_time_order(self, store: Store) -> None:
        wid = store.add_workflow(workflow("w", "a", "b"))
        run = self.begin(store, wid)
        late = UserEvent(wid, "a", 1, 12.0, {"stage": "reco", "events": 10})
        early = UserEvent(wid, "b", 1, 11.0, {"stage": "sim"})
        store.write(
            [AttemptStarted(attempt(wid, run, "a")), AttemptStarted(attempt(wid, run, "b"))]
        )
        store.write([late, early])
        assert store.user_events(wid) == [early, late]
        assert store.user_events(wid, "a") == [late]

    def test_closed_store_raises_store_error(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        store.close()
        with pytest.raises(StoreError):
            store.workflows()


class TestSQLiteStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(tmp_path / "herd.db")


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> Store:
        return PostgresStore(self.url)
