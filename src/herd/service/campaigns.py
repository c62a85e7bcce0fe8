"""Campaigns (``herd campaign``): a template workflow instantiated per data run as runs arrive,
with a status per run and task (the CMS ECAL automation; docs/campaigns.md).

``create`` records a campaign (its template checked) and its workflow; ``add_runs`` injects
runs (each refused run named with the field it lacks; the others go in, in one transaction),
``watch`` does it periodically from a command's output; ``close`` closes groups (or the
campaign); ``status`` derives the runs x tasks matrix from the task states; ``rerun`` and
``invalidate`` put instances and what depends on them back in the queue; ``influx`` writes the
matrix as InfluxDB line protocol. Workers (``herd worker``) run the instances like any queued
task.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herd.core import campaign as cc
from herd.core.campaign import Cell, Run, Status, Template
from herd.errors import NotFoundError, UsageError
from herd.formats.campaign import load_template, parse_runs, run_of
from herd.formats.decoding import read_text
from herd.run.watch import Batch, watch_source
from herd.service.hub import Hub
from herd.service.state import existing_store, recorded_argv, where, writable
from herd.store.base import Store
from herd.store.campaigned import CampaignRecord, Injected, Origin, Requeued

__all__ = [
    "Added",
    "CampaignRecord",
    "CampaignStatus",
    "Injected",
    "Requeued",
    "RunRow",
    "Status",
    "Summary",
    "add_runs",
    "close",
    "create",
    "describe",
    "influx",
    "invalidate",
    "listing",
    "listing_on",
    "matrix_of",
    "read_runs",
    "rerun",
    "run_of",
    "runs_range",
    "status",
    "status_on",
    "summaries",
    "watch",
]


@dataclass(frozen=True, slots=True)
class Added:
    """What ``add_runs`` did: the store's account, and the runs refused (run, why)."""

    injected: Injected
    refused: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Summary:
    """A campaign in ``herd campaign list``: its record and how many run x task cells are in
    each status."""

    record: CampaignRecord
    counts: Mapping[Status, int]


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run of the matrix: its fields, a cell per task, and the results (``herd emit``) of
    the instances behind each cell, by instance."""

    run: Run
    cells: Mapping[str, Cell]
    results: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    updated: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CampaignStatus:
    """The runs x tasks matrix of a campaign (the tasks shown, the runs by number)."""

    record: CampaignRecord
    tasks: tuple[str, ...]
    rows: tuple[RunRow, ...]

    def to_json(self) -> dict[str, Any]:
        """What ``herd campaign status --json`` prints and the API returns: ``runs`` (run ->
        task -> status), ``fields`` (run -> its fields), ``jobs`` (run -> task -> the number
        of jobs, their counts by status, each job's results recorded with ``herd emit``)."""
        runs: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        jobs: dict[str, Any] = {}
        for row in self.rows:
            key = str(row.run.run)
            runs[key] = {t: str(row.cells[t].status) for t in self.tasks}
            fields[key] = dict(row.run.fields)
            detail = {
                t: {
                    "jobs": len(c.instances),
                    "by_status": {str(k): v for k, v in c.jobs.items()},
                    "instances": list(c.instances),
                    "results": row.results.get(t, {}),
                }
                for t in self.tasks
                if (c := row.cells[t]).instances
            }
            if detail:
                jobs[key] = detail
        return {
            "campaign": self.record.name,
            "workflow": self.record.name,
            "open": self.record.closed is None,
            "tasks": list(self.tasks),
            "runs": runs,
            "fields": fields,
            "jobs": jobs,
        }


# --- the store ----------------------------------------------------------------------------


@contextlib.contextmanager
def _campaign(
    name: str, workdir: Path, store: str | None, *, write: bool = False
) -> Iterator[tuple[Store, CampaignRecord]]:
    """The store and the campaign called ``name`` in it, or a UsageError saying what to do."""
    opening = writable(workdir, store) if write else existing_store(workdir, store)
    with opening as opened:
        rec = opened.campaign(name) if opened is not None else None
        if opened is None or rec is None:
            known = ", ".join(c.name for c in opened.campaigns()) if opened is not None else ""
            raise UsageError(
                f"no campaign '{name}' in {where(workdir, store)}"
                + (f" (there are: {known})" if known else "")
                + ": create it with `herd campaign create NAME --template FILE`"
            )
        yield opened, rec


def _origin(argv: Sequence[str]) -> Origin:
    return Origin(socket.gethostname(), getpass.getuser(), os.getpid(), recorded_argv(argv))


# --- create, list -------------------------------------------------------------------------


def create(
    name: str, template_path: str, *, workdir: Path, store: str | None = None
) -> CampaignRecord:
    """Record campaign ``name`` from the template file; its tasks run in ``workdir``."""
    if not name or not name.isprintable() or "/" in name:
        raise UsageError(f"'{name}': a campaign name is printable and holds no '/'")
    template: Template = load_template(template_path)
    with writable(workdir, store) as opened:
        if opened.campaign(name) is not None:
            raise UsageError(
                f"campaign '{name}' exists: add runs to it, or pick another name for a "
                "re-processing campaign"
            )
        if opened.workflow(name) is not None:
            raise UsageError(f"a workflow '{name}' exists in the store: pick another name")
        root = workdir.resolve()
        source = str(Path(template_path).resolve())
        return opened.create_campaign(
            name, template, source=source, workdir=str(root), now=time.time()
        )


def listing(*, workdir: Path, store: str | None = None) -> list[Summary]:
    """Every campaign, oldest first, with its status counts."""
    with existing_store(workdir, store) as opened:
        return [] if opened is None else summaries(opened)


def summaries(opened: Store) -> list[Summary]:
    """Every campaign of an open store, with its status counts."""
    out = []
    for rec in opened.campaigns():
        counts: dict[Status, int] = {}
        for row in _rows(opened, rec):
            for cell in row.cells.values():
                counts[cell.status] = counts.get(cell.status, 0) + 1
        out.append(Summary(rec, counts))
    return out


# --- runs arrive --------------------------------------------------------------------------


def read_runs(path: str) -> list[Run]:
    """The runs of a JSON-lines file (a malformed line: a SpecError with its number)."""
    return parse_runs(read_text(path), path)


def add_runs(
    name: str,
    runs: Sequence[Run],
    *,
    workdir: Path,
    store: str | None = None,
    argv: Sequence[str] = (),
) -> Added:
    """Inject ``runs``: those the template can expand go in (one transaction); the others are
    refused with the field they lack."""
    with _campaign(name, workdir, store, write=True) as (opened, rec):
        return _inject(opened, rec, runs, argv)


def _inject(opened: Store, rec: CampaignRecord, runs: Sequence[Run], argv: Sequence[str]) -> Added:
    good, refused = [], []
    for r in runs:
        why = cc.refusal(rec.template, r)
        if why is None:
            good.append(r)
        else:
            refused.append((r.run, why))
    injected = opened.add_runs(rec.id, good, now=time.time(), origin=_origin(argv))
    return Added(injected, tuple(refused))


def close(
    name: str,
    groups: Sequence[str],
    *,
    task: str | None = None,
    workdir: Path,
    store: str | None = None,
    argv: Sequence[str] = (),
) -> Injected:
    """Close the named groups (of ``task``, else of every grouped task) and queue their tasks;
    with no groups named, close the campaign: every open group, and no more runs."""
    with _campaign(name, workdir, store, write=True) as (opened, rec):
        if task is not None and rec.template.task(task).group_by is None:
            raise UsageError(
                f"task '{task}' of campaign '{name}' has no group_by: nothing to close"
            )
        return opened.close_groups(
            rec.id,
            task=task,
            values=list(groups) or None,
            campaign=not groups,
            now=time.time(),
            origin=_origin(argv),
        )


def watch(
    name: str,
    source: str,
    every: float,
    *,
    workdir: Path,
    store: str | None = None,
    argv: Sequence[str] = (),
    report: Callable[[str], None],
    rounds: int | None = None,
) -> int:
    """Run ``source`` every ``every`` seconds and inject the runs it prints, until SIGTERM or
    SIGINT (or ``rounds`` rounds); a failing source or a bad line is reported and skipped.
    Returns the number of runs added."""
    with _campaign(name, workdir, store, write=True) as (opened, rec):

        def inject(batch: Batch) -> None:
            added = _inject(opened, rec, batch.runs, argv)
            for run, why in added.refused:
                report(f"warning: run {run} refused: {why}")
            batch.added += len(added.injected.added)
            if added.injected.added:
                report(describe(added.injected))

        return watch_source(source, every, str(workdir), inject, report, rounds=rounds)


def describe(i: Injected) -> str:
    """What an injection (or a close) did, in one line."""
    parts = [f"{len(i.added)} run(s) added, {i.queued} task(s) queued"]
    if i.known:
        parts.append(f"{len(i.known)} already in the campaign (nothing done)")
    names = [f"{g.task}[{g.value}]" for g in i.closed]
    if len(names) > 6:
        parts.append(f"closed {len(names)} groups ({names[0]} ... {names[-1]})")
    elif names:
        parts.append("closed " + ", ".join(names))
    late = sorted({t for _, t in i.late})
    if late:
        runs = _ranges(sorted({r for r, _ in i.late}))
        parts.append(f"run(s) {runs} came after their {'/'.join(late)} group closed: not included")
    return "; ".join(parts)


def _ranges(runs: Sequence[int]) -> str:
    return ", ".join(str(r) for r in runs) if len(runs) <= 6 else f"{min(runs)}-{max(runs)}"


# --- status -------------------------------------------------------------------------------


def runs_range(text: str) -> tuple[int, int]:
    """``A-B``, ``A-`` or ``A`` as an inclusive range of run numbers."""
    first, dash, last = text.partition("-")
    try:
        lo = int(first) if first else 0
        hi = int(last) if last else (1 << 62 if dash else lo)
    except ValueError:
        raise UsageError(f"--runs {text}: write A-B, A- or A (run numbers)") from None
    if hi < lo:
        raise UsageError(f"--runs {text}: the first run is after the last")
    return lo, hi


def status(
    name: str,
    *,
    runs: tuple[int, int] | None = None,
    task: str | None = None,
    workdir: Path,
    store: str | None = None,
) -> CampaignStatus:
    """The runs x tasks matrix of campaign ``name`` (runs in ``runs``, only ``task``)."""
    with _campaign(name, workdir, store) as (opened, rec):
        return matrix_of(opened, rec, runs=runs, task=task)


def matrix_of(
    opened: Store,
    rec: CampaignRecord,
    *,
    runs: tuple[int, int] | None = None,
    task: str | None = None,
) -> CampaignStatus:
    """The matrix of a campaign of an open store."""
    tasks = tuple(t.name for t in rec.template.tasks)
    if task is not None:
        tasks = (rec.template.task(task).name,)
    return CampaignStatus(rec, tasks, tuple(_rows(opened, rec, runs, results=True)))


def _rows(
    opened: Store,
    rec: CampaignRecord,
    runs: tuple[int, int] | None = None,
    *,
    results: bool = False,
) -> list[RunRow]:
    every = opened.campaign_runs(rec.id)
    records = opened.task_records(rec.workflow_id)
    states = {name: r.state for name, r in records.items()}
    chosen = [r for r in every if runs is None or runs[0] <= r.run <= runs[1]]
    matrix = cc.matrix(rec.template, chosen, opened.campaign_groups(rec.id), states)
    data: dict[str, dict[str, Any]] = {}
    if results:
        for d in opened.user_data(rec.workflow_id):  # in recording order: the last one wins
            data.setdefault(d.task, {})[d.key] = d.value
    out = []
    for r in chosen:
        cells = matrix[r.run]
        found = {
            t: {i: data[i] for i in c.instances if i in data} for t, c in cells.items() if results
        }
        updated = {
            t: max((records[i].updated for i in c.instances if i in records), default=0.0)
            for t, c in cells.items()
        }
        out.append(RunRow(r, cells, {t: v for t, v in found.items() if v}, updated))
    return out


# --- rerun, invalidate --------------------------------------------------------------------


def rerun(
    name: str,
    runs: tuple[int, int],
    *,
    task: str | None = None,
    workdir: Path,
    store: str | None = None,
    argv: Sequence[str] = (),
) -> Requeued:
    """Queue again the failed tasks of ``runs`` (or ``task`` of them, whatever its status), and
    everything downstream."""
    with _campaign(name, workdir, store, write=True) as (opened, rec):
        rows = _rows(opened, rec, runs)
        seeds: list[str] = []
        for row in rows:
            for t, c in row.cells.items():
                if (task is None and c.status is Status.FAILED) or (
                    task is not None and t == rec.template.task(task).name
                ):
                    seeds += c.instances
        return opened.requeue(rec.id, seeds, now=time.time(), origin=_origin(argv))


def invalidate(
    name: str,
    runs: tuple[int, int],
    *,
    workdir: Path,
    store: str | None = None,
    argv: Sequence[str] = (),
) -> Requeued:
    """A run's data changed: queue every task of ``runs`` again, and what depends on them."""
    with _campaign(name, workdir, store, write=True) as (opened, rec):
        seeds = [
            i for row in _rows(opened, rec, runs) for c in row.cells.values() for i in c.instances
        ]
        return opened.requeue(rec.id, seeds, now=time.time(), origin=_origin(argv))


# --- export -------------------------------------------------------------------------------


def influx(name: str, *, workdir: Path, store: str | None = None) -> list[str]:
    """The matrix as InfluxDB line protocol: one point per run x task, measurement
    ``herd_campaign``, tags campaign, run, task, status (and the run's string fields), fields
    ``status`` (string) and ``code`` (0 new ... 5 skipped), timestamp in nanoseconds (when the
    task last changed; the run's arrival otherwise)."""
    with _campaign(name, workdir, store) as (opened, rec):
        rows = _rows(opened, rec)
        now = time.time()
    codes = {s: i for i, s in enumerate(Status)}
    lines = []
    for row in rows:
        extra = "".join(
            f",{_tag(k)}={_tag(str(v))}"
            for k, v in sorted(row.run.fields.items())
            if isinstance(v, str) and v
        )
        for t, c in row.cells.items():
            tags = f"campaign={_tag(rec.name)},run={row.run.run},task={_tag(t)},status={c.status}"
            stamp = int((row.updated.get(t) or now) * 1e9)
            lines.append(
                f'herd_campaign,{tags}{extra} status="{c.status}",code={codes[c.status]}i {stamp}'
            )
    return lines


def _tag(text: str) -> str:
    """A tag key or value escaped as line protocol wants (commas, equals signs, spaces)."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


# --- for a long-lived front end (herd serve) ----------------------------------------------


def listing_on(hub: Hub) -> list[Summary]:
    """:func:`listing` over the hub's store."""
    with hub.store() as opened:
        return summaries(opened)


def status_on(
    hub: Hub, name: str, *, runs: tuple[int, int] | None = None, task: str | None = None
) -> CampaignStatus:
    """:func:`status` over the hub's store; an unknown campaign is a :class:`NotFoundError`."""
    with hub.store() as opened:
        rec = opened.campaign(name)
        if rec is None:
            raise NotFoundError(f"no campaign '{name}': see GET /api/v1/campaigns")
        return matrix_of(opened, rec, runs=runs, task=task)
