"""The ``herd`` command line: parse, call one service function, render.

Exit codes: 0 success; 1 a task failed; 2 invalid workflow file or arguments; 3 state store or lock
problem (another herd runs here); 70 internal error; 128+N stopped by signal N (130 Ctrl-C,
143 SIGTERM). Every command has ``--help`` with an example.

:data:`COMMANDS` is the one registry of commands (:class:`~herd.cli.command.Command` records,
declared next to their handlers in ``run``, ``state``, ``reports`` and ``convert``), in the order
of ``herd --help``; the shared arguments are in ``options``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from herd.cli import campaign, convert, reports, run, serve, slurm, state, tokens, workers
from herd.cli.command import Command
from herd.cli.guard import Parser, guarded

#: every command, by name, in the order of `herd --help`: the everyday commands first
COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        run.cmd_run,
        workers.cmd_submit,
        workers.cmd_worker,
        workers.cmd_reap,
        run.cmd_validate,
        run.cmd_list,
        state.cmd_status,
        state.cmd_why,
        reports.cmd_stats,
        reports.cmd_analyze,
        reports.cmd_plot,
        run.cmd_simulate,
        run.cmd_graph,
        run.cmd_script,
        state.cmd_provenance,
        state.cmd_reset,
        state.cmd_forget,
        state.cmd_clean,
        state.cmd_emit,
        convert.cmd_convert,
        convert.cmd_export,
        slurm.cmd_slurm,
        serve.cmd_serve,
        tokens.cmd_token,
        campaign.cmd_campaign,
    )
}


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
    for c in COMMANDS.values():
        p = sub.add_parser(
            c.name,
            help=c.help,
            description=c.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        c.setup(p)
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
    return guarded(COMMANDS[args.command].run, args)
