"""``herd campaign create|list|add-runs|watch|close|status|rerun|invalidate|export``: tasks
tracked per data run as runs arrive (docs/campaigns.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.cli.command import command
from herd.cli.options import add_store
from herd.errors import UsageError

if TYPE_CHECKING:
    from herd.service.campaigns import CampaignStatus, Injected, Requeued

#: the actions, their help and an example each (docs/cli.md shows them all)
ACTIONS = {
    "create": (
        "record a campaign from a template file",
        "herd campaign create prompt --template ecal.yaml",
    ),
    "list": ("the campaigns, with their status counts", "herd campaign list --json"),
    "add-runs": (
        "inject runs: a JSON-lines file (run plus any fields per line), or --run N --field k=v; "
        "a run already there is a no-op; a malformed line refuses the file (exit 2, its line "
        "number); a run lacking a field a task uses is refused with the field named (exit 2, "
        "the others go in)",
        "herd campaign add-runs prompt runs.jsonl",
    ),
    "watch": (
        "run a command every SECONDS and inject the runs it prints (JSON lines); a failing "
        "source or a bad line is a warning and the watch goes on; SIGTERM or SIGINT stop it "
        "cleanly (exit 0)",
        "herd campaign watch prompt --source './new-runs.sh' --every 300",
    ),
    "close": (
        "close groups by their value (an explicit group_by close), or the whole campaign",
        "herd campaign close prompt 8123 --task calib",
    ),
    "status": (
        "the runs x tasks matrix: new, processing, done, failed, merged, skipped",
        "herd campaign status prompt --runs 355100-355200 --json",
    ),
    "rerun": (
        "queue again the failed tasks of some runs (or one task of them), with their downstream",
        "herd campaign rerun prompt --runs 355101 --task reco",
    ),
    "invalidate": (
        "a run's data changed: every task of the runs, and what depends on them, runs again",
        "herd campaign invalidate prompt --runs 355101-355104",
    ),
    "export": (
        "the matrix for Grafana: InfluxDB line protocol, one point per run x task",
        "herd campaign export prompt --influx > points.lp",
    ),
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    add_store(p)


def _setup(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    parsers = {}
    for name, (text, example) in ACTIONS.items():
        parsers[name] = sub.add_parser(
            name,
            help=text,
            description=f"{text}\n\nexample:\n  {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name != "list":
            parsers[name].add_argument("name", help="the campaign")
        _common(parsers[name])
    parsers["create"].add_argument("--template", required=True, metavar="FILE", help="YAML or JSON")
    a = parsers["add-runs"]
    a.add_argument("runs", nargs="?", metavar="RUNS.jsonl", help="one JSON object per line")
    a.add_argument("--run", metavar="N", help="one run, by number (instead of a file)")
    a.add_argument(
        "--field", action="append", default=[], metavar="K=V", help="a field of --run (repeatable)"
    )
    w = parsers["watch"]
    w.add_argument("--source", required=True, metavar="CMD", help="prints runs as JSON lines")
    w.add_argument("--every", type=float, default=300.0, metavar="SECONDS", help="default 300")
    w.add_argument("--rounds", type=int, metavar="N", help="stop after N rounds (default: never)")
    parsers["close"].add_argument("groups", nargs="*", metavar="VALUE", help="group values")
    parsers["close"].add_argument("--task", help="only this grouped task")
    for name in ("status", "rerun", "invalidate"):
        parsers[name].add_argument(
            "--runs", metavar="A-B", required=name != "status", help="run numbers A to B"
        )
    parsers["status"].add_argument("--task", help="only this task")
    parsers["rerun"].add_argument("--task", help="this task, whatever its status")
    for name in ("list", "status", "add-runs", "rerun", "invalidate"):
        parsers[name].add_argument("--json", action="store_true", help="machine-readable")
    parsers["export"].add_argument(
        "--influx", action="store_true", required=True, help="InfluxDB line protocol"
    )


@command(
    "campaign",
    "Campaigns: a template workflow run per data run as runs arrive, with a status per run "
    "and task (new, processing, done, failed, merged, skipped).",
    "herd campaign create prompt --template ecal.yaml && herd campaign add-runs prompt runs.jsonl",
    setup=_setup,
)
def cmd_campaign(args: argparse.Namespace) -> int:
    return int(_HANDLERS[args.action](args))


def _where(args: argparse.Namespace) -> dict[str, Any]:
    return {"workdir": args.workdir, "store": args.store}


def _create(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    rec = campaigns.create(args.name, args.template, **_where(args))
    tasks = ", ".join(t.name for t in rec.template.tasks)
    print(f"campaign '{rec.name}' created (tasks: {tasks}); tasks run in {rec.workdir}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    rows = campaigns.listing(**_where(args))
    if args.json:
        out = [
            {
                "name": s.record.name,
                "runs": s.record.runs,
                "open": s.record.closed is None,
                "created": s.record.created,
                "status": {str(k): v for k, v in s.counts.items()},
            }
            for s in rows
        ]
        print(json.dumps(out, indent=1))
        return 0
    if not rows:
        print("no campaign yet: herd campaign create NAME --template FILE")
    for s in rows:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()))
        state = "open" if s.record.closed is None else "closed"
        print(f"{s.record.name}  {state}  {s.record.runs} runs  {counts or '-'}")
    return 0


def _add_runs(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    if (args.runs is None) == (args.run is None):
        raise UsageError("give a RUNS.jsonl file or --run N (with --field K=V ...)")
    if args.run is None and args.field:
        raise UsageError("--field goes with --run N")
    runs = (
        campaigns.read_runs(args.runs)
        if args.runs is not None
        else [campaigns.run_of(args.run, args.field)]
    )
    added = campaigns.add_runs(args.name, runs, argv=sys.argv, **_where(args))
    for run, why in added.refused:
        print(f"herd: error: run {run} refused: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(_injected(added.injected) | {"refused": dict(added.refused)}, indent=1))
    else:
        print(campaigns.describe(added.injected))
    return 2 if added.refused else 0


def _injected(i: Injected) -> dict[str, Any]:
    return {
        "added": list(i.added),
        "known": list(i.known),
        "queued": i.queued,
        "closed": [{"task": g.task, "value": g.value, "runs": list(g.runs)} for g in i.closed],
        "late": [{"run": r, "task": t} for r, t in i.late],
    }


def _watch(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    if args.every <= 0:
        raise UsageError("--every: give a positive number of seconds")

    def report(line: str) -> None:
        print(f"herd: {line}", file=sys.stderr, flush=True)

    added = campaigns.watch(
        args.name,
        args.source,
        args.every,
        argv=sys.argv,
        report=report,
        rounds=args.rounds,
        **_where(args),
    )
    print(f"watch stopped: {added} run(s) added")
    return 0


def _close(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    i = campaigns.close(args.name, args.groups, task=args.task, argv=sys.argv, **_where(args))
    what = "groups closed" if args.groups else f"campaign '{args.name}' closed"
    print(f"{what}: {campaigns.describe(i)}")
    return 0


def _status(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    runs = campaigns.runs_range(args.runs) if args.runs else None
    st = campaigns.status(args.name, runs=runs, task=args.task, **_where(args))
    if args.json:
        print(json.dumps(st.to_json(), indent=1))
        return 0
    print(_status_table(st))
    return 0


def _status_table(st: CampaignStatus) -> str:
    from herd.service.campaigns import Status

    if not st.rows:
        return f"campaign '{st.record.name}': no runs yet (herd campaign add-runs)"
    names = sorted({k for row in st.rows for k in row.run.fields})[:4]
    head = ["run", *names, *st.tasks]
    body = []
    for row in sorted(st.rows, key=lambda r: -r.run.run):  # newest first
        cells = []
        for t in st.tasks:
            c = row.cells[t]
            n = len(c.instances)
            done = c.jobs.get(Status.DONE, 0) if n > 1 else 0
            cells.append(f"{c.status} {done}/{n}" if n > 1 else str(c.status))
        fields = [str(row.run.fields.get(k, "")) for k in names]
        body.append([str(row.run.run), *fields, *cells])
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in [head, *body]
    )


def _requeued(args: argparse.Namespace, r: Requeued) -> int:
    if args.json:
        out = {"queued": list(r.tasks), "running": list(r.running), "blocked": list(r.blocked)}
        print(json.dumps(out, indent=1))
        return 0
    print(f"{len(r.tasks)} task(s) queued again")
    if r.running:
        print(f"left alone (running now): {', '.join(r.running)}")
    if r.blocked:
        print(f"cancelled again (a task they need failed): {', '.join(r.blocked)}")
    return 0


def _rerun(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    r = campaigns.rerun(
        args.name, campaigns.runs_range(args.runs), task=args.task, argv=sys.argv, **_where(args)
    )
    return _requeued(args, r)


def _invalidate(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    r = campaigns.invalidate(
        args.name, campaigns.runs_range(args.runs), argv=sys.argv, **_where(args)
    )
    return _requeued(args, r)


def _export(args: argparse.Namespace) -> int:
    from herd.service import campaigns

    for line in campaigns.influx(args.name, **_where(args)):
        print(line)
    return 0


_HANDLERS = {
    "create": _create,
    "list": _list,
    "add-runs": _add_runs,
    "watch": _watch,
    "close": _close,
    "status": _status,
    "rerun": _rerun,
    "invalidate": _invalidate,
    "export": _export,
}
