"""Many machines: ``herd submit`` plans a workflow into a store, ``herd worker`` runs what it
claims from it, ``herd reap`` takes back the tasks of workers that died."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from herd.cli.command import command
from herd.cli.options import add_file, add_selection, add_store, run_options, spec_path

# --- submit ---------------------------------------------------------------------------------


def _setup_submit(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    add_selection(p)
    g = p.add_argument_group("limits (default: none but the spec's named pools)")
    g.add_argument(
        "--cpu-limit",
        type=float,
        metavar="CORES",
        help="the largest worker's cores: refuse tasks that need more",
    )
    g.add_argument(
        "--mem-limit",
        type=float,
        metavar="MB",
        help="the largest worker's memory: refuse tasks that need more",
    )
    g.add_argument(
        "--gpu-limit",
        type=float,
        metavar="N",
        help="the largest worker's GPUs: refuse tasks that need more",
    )
    g.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=N",
        help="a named pool that holds across all workers, e.g. tape_drive=2 (repeatable; adds "
        "to the spec's own limits)",
    )
    p.add_argument(
        "--policy",
        choices=["critical-path", "timeframe", "fifo"],
        default="critical-path",
        help="the order workers claim ready tasks in, after user priority",
    )
    p.set_defaults(jobs=None)


@command(
    "submit",
    "Plan a workflow into the store for workers to run, and return at once.",
    "herd submit wf.yaml --store postgresql://db.example.org/herd",
    setup=_setup_submit,
)
def cmd_submit(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from herd.service import runs, workers

    workflow, graph = runs.load_built(spec_path(args), args.workdir, save=False)
    limits = workers.limits(
        workflow, cpu=args.cpu_limit, mem=args.mem_limit, gpu=args.gpu_limit, named=args.limit
    )
    options = replace(run_options(args, workflow), limits=limits)
    done = workers.submit(workflow, options, graph)
    print(
        f"herd: submitted '{workflow.name}' (workflow {done.workflow_id}, run #{done.run_id}): "
        f"{done.queued} to run, {done.skipped} up to date"
    )
    return 0


# --- worker ---------------------------------------------------------------------------------


def _setup_worker(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    add_store(p)
    g = p.add_argument_group("resources (default: the Slurm allocation, else this machine)")
    g.add_argument("--cpus", type=float, metavar="CORES", help="cores to offer")
    g.add_argument("--mem", type=float, metavar="MB", help="memory to offer, MB")
    g.add_argument("--gpus", type=float, metavar="N", help="GPUs to offer")
    g.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=N",
        help="a pool of this worker's own, e.g. scratch=2 (repeatable)",
    )
    p.add_argument(
        "-n",
        dest="workers",
        type=int,
        default=1,
        metavar="N",
        help="start N workers, each with 1/N of the resources",
    )
    p.add_argument(
        "-w",
        "--workflow",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only this workflow (repeatable; default: every workflow in the store)",
    )
    p.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="stop after this long with nothing to do (default: wait for work)",
    )
    p.add_argument("--max-tasks", type=int, metavar="N", help="stop after starting N tasks")
    p.add_argument(
        "--end-time",
        metavar="WHEN",
        help="claim only tasks expected to end before WHEN (epoch, +SECONDS, ISO); stop then",
    )
    p.add_argument(
        "--lease",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a claim lasts without a heartbeat (default 30)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="after SIGTERM, how long running tasks may go on before they are stopped and "
        "released (default 20)",
    )
    p.add_argument(
        "--ahead",
        type=int,
        metavar="N",
        help="tasks per core to hold claimed beyond those running, so that the next starts at "
        "once (default: enough for 50 ms of work at their mean duration, or for four of the "
        "worker's round trips to the store when those are slower; at most 16 per 50 ms)",
    )
    p.add_argument(
        "--mem-kill-ratio",
        type=float,
        default=2.0,
        metavar="R",
        help="kill a task using more than R x its declared mem (0: never; default 2)",
    )
    h = p.add_argument_group("over HTTP (a site that reaches `herd serve`, not the database)")
    h.add_argument(
        "--server",
        metavar="URL",
        help="claim from the herd server at URL instead of a store (default: $HERD_SERVER "
        "when no --store is given)",
    )
    h.add_argument(
        "--token",
        metavar="TOKEN",
        help="a token of scope worker (default: $HERD_TOKEN, which other users cannot see in ps)",
    )
    h.add_argument(
        "--ship-logs",
        action="store_true",
        help="send each attempt's whole output (the last 1 MiB of each stream) with its "
        "finish, for sites with no shared filesystem (a failure's tail always goes)",
    )
    h.add_argument(
        "--retry-for",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to retry, with back-off, while the server does not answer (default 600)",
    )


@command(
    "worker",
    "Claim ready tasks from a store or a herd server and run them here, within these resources.",
    "herd worker --store postgresql://db.example.org/herd --cpus 8 --idle-exit 60",
    setup=_setup_worker,
)
def cmd_worker(args: argparse.Namespace) -> int:
    from herd.errors import UsageError
    from herd.service import workers

    resources = workers.resources(cpu=args.cpus, mem=args.mem, gpu=args.gpus, named=args.limit)
    if args.workers < 1:
        raise UsageError(f"-n wants 1 or more workers, not {args.workers}")
    if args.ahead is not None and args.ahead < 0:
        raise UsageError(f"--ahead wants 0 or more tasks per core, not {args.ahead}")
    if args.workers > 1:
        return _spawn(args, resources)
    options = workers.WorkerOptions(
        resources=resources,
        workflows=tuple(args.workflow),
        idle_exit=args.idle_exit,
        max_tasks=args.max_tasks,
        end_time=_end_time(args.end_time),
        lease=args.lease,
        drain=args.drain,
        ahead=args.ahead,
        mem_kill_ratio=args.mem_kill_ratio,
        ship_logs=args.ship_logs,
    )
    result = workers.work(
        args.workdir,
        args.store,
        options,
        server=args.server,
        token=args.token,
        retry_for=args.retry_for,
    )
    print(
        f"herd: worker {result.worker_id} stopped ({result.reason}): {result.finished} attempts "
        f"({result.succeeded} succeeded), {result.released} released, {result.lost} lost"
    )
    return result.exit_code


def _end_time(text: str | None) -> float | None:
    """``--end-time``: epoch seconds, ``+SECONDS`` from now, or an ISO date-time."""
    from datetime import datetime

    from herd.errors import UsageError

    if text is None:
        return None
    try:
        if text.startswith("+"):
            return time.time() + float(text[1:])
        try:
            return float(text)
        except ValueError:
            return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise UsageError(
            f"--end-time wants epoch seconds, +SECONDS or an ISO date-time "
            f"(2026-12-04T21:00), not '{text}'"
        ) from None


def _spawn(args: argparse.Namespace, resources: dict[str, float]) -> int:
    """``-n N``: N worker processes, each with its share of the cores, memory and GPUs;
    signals are passed on (SIGTERM drains every one)."""
    import signal

    n = args.workers
    share = {k: resources[k] / n for k in ("cpu", "mem", "gpu")}
    argv = [sys.executable, "-m", "herd.cli", "worker", "-C", str(args.workdir)]
    argv += ["--cpus", f"{share['cpu']:g}", "--mem", f"{share['mem']:g}"]
    argv += ["--gpus", f"{int(share['gpu'])}", "--lease", f"{args.lease:g}"]
    argv += ["--drain", f"{args.drain:g}", "--mem-kill-ratio", f"{args.mem_kill_ratio:g}"]
    for item in args.limit:
        argv += ["--limit", item]
    for name in args.workflow:
        argv += ["--workflow", name]
    if args.ship_logs:
        argv.append("--ship-logs")
    if args.ahead is not None:
        argv += ["--ahead", str(args.ahead)]
    env = dict(os.environ)
    if args.token:
        env["HERD_TOKEN"] = args.token  # (not on the children's command lines)
    for flag, value in (
        ("--store", args.store),
        ("--server", args.server),
        ("--retry-for", args.retry_for),
        ("--idle-exit", args.idle_exit),
        ("--max-tasks", args.max_tasks),
        ("--end-time", args.end_time),
    ):
        if value is not None:
            argv += [flag, str(value)]
    children = [subprocess.Popen(argv, env=env) for _ in range(n)]

    def forward(signum: int, frame: object) -> None:
        for child in children:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    return max(child.wait() for child in children)


# --- reap -----------------------------------------------------------------------------------


def _setup_reap(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    add_store(p)


@command(
    "reap",
    "Take back the tasks of workers whose leases expired (they run again elsewhere).",
    "herd reap --store postgresql://db.example.org/herd",
    setup=_setup_reap,
)
def cmd_reap(args: argparse.Namespace) -> int:
    from herd.service import workers

    lost = workers.reap(args.workdir, args.store)
    for x in lost:
        print(f"{x.task} attempt {x.number} (worker {x.worker_id}): {x.then.value}")
    print(f"herd: reaped {len(lost)} attempt(s)")
    return 0
