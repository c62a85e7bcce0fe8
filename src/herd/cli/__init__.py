"""The ``herd`` command line: parse, call one library function, render.

Exit codes: 0 success; 1 a task failed; 2 invalid workflow file or arguments; 3 state store or lock
problem (another herd runs here); 70 internal error; 128+N stopped by signal N (130 Ctrl-C,
143 SIGTERM). Every command has ``--help`` with an example.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from herd.cli.args import amount, count
from herd.cli.guard import Parser, guarded
from herd.core.model import MAX_TASKS
from herd.errors import UsageError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, str]] = {}


def command(name: str, help: str, example: str) -> Callable[[Handler], Handler]:
    """Register ``herd NAME``; the example is shown at the end of its --help."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, f"{help}\n\nexample:\n  {example}")
        return fn

    return register


# --- shared arguments -----------------------------------------------------------------------


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


def spec_setup(args: argparse.Namespace) -> Any:
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


def spec_path(args: argparse.Namespace) -> str:
    path: str | None = args.file_opt or args.file
    if not path:
        raise UsageError("name a workflow file: `herd run wf.yaml` or `herd run -f workflow.json`")
    return path


def load_spec(args: argparse.Namespace) -> Any:
    from herd.service.runs import load

    return load(spec_path(args), max_tasks=max_tasks(args), setup=spec_setup(args))


def max_tasks(args: argparse.Namespace) -> int:
    return getattr(args, "max_tasks", None) or MAX_TASKS


def spec_if_named(args: argparse.Namespace) -> Any:
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


def limits_from(args: argparse.Namespace, workflow: Any) -> Any:
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


def run_options(args: argparse.Namespace, workflow: Any) -> Any:
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


# --- commands -------------------------------------------------------------------------------


SETUP: dict[str, Callable[[argparse.ArgumentParser], None]] = {}


#: the order of `herd --help`: the everyday commands first
ORDER = (
    "run",
    "submit",
    "worker",
    "reap",
    "validate",
    "list",
    "status",
    "why",
    "stats",
    "analyze",
    "plot",
    "simulate",
    "graph",
    "script",
    "provenance",
    "reset",
    "forget",
    "clean",
    "emit",
    "convert",
    "export",
    "slurm",
)


def ordered() -> list[str]:
    """Command names in :data:`ORDER`, then any other in registration order."""
    return [n for n in ORDER if n in COMMANDS] + [n for n in COMMANDS if n not in ORDER]


def parser() -> argparse.ArgumentParser:
    from herd.version import __version__

    top = Parser(
        prog="herd",
        description="herd: a resource-aware, restartable workflow engine for scientific computing.",
        epilog="exit codes: 0 ok, 1 task failed, 2 bad input, 3 store/lock/working directory, "
        "70 internal error, 129/130/143 interrupted. See docs/cli.md.",
    )
    top.add_argument("--version", action="version", version=f"herd {__version__}")
    top.add_argument(
        "-v", "--verbose", action="store_true", help="log what herd does (and tracebacks of bugs)"
    )
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name in ordered():
        text = COMMANDS[name][1]
        p = sub.add_parser(
            name,
            help=text.split("\n")[0],
            description=text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        SETUP[name](p)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="herd: %(message)s",
    )
    if not args.command:
        parser().print_help()
        return 2
    return guarded(COMMANDS[args.command][0], args)


# the command modules register themselves (COMMANDS, SETUP) when imported; keep this last
from herd.cli import convert, reports, run, slurm, state, workers  # noqa: E402, F401
