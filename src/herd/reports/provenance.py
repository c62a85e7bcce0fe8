"""Provenance records as JSON, one per attempt (Pegasus kickstart's record is the model)."""

from __future__ import annotations

import dataclasses
from typing import Any

from herd.errors import UsageError
from herd.store.base import Store, WorkflowRecord


def records(
    store: Store, workflow: WorkflowRecord, task: str, attempt: int | None = None
) -> list[dict[str, Any]]:
    """Every attempt of ``task`` (or attempt number ``attempt``) with its samples and user data."""
    attempts = [
        a for a in store.attempts(workflow.id, task) if attempt is None or a.number == attempt
    ]
    if not attempts:
        what = f"attempt {attempt} of task '{task}'" if attempt else f"task '{task}'"
        raise UsageError(
            f"no record of {what} in workflow '{workflow.name}': see `herd status --all`"
        )
    data = store.user_data(workflow.id, task)
    events = store.user_events(workflow.id, task)
    out = []
    for a in attempts:
        rec = dataclasses.asdict(a)
        rec["state"] = a.state.value
        rec["workflow"] = workflow.name
        rec["duration"] = (a.end - a.start) if a.end is not None else None
        rec["samples"] = [
            {"time": s.time, "rss": s.rss, "cpu": s.cpu, "processes": s.processes}
            for s in store.samples(workflow.id, task, a.number)
        ]
        rec["user_data"] = {d.key: d.value for d in data if d.number == a.number}
        rec["user_events"] = [{"time": e.time, **e.data} for e in events if e.number == a.number]
        out.append(rec)
    return out
