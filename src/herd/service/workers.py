"""Many machines: plan a workflow into a store's queue, run a worker on it, reap lost leases.

``submit`` is ``herd run``'s first half (:func:`herd.run.submit.prepare` and
:func:`herd.run.submit.record`: the plan and its skips recorded) plus the queue: every task to
run becomes a :class:`~herd.store.base.QueuedTask` workers claim (:mod:`herd.run.enqueue`).
``work`` runs one worker (:mod:`herd.run.worker`) until it is told to stop, runs out of work or of
time, on the store or, with ``server``, on a herd server over HTTP (:mod:`herd.store.remote`);
``reap`` takes back the attempts of workers whose leases expired. The server's side of HTTP
workers is :mod:`herd.service.dispatch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from herd.core.graph import Graph
from herd.core.model import Limits, Workflow
from herd.errors import UsageError
from herd.exec.machine import parse_named, submit_limits
from herd.exec.machine import worker_resources as offered
from herd.run.enqueue import Submitted, submit_workflow
from herd.run.submit import RunOptions
from herd.run.worker import Worker, WorkerOptions, WorkerResult
from herd.service.state import open_existing, writable
from herd.store.queued import Lost

#: the server ``herd worker`` works for when neither --server nor --store is given
SERVER_ENV = "HERD_SERVER"
#: the worker token, where no other process can read it (unlike a command line)
TOKEN_ENV = "HERD_TOKEN"

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


def work(
    workdir: Path,
    store: str | None,
    options: WorkerOptions,
    *,
    server: str | None = None,
    token: str | None = None,
    retry_for: float = 600.0,
) -> WorkerResult:
    """Run one worker until it stops (see :class:`~herd.run.worker.Worker`): on the store, or on
    the herd server at ``server`` (else ``$HERD_SERVER`` when no ``store`` is named) with the
    worker token ``token`` (else ``$HERD_TOKEN``), retrying for ``retry_for`` seconds while the
    server does not answer."""
    if server and store:
        raise UsageError(f"--server {server} or --store {store}: a worker serves one, not both")
    server = server or (None if store else os.environ.get(SERVER_ENV) or None)
    if server is None:
        with writable(workdir, store) as opened:
            return Worker(opened, options).run()
    from herd.store.remote import RemoteQueue  # (only here: it loads the HTTP client)

    token = token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(
            f"herd worker --server {server} needs a worker token: --token or $HERD_TOKEN "
            "(created with `herd token create --scope worker` where the server runs)"
        )
    remote = RemoteQueue(server, token, retry_for=retry_for)
    try:
        return Worker(remote, options).run()
    finally:
        remote.close()


def reap(workdir: Path, store: str | None) -> list[Lost]:
    """Take back every attempt whose lease expired: it runs again elsewhere (or fails once its
    retries are spent)."""
    opened = open_existing(workdir, store, ": nothing to reap")
    try:
        return opened.reap(now=time.time())
    finally:
        opened.close()
