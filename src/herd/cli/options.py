"""The arguments several commands share, and turning them into what the service takes.

``add_*`` put a group of arguments on a command's parser; :func:`load_spec`,
:func:`limits_from` and :func:`run_options` read them back as a
:class:`~herd.core.model.Workflow`, :class:`~herd.core.model.Limits` and
:class:`~herd.run.submit.RunOptions` for :mod:`herd.service`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.cli.args import amount, count
from herd.core.model import MAX_TASKS
from herd.errors import UsageError

if TYPE_CHECKING:
    from herd.core.model import Limits, Workflow
    from herd.service.runs import RunOptions, Setup


def add_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="workflow file (any format herd reads)")
    p.add_argument(
        "-f", "--file", dest="file_opt", metavar="FILE", help="the same, as an option (O2DPG style)"
    )
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    p.add_argument(
        "--max-tasks",
        type=count(),
        default=None,
        metavar="N",
        help=f"refuse a workflow of more than N tasks, sweeps expanded (default {MAX_TASKS:,})",
    )
    g = p.add_argument_group("Pegasus workflows (as pegasus-plan takes them)")
    g.add_argument(
        "--conf",
        metavar="PROPERTIES",
        help="properties file (default: pegasus.properties beside it)",
    )
    g.add_argument(
        "-D", dest="defines", action="append", default=[], metavar="KEY=VALUE",
        help="a property, e.g. -D pegasus.catalog.replica.file=rc.yml (beats --conf)",
    )  # fmt: skip


def spec_setup(args: argparse.Namespace) -> Setup | None:
    """``--conf`` and ``-D`` for the loader; None when neither is given."""
    if not getattr(args, "conf", None) and not getattr(args, "defines", None):
        return None
    from herd.service.runs import Setup

    pairs = [d.partition("=") for d in args.defines]
    bad = [d for d, (_, eq, _) in zip(args.defines, pairs, strict=True) if not eq]
    if bad:
        raise UsageError(
            f"-D {bad[0]}: expected KEY=VALUE, e.g. -D pegasus.catalog.site.file=s.yml"
        )
    return Setup(args.conf, {k.strip(): v.strip() for k, _, v in pairs})


def add_store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="URL",
        help="where the state lives: postgresql://USER@HOST:PORT/DB, or an SQLite file "
        "(default: $HERD_STORE, else WORKDIR/.herd/herd.db)",
    )


def add_server(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("through a herd server instead of the store (docs/api.md)")
    g.add_argument(
        "--server", metavar="URL", help="read from `herd serve` at URL (http://HOST:PORT)"
    )
    g.add_argument(
        "--token",
        metavar="TOKEN",
        help="its bearer token (default: $HERD_TOKEN, which `ps` does not show)",
    )


def through_server(args: argparse.Namespace) -> bool:
    """Whether the command reads from a server (``--server``); a UsageError when it is also
    told a store."""
    if getattr(args, "server", None) is None:
        if getattr(args, "token", None) is not None:
            raise UsageError("--token goes with --server URL")
        return False
    if args.store is not None:
        raise UsageError("give --server URL or --store URL, not both")
    return True


def spec_path(args: argparse.Namespace) -> str:
    path: str | None = args.file_opt or args.file
    if not path:
        raise UsageError("name a workflow file: `herd run wf.yaml` or `herd run -f workflow.json`")
    return path


def load_spec(args: argparse.Namespace) -> Workflow:
    from herd.service.runs import load

    return load(spec_path(args), max_tasks=max_tasks(args), setup=spec_setup(args))


def max_tasks(args: argparse.Namespace) -> int:
    return getattr(args, "max_tasks", None) or MAX_TASKS


def spec_if_named(args: argparse.Namespace) -> Workflow | None:
    """The workflow in the spec file the command line names, None when it names none."""
    return load_spec(args) if (args.file or args.file_opt) else None


def add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits (default: this machine)")
    g.add_argument("--cpu-limit", type=amount(), metavar="CORES", help="cores to use at once")
    g.add_argument("--mem-limit", type=amount(), metavar="MB", help="memory to use at once, MB")
    g.add_argument("--gpu-limit", type=amount(), metavar="N", help="GPUs to use at once")
    g.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=N",
        help="a named pool, e.g. tape_drive=2 (repeatable)",
    )
    g.add_argument(
        "-j",
        "-jmax",
        "--jobs",
        dest="jobs",
        type=count(),
        metavar="N",
        help="tasks at once, whatever their resources",
    )


def limits_from(args: argparse.Namespace, workflow: Workflow) -> Limits:
    from herd.service.runs import limits

    # a batch system queues what does not fit: herd's limits then bound only what it submits
    free = float("inf") if getattr(args, "executor", "local") != "local" else None
    return limits(
        workflow,
        cpu=free if args.cpu_limit is None else args.cpu_limit,
        mem=free if args.mem_limit is None else args.mem_limit,
        gpu=free if args.gpu_limit is None else args.gpu_limit,
        named=args.limit,
        jobs=args.jobs,
    )


def add_selection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to run")
    g.add_argument(
        "-tt",
        "--target-tasks",
        nargs="+",
        default=[],
        metavar="REGEX",
        help="run these tasks (full-match regexes) and what they need",
    )
    g.add_argument(
        "--target-labels",
        nargs="+",
        default=[],
        metavar="LABEL",
        help="run tasks with these labels and what they need",
    )
    g.add_argument(
        "--rerun-from",
        action="append",
        default=[],
        metavar="REGEX",
        help="rerun matching tasks and everything after them",
    )
    g.add_argument(
        "--force",
        action="append",
        default=[],
        metavar="REGEX",
        help="rerun matching tasks even if up to date",
    )
    g.add_argument(
        "--checksum",
        action="store_true",
        help="compare input files by content digest, not size and mtime",
    )


def run_options(args: argparse.Namespace, workflow: Workflow) -> RunOptions:
    from herd.service.runs import Policy, RunOptions
    from herd.service.state import recorded_argv

    return RunOptions(
        workdir=args.workdir,
        limits=limits_from(args, workflow),
        keep_going=getattr(args, "keep_going", False),
        targets=tuple(args.target_tasks),
        target_labels=tuple(args.target_labels),
        rerun_from=tuple(args.rerun_from),
        force=tuple(args.force),
        checksum=args.checksum,
        policy=Policy(getattr(args, "policy", "critical-path")),
        mem_kill_ratio=getattr(args, "mem_kill_ratio", 2.0),
        argv=recorded_argv(sys.argv),
        store=getattr(args, "store", None),
        **_executor(args),
    )


def _executor(args: argparse.Namespace) -> dict[str, Any]:
    if getattr(args, "executor", "local") != "slurm":
        return {}
    from herd.service.runs import slurm_executor

    if args.group < 1:
        raise UsageError(f"--group {args.group}: give 1 or more tasks per job")
    executor = slurm_executor(
        partition=args.partition,
        account=args.account,
        qos=args.qos,
        extra=tuple(args.sbatch),
        group=args.group,
    )
    return {"executor": executor}
