"""Launch throughput against Snakemake: N independent jobs, herd vs Snakemake vs xargs, side by side.

Usage: python bench/snakemake_compare.py [-n 10000] [--repeat 1] [--scheduler greedy ilp]
                                          [--snakemake-limit 1200]
       python bench/snakemake_compare.py --quick        (N=1000, 3 repeats)

Workload: N independent jobs, each running `true && touch out/<i>`. Snakemake requires every job
to produce an output file, so every contender does the same work: herd's tasks and the xargs
commands also create their file out/<i> (`out/` exists beforehand in each fresh working
directory). Each contender starts in a fresh working directory and is timed wall-clock from
command start to exit, start-up and workflow parsing included:

  xargs      seq 0 N-1 | xargs -P 2 -n 1 sh -c 'true && touch out/$0'
  herd       herd run wf.json -j 2 -q --cpu-limit 2
             (native JSON spec: {"name": "t<i>", "cmd": "true && touch out/<i>",
              "resources": {"cpu": 1}}; state kept durable in SQLite as always)
  snakemake  snakemake --snakefile Snakefile --cores 2 --scheduler S
                       --max-jobs-per-timespan 1000000/1s --quiet all
             (one wildcard rule `t` with output "out/{i}" and shell "true && touch {output}",
              and a target rule `all` asking for the N files; metadata kept as always)

About Snakemake's settings. It runs from its own virtual environment bench/.venv-snakemake
(created with `python3 -m venv` and `pip install snakemake` when missing; never the project's
.venv). If it cannot be installed (no network, ...) the script says "skipped: ..." and exits 0.
Snakemake's local run sends nothing over the network (no update check; conda and containers are
off by default), so there is nothing to switch off on that side. What is changed from its
defaults: `--quiet all` (no progress or rule lines; herd's -q still prints a summary) and
`--max-jobs-per-timespan 1000000/1s`, lifting the default cap of 100 job starts per second, a
throttle meant for cluster submission. Both changes can only make Snakemake faster. Snakemake's
default scheduler is the ILP one (PuLP/CBC, solved again at each scheduling round), which is
much slower on this workload than its `greedy` scheduler: by default both are measured, and
the headline ratio herd/snakemake is taken against the faster one. Snakemake runs each shell
job through `bash -c 'set -euo pipefail; ...'`, herd and xargs through `/bin/sh -c`; that is
how each tool runs a command, and it is kept.

A Snakemake run still going after --snakemake-limit seconds (default 1200) is stopped, and its
rate is that of the jobs it finished by then. Both of its schedulers spend, at every scheduling
round, time growing with the number of ready jobs (with 10,000 jobs, Snakemake 9.27.1's ILP
scheduler made about 1.4 jobs/s over its first 20 minutes), so a run goes faster as it goes on: the full run's rate is higher than the
rate of its first jobs, and a ratio herd/snakemake against a stopped run is marked "<=" (an
upper bound).

Each repeat runs xargs, herd, then each Snakemake scheduler; the script prints jobs/s of each,
the ratios herd/snakemake and herd/xargs per repeat, and medians over the repeats. The machine
may be shared: the load average is printed next to the numbers; trust the ratios, not the
absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERD = [sys.executable, "-m", "herd.cli"]
BENCH = Path(__file__).resolve().parent
DEFAULT_VENV = BENCH / ".venv-snakemake"
SCHEDULERS = ("greedy", "ilp")

SNAKEFILE = """\
N = {n}

rule all:
    input:
        expand("out/{{i}}", i=range(N)),

rule t:
    output:
        "out/{{i}}",
    shell:
        "true && touch {{output}}"
"""


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f}"


def snakemake_version(venv: Path) -> str | None:
    exe = venv / "bin" / "snakemake"
    if not exe.exists():
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def ensure_snakemake(venv: Path, spec: str) -> str:
    """Snakemake's version in ``venv``, installing it there first if missing; exits 0 if it cannot."""
    version = snakemake_version(venv)
    if version:
        return version
    python = venv / "bin" / "python"
    steps = []
    if not python.exists():
        steps.append([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)])
    steps.append(
        [str(python), "-m", "pip", "install", "-q", "--retries", "2", "--timeout", "20", spec]
    )
    print(f"installing {spec} into {venv} ...", flush=True)
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            skip(f"{' '.join(cmd[:4])}: {exc}")
        if done.returncode != 0:
            errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
            lines = errors or done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            skip(f"{' '.join(cmd[:4])}: {lines[-1].strip()}")
    version = snakemake_version(venv)
    if not version:
        skip("installed, but `snakemake --version` fails")
    return version


def mark(name: str, unfinished: set[str]) -> str:
    """Mark "<=" for a ratio against a contender stopped early (it speeds up later on)."""
    return "<=" if name in unfinished else ""


def skip(reason: str) -> None:
    print(f"skipped: cannot install snakemake ({reason})")
    sys.exit(0)


def fresh(root: Path) -> Path:
    work = Path(tempfile.mkdtemp(dir=root))
    (work / "out").mkdir()
    return work


def finish(work: Path, n: int, what: str, elapsed: float) -> float:
    made = sum(1 for _ in os.scandir(work / "out"))
    if made != n:
        sys.exit(f"{what}: {made} of {n} output files made (see {work})")
    shutil.rmtree(work)
    return n / elapsed


def xargs_rate(n: int, jobs: int, root: Path) -> float:
    work = fresh(root)
    cmd = f"seq 0 {n - 1} | xargs -P {jobs} -n 1 sh -c 'true && touch out/$0'"
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True, cwd=work)
    return finish(work, n, "xargs", time.perf_counter() - t0)


def herd_rate(n: int, jobs: int, root: Path) -> float:
    work = fresh(root)
    tasks = [
        {"name": f"t{i}", "cmd": f"true && touch out/{i}", "resources": {"cpu": 1}}
        for i in range(n)
    ]
    (work / "wf.json").write_text(json.dumps({"name": "snakemake-compare", "tasks": tasks}))
    cmd = [*HERD, "run", "wf.json", "-j", str(jobs), "-q", "--cpu-limit", str(jobs)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=work, stdout=subprocess.DEVNULL)
    return finish(work, n, "herd", time.perf_counter() - t0)


def snakemake_rate(
    n: int, jobs: int, root: Path, venv: Path, scheduler: str, limit: float | None
) -> tuple[float, bool]:
    """(jobs/s, finished): past ``limit`` seconds Snakemake is stopped and the rate is that of
    the outputs made so far (see the module docstring about what this rate means)."""
    work = fresh(root)
    (work / "Snakefile").write_text(SNAKEFILE.format(n=n))
    cmd = [
        str(venv / "bin" / "snakemake"),
        "--snakefile", "Snakefile",
        "--cores", str(jobs),
        "--scheduler", scheduler,
        "--max-jobs-per-timespan", "1000000/1s",
        "--quiet", "all",
    ]  # fmt: skip
    with tempfile.TemporaryFile(mode="w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            elapsed = time.perf_counter() - t0
            made = sum(1 for _ in os.scandir(work / "out"))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            shutil.rmtree(work)
            return made / elapsed, False
        elapsed = time.perf_counter() - t0
        if code != 0:
            log.seek(0)
            sys.exit(f"snakemake ({scheduler}) failed, exit {code}:\n{log.read()[-3000:]}")
    return finish(work, n, f"snakemake ({scheduler})", elapsed), True


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("-n", type=int, help="number of jobs (default 10000; 1000 with --quick)")
    ap.add_argument("-j", type=int, default=2, help="jobs at once for every contender (default 2)")
    ap.add_argument("--repeat", type=int, help="repeats, medians taken (default 1; 3 with --quick)")
    ap.add_argument("--quick", action="store_true", help="short check: N=1000, 3 repeats")
    ap.add_argument(
        "--scheduler",
        nargs="+",
        choices=SCHEDULERS,
        default=list(SCHEDULERS),
        help="Snakemake scheduler(s) to measure (default: greedy ilp)",
    )
    ap.add_argument(
        "--venv",
        type=Path,
        default=DEFAULT_VENV,
        help=f"Snakemake's own venv (default {DEFAULT_VENV})",
    )
    ap.add_argument(
        "--snakemake-spec",
        default="snakemake",
        help="what pip installs when missing (default snakemake)",
    )
    ap.add_argument(
        "--snakemake-limit",
        type=float,
        default=1200,
        metavar="SECONDS",
        help="stop a Snakemake run after this long and report its rate so far (0: never; default 1200)",
    )
    args = ap.parse_args()
    n = args.n or (1000 if args.quick else 10_000)
    repeat = args.repeat or (3 if args.quick else 1)

    version = ensure_snakemake(args.venv.resolve(), args.snakemake_spec)
    print(
        f"snakemake {version} ({args.venv}); N={n} jobs of `true && touch out/<i>`, -j {args.j}, {repeat} repeat(s)"
    )
    print(f"start: {load()}", flush=True)
    rates: dict[str, list[float]] = {
        "xargs": [],
        "herd": [],
        **{f"snakemake-{s}": [] for s in args.scheduler},
    }
    limit = args.snakemake_limit or None
    unfinished: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="herd-smk-") as tmp:
        root = Path(tmp)
        for k in range(repeat):
            row = {"xargs": xargs_rate(n, args.j, root)}
            print(f"repeat {k + 1}: xargs {row['xargs']:7.1f} jobs/s   ({load()})", flush=True)
            row["herd"] = herd_rate(n, args.j, root)
            print(f"repeat {k + 1}: herd {row['herd']:7.1f} jobs/s   ({load()})", flush=True)
            for s in args.scheduler:
                name = f"snakemake-{s}"
                row[name], done = snakemake_rate(n, args.j, root, args.venv, s, limit)
                if not done:
                    unfinished.add(name)
                how = (
                    ""
                    if done
                    else f" (stopped after {limit:.0f} s, {row[name] * limit:.0f} jobs done)"
                )
                print(
                    f"repeat {k + 1}: {name} {row[name]:7.1f} jobs/s{how}   ({load()})", flush=True
                )
            for name, rate in row.items():
                rates[name].append(rate)
            h = row["herd"]
            ratio_text = "   ".join(
                f"herd/{name} {mark(name, unfinished)}{h / rate:.2f}"
                for name, rate in row.items()
                if name != "herd"
            )
            print(f"repeat {k + 1}: ratios: {ratio_text}", flush=True)

    med = {name: statistics.median(values) for name, values in rates.items()}
    print(f"medians over {repeat} repeat(s), jobs/s:")
    for name, value in med.items():
        took = (
            "stopped early: rate of its first jobs"
            if name in unfinished
            else f"{n / value:.1f} s for {n} jobs"
        )
        print(f"  {name:<18} {value:8.1f}   ({took})")
    print("median of the per-repeat ratios (paired, side by side):")
    ratio = {
        name: statistics.median(h / r for h, r in zip(rates["herd"], values, strict=True))
        for name, values in rates.items()
        if name != "herd"
    }
    print(f"  herd/{'xargs':<20}   {ratio['xargs']:.2f}   (target >= 0.7)")
    for s in args.scheduler:
        name = f"snakemake-{s}"
        print(f"  herd/{name:<20} {mark(name, unfinished):>2}{ratio[name]:.2f}")
    best = max(args.scheduler, key=lambda s: med[f"snakemake-{s}"])
    name = f"snakemake-{best}"
    print(
        f"herd/snakemake (fastest Snakemake scheduler, {best}): {mark(name, unfinished)}{ratio[name]:.2f}"
    )
    print(f"end: {load()}")


if __name__ == "__main__":
    main()
