"""Commands over what herd remembers in a working directory: status, why, reset, forget, clean, emit, provenance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from herd.cli import (
    SETUP,
    add_file,
    add_limits,
    add_selection,
    add_store,
    command,
    load_spec,
    run_options,
    store_name,
)
from herd.cli.args import count
from herd.errors import UsageError


@command(
    "status",
    "Show where every task stands (from the store; safe during a run).",
    "herd status --json",
)
def cmd_status(args: argparse.Namespace) -> int:
    from herd.reports.status import render, status
    from herd.run.local import existing_store

    name = args.workflow
    if name is None and (args.file or args.file_opt):
        name = load_spec(args).name
    with existing_store(args.workdir, args.store) as store:
        if store is None:
            raise UsageError(
                f"herd has not run anything in {store_name(args)} yet: run `herd run FILE` first"
            )
        st = status(store, name)
    if args.json:
        print(json.dumps(st.to_json(), indent=1))
    else:
        print(render(st, all_tasks=args.all))
    return 0


def _setup_status(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument(
        "-a", "--all", action="store_true", help="list every task, not only those needing attention"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "why",
    "Say why a task would run (or not), down to the root cause.",
    "herd why reco_3 -f wf.yaml",
)
def cmd_why(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from herd.reports.why import explain, render
    from herd.run.local import existing_store, prepare

    workflow = load_spec(args)
    options = run_options(args, workflow)
    with existing_store(options.workdir, options.store) as store:
        prepared = prepare(workflow, options, store)
    chain = explain(prepared.graph, prepared.plan, args.task)
    print(json.dumps([asdict(s) for s in chain], indent=1) if args.json else render(chain))
    return 0


def _setup_why(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="the task's name")
    add_file(p)
    add_store(p)
    add_limits(p)
    add_selection(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _store_and_workflow(args: argparse.Namespace) -> tuple[Any, Any]:
    """The store of the working directory (for writing) and the workflow named by FILE/--workflow."""
    from herd.reports.status import pick_workflow
    from herd.store import is_url, locate, open_store
    from herd.store.workdir import Workdir

    location = locate(args.store, Workdir(args.workdir).db_path)
    if not is_url(location) and not Path(location).exists():
        raise UsageError(f"herd has not run anything in {store_name(args)} yet: nothing to change")
    name = args.workflow
    if name is None and (args.file or args.file_opt):
        name = load_spec(args).name
    store = open_store(location)
    try:
        return store, pick_workflow(store, name)
    except BaseException:
        store.close()
        raise


@command(
    "reset",
    "Forget that tasks succeeded, so they run again (history is kept).",
    "herd reset 'reco_.*' --downstream -f wf.yaml",
)
def cmd_reset(args: argparse.Namespace) -> int:
    from herd.core.graph import build, descendants, match
    from herd.store.workdir import Workdir

    _split_file(args)
    workflow = load_spec(args)
    graph = build(workflow)
    chosen = match(graph, args.tasks)
    if not chosen:
        raise UsageError(f"no task matches {' '.join(args.tasks)}: see `herd list`")
    if args.downstream:
        chosen = descendants(graph, chosen)
    names = [graph.name(i) for i in sorted(chosen)]
    with Workdir(args.workdir).lock():
        store, record = _store_and_workflow(args)
        try:
            store.reset(record.id, names)
        finally:
            store.close()
    print(
        f"reset {len(names)} task(s): they run again next time: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
    )
    return 0


def _split_file(args: argparse.Namespace) -> None:
    """``herd reset REGEX... FILE``: argparse gives every word to REGEX; the last one is the FILE
    when no other option names the workflow (as the usage line reads)."""
    if not (args.file_opt or args.workflow) and len(args.tasks) > 1:
        args.file = args.tasks.pop()


def _setup_reset(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="+", metavar="REGEX", help="tasks to reset (full-match regexes)")
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument("--downstream", action="store_true", help="also every task that needs them")


@command(
    "forget", "Drop all recorded state of a workflow (its files stay).", "herd forget -w quickstart"
)
def cmd_forget(args: argparse.Namespace) -> int:
    from herd.store.workdir import Workdir

    with Workdir(args.workdir).lock():
        store, record = _store_and_workflow(args)
        try:
            store.forget(record.id)
        finally:
            store.close()
    print(
        f"forgot workflow '{record.name}': the next run starts from scratch (files were not touched)"
    )
    return 0


def _setup_forget(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


@command(
    "clean",
    "Remove temp outputs (and with --intermediate, files other tasks read).",
    "herd clean wf.yaml --intermediate --dry-run",
)
def cmd_clean(args: argparse.Namespace) -> int:
    from herd.core.graph import build
    from herd.plan.clean import clean
    from herd.plan.planner import Files
    from herd.store.workdir import Workdir

    graph = build(load_spec(args))
    files = Files(args.workdir.resolve())
    if args.dry_run:
        removed = clean(graph, files, intermediate=args.intermediate, dry_run=True)
    else:
        with Workdir(args.workdir).lock():  # never under a running herd: its tasks read them
            removed = clean(graph, files, intermediate=args.intermediate)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{verb} {len(removed)} file(s)")
    return 0


def _setup_clean(p: argparse.ArgumentParser) -> None:
    add_file(p)
    p.add_argument(
        "--intermediate", action="store_true", help="also outputs that another task reads"
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="list, remove nothing")


@command(
    "emit",
    "From inside a task: record a result or an event with its attempt.",
    'herd emit events 1000   |   herd emit --event \'{"stage": "merged"}\'',
)
def cmd_emit(args: argparse.Namespace) -> int:
    from herd.exec.emit import emit, emit_event, parse_value

    if args.event is not None:
        data = parse_value(args.event)
        if not isinstance(data, dict):
            raise UsageError('--event wants a JSON object, e.g. --event \'{"stage": "merged"}\'')
        emit_event(data)
    elif args.key is not None and args.value is not None:
        emit(args.key, parse_value(args.value))
    else:
        raise UsageError("give KEY VALUE, or --event JSON")
    return 0


def _setup_emit(p: argparse.ArgumentParser) -> None:
    p.add_argument("key", nargs="?", help="name of the result")
    p.add_argument("value", nargs="?", help="its value (JSON when it parses, else a string)")
    p.add_argument("--event", metavar="JSON", help="record a timestamped event instead")


@command(
    "provenance",
    "Print the provenance record of a task's attempts as JSON.",
    "herd provenance reco_1 --attempt 2",
)
def cmd_provenance(args: argparse.Namespace) -> int:
    from herd.reports.provenance import records
    from herd.reports.status import pick_workflow
    from herd.run.local import existing_store

    with existing_store(args.workdir, args.store) as store:
        if store is None:
            raise UsageError(f"herd has not run anything in {store_name(args)} yet")
        wf = pick_workflow(store, args.workflow)
        out = records(store, wf, args.task, args.attempt)
    print(json.dumps(out if args.attempt is None else out[0], indent=1))
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


SETUP.update(
    {
        "why": _setup_why,
        "reset": _setup_reset,
        "forget": _setup_forget,
        "clean": _setup_clean,
        "emit": _setup_emit,
        "provenance": _setup_provenance,
        "status": _setup_status,
    }
)
