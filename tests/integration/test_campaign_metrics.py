"""``/metrics``'s text: the store as Prometheus gauges, read back by the official parser
(prometheus_client), on a store holding a campaign in every status."""

from __future__ import annotations

from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from herd.core.campaign import Run
from herd.core.model import TaskState
from herd.core.templates import parse
from herd.service import metrics
from herd.store.campaigned import Origin
from herd.store.sqlite import SQLiteStore

from .test_queue_contract import CPU2, LEASE, outcome

TEMPLATE = parse(
    yaml.safe_load(
        """
name: ecal
tasks:
  - {name: reco, cmd: 'reco {run}'}
  - {name: calib, group_by: fill, needs: [reco], cmd: 'calib {runs}'}
  - {name: plots, run_types: [collisions], needs: [reco], cmd: 'plots {run}'}
"""
    )
)


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_the_metrics_of_a_store_with_a_campaign(tmp_path: Path) -> None:
    assert "herd_workflows 0" in metrics.collect(workdir=tmp_path)  # no store yet: empty families
    (tmp_path / ".herd").mkdir()
    store = SQLiteStore(tmp_path / ".herd" / "herd.db")
    try:
        rec = store.create_campaign('pro"mpt', TEMPLATE, source=None, workdir="/w", now=1.0)
        who = Origin("h", "u", 1, ())
        runs = [Run(1, {"fill": 7, "run_type": "collisions"}), Run(2, {"fill": 7, "run_type": "x"})]
        store.add_runs(rec.id, [*runs, Run(3, {"fill": 8, "run_type": "x"})], now=2.0, origin=who)
        worker = store.register_worker(
            host="h", pid=2, user="u", resources=CPU2, now=1.0, lease=LEASE
        )
        claimed = store.claim(worker, {"cpu": 1.0}, now=2.0, lease=LEASE)
        store.finish(worker, [outcome(c, TaskState.FAILED) for c in claimed], now=3.0)
        text = metrics.render(store)
    finally:
        store.close()
    got = samples(text)
    c = 'pro"mpt'
    assert got[("herd_campaign_runs", frozenset({("campaign", c)}))] == 3
    assert got[("herd_campaign_open", frozenset({("campaign", c)}))] == 1

    def cell(task: str, status: str) -> float:
        return got[
            (
                "herd_campaign_tasks",
                frozenset({("campaign", c), ("task", task), ("status", status)}),
            )
        ]

    assert (cell("reco", "failed"), cell("reco", "new")) == (1, 2)  # reco[run=1] failed
    assert (cell("plots", "failed"), cell("plots", "skipped")) == (1, 2)  # cancelled: failed
    assert (cell("calib", "failed"), cell("calib", "merged"), cell("calib", "new")) == (1, 1, 1)
    assert cell("calib", "done") == 0  # every status is written, 0 included
    assert got[("herd_workers", frozenset({("state", "active")}))] == 1
    assert got[("herd_workflow_tasks", frozenset({("workflow", c)}))] == 5
    assert got[("herd_queue_tasks", frozenset({("workflow", c), ("state", "ready")}))] == 2
