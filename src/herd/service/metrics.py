"""What ``/metrics`` on ``herd serve`` shows: the store as Prometheus gauges, in the text
exposition format (version 0.0.4, written by hand: a few families, no dependency).

=================================  =========================================================
``herd_workflows``                 workflows in the store
``herd_workflow_tasks``            tasks of each workflow (``workflow``)
``herd_queue_tasks``               queued tasks of each workflow by state (``workflow``,
                                   ``state``)
``herd_workers``                   workers by state (``state``: active, draining, stopped, lost)
``herd_campaign_runs``             runs of each campaign (``campaign``)
``herd_campaign_open``             1 while a campaign takes runs, else 0 (``campaign``)
``herd_campaign_tasks``            run x task cells of each campaign by status (``campaign``,
                                   ``task``, ``status``: new ... skipped)
=================================  =========================================================

Every family is written with its ``# HELP`` and ``# TYPE`` lines even when it has no sample,
and every label combination of a campaign's tasks and statuses is written (0 included), so
that a status that empties shows 0 rather than vanishing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from herd.core import campaign as cc
from herd.service.hub import Hub
from herd.service.state import existing_store
from herd.store.base import Store

#: the content type of the text exposition format
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[Mapping[str, str], float]


def collect(*, workdir: Path, store: str | None = None) -> str:
    """The metrics of the store ``store`` names (empty families where herd never ran)."""
    with existing_store(workdir, store) as opened:
        return render(opened)


def collect_on(hub: Hub) -> str:
    """The metrics of the hub's store (``herd serve``)."""
    with hub.store() as opened:
        return render(opened)


def render(store: Store | None) -> str:
    """The metrics of an open store (None: no state yet) as exposition text."""
    families: list[tuple[str, str, list[Sample]]] = []
    workflows = store.workflows() if store is not None else []
    families.append(("herd_workflows", "Workflows in the store.", [({}, float(len(workflows)))]))
    families.append(
        (
            "herd_workflow_tasks",
            "Tasks of each workflow.",
            [({"workflow": w.name}, float(w.tasks)) for w in workflows],
        )
    )
    queued: list[Sample] = []
    for w in workflows:
        assert store is not None
        for state, n in sorted(store.queue_counts([w.id]).items(), key=lambda x: x[0].value):
            queued.append(({"workflow": w.name, "state": state.value}, float(n)))
    families.append(("herd_queue_tasks", "Queued tasks of each workflow by state.", queued))
    families.append(("herd_workers", "Workers by state.", _workers(store)))
    families += _campaigns(store)
    return "".join(_family(name, text, samples) for name, text, samples in families)


def _workers(store: Store | None) -> list[Sample]:
    counts = {"active": 0, "draining": 0, "stopped": 0, "lost": 0}
    for w in store.workers() if store is not None else []:
        counts[w.state] = counts.get(w.state, 0) + 1
    return [({"state": k}, float(v)) for k, v in counts.items()]


def _campaigns(store: Store | None) -> list[tuple[str, str, list[Sample]]]:
    runs: list[Sample] = []
    live: list[Sample] = []
    cells: list[Sample] = []
    for rec in store.campaigns() if store is not None else []:
        assert store is not None
        every = store.campaign_runs(rec.id)
        states = {n: r.state for n, r in store.task_records(rec.workflow_id).items()}
        matrix = cc.matrix(rec.template, every, store.campaign_groups(rec.id), states)
        runs.append(({"campaign": rec.name}, float(len(every))))
        live.append(({"campaign": rec.name}, 1.0 if rec.closed is None else 0.0))
        for t in rec.template.tasks:
            counts = dict.fromkeys(cc.Status, 0)
            for row in matrix.values():
                counts[row[t.name].status] += 1
            for status, n in counts.items():
                labels = {"campaign": rec.name, "task": t.name, "status": status.value}
                cells.append((labels, float(n)))
    return [
        ("herd_campaign_runs", "Runs of each campaign.", runs),
        ("herd_campaign_open", "1 while a campaign takes runs, else 0.", live),
        ("herd_campaign_tasks", "Run x task cells of each campaign by status.", cells),
    ]


def _family(name: str, text: str, samples: Iterable[Sample]) -> str:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        number = str(int(value)) if value.is_integer() else repr(value)
        lines.append(f"{name}{{{inner}}} {number}" if inner else f"{name} {number}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """A label value as the format wants it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
