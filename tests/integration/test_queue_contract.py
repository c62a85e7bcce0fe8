"""The worker protocol of the Store (submit, claim, heartbeat, finish, release, reap), tested once
for every implementation: a store subclasses :class:`QueueContract` with its ``make_store``
(two calls with the same ``tmp_path`` give two connections to one store: two participants).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from herd.core.model import Kill, Recovery, Task, TaskState, Workflow
from herd.store.base import AttemptFinished, Claimed, Outcome, QueuedTask, Store, UserData
from herd.store.postgres import PostgresStore
from herd.store.queued import ShippedLog, StaleReport
from herd.store.sqlite import SQLiteStore

LEASE = 30.0
CPU2 = {"cpu": 2.0, "mem": 8000.0}


def queued(name: str, seq: int, *needs: str, **fields: Any) -> QueuedTask:
    fields.setdefault("resources", {"cpu": 1.0})
    return QueuedTask(
        name,
        f"echo {name}",
        "/tmp",
        {},
        seq=seq,
        needs=needs,
        reason="new",
        fingerprint=f"fp-{name}",
        cmd_digest="c",
        env_digest="e",
        expanded=f"echo {name}",
        **fields,
    )


def outcome(c: Claimed, then: TaskState, end: float = 20.0, **fields: Any) -> Outcome:
    state = TaskState.SUCCEEDED if then is TaskState.SUCCEEDED else TaskState.FAILED
    code = 0 if state is TaskState.SUCCEEDED else 1
    finished = AttemptFinished(c.workflow_id, c.task.name, c.number, end, state, exit_code=code)
    return Outcome(finished, pid=777, started=end - 1, then=then, **fields)


class QueueContract:
    """Behaviour of the worker protocol every :class:`~herd.store.base.Store` must have."""

    def make_store(self, tmp_path: Path) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def submit(
        self,
        store: Store,
        *tasks: QueuedTask,
        pools: Mapping[str, float] | None = None,
        name: str = "wf",
    ) -> int:
        wf = Workflow(name, tuple(Task(t.name, f"echo {t.name}") for t in tasks))
        wid = store.add_workflow(wf)
        store.submit(wid, tasks, pools=pools or {}, now=1.0, host="h", user="u", pid=1, argv=[])
        return wid

    def worker(self, store: Store, pid: int = 10) -> int:
        return store.register_worker(
            host="node", pid=pid, user="u", resources=CPU2, now=1.0, lease=LEASE
        )

    def states(self, store: Store, wid: int) -> dict[str, TaskState]:
        return {name: rec.state for name, rec in store.task_records(wid).items()}

    def test_submit_makes_tasks_without_needs_ready(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1, "a"))
        assert self.states(store, wid) == {"a": TaskState.READY, "b": TaskState.WAITING}

    def test_claim_takes_ready_tasks_in_order_that_fit(self, store: Store) -> None:
        big = {"cpu": 2.0}
        wid = self.submit(store, queued("c", 2), queued("a", 0), queued("big", 1, resources=big))
        w = self.worker(store)
        got = store.claim(w, {"cpu": 1.0}, now=2.0, lease=LEASE)
        assert [(c.task.name, c.number, c.tries) for c in got] == [("a", 1, 1)]
        got = store.claim(w, {"cpu": 2.0}, now=2.0, lease=LEASE)
        assert [c.task.name for c in got] == ["big"]
        assert store.claim(w, {"cpu": 0.5}, now=2.0, lease=LEASE) == []
        assert self.states(store, wid)["a"] is TaskState.RUNNING
        (attempt,) = store.attempts(wid, "a")
        assert (attempt.state, attempt.host, attempt.reason) == (TaskState.RUNNING, "node", "new")

    def test_claim_holds_a_task_once(self, store: Store, tmp_path: Path) -> None:
        self.submit(store, queued("a", 0), queued("b", 1))
        other = self.make_store(tmp_path)
        try:
            first = store.claim(self.worker(store), CPU2, now=2.0, lease=LEASE, limit=1)
            second = other.claim(self.worker(other, 11), CPU2, now=2.0, lease=LEASE)
        finally:
            other.close()
        assert [c.task.name for c in first] == ["a"]
        assert [c.task.name for c in second] == ["b"]

    def test_pools_hold_across_workers(self, store: Store) -> None:
        tape = {"cpu": 1.0, "tape": 1.0}
        tasks = [queued(f"t{i}", i, resources=tape) for i in range(3)]
        wid = self.submit(
            store,
            *tasks,
            queued("s1", 3, semaphore="db"),
            queued("s2", 4, semaphore="db"),
            pools={"tape": 2},
        )
        w1, w2 = self.worker(store, 10), self.worker(store, 11)
        many = {"cpu": 100.0}
        first = store.claim(w1, many, now=2.0, lease=LEASE, limit=1)
        rest = store.claim(w2, many, now=2.0, lease=LEASE)
        assert [c.task.name for c in first + rest] == ["t0", "t1", "s1"]
        store.finish(w1, [outcome(first[0], TaskState.SUCCEEDED)], now=3.0)
        again = store.claim(w1, many, now=3.0, lease=LEASE)
        assert [c.task.name for c in again] == ["t2"]
        assert self.states(store, wid)["s2"] is TaskState.READY

    def test_finish_makes_dependents_ready_and_ends_the_run(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1), queued("c", 2, "a", "b"))
        w = self.worker(store)
        a, b = store.claim(w, CPU2, now=2.0, lease=LEASE)
        assert store.finish(w, [outcome(a, TaskState.SUCCEEDED)], now=3.0) == [True]
        assert self.states(store, wid)["c"] is TaskState.WAITING
        store.finish(w, [outcome(b, TaskState.SUCCEEDED)], now=3.0)
        assert self.states(store, wid)["c"] is TaskState.READY
        rec = store.task_records(wid)["a"]
        assert (rec.fingerprint, rec.attempts, rec.exit_code) == ("fp-a", 1, 0)
        assert store.runs(wid)[-1].status == "running"
        (c,) = store.claim(w, CPU2, now=4.0, lease=LEASE)
        store.finish(w, [outcome(c, TaskState.SUCCEEDED)], now=5.0)
        assert store.runs(wid)[-1].status == "succeeded"
        assert store.claim(w, CPU2, now=6.0, lease=LEASE) == []

    def test_finish_records_the_attempt_and_its_data(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0))
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        data = UserData(wid, "a", a.number, "events", 42)
        store.finish(w, [outcome(a, TaskState.FAILED, log_tail="boom\n", changes=[data])], now=3.0)
        (attempt,) = store.attempts(wid, "a")
        assert (attempt.state, attempt.pid, attempt.exit_code) == (TaskState.FAILED, 777, 1)
        assert (attempt.start, attempt.end) == (19.0, 20.0)  # the process's, not the claim's
        assert store.failure_log(wid, "a", 1) == "boom\n"
        assert store.user_data(wid) == [data]
        assert store.runs(wid)[-1].status == "failed"

    def test_failure_cancels_what_needs_it(self, store: Store) -> None:
        wid = self.submit(
            store, queued("a", 0), queued("b", 1, "a"), queued("c", 2, "b"), queued("d", 3)
        )
        w = self.worker(store)
        a, _d = store.claim(w, CPU2, now=2.0, lease=LEASE)
        store.finish(w, [outcome(a, TaskState.FAILED)], now=3.0)
        states = self.states(store, wid)
        assert (states["b"], states["c"]) == (TaskState.CANCELLED, TaskState.CANCELLED)
        assert store.task_records(wid)["c"].reason == "needs 'a', which failed"
        assert {store.task_records(wid)[t].cancelled_by for t in "bc"} == {"a"}
        assert states["d"] is TaskState.RUNNING

    def test_a_retry_waits_for_its_back_off(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0, retries=1))
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        store.finish(
            w, [outcome(a, TaskState.READY, 3.0, not_before=10.0, reason="exit 1")], now=3.0
        )
        assert self.states(store, wid)["a"] is TaskState.RETRYING
        assert store.claim(w, CPU2, now=9.0, lease=LEASE) == []
        (again,) = store.claim(w, CPU2, now=10.0, lease=LEASE)
        assert (again.number, again.tries) == (2, 2)
        assert store.attempts(wid, "a")[-1].reason == "retry 1"

    def test_a_recovery_raises_the_demand(self, store: Store) -> None:
        self.submit(
            store, queued("a", 0, resources={"cpu": 1.0, "mem": 1000.0}, recovery=Recovery())
        )
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        more = {"cpu": 1.0, "mem": 1500.0}
        o = outcome(a, TaskState.READY, resources=more, timeout=9.0, recovered=True)
        store.finish(w, [o], now=3.0)
        (again,) = store.claim(w, CPU2, now=3.0, lease=LEASE)
        assert (dict(again.resources), again.timeout, again.recoveries) == (more, 9.0, 1)

    def test_an_expired_lease_is_reaped_once_and_fences_the_old_worker(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0, retries=1))
        w1, w2 = self.worker(store, 10), self.worker(store, 11)
        (a,) = store.claim(w1, CPU2, now=2.0, lease=LEASE)
        assert store.reap(now=2.0 + LEASE - 1) == []
        (lost,) = store.reap(now=2.0 + LEASE + 1)
        assert (lost.task, lost.worker_id, lost.then) == ("a", w1, TaskState.READY)
        assert store.reap(now=2.0 + LEASE + 1) == []
        attempt = store.attempts(wid, "a")[0]
        assert attempt.kill_reason.startswith("lost")
        assert attempt.kill is Kill.LOST
        assert [r.state for r in store.workers()] == ["lost", "lost"]
        (b,) = store.claim(w2, CPU2, now=40.0, lease=LEASE)
        assert store.finish(w1, [outcome(a, TaskState.SUCCEEDED)], now=41.0) == [False]
        assert store.finish(w2, [outcome(b, TaskState.SUCCEEDED)], now=41.0) == [True]
        assert [x.state for x in store.attempts(wid, "a")] == [
            TaskState.FAILED,
            TaskState.SUCCEEDED,
        ]

    def test_a_late_finish_is_refused_and_kept_as_stale(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0, retries=1))
        w1, w2 = self.worker(store, 10), self.worker(store, 11)
        (a,) = store.claim(w1, CPU2, now=2.0, lease=LEASE)
        store.reap(now=2.0 + LEASE + 1)
        (b,) = store.claim(w2, CPU2, now=40.0, lease=LEASE)
        late = outcome(a, TaskState.SUCCEEDED, log_tail="x", shipped=ShippedLog("out", "err"))
        assert store.finish(w1, [late], now=41.0) == [False]
        (stale,) = store.stale_reports(wid)
        assert stale == StaleReport(wid, "a", 1, w1, 41.0, TaskState.SUCCEEDED, 0)
        assert store.shipped_log(wid, "a", 1) is None  # nothing else of a stale report is kept
        assert store.failure_log(wid, "a", 1) is None
        assert self.states(store, wid)["a"] is TaskState.RUNNING  # b holds it
        assert store.finish(w1, [late], now=42.0) == [False]  # again: still one report
        assert len(store.stale_reports(wid)) == 1
        assert store.finish(w2, [outcome(b, TaskState.SUCCEEDED)], now=43.0) == [True]
        assert self.states(store, wid)["a"] is TaskState.SUCCEEDED

    def test_a_finish_sent_again_is_accepted_once(self, store: Store) -> None:
        """A worker whose request timed out after the store committed sends it again."""
        wid = self.submit(store, queued("a", 0), queued("b", 1, "a"))
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        done = outcome(a, TaskState.SUCCEEDED)
        assert store.finish(w, [done], now=20.0) == [True]
        assert store.finish(w, [done], now=21.0) == [True]
        assert store.stale_reports(wid) == []
        assert len(store.attempts(wid, "a")) == 1
        assert self.states(store, wid) == {"a": TaskState.SUCCEEDED, "b": TaskState.READY}
        other = replace(done, pid=778)  # another process's report is not the same one
        assert store.finish(w, [other], now=22.0) == [False]

    def test_shipped_output_is_kept_with_the_attempt(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1))
        w = self.worker(store)
        a, b = store.claim(w, CPU2, now=2.0, lease=LEASE)
        log = ShippedLog("line 1\nline 2\n", "warn\n", truncated=True)
        ok = outcome(a, TaskState.SUCCEEDED, shipped=log)
        bad = outcome(b, TaskState.FAILED, log_tail="warn\n", shipped=ShippedLog("", "warn\n"))
        assert store.finish(w, [ok, bad], now=20.0) == [True, True]
        assert store.shipped_log(wid, "a", 1) == log
        assert store.shipped_log(wid, "b", 1) == ShippedLog("", "warn\n", False)
        assert store.failure_log(wid, "b", 1) == "warn\n"
        assert store.shipped_log(wid, "a", 2) is None

    def test_a_batch_finish_counts_only_the_leases_still_held(self, store: Store) -> None:
        wid = self.submit(
            store, queued("a", 0, retries=1), queued("b", 1), queued("c", 2, "a", "b")
        )
        w1, w2 = self.worker(store, 10), self.worker(store, 11)
        (a,) = store.claim(w1, CPU2, now=2.0, lease=LEASE, limit=1)  # until 32
        (b,) = store.claim(w1, CPU2, now=20.0, lease=LEASE, limit=1)  # until 50
        assert [x.task for x in store.reap(now=40.0)] == ["a"]
        done = [outcome(a, TaskState.SUCCEEDED, 41.0), outcome(b, TaskState.SUCCEEDED, 41.0)]
        assert store.finish(w1, done, now=41.0) == [False, True]
        assert [x.state for x in store.attempts(wid, "a")] == [TaskState.FAILED]
        assert [x.state for x in store.attempts(wid, "b")] == [TaskState.SUCCEEDED]
        assert self.states(store, wid) == {
            "a": TaskState.READY,
            "b": TaskState.SUCCEEDED,
            "c": TaskState.WAITING,
        }
        (a2,) = store.claim(w2, CPU2, now=42.0, lease=LEASE)
        assert store.finish(w2, [outcome(a2, TaskState.SUCCEEDED, 43.0)], now=43.0) == [True]
        assert self.states(store, wid)["c"] is TaskState.READY

    def test_a_batch_finish_counts_a_shared_need_down_once_per_task(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1), queued("c", 2, "a", "b"))
        w = self.worker(store)
        a, b = store.claim(w, CPU2, now=2.0, lease=LEASE)
        done = [outcome(a, TaskState.SUCCEEDED), outcome(b, TaskState.SUCCEEDED)]
        assert store.finish(w, done, now=3.0) == [True, True]
        assert self.states(store, wid)["c"] is TaskState.READY
        assert [c.task.name for c in store.claim(w, CPU2, now=4.0, lease=LEASE)] == ["c"]

    def test_finish_and_claim_takes_what_the_finish_made_ready(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1, "a"), queued("c", 2))
        w1, w2 = self.worker(store, 10), self.worker(store, 11)
        (a,) = store.claim(w1, {"cpu": 1.0}, now=2.0, lease=LEASE)
        (c,) = store.claim(w2, {"cpu": 1.0}, now=2.0, lease=LEASE)
        accepted, claimed = store.finish_and_claim(
            w1, [outcome(a, TaskState.SUCCEEDED, 3.0)], {"cpu": 1.0}, now=3.0, lease=LEASE
        )
        assert accepted == [True]
        assert [(x.task.name, x.number, x.tries) for x in claimed] == [("b", 1, 1)]
        assert self.states(store, wid) == {
            "a": TaskState.SUCCEEDED,
            "b": TaskState.RUNNING,
            "c": TaskState.RUNNING,
        }
        assert store.heartbeat(w1, now=4.0, lease=LEASE) == {(wid, "b", 1)}
        accepted, claimed = store.finish_and_claim(
            w1, [outcome(c, TaskState.SUCCEEDED, 5.0)], {"cpu": 1.0}, now=5.0, lease=LEASE
        )
        assert (accepted, claimed) == ([False], [])  # c is w2's: nothing of it was written
        assert self.states(store, wid)["c"] is TaskState.RUNNING

    def test_finish_and_claim_ends_the_run_with_its_last_task(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1, "a"), queued("c", 2))
        w = self.worker(store)
        (a,) = store.claim(w, {"cpu": 1.0}, now=2.0, lease=LEASE)
        _, (b,) = store.finish_and_claim(
            w, [outcome(a, TaskState.SUCCEEDED, 3.0)], {"cpu": 1.0}, now=3.0, lease=LEASE
        )
        assert store.runs(wid)[-1].status == "running"
        _, (c,) = store.finish_and_claim(
            w, [outcome(b, TaskState.SUCCEEDED, 4.0)], {"cpu": 1.0}, now=4.0, lease=LEASE
        )
        assert (b.task.name, c.task.name) == ("b", "c")
        assert store.runs(wid)[-1].status == "running"
        assert store.finish_and_claim(
            w, [outcome(c, TaskState.FAILED, 5.0)], {"cpu": 1.0}, now=5.0, lease=LEASE
        ) == ([True], [])
        assert store.runs(wid)[-1].status == "failed"

    def test_a_lost_attempt_spends_a_retry(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1, "a"))
        (_a,) = store.claim(self.worker(store), CPU2, now=2.0, lease=LEASE)
        (lost,) = store.reap(now=100.0)
        assert lost.then is TaskState.FAILED
        assert self.states(store, wid) == {"a": TaskState.FAILED, "b": TaskState.CANCELLED}

    def test_heartbeats_keep_the_lease(self, store: Store) -> None:
        self.submit(store, queued("a", 0))
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        assert store.heartbeat(w, now=20.0, lease=LEASE) == {(a.workflow_id, "a", 1)}
        assert store.reap(now=40.0) == []
        assert store.reap(now=51.0) != []
        assert store.heartbeat(w, now=52.0, lease=LEASE) == set()

    def test_released_tasks_are_ready_at_once_without_spending_a_try(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0))
        w = self.worker(store)
        (_a,) = store.claim(w, CPU2, now=2.0, lease=LEASE)
        (lost,) = store.release(w, [(wid, "a", 1)], now=3.0, reason="released: draining")
        assert lost.then is TaskState.READY
        (again,) = store.claim(w, CPU2, now=3.0, lease=LEASE)
        assert (again.number, again.tries) == (2, 1)
        assert store.attempts(wid, "a")[0].state is TaskState.CANCELLED
        assert store.attempts(wid, "a")[0].kill is Kill.INTERRUPTED

    def test_resubmitting_keeps_running_tasks(self, store: Store) -> None:
        wid = self.submit(store, queued("a", 0), queued("b", 1))
        w = self.worker(store)
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE, limit=1)
        self.submit(store, queued("a", 0), queued("b", 1), queued("c", 2, "a"))
        assert self.states(store, wid) == {
            "a": TaskState.RUNNING,
            "b": TaskState.READY,
            "c": TaskState.WAITING,
        }
        assert store.finish(w, [outcome(a, TaskState.SUCCEEDED)], now=3.0) == [True]
        assert self.states(store, wid)["c"] is TaskState.READY

    def test_a_task_asking_more_cores_than_the_worker_has_gets_them_all(self, store: Store) -> None:
        self.submit(store, queued("wide", 0, resources={"cpu": 8.0, "mem": 100.0}))
        w = self.worker(store)
        assert store.claim(w, {"cpu": 2.0}, now=2.0, lease=LEASE) == []
        (c,) = store.claim(w, {"cpu": 4.0}, now=2.0, lease=LEASE, capacity={"cpu": 4.0})
        assert dict(c.resources) == {"cpu": 4.0, "mem": 100.0}

    def test_claims_follow_the_worker_filters(self, store: Store) -> None:
        one = self.submit(store, queued("a", 0, duration=50.0), name="one")
        two = self.submit(store, queued("b", 0), name="two")
        w = self.worker(store)
        got = store.claim(w, CPU2, now=2.0, lease=LEASE, workflows=[two])
        assert [c.workflow for c in got] == ["two"]
        assert store.claim(w, CPU2, now=2.0, lease=LEASE, ends_before=40.0) == []
        (a,) = store.claim(w, CPU2, now=2.0, lease=LEASE, ends_before=60.0)
        assert a.workflow_id == one

    def test_workers_show_what_they_hold(self, store: Store) -> None:
        self.submit(store, queued("a", 0), queued("b", 1))
        w = self.worker(store)
        store.claim(w, CPU2, now=2.0, lease=LEASE)
        (rec,) = store.workers()
        assert (rec.id, rec.host, rec.state, rec.held, dict(rec.resources)) == (
            w,
            "node",
            "active",
            2,
            CPU2,
        )
        store.stop_worker(w, now=3.0)
        (rec,) = store.workers()
        assert (rec.state, rec.held) == ("stopped", 0)

    def test_wait_for_work_sees_another_participant(self, store: Store, tmp_path: Path) -> None:
        store.wait_for_work(0.0)  # what happened before counts as seen
        other = self.make_store(tmp_path)
        try:
            self.submit(other, queued("a", 0))
        finally:
            other.close()
        store.wait_for_work(30.0)  # returns at once: the test would time out otherwise
        assert store.claim(self.worker(store), CPU2, now=2.0, lease=LEASE) != []

    def test_queue_counts_by_state(self, store: Store) -> None:
        assert store.queue_counts() == {}
        one = self.submit(store, queued("a", 0), queued("b", 1, "a"), name="one")
        self.submit(store, queued("c", 0), name="two")
        store.claim(self.worker(store), CPU2, now=2.0, lease=LEASE, workflows=[one])
        assert store.queue_counts([one]) == {TaskState.RUNNING: 1, TaskState.WAITING: 1}
        assert store.queue_counts()[TaskState.READY] == 1

    def test_queue_states_of_named_tasks(self, store: Store) -> None:
        one = self.submit(store, queued("a", 0), queued("b", 1, "a"), queued("c", 2))
        store.claim(self.worker(store), {"cpu": 1}, now=2.0, lease=LEASE)
        assert store.queue_states(one, ["a", "b", "nope"]) == {
            "a": TaskState.RUNNING,
            "b": TaskState.WAITING,
        }
        assert store.queue_states(one, []) == {}

    def test_temp_inputs_travel_with_the_task(self, store: Store) -> None:
        temp = {"/data/hits.tmp": ("a", "b")}
        self.submit(store, replace(queued("a", 0), temp_inputs=temp))
        (claimed,) = store.claim(self.worker(store), CPU2, now=2.0, lease=LEASE)
        assert claimed.task.temp_inputs == temp


class TestSQLiteQueue(QueueContract):
    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(tmp_path / "herd.db")


class TestPostgresQueue(QueueContract):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> Store:
        return PostgresStore(self.url)


def test_a_queued_spec_keeps_what_this_herd_knows() -> None:
    """Workers of several herd versions share a store: a field a newer herd added is left out,
    and an empty ``temp_inputs`` is not written (older workers read the spec)."""
    import json

    from herd.store.queued import decode_spec, encode_spec

    task = queued("a", 0)
    assert "temp_inputs" not in json.loads(encode_spec(task))
    newer = {**json.loads(encode_spec(task)), "added_later": [1, 2]}
    assert decode_spec(json.dumps(newer)) == task
