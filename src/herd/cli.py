"""The ``herd`` command line: parse, call one library function, render.

Exit codes: 0 success; 1 a task failed; 2 invalid workflow file or arguments; 3 state store or lock
problem (another herd runs here); 70 internal error; 128+N stopped by signal N (130 Ctrl-C,
143 SIGTERM). Every command has ``--help`` with an example.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from herd.errors import HerdError, UsageError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Handler, str]] = {}


def command(name: str, help: str, example: str) -> Callable[[Handler], Handler]:
    """Register ``herd NAME``; the example is shown at the end of its --help."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, f"{help}\n\nexample:\n  {example}")
        return fn

    return register


# --- shared arguments -----------------------------------------------------------------------


def _add_file(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="workflow file (any format herd reads)")
    p.add_argument(
        "-f", "--file", dest="file_opt", metavar="FILE", help="the same, as an option (O2DPG style)"
    )
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )


def _file(args: argparse.Namespace) -> str:
    path: str | None = args.file_opt or args.file
    if not path:
        raise UsageError("name a workflow file: `herd run wf.yaml` or `herd run -f workflow.json`")
    return path


def _load(args: argparse.Namespace) -> Any:
    from herd.formats import load

    return load(_file(args))


def _add_limits(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("limits (default: this machine)")
    g.add_argument("--cpu-limit", type=float, metavar="CORES", help="cores to use at once")
    g.add_argument("--mem-limit", type=float, metavar="MB", help="memory to use at once, MB")
    g.add_argument("--gpu-limit", type=float, metavar="N", help="GPUs to use at once")
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
        type=int,
        metavar="N",
        help="tasks at once, whatever their resources",
    )


def _limits(args: argparse.Namespace, workflow: Any) -> Any:
    from herd.machine import parse_named, run_limits

    return run_limits(
        workflow,
        cpu=args.cpu_limit,
        mem=args.mem_limit,
        gpu=args.gpu_limit,
        named=parse_named(args.limit),
        jobs=args.jobs,
    )


def _add_selection(p: argparse.ArgumentParser) -> None:
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


def _options(args: argparse.Namespace, workflow: Any) -> Any:
    from herd.runner import RunOptions
    from herd.scheduler import Policy

    return RunOptions(
        workdir=args.workdir,
        limits=_limits(args, workflow),
        keep_going=getattr(args, "keep_going", False),
        targets=tuple(args.target_tasks),
        target_labels=tuple(args.target_labels),
        rerun_from=tuple(args.rerun_from),
        force=tuple(args.force),
        checksum=args.checksum,
        policy=Policy(getattr(args, "policy", "critical-path")),
        mem_kill_ratio=getattr(args, "mem_kill_ratio", 2.0),
        argv=tuple(sys.argv),
    )


# --- commands -------------------------------------------------------------------------------


def _setup_run(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    _add_limits(p)
    _add_selection(p)
    p.add_argument(
        "-k",
        "--keep-going",
        action="store_true",
        help="after a failure, run everything that does not need the failed task",
    )
    p.add_argument(
        "--policy",
        choices=["critical-path", "timeframe", "fifo"],
        default="critical-path",
        help="order of ready tasks after user priority (default: critical-path)",
    )
    p.add_argument(
        "--mem-kill-ratio",
        type=float,
        default=2.0,
        metavar="R",
        help="kill a task using more than R x its declared mem (0: never; default 2)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would run and why, run nothing")
    p.add_argument(
        "--list-tasks", action="store_true", help="list the tasks and exit (like `herd list`)"
    )
    p.add_argument(
        "--produce-script",
        metavar="OUT",
        help="write a serial bash script and exit (like `herd script`)",
    )
    p.add_argument("--json", action="store_true", help="with --dry-run: machine-readable plan")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failures and the summary")


@command(
    "run",
    "Run a workflow: resource-aware, parallel, resumable.",
    "herd run wf.yaml --cpu-limit 8 -k",
)
def cmd_run(args: argparse.Namespace) -> int:
    workflow = _load(args)
    if args.list_tasks:
        return _print_list(workflow, as_json=False)
    if args.produce_script:
        return _write_script(workflow, args, args.produce_script)
    options = _options(args, workflow)
    if args.dry_run:
        return _dry_run(workflow, options, as_json=args.json)
    from herd.progress import reporter_for
    from herd.runner import run_workflow

    result = run_workflow(workflow, options, reporter_for(sys.stdout, quiet=args.quiet))
    return result.exit_code


def _dry_run(workflow: Any, options: Any, *, as_json: bool) -> int:
    from herd.runner import existing_store, prepare

    with existing_store(options.workdir) as store:
        prepared = prepare(workflow, options, store)
    graph, plan = prepared.graph, prepared.plan
    rows: list[dict[str, Any]] = [
        {"task": graph.name(i), "run": v.run, "reason": v.reason}
        for i in graph.order
        if (v := plan.verdicts.get(i)) is not None
    ]
    if as_json:
        print(json.dumps({"workflow": workflow.name, "tasks": rows}, indent=1))
        return 0
    width = max((len(r["task"]) for r in rows), default=4)
    for r in rows:
        print(f"{'run ' if r['run'] else 'skip'}  {r['task']:<{width}}  {r['reason']}")
    todo = sum(1 for r in rows if r["run"])
    print(
        f"herd: dry run of '{workflow.name}': {todo} to run, {len(rows) - todo} up to date, nothing started"
    )
    return 0


@command(
    "validate",
    "Check a workflow file: format, fields, DAG, limits.",
    "herd validate workflow.json --cpu-limit 8",
)
def cmd_validate(args: argparse.Namespace) -> int:
    from herd.graph import build, check_limits

    workflow = _load(args)
    graph = build(workflow)
    check_limits(graph, _limits(args, workflow))
    print(
        f"{workflow.source}: valid {workflow.format} workflow '{workflow.name}': {len(graph)} tasks, {graph.edges} dependencies"
    )
    for warning in workflow.meta.get("warnings", ()):
        print(f"warning: {warning}")
    return 0


def _setup_validate(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    _add_limits(p)


@command(
    "list", "List the tasks of a workflow in dependency order.", "herd list workflow.json --json"
)
def cmd_list(args: argparse.Namespace) -> int:
    return _print_list(_load(args), as_json=args.json)


def _print_list(workflow: Any, *, as_json: bool) -> int:
    from herd.graph import build

    graph = build(workflow)
    rows: list[dict[str, Any]] = [
        {
            "name": graph.name(i),
            "needs": [graph.name(p) for p in graph.parents(i)],
            "resources": graph.tasks[i].demand,
            "labels": list(graph.tasks[i].labels),
            "timeframe": graph.tasks[i].timeframe,
        }
        for i in graph.order
    ]
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        res = " ".join(f"{k}={v:g}" for k, v in r["resources"].items())
        needs = ",".join(r["needs"])
        print(f"{r['name']}  [{res}]" + (f"  <- {needs}" if needs else ""))
    return 0


def _setup_list(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "script", "Write the workflow as a serial bash script.", "herd script workflow.json -o run.sh"
)
def cmd_script(args: argparse.Namespace) -> int:
    return _write_script(_load(args), args, args.output)


def _write_script(workflow: Any, args: argparse.Namespace, out: str | None) -> int:
    from herd.graph import build, select
    from herd.script import serial_script

    graph = build(workflow)
    targets, labels = getattr(args, "target_tasks", []), getattr(args, "target_labels", [])
    text = serial_script(graph, select(graph, targets, labels))
    if out in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)
        Path(out).chmod(0o755)
        print(f"wrote {out}")
    return 0


def _setup_script(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("-tt", "--target-tasks", nargs="+", default=[], metavar="REGEX")
    p.add_argument("--target-labels", nargs="+", default=[], metavar="LABEL")


@command(
    "graph",
    "Print the DAG in Graphviz DOT, coloured by task state.",
    "herd graph wf.yaml | dot -Tsvg > wf.svg",
)
def cmd_graph(args: argparse.Namespace) -> int:
    from herd.dot import to_dot
    from herd.graph import build
    from herd.runner import existing_store

    workflow = _load(args)
    states = None
    with existing_store(args.workdir) as store:
        rec = store.workflow(workflow.name) if store else None
        if store is not None and rec is not None:
            states = {name: r.state for name, r in store.task_records(rec.id).items()}
    text = to_dot(build(workflow), states)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _setup_graph(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")


@command(
    "status",
    "Show where every task stands (from the store; safe during a run).",
    "herd status --json",
)
def cmd_status(args: argparse.Namespace) -> int:
    from herd.runner import existing_store
    from herd.status import render, status

    name = args.workflow
    if name is None and (args.file or args.file_opt):
        name = _load(args).name
    with existing_store(args.workdir) as store:
        if store is None:
            raise UsageError(
                f"herd has not run anything in {args.workdir} yet: run `herd run FILE` first"
            )
        st = status(store, name)
    if args.json:
        print(json.dumps(st.to_json(), indent=1))
    else:
        print(render(st, all_tasks=args.all))
    return 0


def _setup_status(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument(
        "-a", "--all", action="store_true", help="list every task, not only those needing attention"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "simulate",
    "Run the real scheduler on a virtual clock: makespan vs lower bound.",
    "herd simulate montage.json.gz --cpu-limit 16 --json",
)
def cmd_simulate(args: argparse.Namespace) -> int:
    from herd.graph import build, check_limits
    from herd.scheduler import Policy
    from herd.simulate import durations_of, simulate

    workflow = _load(args)
    graph = build(workflow)
    limits = _limits(args, workflow)
    check_limits(graph, limits)
    durations = durations_of(graph, args.duration)
    result = simulate(
        graph,
        limits,
        durations,
        policy=Policy(args.policy),
        use_durations=not args.blind,
        keep_schedule=bool(args.schedule),
    )
    if args.schedule:
        rows = [
            {"task": s.task, "start": s.start, "end": s.end, "resources": s.resources}
            for s in result.schedule
        ]
        caps = {k: v for k, v in limits.resources.items() if v != float("inf")}
        doc = {"workflow": workflow.name, "limits": caps, "schedule": rows}
        Path(args.schedule).write_text(json.dumps(doc))
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
        return 0
    print(f"workflow {workflow.name}: {result.tasks} tasks")
    print(f"makespan     {result.makespan:.3f} s")
    print(
        f"lower bound  {result.lower_bound:.3f} s ({result.bound_by}); critical path {result.critical_path:.3f} s"
    )
    print(f"ratio        {result.ratio:.3f}")
    for pool in result.peak:
        print(f"{pool:<12} peak {result.peak[pool]:.0%}  mean {result.mean[pool]:.0%}")
    return 0


def _setup_simulate(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    _add_limits(p)
    p.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="duration of tasks the spec gives none for",
    )
    p.add_argument(
        "--policy", choices=["critical-path", "timeframe", "fifo"], default="critical-path"
    )
    p.add_argument(
        "--blind",
        action="store_true",
        help="schedule without looking at durations (as on a first run)",
    )
    p.add_argument(
        "--schedule", metavar="OUT.json", help="write the simulated schedule (for herd plot)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


# --- reports (herd.reports) -----------------------------------------------------------------


def _add_report_target(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


def _report(args: argparse.Namespace, build: Callable[[Any, Any, Any], Any]) -> Any:
    """``build(store, workflow record, spec or None)`` on the store of ``args.workdir``."""
    from herd.runner import existing_store
    from herd.status import pick_workflow

    spec = _load(args) if (args.file or args.file_opt) else None
    name = args.workflow or (spec.name if spec is not None else None)
    with existing_store(args.workdir) as store:
        if store is None:
            raise UsageError(
                f"herd has not run anything in {args.workdir} yet: run `herd run FILE` first"
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
        "-n", "--lines", type=int, default=20, metavar="N", help="log lines to show (default 20)"
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
        spec = _load(args) if (args.file or args.file_opt) else None
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
    p.add_argument("--run", type=int, metavar="ID", help="the run to draw (default: the last)")
    p.add_argument(
        "--schedule",
        metavar="SIM.json",
        help="draw a schedule written by `herd simulate --schedule` instead of a run",
    )


@command("convert", "Convert a workflow between formats (native YAML/JSON, WfFormat).", "herd convert workflow.json wf.yaml")
def cmd_convert(args: argparse.Namespace) -> int:
    from herd.convert import convert

    workflow = convert(args.src, args.dst, to=args.to, command_template=args.command_template)
    print(f"wrote {args.dst}: {len(workflow.tasks)} tasks of '{workflow.name}' ({workflow.format} -> {args.to or 'by extension'})")
    for warning in workflow.meta.get("warnings", ()):
        print(f"warning: {warning}")
    return 0


def _setup_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="workflow file in any format herd reads")
    p.add_argument("dst", help="file to write; .yaml/.yml/.json: native, .wfformat.json: WfFormat")
    p.add_argument("--to", choices=["native", "wfformat"], help="target format, overriding the extension")
    p.add_argument("--command-template", metavar="TEMPLATE", help="WfFormat input: command for each task, e.g. 'sleep {runtime}', or 'instant'/'replay'")


@command("export", "Export a finished run as a WfCommons WfFormat instance (with real runtimes).", "herd export wf.yaml -o run.wfformat.json")
def cmd_export(args: argparse.Namespace) -> int:
    from herd.formats.wfformat import dump_run
    from herd.runner import existing_store
    from herd.status import pick_workflow

    workflow = _load(args)
    with existing_store(args.workdir) as store:
        if store is None:
            raise UsageError(f"herd has not run anything in {args.workdir} yet: nothing to export")
        record = pick_workflow(store, workflow.name)
        data = dump_run(workflow, store.attempts(record.id))
    Path(args.output).write_text(json.dumps(data, indent=1))
    print(f"wrote {args.output}: WfFormat {data.get('schemaVersion', '')} with {len(workflow.tasks)} tasks")
    return 0


def _setup_export(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-o", "--output", required=True, help="the WfFormat JSON file to write")


@command("why", "Say why a task would run (or not), down to the root cause.", "herd why reco_3 -f wf.yaml")
def cmd_why(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from herd.runner import existing_store, prepare
    from herd.why import explain, render

    workflow = _load(args)
    options = _options(args, workflow)
    with existing_store(options.workdir) as store:
        prepared = prepare(workflow, options, store)
    chain = explain(prepared.graph, prepared.plan, args.task)
    print(json.dumps([asdict(s) for s in chain], indent=1) if args.json else render(chain))
    return 0


def _setup_why(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="the task's name")
    _add_file(p)
    _add_limits(p)
    _add_selection(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _store_and_workflow(args: argparse.Namespace) -> tuple[Any, Any]:
    """The store of the working directory (for writing) and the workflow named by FILE/--workflow."""
    from herd.status import pick_workflow
    from herd.store import open_store
    from herd.workdir import Workdir

    wd = Workdir(args.workdir)
    if not wd.db_path.exists():
        raise UsageError(f"herd has not run anything in {args.workdir} yet: nothing to change")
    name = args.workflow
    if name is None and (args.file or args.file_opt):
        name = _load(args).name
    store = open_store(wd.db_path)
    try:
        return store, pick_workflow(store, name)
    except BaseException:
        store.close()
        raise


@command("reset", "Forget that tasks succeeded, so they run again (history is kept).", "herd reset 'reco_.*' --downstream -f wf.yaml")
def cmd_reset(args: argparse.Namespace) -> int:
    from herd.graph import build, descendants, match
    from herd.workdir import Workdir

    workflow = _load(args)
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
    print(f"reset {len(names)} task(s): they run again next time: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    return 0


def _setup_reset(p: argparse.ArgumentParser) -> None:
    p.add_argument("tasks", nargs="+", metavar="REGEX", help="tasks to reset (full-match regexes)")
    _add_file(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument("--downstream", action="store_true", help="also every task that needs them")


@command("forget", "Drop all recorded state of a workflow (its files stay).", "herd forget -w quickstart")
def cmd_forget(args: argparse.Namespace) -> int:
    from herd.workdir import Workdir

    with Workdir(args.workdir).lock():
        store, record = _store_and_workflow(args)
        try:
            store.forget(record.id)
        finally:
            store.close()
    print(f"forgot workflow '{record.name}': the next run starts from scratch (files were not touched)")
    return 0


def _setup_forget(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")


@command("clean", "Remove temp outputs (and with --intermediate, files other tasks read).", "herd clean wf.yaml --intermediate --dry-run")
def cmd_clean(args: argparse.Namespace) -> int:
    from herd.clean import clean
    from herd.graph import build
    from herd.plan import Files

    graph = build(_load(args))
    removed = clean(graph, Files(args.workdir.resolve()), intermediate=args.intermediate, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path in removed:
        print(f"{verb} {path}")
    print(f"{verb} {len(removed)} file(s)")
    return 0


def _setup_clean(p: argparse.ArgumentParser) -> None:
    _add_file(p)
    p.add_argument("--intermediate", action="store_true", help="also outputs that another task reads")
    p.add_argument("-n", "--dry-run", action="store_true", help="list, remove nothing")


@command("emit", "From inside a task: record a result or an event with its attempt.", "herd emit events 1000   |   herd emit --event '{\"stage\": \"merged\"}'")
def cmd_emit(args: argparse.Namespace) -> int:
    from herd.emit import emit, emit_event, parse_value

    if args.event is not None:
        data = parse_value(args.event)
        if not isinstance(data, dict):
            raise UsageError("--event wants a JSON object, e.g. --event '{\"stage\": \"merged\"}'")
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


@command("provenance", "Print the provenance record of a task's attempts as JSON.", "herd provenance reco_1 --attempt 2")
def cmd_provenance(args: argparse.Namespace) -> int:
    from herd.provenance import records
    from herd.runner import existing_store
    from herd.status import pick_workflow

    with existing_store(args.workdir) as store:
        if store is None:
            raise UsageError(f"herd has not run anything in {args.workdir} yet")
        wf = pick_workflow(store, args.workflow)
        out = records(store, wf, args.task, args.attempt)
    print(json.dumps(out if args.attempt is None else out[0], indent=1))
    return 0


def _setup_provenance(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help="the task's name")
    p.add_argument("--attempt", type=int, metavar="N", help="only attempt N (default: every attempt)")
    p.add_argument("-w", "--workflow", help="workflow name, when the directory holds several")
    p.add_argument("-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)")


SETUP: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "why": _setup_why,
    "reset": _setup_reset,
    "forget": _setup_forget,
    "clean": _setup_clean,
    "emit": _setup_emit,
    "provenance": _setup_provenance,
    "convert": _setup_convert,
    "export": _setup_export,
    "simulate": _setup_simulate,
    "run": _setup_run,
    "validate": _setup_validate,
    "list": _setup_list,
    "script": _setup_script,
    "graph": _setup_graph,
    "status": _setup_status,
    "stats": _setup_stats,
    "analyze": _setup_analyze,
    "plot": _setup_plot,
}


def parser() -> argparse.ArgumentParser:
    from herd import __version__

    top = argparse.ArgumentParser(
        prog="herd",
        description="herd: a resource-aware, restartable workflow engine for scientific computing.",
        epilog="exit codes: 0 ok, 1 task failed, 2 bad input, 3 store/lock, 130/143 interrupted. See docs/cli.md.",
    )
    top.add_argument("--version", action="version", version=f"herd {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="log what herd does")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, text) in COMMANDS.items():
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
    handler = COMMANDS[args.command][0]
    try:
        return handler(args)
    except HerdError as exc:
        print(f"herd: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("herd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
