"""Reports over runs: stats, analyze, plot."""

from __future__ import annotations

import argparse
import json
import sys

from herd.cli.args import count
from herd.cli.command import command
from herd.cli.options import add_file, add_server, add_store, spec_if_named, through_server
from herd.errors import UsageError


def _add_report_target(p: argparse.ArgumentParser, *, server: bool = True) -> None:
    add_file(p)
    add_store(p)
    if server:
        add_server(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


def _setup_stats(p: argparse.ArgumentParser) -> None:
    _add_report_target(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--csv", action="store_true", help="the per-label table as CSV")


@command(
    "stats",
    "Summarise a workflow's runs: task counts, retries, wall and CPU time, a table per label.",
    "herd stats --csv > labels.csv",
    setup=_setup_stats,
)
def cmd_stats(args: argparse.Namespace) -> int:
    from herd.reports.stats import render_text, to_csv, to_json
    from herd.service import views

    if through_server(args):
        from herd.service import remote

        st = remote.stats(args.server, args.token, args.workflow)
    else:
        st = views.stats(args.workdir, args.workflow, spec_if_named(args), store=args.store)
    if args.json:
        print(json.dumps(to_json(st), indent=1))
    elif args.csv:
        sys.stdout.write(to_csv(st))
    else:
        print(render_text(st))
    return 0


def _setup_analyze(p: argparse.ArgumentParser) -> None:
    _add_report_target(p)
    p.add_argument(
        "-a", "--all", action="store_true", help="also failed attempts that were retried"
    )
    p.add_argument(
        "-n",
        "--lines",
        type=count(0),
        default=20,
        metavar="N",
        help="log lines to show (default 20)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "analyze",
    "Explain failed tasks: outcome, kill reason, log tails, what they cancelled, how to rerun.",
    "herd analyze --lines 50",
    setup=_setup_analyze,
)
def cmd_analyze(args: argparse.Namespace) -> int:
    from herd.reports.analyze import render_text, to_json
    from herd.service import views

    if through_server(args):
        from herd.service import remote

        an = remote.analyze(
            args.server, args.token, args.workflow, lines=args.lines, all_attempts=args.all
        )
    else:
        an = views.analyze(
            args.workdir,
            args.workflow,
            spec_if_named(args),
            lines=args.lines,
            all_attempts=args.all,
            store=args.store,
        )
    if args.json:
        print(json.dumps(to_json(an), indent=1, default=str))
    else:
        sys.stdout.write(render_text(an))
    return 0  # a report: failures found are not an error


def _setup_plot(p: argparse.ArgumentParser) -> None:
    _add_report_target(p)
    p.add_argument(
        "-o", "--output", metavar="OUT", help="out.png, out.svg or out.html (default: WORKFLOW.png)"
    )
    p.add_argument("--run", type=count(), metavar="ID", help="the run to draw (default: the last)")
    p.add_argument(
        "--schedule",
        metavar="SIM.json",
        help="draw a schedule written by `herd simulate --schedule` instead of a run",
    )


@command(
    "plot",
    "Draw a run as a Gantt chart with CPU and memory in use over time (PNG, SVG or HTML).",
    "herd plot -o run.html",
    setup=_setup_plot,
)
def cmd_plot(args: argparse.Namespace) -> int:
    from herd.reports.plot import save
    from herd.service import views

    if through_server(args):
        from herd.service import remote

        if args.schedule:
            raise UsageError("--schedule draws a file of this host: leave out --server")
        chart, name = remote.chart(args.server, args.token, args.workflow, args.run)
    elif args.schedule:
        chart, name = views.plot_schedule(args.schedule, args.file_opt or args.file)
    else:
        spec = spec_if_named(args)
        chart, name = views.plot(args.workdir, args.workflow, spec, args.run, store=args.store)
    print(f"wrote {save(chart, args.output or f'{name}.png')}")
    return 0
