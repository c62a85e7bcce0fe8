"""`herd run` and the commands that read a workflow without running it: validate, list, script, graph, simulate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from herd.cli import (
    SETUP,
    add_file,
    add_limits,
    add_selection,
    add_store,
    command,
    limits_from,
    load_spec,
    max_tasks,
    run_options,
    spec_path,
    spec_setup,
)
from herd.cli.args import amount


def _setup_run(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    add_limits(p)
    add_selection(p)
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
        type=amount(),
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
    add_slurm(p)


def add_slurm(p: argparse.ArgumentParser) -> None:
    from herd.cli.slurm import add_site

    g = p.add_argument_group("executor (docs/batch.md)")
    g.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="local: processes here (default); slurm: each task a Slurm job (sbatch)",
    )
    add_site(g)
    g.add_argument(
        "--sbatch",
        action="append",
        default=[],
        metavar="OPTION",
        help="slurm: one more sbatch option, e.g. --sbatch=--constraint=haswell (repeatable)",
    )
    g.add_argument(
        "--group",
        type=int,
        default=1,
        metavar="N",
        help="slurm: up to N tasks of equal resources that are ready together share one job "
        "(run one after another; for short tasks; default 1)",
    )


@command(
    "run",
    "Run a workflow: resource-aware, parallel, resumable.",
    "herd run wf.yaml --cpu-limit 8 -k",
)
def cmd_run(args: argparse.Namespace) -> int:
    if args.list_tasks or args.produce_script:
        workflow = load_spec(args)
        if args.list_tasks:
            return _print_list(workflow, as_json=False)
        return _write_script(workflow, args, args.produce_script)
    from herd.formats.built import load_built

    workflow, graph = load_built(
        spec_path(args),
        args.workdir,
        save=not args.dry_run,
        max_tasks=max_tasks(args),
        setup=spec_setup(args),
    )
    options = run_options(args, workflow)
    if args.dry_run:
        return _dry_run(workflow, graph, options, as_json=args.json)
    from herd.run.local import run_workflow
    from herd.run.progress import reporter_for

    result = run_workflow(workflow, options, reporter_for(sys.stdout, quiet=args.quiet), graph)
    return result.exit_code


def _dry_run(workflow: Any, graph: Any, options: Any, *, as_json: bool) -> int:
    from herd.core.bulk import gc_paused
    from herd.run.local import existing_store, prepare

    with existing_store(options.workdir, options.store) as store:
        prepared = prepare(workflow, options, store, graph)
    graph, verdicts = prepared.graph, prepared.plan.verdicts
    tasks = graph.tasks
    # task ids and strings only (no tuple per task): nothing here for the garbage collector
    shown = [i for i in graph.order if i in verdicts]
    if as_json:
        with gc_paused():
            rows = [
                {"task": tasks[i].name, "run": verdicts[i].run, "reason": verdicts[i].reason}
                for i in shown
            ]
        print(json.dumps({"workflow": workflow.name, "tasks": rows}, indent=1))
        return 0
    width = max((len(tasks[i].name) for i in shown), default=4)
    # one write of every line: a million tasks print in a second, not in ten
    lines = [
        f"{'run ' if (v := verdicts[i]).run else 'skip'}  {tasks[i].name:<{width}}  {v.reason}\n"
        for i in shown
    ]
    sys.stdout.write("".join(lines))
    todo = len(prepared.plan.todo)
    print(
        f"herd: dry run of '{workflow.name}': {todo} to run, {len(shown) - todo} up to date,"
        " nothing started"
    )
    return 0


@command(
    "validate",
    "Check a workflow file: format, fields, DAG, limits.",
    "herd validate workflow.json --cpu-limit 8",
)
def cmd_validate(args: argparse.Namespace) -> int:
    from herd.core.graph import build, check_limits

    workflow = load_spec(args)
    graph = build(workflow)
    check_limits(graph, limits_from(args, workflow))
    print(
        f"{workflow.source}: valid {workflow.format} workflow '{workflow.name}': {len(graph)} tasks, {graph.edges} dependencies"
    )
    for warning in workflow.meta.get("warnings", ()):
        print(f"warning: {warning}")
    return 0


def _setup_validate(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_limits(p)


@command(
    "list", "List the tasks of a workflow in dependency order.", "herd list workflow.json --json"
)
def cmd_list(args: argparse.Namespace) -> int:
    return _print_list(load_spec(args), as_json=args.json)


def _print_list(workflow: Any, *, as_json: bool) -> int:
    from herd.core.graph import build

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
    add_file(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "script", "Write the workflow as a serial bash script.", "herd script workflow.json -o run.sh"
)
def cmd_script(args: argparse.Namespace) -> int:
    return _write_script(load_spec(args), args, args.output)


def _write_script(workflow: Any, args: argparse.Namespace, out: str | None) -> int:
    from herd.core.graph import build, select
    from herd.reports.script import serial_script

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
    add_file(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("-tt", "--target-tasks", nargs="+", default=[], metavar="REGEX")
    p.add_argument("--target-labels", nargs="+", default=[], metavar="LABEL")


@command(
    "graph",
    "Print the DAG in Graphviz DOT, coloured by task state.",
    "herd graph wf.yaml | dot -Tsvg > wf.svg",
)
def cmd_graph(args: argparse.Namespace) -> int:
    from herd.core.graph import build
    from herd.reports.dot import to_dot
    from herd.run.local import existing_store

    workflow = load_spec(args)
    states = None
    with existing_store(args.workdir, args.store) as store:
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
    add_file(p)
    add_store(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")


@command(
    "simulate",
    "Run the real scheduler on a virtual clock: makespan vs lower bound.",
    "herd simulate montage.json.gz --cpu-limit 16 --json",
)
def cmd_simulate(args: argparse.Namespace) -> int:
    from herd.core.graph import build, check_limits
    from herd.core.scheduler import Policy
    from herd.run.simulate import durations_of, simulate

    workflow = load_spec(args)
    graph = build(workflow)
    limits = limits_from(args, workflow)
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
    add_file(p)
    add_limits(p)
    p.add_argument(
        "--duration",
        type=amount(),
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


SETUP.update(
    {
        "simulate": _setup_simulate,
        "run": _setup_run,
        "validate": _setup_validate,
        "list": _setup_list,
        "script": _setup_script,
        "graph": _setup_graph,
    }
)
