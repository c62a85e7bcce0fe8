"""Many machines: plan a workflow into a store's queue, run a worker on it, reap lost leases.

``submit`` is ``herd run``'s first half (:func:`herd.run.submit.prepare` and
:func:`herd.run.submit.record`: the plan and its skips recorded) plus the queue: every task to
run becomes a :class:`~herd.store.base.QueuedTask` workers claim (:mod:`herd.run.enqueue`).
``work`` runs one worker (:mod:`herd.run.worker`) until it is told to stop, runs out of work or of
time; ``reap`` takes back the attempts of workers whose leases expired.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from herd.core.graph import Graph
from herd.core.model import Limits, Workflow
from herd.exec.machine import parse_named, submit_limits
from herd.exec.machine import worker_resources as offered
from herd.run.enqueue import Submitted, submit_workflow
from herd.run.submit import RunOptions
from herd.run.worker import Worker, WorkerOptions, WorkerResult
from herd.service.state import writable
from herd.store.queued import Lost

__all__ = [
    "Submitted",
    "WorkerOptions",
    "WorkerResult",
    "limits",
    "reap",
    "resources",
    "submit",
    "work",
]


def submit(workflow: Workflow, options: RunOptions, graph: Graph | None = None) -> Submitted:
    """Plan ``workflow`` into the store of ``options`` and queue what must run; return at once."""
    with writable(options.workdir, options.store) as store:
        return submit_workflow(workflow, options, store, graph)


def limits(
    workflow: Workflow,
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Sequence[str] = (),
) -> Limits:
    """The limits a submission checks and records: the named pools that hold across all workers
    (the spec's and ``named``, written ``NAME=N``), and cores, memory, GPUs only when given."""
    return submit_limits(workflow, cpu=cpu, mem=mem, gpu=gpu, named=parse_named(list(named)))


def resources(
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Sequence[str] = (),
) -> dict[str, float]:
    """What a worker offers: these values, then its Slurm allocation, then this machine;
    ``named`` holds ``NAME=N`` pools of its own as the user wrote them."""
    return offered(cpu=cpu, mem=mem, gpu=gpu, named=parse_named(list(named)))


def work(workdir: Path, store: str | None, options: WorkerOptions) -> WorkerResult:
    """Run one worker on the store until it stops (see :class:`~herd.run.worker.Worker`)."""
    with writable(workdir, store) as opened:
        return Worker(opened, options).run()


def reap(workdir: Path, store: str | None) -> list[Lost]:
    """Take back every attempt whose lease expired: it runs again elsewhere (or fails once its
    retries are spent)."""
    with writable(workdir, store) as opened:
        return opened.reap(now=time.time())
