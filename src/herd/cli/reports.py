"""Reports over runs: stats, analyze, plot."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from herd.cli import SETUP, add_file, add_store, command, load_spec, store_name
from herd.cli.args import count
from herd.errors import UsageError


def _add_report_target(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


def _report(args: argparse.Namespace, build: Callable[[Any, Any, Any], Any]) -> Any:
    """``build(store, workflow record, spec or None)`` on the store of ``args.workdir``."""
    from herd.reports.status import pick_workflow
    from herd.run.local import existing_store

    spec = load_spec(args) if (args.file or args.file_opt) else None
    name = args.workflow or (spec.name if spec is not None else None)
    with existing_store(args.workdir, args.store) as store:
        if store is None:
            raise UsageError(
                f"herd has not run anything in {store_name(args)} yet: run `herd run FILE` first"
            )
        return build(store, pick_workflow(store, name), spec)


@command(
    "stats",
    "Summarise a workflow's runs: task counts, retries, wall and CPU time, a table per label.",
    "herd stats --csv > labels.csv",
)
def cmd_stats(args: argparse.Namespace) -> int:
    from herd.reports.stats import render_text, stats, to_csv, to_json

    st = _report(args, lambda store, wf, spec: stats(store, wf.id, spec=spec))
    if args.json:
        print(json.dumps(to_json(st), indent=1))
    elif args.csv:
        sys.stdout.write(to_csv(st))
    else:
        print(render_text(st))
    return 0


def _setup_stats(p: argparse.ArgumentParser) -> None:
    _add_report_target(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--csv", action="store_true", help="the per-label table as CSV")


@command(
    "analyze",
    "Explain failed tasks: outcome, kill reason, log tails, what they cancelled, how to rerun.",
    "herd analyze --lines 50",
)
def cmd_analyze(args: argparse.Namespace) -> int:
    from herd.reports.analyze import analyze, render_text, to_json

    an = _report(
        args,
        lambda store, wf, spec: analyze(
            store, wf.id, lines=args.lines, all_attempts=args.all, workdir=args.workdir
        ),
    )
    if args.json:
        print(json.dumps(to_json(an), indent=1, default=str))
    else:
        sys.stdout.write(render_text(an))
    return 0  # a report: failures found are not an error


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
    "plot",
    "Draw a run as a Gantt chart with CPU and memory in use over time (PNG, SVG or HTML).",
    "herd plot -o run.html",
)
def cmd_plot(args: argparse.Namespace) -> int:
    from herd.reports.plot import chart_from_schedule, chart_from_store, load_schedule, save

    if args.schedule:
        data = load_schedule(args.schedule)
        spec = load_spec(args) if (args.file or args.file_opt) else None
        chart = chart_from_schedule(data, spec=spec)
        name = str(data.get("workflow") or "schedule")
    else:
        chart, name = _report(
            args,
            lambda store, wf, spec: (
                chart_from_store(store, wf.id, run_id=args.run, spec=spec),
                wf.name,
            ),
        )
    print(f"wrote {save(chart, args.output or f'{name}.png')}")
    return 0


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


SETUP.update(
    {
        "stats": _setup_stats,
        "analyze": _setup_analyze,
        "plot": _setup_plot,
    }
)
