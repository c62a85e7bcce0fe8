"""The campaign transactions of the Store, on SQLite and on PostgreSQL: injection into a live
queue (needs already done, still to run, or failed), idempotence, groups, rerun, closing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from herd.core.campaign import Group, Run
from herd.core.model import TaskState
from herd.core.templates import parse
from herd.errors import UsageError
from herd.store.base import Store
from herd.store.campaigned import Origin
from herd.store.postgres import PostgresStore
from herd.store.sqlite import SQLiteStore

from .test_queue_contract import CPU2, LEASE, outcome

TEMPLATE = parse(
    yaml.safe_load(
        """
name: ecal
tasks:
  - {name: reco, cmd: 'reco {run}'}
  - {name: calib, group_by: fill, needs: [reco], cmd: 'calib {fill} {runs}'}
  - {name: plots, run_types: [collisions], needs: [reco], cmd: 'plots {run}'}
"""
    )
)
WHO = Origin("host", "user", 1, ("herd", "campaign"))


def run(number: int, fill: int, kind: str = "collisions") -> Run:
    return Run(number, {"fill": fill, "run_type": kind})


class CampaignContract:
    def make_store(self, tmp_path: Path) -> Store:
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = self.make_store(tmp_path)
        yield store
        store.close()

    def states(self, store: Store, wid: int) -> dict[str, TaskState]:
        return {n: r.state for n, r in store.task_records(wid).items()}

    def work(self, store: Store, fail: tuple[str, ...] = ()) -> list[str]:
        """Claim and finish everything ready (``fail``: these fail), until nothing is."""
        worker = store.register_worker(
            host="h", pid=2, user="u", resources=CPU2, now=1.0, lease=LEASE
        )
        done = []
        while claimed := store.claim(worker, {"cpu": 64.0}, now=2.0, lease=LEASE):
            outs = [
                outcome(c, TaskState.FAILED if c.task.name in fail else TaskState.SUCCEEDED)
                for c in claimed
            ]
            store.finish(worker, outs, now=3.0)
            done += [c.task.name for c in claimed]
        return done

    def test_create_inject_and_inject_again(self, store: Store) -> None:
        rec = store.create_campaign("prompt", TEMPLATE, source="t.yaml", workdir="/w", now=1.0)
        assert store.campaign("prompt") == rec and [c.name for c in store.campaigns()] == ["prompt"]
        first = store.add_runs(rec.id, [run(1, 7), run(2, 7, "cosmics")], now=2.0, origin=WHO)
        assert first.added == (1, 2) and first.queued == 3 and first.closed == ()
        again = store.add_runs(rec.id, [run(1, 7)], now=3.0, origin=WHO)
        assert again.added == () and again.known == (1,) and again.queued == 0
        states = self.states(store, rec.workflow_id)
        assert states == {
            "reco[run=1]": TaskState.READY,
            "plots[run=1]": TaskState.WAITING,
            "reco[run=2]": TaskState.READY,
        }
        assert store.open_campaigns([rec.workflow_id]) == 1
        assert store.open_campaigns([rec.workflow_id + 100]) == 0

    def test_a_group_joins_a_live_queue_whatever_its_needs_did(self, store: Store) -> None:
        rec = store.create_campaign("prompt", TEMPLATE, source=None, workdir="/w", now=1.0)
        store.add_runs(rec.id, [run(1, 7), run(2, 7), run(3, 7)], now=2.0, origin=WHO)
        assert sorted(self.work(store, fail=("reco[run=3]",))) == [
            "plots[run=1]", "plots[run=2]", "reco[run=1]", "reco[run=2]", "reco[run=3]",
        ]  # fmt: skip
        closed = store.add_runs(rec.id, [run(4, 8)], now=4.0, origin=WHO)
        assert closed.closed == (Group("calib", 7, (1, 2, 3)),)
        states = self.states(store, rec.workflow_id)
        assert states["calib[fill=7]"] is TaskState.CANCELLED  # reco[run=3] failed
        assert states["plots[run=3]"] is TaskState.CANCELLED
        assert store.campaign_groups(rec.id) == [Group("calib", 7, (1, 2, 3))]
        back = store.requeue(rec.id, ["reco[run=3]"], now=5.0, origin=WHO)
        assert set(back.tasks) == {"reco[run=3]", "plots[run=3]", "calib[fill=7]"}
        assert back.blocked == ()
        assert "calib[fill=7]" in self.work(store)
        states = self.states(store, rec.workflow_id)
        assert states["calib[fill=7]"] is TaskState.SUCCEEDED
        assert states["plots[run=3]"] is TaskState.SUCCEEDED

    def test_a_group_waits_for_needs_still_to_run(self, store: Store) -> None:
        rec = store.create_campaign("prompt", TEMPLATE, source=None, workdir="/w", now=1.0)
        store.add_runs(rec.id, [run(1, 7), run(2, 8)], now=2.0, origin=WHO)
        states = self.states(store, rec.workflow_id)
        assert states["calib[fill=7]"] is TaskState.WAITING
        self.work(store)
        assert self.states(store, rec.workflow_id)["calib[fill=7]"] is TaskState.SUCCEEDED

    def test_a_rerun_of_a_task_whose_need_failed_is_blocked(self, store: Store) -> None:
        rec = store.create_campaign("prompt", TEMPLATE, source=None, workdir="/w", now=1.0)
        store.add_runs(rec.id, [run(1, 7)], now=2.0, origin=WHO)
        self.work(store, fail=("reco[run=1]",))
        back = store.requeue(rec.id, ["plots[run=1]"], now=3.0, origin=WHO)
        assert back.tasks == ("plots[run=1]",) and back.blocked == ("plots[run=1]",)

    def test_closing_the_campaign_closes_its_groups_and_refuses_runs(self, store: Store) -> None:
        rec = store.create_campaign("prompt", TEMPLATE, source=None, workdir="/w", now=1.0)
        store.add_runs(rec.id, [run(1, 7)], now=2.0, origin=WHO)
        done = store.close_groups(
            rec.id, task=None, values=None, campaign=True, now=3.0, origin=WHO
        )
        assert done.closed == (Group("calib", 7, (1,)),) and done.queued == 1
        assert store.open_campaigns() == 0
        with pytest.raises(UsageError, match="closed"):
            store.add_runs(rec.id, [run(2, 7)], now=4.0, origin=WHO)

    def test_two_campaigns_over_the_same_runs_are_independent(self, store: Store) -> None:
        a = store.create_campaign("prompt", TEMPLATE, source=None, workdir="/w", now=1.0)
        b = store.create_campaign("rereco", TEMPLATE, source=None, workdir="/w", now=1.0)
        store.add_runs(a.id, [run(1, 7)], now=2.0, origin=WHO)
        store.add_runs(b.id, [run(1, 7)], now=2.0, origin=WHO)
        worker = store.register_worker(
            host="h", pid=2, user="u", resources=CPU2, now=1.0, lease=LEASE
        )
        claimed = store.claim(worker, CPU2, now=2.0, lease=LEASE, workflows=[a.workflow_id])
        store.finish(worker, [outcome(c, TaskState.FAILED) for c in claimed], now=3.0)
        assert self.states(store, a.workflow_id)["reco[run=1]"] is TaskState.FAILED
        assert self.states(store, b.workflow_id)["reco[run=1]"] is TaskState.READY


class TestSQLiteCampaigns(CampaignContract):
    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(tmp_path / "herd.db")


class TestPostgresCampaigns(CampaignContract):
    @pytest.fixture(autouse=True)
    def _url(self, postgres_url: str) -> None:
        self.url = postgres_url

    def make_store(self, tmp_path: Path) -> Store:
        return PostgresStore(self.url)
