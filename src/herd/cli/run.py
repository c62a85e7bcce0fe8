"""`herd run` and the commands that read a workflow without running it: validate, list, script, graph, simulate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from herd.cli.args import amount
from herd.cli.command import command
from herd.cli.options import (
    add_file,
    add_limits,
    add_selection,
    add_store,
    limits_from,
    load_spec,
    max_tasks,
    run_options,
    spec_path,
    spec_setup,
)

if TYPE_CHECKING:
    from herd.core.model import Workflow
    from herd.service.runs import Graph, RunOptions


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


@command(
    "run",
    "Run a workflow: resource-aware, parallel, resumable.",
    "herd run wf.yaml --cpu-limit 8 -k",
    setup=_setup_run,
)
def cmd_run(args: argparse.Namespace) -> int:
    if args.list_tasks or args.produce_script:
        workflow = load_spec(args)
        if args.list_tasks:
            return _print_list(workflow, as_json=False)
        return _write_script(workflow, args, args.produce_script)
    from herd.service import runs

    workflow, graph = runs.load_built(
        spec_path(args),
        args.workdir,
        save=not args.dry_run,
        max_tasks=max_tasks(args),
        setup=spec_setup(args),
    )
    options = run_options(args, workflow)
    if args.dry_run:
        return _dry_run(workflow, graph, options, as_json=args.json)
    from herd.run.progress import reporter_for

    result = runs.run(workflow, options, reporter_for(sys.stdout, quiet=args.quiet), graph)
    return result.exit_code


def _dry_run(workflow: Workflow, graph: Graph, options: RunOptions, *, as_json: bool) -> int:
    from herd.reports import dryrun
    from herd.service import runs

    prepared = runs.plan(workflow, options, graph)
    graph, plan = prepared.graph, prepared.plan
    if as_json:
        print(json.dumps(dryrun.to_json(workflow, graph, plan), indent=1))
        return 0
    sys.stdout.write(dryrun.render_text(graph, plan))  # one write: a million lines in a second
    print(dryrun.summary(workflow, plan))
    return 0


def _setup_validate(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_limits(p)


@command(
    "validate",
    "Check a workflow file: format, fields, DAG, limits.",
    "herd validate workflow.json --cpu-limit 8",
    setup=_setup_validate,
)
def cmd_validate(args: argparse.Namespace) -> int:
    from herd.service import runs

    workflow = load_spec(args)
    graph = runs.validate(workflow, limits_from(args, workflow))
    print(
        f"{workflow.source}: valid {workflow.format} workflow '{workflow.name}': {len(graph)} tasks, {graph.edges} dependencies"
    )
    for warning in workflow.meta.get("warnings", ()):
        print(f"warning: {warning}")
    return 0


def _setup_list(p: argparse.ArgumentParser) -> None:
    add_file(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")


@command(
    "list",
    "List the tasks of a workflow in dependency order.",
    "herd list workflow.json --json",
    setup=_setup_list,
)
def cmd_list(args: argparse.Namespace) -> int:
    return _print_list(load_spec(args), as_json=args.json)


def _print_list(workflow: Workflow, *, as_json: bool) -> int:
    from herd.service import runs

    rows = runs.tasks(workflow)
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    for r in rows:
        res = " ".join(f"{k}={v:g}" for k, v in r["resources"].items())
        needs = ",".join(r["needs"])
        print(f"{r['name']}  [{res}]" + (f"  <- {needs}" if needs else ""))
    return 0


def _setup_script(p: argparse.ArgumentParser) -> None:
    add_file(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("-tt", "--target-tasks", nargs="+", default=[], metavar="REGEX")
    p.add_argument("--target-labels", nargs="+", default=[], metavar="LABEL")


@command(
    "script",
    "Write the workflow as a serial bash script.",
    "herd script workflow.json -o run.sh",
    setup=_setup_script,
)
def cmd_script(args: argparse.Namespace) -> int:
    return _write_script(load_spec(args), args, args.output)


def _write_script(workflow: Workflow, args: argparse.Namespace, out: str | None) -> int:
    from herd.service import runs

    targets, labels = getattr(args, "target_tasks", []), getattr(args, "target_labels", [])
    text = runs.script(workflow, targets, labels)
    if out in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)
        Path(out).chmod(0o755)
        print(f"wrote {out}")
    return 0


def _setup_graph(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument("-o", "--output", help="file to write (default: stdout)")


@command(
    "graph",
    "Print the DAG in Graphviz DOT, coloured by task state.",
    "herd graph wf.yaml | dot -Tsvg > wf.svg",
    setup=_setup_graph,
)
def cmd_graph(args: argparse.Namespace) -> int:
    from herd.service import views

    text = views.graph(load_spec(args), args.workdir, store=args.store)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
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


@command(
    "simulate",
    "Run the real scheduler on a virtual clock: makespan vs lower bound.",
    "herd simulate montage.json.gz --cpu-limit 16 --json",
    setup=_setup_simulate,
)
def cmd_simulate(args: argparse.Namespace) -> int:
    from herd.service import runs

    workflow = load_spec(args)
    limits = limits_from(args, workflow)
    result = runs.simulate(
        workflow,
        limits,
        duration=args.duration,
        policy=runs.Policy(args.policy),
        blind=args.blind,
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


# --- reports (herd.reports) -----------------------------------------------------------------
