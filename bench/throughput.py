"""Launch throughput: N independent `true` tasks, herd against xargs, side by side.

Usage: python bench/throughput.py [-n 10000] [-j 2] [--repeat 3] [--case native-q ...] [--python PY]
       [--baseline PY]

herd runs the way users run it, on both paths:

- ``native``: a native JSON spec, ``herd run wf.json -j J``;
- ``o2dpg``: an O2DPG ``workflow.json`` (cpu 1, mem 100 per stage, a ``.log_done`` marker written
  per task), ``herd run workflow.json -jmax J --cpu-limit J --mem-limit 1000``;

each with ``-q`` (``native-q``, ``o2dpg-q``) and without (one line per finished task, to a pipe
that is drained, as a log file or CI would take it). State is durable in SQLite throughout.

The baseline is ``seq N | xargs -P J -I{} /bin/sh -c true`` (a shell per task, as a hand-written
driver of shell commands does); ``xargs -P J -n 1 true`` (exec only, the floor) is measured too,
and so is a bare loop of herd's spawn call (``os.posix_spawn`` + ``os.wait``, J in flight) in a
process that imported herd: what herd would make with no work of its own per task, and how long
the machine keeps such a process waiting in each vfork (170-190 µs or 420-520 µs on this
project's guest, depending on where the child lands, which ``bench/placement.py`` shows;
docs/performance.md, issue 18). herd's rate over that loop's (median per case) is the share of
the machine's spawn rate that herd's own work per task leaves.
Each repeat runs, for every case, the shell baseline then herd (alternating pairs, a fresh working
directory each, under ``--dir`` or the temp directory, all kept until the end), and once per repeat
the exec-only baseline and a probe of how long creating a file takes there (the O2DPG cases make
one per task; see :func:`create_cost`: right after a run that deleted many files, this guest
creates them 10-40 times slower); the ratio is herd's rate over the
baseline run just before it. The script prints every pair with the load average and how many
vCPUs each side kept busy on average (CPU time of the command and everything it started, over its
wall time: on this 2-vCPU guest, xargs keeps ~1.7 busy and herd ~1.3, the rest idles while herd
waits in its vforks; docs/performance.md, session 11), then the median ratio per case over the
repeats. The machine is shared: trust the ratios, not the rates.
``--python`` runs the herd installed for another interpreter (an older checkout's ``.venv``);
``--baseline PY`` also runs that one's herd in every pair, between the shell baseline and herd,
and reports herd over it too (``--baseline /work/base/.venv/bin/python``: before and after a
change, in the same run, under the same load).

herd runs with Python's bytecode cache, as an installed herd does (pip writes ``.pyc`` files):
``PYTHONDONTWRITEBYTECODE`` is dropped from its environment and the cache goes to
``PYTHONPYCACHEPREFIX`` (a folder in the system's temp directory, filled by one warm-up run of
each herd before the first pair), so that a checkout is left as it is. Without the cache every
run compiles herd's ~100 modules first (0.15 CPU-seconds here). ``--no-bytecode-cache`` measures
that case.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import stat
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("native-q", "native", "o2dpg-q", "o2dpg")
#: issue 18: every case at least this fraction of xargs -P J sh -c true
TARGET = 0.7


def bytecode_cache() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(tempfile.gettempdir(), "herd-bench-pycache")
    return env


#: vCPUs the last :func:`timed` command kept busy on average (see there)
BUSY: list[float] = [0.0]


def timed(cmd: list[str] | str, *, shell: bool = False, env: dict[str, str] | None = None) -> float:
    """Seconds ``cmd`` takes; its stdout is drained and dropped (a pipe, not a terminal). Also
    sets :data:`BUSY`: the CPU time of the command and of every process it started (each reaped
    by its parent, so counted in ours), over those seconds; on two vCPUs, 2.0 leaves none idle."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    BUSY[0] = cpu / wall
    return wall


def xargs_sh(n: int, jobs: int) -> float:
    return n / timed(f"seq {n} | xargs -P {jobs} -I{{}} /bin/sh -c true", shell=True)


def xargs_exec(n: int, jobs: int) -> float:
    return n / timed(f"seq {n} | xargs -P {jobs} -n 1 true", shell=True)


#: a bare loop of herd's spawn call, ``jobs`` in flight, in a process that imported herd (its
#: footprint: the machine's vfork wait depends on it, docs/performance.md, issue 18)
SPAWN_LOOP = """
import os, sys, time
import herd.cli, herd.run.local
n, jobs = int(sys.argv[1]), int(sys.argv[2])
env, null = dict(os.environ), os.open(os.devnull, os.O_RDWR)
actions = [(os.POSIX_SPAWN_DUP2, null, fd) for fd in (0, 1, 2)]
running = started = done = 0
blocked, t0 = 0.0, time.perf_counter()
while done < n:
    while running < jobs and started < n:
        t = time.perf_counter()
        os.posix_spawn("/bin/true", ["true"], env, file_actions=actions, setsid=True)
        blocked += time.perf_counter() - t
        running, started = running + 1, started + 1
    os.wait()
    running, done = running - 1, done + 1
print(n / (time.perf_counter() - t0), blocked / n)
"""


def spawn_loop(n: int, jobs: int, python: str, env: dict[str, str] | None) -> tuple[float, float]:
    """Tasks a second of :data:`SPAWN_LOOP` and the seconds each spawn blocked it."""
    out = subprocess.run(
        [python, "-c", SPAWN_LOOP, str(n), str(jobs)],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def native_spec(n: int, path: Path) -> None:
    tasks = [{"name": f"t{i}", "cmd": "true", "resources": {"cpu": 0}} for i in range(n)]
    path.write_text(json.dumps({"name": "throughput", "tasks": tasks}))


def o2dpg_spec(n: int, path: Path) -> None:
    stage = {"needs": [], "resources": {"cpu": 1, "relative_cpu": None, "mem": 100}}
    stages = [
        {"name": f"t{i}", "cmd": "true", **stage, "timeframe": -1, "labels": [], "cwd": "./"}
        for i in range(n)
    ]
    path.write_text(json.dumps({"stages": stages, "meta": {}}))


def herd_rate(
    case: str, n: int, jobs: int, root: Path, python: str, env: dict[str, str] | None
) -> float:
    """Tasks a second of ``python -m herd.cli run`` with environment ``env`` (None: this one's)."""
    work = Path(tempfile.mkdtemp(dir=root))
    if case.startswith("o2dpg"):
        spec = work / "workflow.json"
        o2dpg_spec(n, spec)
        limits = ["-jmax", str(jobs), "--cpu-limit", str(jobs), "--mem-limit", "1000"]
    else:
        spec = work / "wf.json"
        native_spec(n, spec)
        limits = ["-j", str(jobs)]
    quiet = ["-q"] if case.endswith("-q") else []
    argv = [python, "-m", "herd.cli", "run", str(spec), "-C", str(work), *limits, *quiet]
    rate = n / timed(argv, env=env)
    if case.startswith("o2dpg"):
        markers = sum(1 for e in os.scandir(work) if e.name.endswith(".log_done"))
        assert markers == n, f"{markers} done markers for {n} tasks in {work}"
    return rate


def create_cost(root: Path, count: int = 200) -> float:
    """Seconds a file creation takes in ``root`` now (``count`` empty files, kept until the end:
    deleting them would slow the next creates). The O2DPG cases create one done marker per task,
    and this guest's ext4 (no journal) skips every inode deleted in the last 30 s to 5 min: after
    an earlier run deleted its 40,000 markers, a create takes 0.2-0.8 ms instead of 7-25 µs."""
    folder = Path(tempfile.mkdtemp(dir=root))
    t0 = time.perf_counter()
    for i in range(count):
        os.mknod(folder / f"probe{i}", 0o644 | stat.S_IFREG)
    return (time.perf_counter() - t0) / count


def load() -> float:
    return os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--case", action="append", choices=CASES, help="default: all four")
    ap.add_argument("--python", default=sys.executable, help="whose herd to run")
    ap.add_argument("--baseline", metavar="PY", help="another herd to run in every pair too")
    ap.add_argument("--no-bytecode-cache", action="store_true", help="herd compiles every run")
    ap.add_argument(
        "--dir",
        type=Path,
        help="where the runs work, made if missing (default: the temp directory)",
    )
    args = ap.parse_args()
    env = None if args.no_bytecode_cache else bytecode_cache()
    cases = args.case or list(CASES)
    n, j = args.n, args.j
    ratios: dict[str, list[float]] = {c: [] for c in cases}
    exec_ratios: dict[str, list[float]] = {c: [] for c in cases}
    loop_ratios: dict[str, list[float]] = {c: [] for c in cases}
    base_ratios: dict[str, list[float]] = {c: [] for c in cases}
    over_base: dict[str, list[float]] = {c: [] for c in cases}
    busy: dict[str, list[tuple[float, float]]] = {c: [] for c in cases}  # (xargs sh, herd)
    print(f"{n} x true, {j} slots; baseline: seq {n} | xargs -P {j} -I{{}} /bin/sh -c true")
    print(f"herd: {args.python} -m herd.cli; load {load():.2f} at the start")
    if args.baseline:
        print(f"baseline herd: {args.baseline} -m herd.cli")
    cache = "off" if env is None else f"on ({env['PYTHONPYCACHEPREFIX']})"
    print(f"bytecode cache {cache}")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for py in filter(None, (args.python, args.baseline)):  # fills the cache, warms up
            herd_rate(cases[0], 10, j, Path(tmp), py, env)
        for k in range(1, args.repeat + 1):
            floor = xargs_exec(n, j)
            loop, block = spawn_loop(min(n, 3000), j, args.python, env)
            print(
                f"repeat {k}: xargs -P {j} -n 1 true {floor:6.0f}/s; a bare posix_spawn loop"
                f" with herd imported {loop:6.0f}/s, {block * 1e6:.0f} µs blocked a spawn;"
                f" a file created in {create_cost(Path(tmp)) * 1e6:.0f} µs  (load {load():.2f})"
            )
            for case in cases:
                base = xargs_sh(n, j)
                base_busy = BUSY[0]
                old = herd_rate(case, n, j, Path(tmp), args.baseline, env) if args.baseline else 0.0
                h = herd_rate(case, n, j, Path(tmp), args.python, env)
                busy[case].append((base_busy, BUSY[0]))
                ratios[case].append(h / base)
                exec_ratios[case].append(h / floor)
                loop_ratios[case].append(h / loop)
                versus = ""
                if args.baseline:
                    base_ratios[case].append(old / base)
                    over_base[case].append(h / old)
                    versus = f"  baseline herd {old:6.0f}/s ({old / base:.2f})"
                print(
                    f"  {case:9s} xargs sh {base:6.0f}/s{versus}  herd {h:6.0f}/s  ratio"
                    f" {h / base:.2f}  (vs exec-only {h / floor:.2f}; vCPUs busy: xargs"
                    f" {base_busy:.2f}, herd {BUSY[0]:.2f}; load {load():.2f})"
                )
    print(f"\nmedian over {args.repeat} pairs (target >= {TARGET} of xargs -P {j} sh -c true):")
    for case in cases:
        med = statistics.median(ratios[case])
        mark = "ok" if med >= TARGET else "BELOW"
        print(
            f"  {case:9s} {med:.2f} {mark:5s}  [{' '.join(f'{r:.2f}' for r in ratios[case])}]"
            f"  vs xargs -n 1 true: {statistics.median(exec_ratios[case]):.2f}"
            f"; vs the bare spawn loop: {statistics.median(loop_ratios[case]):.2f}"
            f"; vCPUs busy: xargs sh {statistics.median(b[0] for b in busy[case]):.2f},"
            f" herd {statistics.median(b[1] for b in busy[case]):.2f}"
        )
        if args.baseline:
            print(
                f"  {'':9s} baseline herd {statistics.median(base_ratios[case]):.2f}"
                f"  [{' '.join(f'{r:.2f}' for r in base_ratios[case])}]"
                f"  herd / baseline herd {statistics.median(over_base[case]):.2f}"
            )


if __name__ == "__main__":
    main()
