"""Where the kernel puts each task herd starts, and how often both slots run: herd against xargs.

Usage: python bench/placement.py [-n 3000] [-j 2] [--python PY]

Runs N independent ``true`` twice under ``perf record`` (the scheduler's ``sched_wakeup_new`` and
``sched_switch`` tracepoints, every CPU): ``herd run wf.json -j J -q`` (a native spec) and
``seq N | xargs -P J -n 1 true``. For each it prints

- where the new processes were placed: on the vCPU their parent ran on when it created them, or
  on another;
- the share of the time (from the first task's creation to the last event) during which 0, 1, ...
  J vCPUs were running one of the tasks (from its creation, so a child still in its vfork counts).

On this project's 2-vCPU guest (docs/performance.md, session 12), herd's children land on the
other vCPU almost every time, behind the task still running there, while herd's own vCPU idles
in the vfork wait: both slots run at once a fifth of the time, against three quarters for xargs,
whose parent sleeps (its children go either way). A change to how herd starts processes (issue
18) shows here first.

Needs ``perf`` (Debian: ``apt-get install linux-perf``) and the right to trace the scheduler
(root, or ``kernel.perf_event_paranoid`` -1); says so and exits 2 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

EVENTS = ("sched:sched_wakeup_new", "sched:sched_switch")
_LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<time>[\d.]+):\s+"
                   r"(?P<event>\S+):\s+(?P<rest>.*)$")  # fmt: skip
_FIELD = re.compile(r"(\w+)=(\S+)")


@dataclass
class Placement:
    driver: str  # the command name of the process that started the tasks
    tasks: int
    same_cpu: int  # placed on the vCPU their parent ran on
    running: dict[int, float]  # vCPUs running a task -> share of the time


def record(cmd: list[str], data: Path, cwd: Path) -> None:
    events = [arg for event in EVENTS for arg in ("-e", event)]
    subprocess.run(
        ["perf", "record", "-q", "-a", "-o", str(data), *events, "--", *cmd],
        cwd=cwd, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


def analyse(data: Path) -> Placement:
    """The placement figures of one trace file."""
    out = subprocess.run(
        ["perf", "script", "-i", str(data), "-F", "comm,pid,cpu,time,event,trace"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    placement = summarise(out)
    if placement is None:
        print(f"bench/placement.py: no process creation in {data}: was the tracepoint recorded?",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    return placement


def summarise(trace: str) -> Placement | None:
    """The placement figures of ``perf script`` output (fields comm, pid, cpu, time, event,
    trace); the driver is the process that created most processes. None: it created none."""
    rows = [m for m in map(_LINE.match, trace.splitlines()) if m]
    births: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)
    for m in rows:
        if m["event"] == "sched:sched_wakeup_new":
            births[int(m["pid"])].append((int(dict(_FIELD.findall(m["rest"]))["pid"]), m["comm"]))
    if not births:
        return None
    parent = max(births, key=lambda pid: len(births[pid]))
    tasks = {child for child, _ in births[parent]}
    same = 0
    current: dict[int, int] = {}  # vCPU -> pid running there
    share: dict[int, float] = collections.defaultdict(float)
    last: float | None = None  # the time of the last event, from the first task's creation
    for m in rows:
        t, cpu = float(m["time"]), int(m["cpu"])
        if m["event"] == "sched:sched_wakeup_new" and int(m["pid"]) == parent:
            same += int(dict(_FIELD.findall(m["rest"]))["target_cpu"]) == cpu
            last = t if last is None else last
        if last is not None:
            share[sum(pid in tasks for pid in current.values())] += t - last
            last = t
        if m["event"] == "sched:sched_switch":
            current[cpu] = int(dict(_FIELD.findall(m["rest"]))["next_pid"])
    total = sum(share.values()) or 1.0
    return Placement(
        driver=births[parent][0][1],
        tasks=len(tasks),
        same_cpu=same,
        running={k: v / total for k, v in sorted(share.items())},
    )


def show(name: str, p: Placement) -> None:
    busy = ", ".join(f"{k}: {v * 100:.0f} %" for k, v in p.running.items())
    print(
        f"  {name:6s} {p.tasks} tasks started by {p.driver}: {p.same_cpu} on its vCPU,"
        f" {p.tasks - p.same_cpu} on another; vCPUs running a task, share of the time: {busy}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--python", default=sys.executable, help="whose herd to run")
    args = ap.parse_args()
    if args.n < 1 or args.j < 1:
        ap.error("-n and -j must be at least 1")
    if shutil.which("perf") is None:
        print("bench/placement.py: perf is not installed (Debian: apt-get install linux-perf)",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = work / "wf.json"
        tasks = [{"name": f"t{i}", "cmd": "true"} for i in range(args.n)]
        spec.write_text(json.dumps({"name": "placement", "tasks": tasks}))
        herd = [args.python, "-m", "herd.cli", "run", str(spec), "-j", str(args.j), "-q"]
        xargs = ["sh", "-c", f"seq {args.n} | xargs -P {args.j} -n 1 true"]
        print(f"{args.n} x true, {args.j} slots, traced with perf (sched_wakeup_new, sched_switch)")
        for name, cmd in (("herd", herd), ("xargs", xargs)):
            data = work / f"{name}.data"
            try:
                record(cmd, data, work)
            except subprocess.CalledProcessError as exc:
                print(f"bench/placement.py: perf record failed ({exc}); tracing the scheduler"
                      " needs root or kernel.perf_event_paranoid -1", file=sys.stderr)  # fmt: skip
                sys.exit(2)
            show(name, analyse(data))


if __name__ == "__main__":
    main()
