"""``herd slurm submit|status``: workers in Slurm allocations (docs/batch.md)."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import TYPE_CHECKING, Any

from herd.cli.command import command
from herd.cli.options import add_file, load_spec
from herd.errors import UsageError

if TYPE_CHECKING:
    from herd.service.slurm import AllocationRow, SlurmSubmit


def _setup_slurm(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["submit", "status"], help="submit allocations, or show them")
    add_file(p)
    p.add_argument("--store", metavar="URL", help="the shared store (default: $HERD_STORE)")
    g = p.add_argument_group("allocations")
    g.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="at most N nodes per allocation (default 1)",
    )
    g.add_argument(
        "--time", default="4:00:00", help="at most this walltime per allocation (default 4:00:00)"
    )
    add_site(g)
    g.add_argument("--gres", help="generic resources per node, e.g. gpu:4")
    g.add_argument(
        "--extra",
        action="append",
        default=[],
        metavar="'SBATCH OPTION'",
        help="one more sbatch option (repeatable)",
    )
    g.add_argument(
        "--margin", type=float, default=1.2, help="walltime = known work x margin (default 1.2)"
    )
    g.add_argument(
        "--default-duration",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="assumed for tasks with no known duration (default 600)",
    )
    g.add_argument("--node-cpus", type=int, metavar="N", help="cores of a node (default: sinfo)")
    g.add_argument(
        "--node-mem", type=float, metavar="MB", help="memory of a node (with --node-cpus)"
    )
    g.add_argument("--node-gpus", type=int, metavar="N", help="GPUs of a node (with --node-cpus)")
    g.add_argument(
        "--idle-exit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a worker with nothing to claim stops after this (default 60)",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="stay and add allocations as stages become ready, until the workflow ends",
    )
    p.add_argument("--dry-run", action="store_true", help="print the batch scripts, submit nothing")
    p.add_argument("--json", action="store_true", help="status: machine-readable")


@command(
    "slurm",
    "Run a workflow on Slurm nodes: submit it to a store and sbatch allocations of workers "
    "(one per node, sized per resource class, added as stages become ready); or show them.",
    "herd slurm submit wf.yaml --store postgresql://db/herd --nodes 4 --time 2:00:00 --watch",
    setup=_setup_slurm,
)
def cmd_slurm(args: argparse.Namespace) -> int:
    if args.action == "status":
        return _status(args)
    return _submit(args)


def _request(args: argparse.Namespace) -> SlurmSubmit:
    from herd.service import slurm

    store = args.store or os.environ.get("HERD_STORE")
    if not store:
        raise UsageError(
            "herd slurm submit needs --store URL (or $HERD_STORE): the nodes' workers share it"
        )
    node = None
    if args.node_cpus is not None:
        node = (args.node_cpus, args.node_mem or 0.0, args.node_gpus or 0)
    return slurm.request(
        store=store,
        workdir=args.workdir,
        walltime=_seconds(args.time),
        nodes=args.nodes,
        margin=args.margin,
        default_duration=args.default_duration,
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        gres=args.gres,
        extra=args.extra,
        node=node,
        idle_exit=args.idle_exit,
        watch=args.watch,
    )


def _submit(args: argparse.Namespace) -> int:
    from herd.service import slurm

    workflow = load_spec(args)
    request = _request(args)
    if args.dry_run:
        planned, later = slurm.dry_run(workflow, request)
        for p in planned:
            print(p.text)
        print(
            f"# herd: dry run: {len(planned)} allocation(s) now; {later} task(s) wait for later stages"
        )
        return 0
    slurm.submit(workflow, request, print)
    return 0


def _status(args: argparse.Namespace) -> int:
    from herd.service import slurm

    workflow = load_spec(args)
    rows = slurm.status(workflow.name, args.workdir, args.store or os.environ.get("HERD_STORE"))
    if args.json:
        print(json.dumps([_row(r) for r in rows], indent=1))
        return 0
    if not rows:
        print(
            f"no Slurm allocation of herd for '{workflow.name}' (squeue shows jobs until MinJobAge)"
        )
    for r in rows:
        j = r.job
        print(
            f"allocation {j.job_id}  {j.name}  {j.state.value}  nodes {j.node or '-'}  left {j.left}"
        )
        for w in r.workers:
            seen = (
                f"{w.record.state}, {w.record.held} task(s) held, heartbeat "
                f"{time.time() - w.record.heartbeat:.0f} s ago"
                if w.record
                else "not in the store"
            )
            print(f"  worker {w.node} pid {w.pid}: {seen}")
    return 0


def _row(r: AllocationRow) -> dict[str, Any]:
    j = r.job
    return {
        "job_id": j.job_id,
        "name": j.name,
        "state": j.state.value,
        "nodes": j.node,
        "time_left": j.left,
        "workers": [
            {
                "node": w.node,
                "host": w.host,
                "pid": w.pid,
                "state": w.record.state if w.record else None,
                "held": w.record.held if w.record else None,
                "heartbeat": w.record.heartbeat if w.record else None,
            }
            for w in r.workers
        ],
    }


def _seconds(text: str) -> int:
    """Slurm's time formats: ``MM``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``."""
    days, _, rest = text.rpartition("-")
    try:
        parts = [int(x) for x in rest.split(":")]
        d = int(days) if days else 0
    except ValueError:
        raise UsageError(f"--time {text}: write minutes, HH:MM:SS or D-HH:MM:SS") from None
    if len(parts) == 1 and not days:
        h, m, s = 0, parts[0], 0
    else:
        h, m, s = [*parts, 0, 0, 0][:3]
    total = ((d * 24 + h) * 60 + m) * 60 + s
    if total <= 0:
        raise UsageError(f"--time {text}: give a positive time")
    return total


def add_site(g: argparse._ArgumentGroup) -> None:
    """Where Slurm runs herd's jobs: ``herd run --executor slurm`` and ``herd slurm submit``."""
    g.add_argument("--partition", help="Slurm: the partition of every job")
    g.add_argument("--account", help="Slurm: the account charged")
    g.add_argument("--qos", help="Slurm: the quality of service")
