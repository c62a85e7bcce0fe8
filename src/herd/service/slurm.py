"""Workers in Slurm allocations: a workflow submitted to a shared store and allocations of workers
sbatch'ed for it (:mod:`herd.launch.slurm.service`), and what those allocations are doing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from herd.core.model import Workflow
from herd.launch.slurm import service as launching
from herd.launch.slurm.allocations import NodeShape, Sizing
from herd.launch.slurm.service import AllocationRow, Planned, SlurmSubmit
from herd.service.state import existing_store
from herd.store import open_store

__all__ = ["AllocationRow", "Planned", "SlurmSubmit", "dry_run", "request", "status", "submit"]


def request(
    *,
    store: str,
    workdir: Path,
    walltime: int,
    nodes: int = 1,
    margin: float = 1.2,
    default_duration: float = 600.0,
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    gres: str | None = None,
    extra: Sequence[str] = (),
    node: tuple[int, float, int] | None = None,
    idle_exit: float = 60.0,
    watch: bool = False,
) -> SlurmSubmit:
    """What ``herd slurm submit`` asks of Slurm: allocations of at most ``nodes`` nodes and
    ``walltime`` seconds, sized by the known work times ``margin``; ``node``: (cores, MB, GPUs)
    of a node when sinfo should not be asked."""
    shape = NodeShape(*node) if node is not None else None
    return SlurmSubmit(
        store=store,
        workdir=workdir,
        sizing=Sizing(walltime, nodes, margin, default_duration),
        partition=partition,
        account=account,
        qos=qos,
        gres=gres,
        extra=tuple(extra),
        node=shape,
        idle_exit=idle_exit,
        watch=watch,
    )


def dry_run(workflow: Workflow, request: SlurmSubmit) -> tuple[list[Planned], int]:
    """The batch scripts a submission would sbatch now, and how many tasks wait for later."""
    return launching.dry_run(workflow, request, None)


def submit(workflow: Workflow, request: SlurmSubmit, say: Callable[[str], None]) -> None:
    """Submit ``workflow`` to the request's store and sbatch allocations of workers for it
    (with ``watch``, until the workflow ends); ``say`` hears what is done."""
    store = open_store(request.store)
    try:
        launching.slurm_submit(workflow, request, store, say)
    finally:
        store.close()


def status(workflow: str, workdir: Path, store: str | None) -> list[AllocationRow]:
    """herd's Slurm allocations for ``workflow`` and their workers as the store sees them (read
    only: a store with no herd state yet, its workers not started, shows none)."""
    if not store:
        return launching.slurm_status(workflow, workdir, None)
    with existing_store(workdir, store) as opened:
        return launching.slurm_status(workflow, workdir, opened)
