"""Moving workflows and runs between formats: convert, export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from herd.cli.command import command
from herd.cli.options import add_file, add_store, load_spec


def _setup_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="workflow file in any format herd reads")
    p.add_argument("dst", help="file to write; .yaml/.yml/.json: native, .wfformat.json: WfFormat")
    p.add_argument(
        "--to", choices=["native", "wfformat"], help="target format, overriding the extension"
    )
    p.add_argument(
        "--command-template",
        metavar="TEMPLATE",
        help="WfFormat input: command for each task, e.g. 'sleep {runtime}', or 'instant'/'replay'",
    )


@command(
    "convert",
    "Convert a workflow between formats (native YAML/JSON, WfFormat).",
    "herd convert workflow.json wf.yaml",
    setup=_setup_convert,
)
def cmd_convert(args: argparse.Namespace) -> int:
    from herd.service import views

    workflow = views.convert(args.src, args.dst, to=args.to, command_template=args.command_template)
    print(
        f"wrote {args.dst}: {len(workflow.tasks)} tasks of '{workflow.name}' ({workflow.format} -> {args.to or 'by extension'})"
    )
    for warning in workflow.meta.get("warnings", ()):
        print(f"warning: {warning}")
    return 0


def _setup_export(p: argparse.ArgumentParser) -> None:
    add_file(p)
    add_store(p)
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="the WfFormat JSON file to write; with --to dagman, the folder to write into",
    )
    p.add_argument(
        "--to",
        choices=["wfformat", "dagman"],
        default="wfformat",
        help="wfformat: the run with its runtimes (default); dagman: the workflow as a .dag, "
        "a submit description and a wrapper per task (tasks run in --workdir)",
    )


@command(
    "export",
    "Export a finished run as a WfCommons WfFormat instance (with real runtimes), or a workflow "
    "as HTCondor DAGMan files (--to dagman).",
    "herd export wf.yaml -o run.wfformat.json; herd export wf.yaml --to dagman -o dag/",
    setup=_setup_export,
)
def cmd_export(args: argparse.Namespace) -> int:
    if args.to == "dagman":
        return _export_dagman(args)
    from herd.service import views

    workflow = load_spec(args)
    data = views.export(workflow, args.workdir, store=args.store)
    Path(args.output).write_text(json.dumps(data, indent=1))
    print(
        f"wrote {args.output}: WfFormat {data.get('schemaVersion', '')} with {len(workflow.tasks)} tasks"
    )
    return 0


def _export_dagman(args: argparse.Namespace) -> int:
    from herd.service import views

    done = views.export_dagman(load_spec(args), Path(args.output), args.workdir)
    print(f"wrote {done.dag}: {done.nodes} nodes, {done.edges} dependencies (condor_submit_dag)")
    return 0
