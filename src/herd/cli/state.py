"""Commands over what herd remembers in a working directory: status, why, reset, forget, clean, emit, provenance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from herd.cli.args import count
from herd.cli.command import command
from herd.cli.options import (
    add_file,
    add_limits,
    add_selection,
    add_server,
    add_store,
    load_spec,
    run_options,
    through_server,
)
from herd.errors import UsageError


def _setup_status(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    add_server(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument(
        "-a", "--all", action="store_true", help="list every task, not only those needing attention"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "status",
    "Show where every task stands (from the store; safe during a run).",
    "herd status --json",
    setup=_setup_status,
)
def cmd_status(args: argparse.Namespace) -> int:
    from herd.reports.status import render
    from herd.service import views

    name = args.workflow
    if name is None and (args.file or args.file_opt):
        name = load_spec(args).name
    if through_server(args):
        from herd.service import remote

        st = remote.status(args.server, args.token, name)
    else:
        st = views.status(args.workdir, name, store=args.store)
    if args.json:
        print(json.dumps(st.to_json(), indent=1))
    else:
        print(render(st, all_tasks=args.all))
    return 0


def _setup_why(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="the task's name")
    add_file(p)
    add_store(p)
    add_server(p)
    p.add_argument(
        "-w", "--workflow", help="with --server: the workflow, when the store holds several"
    )
    add_limits(p)
    add_selection(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "why",
    "Say why a task would run (or not), down to the root cause.",
    "herd why reco_3 -f wf.yaml",
    setup=_setup_why,
)
def cmd_why(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from herd.reports.why import render
    from herd.service import views

    if through_server(args):
        from herd.service import remote

        name = args.workflow or (load_spec(args).name if args.file or args.file_opt else None)
        chain = remote.why(args.server, args.token, name, args.task)
    else:
        if args.workflow is not None:
            raise UsageError("-w goes with --server; here, name the spec file: herd why TASK FILE")
        workflow = load_spec(args)
        chain = views.why(workflow, run_options(args, workflow), args.task)
    print(json.dumps([asdict(s) for s in chain], indent=1) if args.json else render(chain))
    return 0


def _setup_reset(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="+", metavar="REGEX", help="tasks to reset (full-match regexes)")
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument("--downstream", action="store_true", help="also every task that needs them")


@command(
    "reset",
    "Forget that tasks succeeded, so they run again (history is kept).",
    "herd reset 'reco_.*' --downstream -f wf.yaml",
    setup=_setup_reset,
)
def cmd_reset(args: argparse.Namespace) -> int:
    from herd.service import changes

    _split_file(args)
    names = changes.reset(
        args.workdir,
        load_spec(args),
        args.tasks,
        downstream=args.downstream,
        name=args.workflow,
        store=args.store,
    )
    print(
        f"reset {len(names)} task(s): they run again next time: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    )
    return 0


def _split_file(args: argparse.Namespace) -> None:
    """``herd reset REGEX... FILE``: argparse gives every word to REGEX; the last one is the FILE
    when no other option names the workflow (as the usage line reads)."""
    if not (args.file_opt or args.workflow) and len(args.tasks) > 1:
        args.file = args.tasks.pop()


def _setup_forget(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


@command(
    "forget",
    "Drop all recorded state of a workflow (its files stay).",
    "herd forget -w quickstart",
    setup=_setup_forget,
)
def cmd_forget(args: argparse.Namespace) -> int:
    from herd.service import changes

    name = changes.forget(args.workdir, args.workflow, args.file_opt or args.file, store=args.store)
    print(f"forgot workflow '{name}': the next run starts from scratch (files were not touched)")
    return 0


def _setup_clean(p: argparse.ArgumentParser) -> None:
    add_file(p)
    p.add_argument(
        "--intermediate", action="store_true", help="also outputs that another task reads"
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="list, remove nothing")


@command(
    "clean",
    "Remove temp outputs (and with --intermediate, files other tasks read).",
    "herd clean wf.yaml --intermediate --dry-run",
    setup=_setup_clean,
)
def cmd_clean(args: argparse.Namespace) -> int:
    from herd.service import changes

    removed = changes.clean(
        load_spec(args), args.workdir, intermediate=args.intermediate, dry_run=args.dry_run
    )
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{verb} {len(removed)} file(s)")
    return 0


def _setup_emit(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", nargs="?", help="name of the result")
    p.add_argument("value", nargs="?", help="its value (JSON when it parses, else a string)")
    p.add_argument("--event", metavar="JSON", help="record a timestamped event instead")


@command(
    "emit",
    "From inside a task: record a result or an event with its attempt.",
    'herd emit events 1000   |   herd emit --event \'{"stage": "merged"}\'',
    setup=_setup_emit,
)
def cmd_emit(args: argparse.Namespace) -> int:
    from herd.service import changes

    if args.event is not None:
        changes.emit_event(args.event)
    elif args.key is not None and args.value is not None:
        changes.emit(args.key, args.value)
    else:
        raise UsageError("give KEY VALUE, or --event JSON")
    return 0


def _setup_provenance(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="the task's name")
    p.add_argument(
        "--attempt", type=count(), metavar="N", help="only attempt N (default: every attempt)"
    )
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    add_store(p)


@command(
    "provenance",
    "Print the provenance record of a task's attempts as JSON.",
    "herd provenance reco_1 --attempt 2",
    setup=_setup_provenance,
)
def cmd_provenance(args: argparse.Namespace) -> int:
    from herd.service import views

    out = views.provenance(args.workdir, args.workflow, args.task, args.attempt, store=args.store)
    print(json.dumps(out if args.attempt is None else out[0], indent=1))
    return 0
