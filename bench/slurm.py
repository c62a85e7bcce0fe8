"""``herd run --executor slurm``: what one task costs on its way through Slurm, side by side.

Usage: python bench/slurm.py [-n 40] [--repeat 3]     (needs `eval "$(bash scripts/slurm.sh up)"`)

Per repeat, in alternating order:

- **herd**: N independent ``true`` tasks through ``--executor slurm`` (one job per task); from the
  executor's timings, per task: sbatch → start (the job's clock at the task's start), start → end,
  end → noticed (herd read the task's status file; the store commit follows in the same loop turn,
  within the runner's 10 ms group commit), and the wall time of the whole run;
- **sbatch**: the same N ``true`` jobs submitted with plain ``sbatch --wrap`` in a loop, waited for
  with ``squeue`` every 0.1 s: what a hand-written driver pays;
- **O2DPG**: the pp 3-timeframe workflow (114 stages, harmless ``echo`` commands) through
  ``--executor slurm`` beside a local run of the same (``../shared/data``).

It prints every repeat with the load average, then medians and the ratios herd / sbatch and
slurm / local. The machine is shared: trust the ratios and medians, not single figures.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from herd.core.model import Limits, Task, Workflow
from herd.exec.executor import Executor
from herd.formats import load
from herd.launch.slurm.executor import SlurmExecutor, Timing
from herd.launch.slurm.jobs import SlurmOptions
from herd.run.local import RunOptions, run_workflow
from herd.run.progress import QuietReporter

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FREE = Limits({"cpu": float("inf"), "mem": float("inf"), "gpu": float("inf")})


def herd_slurm(workflow: Workflow, workdir: Path) -> tuple[float, list[Timing]]:
    made: list[SlurmExecutor] = []

    def factory(wf: Workflow, where: Path) -> Executor:
        made.append(SlurmExecutor(wf, where, SlurmOptions()))
        return made[-1]

    t0 = time.perf_counter()
    result = run_workflow(
        workflow,
        RunOptions(workdir=workdir, limits=FREE, executor=factory),
        QuietReporter(io.StringIO()),
    )
    wall = time.perf_counter() - t0
    assert result.status == "succeeded", result
    return wall, made[0].timings


def herd_local(workflow: Workflow, workdir: Path) -> float:
    t0 = time.perf_counter()
    options = RunOptions(workdir=workdir, limits=Limits({"cpu": 8, "mem": 64000}))
    result = run_workflow(workflow, options, QuietReporter(io.StringIO()))
    assert result.status == "succeeded", result
    return time.perf_counter() - t0


def plain_sbatch(n: int, workdir: Path) -> float:
    t0 = time.perf_counter()
    ids = []
    for i in range(n):
        out = subprocess.run(
            [
                "sbatch",
                "--parsable",
                f"--job-name=plain{i}",
                f"--output={workdir}/plain{i}.log",
                "--wrap",
                "true",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        ids.append(out.stdout.strip().split(";")[0])
    jobs = ",".join(ids)
    while True:
        out = subprocess.run(
            [
                "squeue",
                "--noheader",
                "--states=PENDING,RUNNING,COMPLETING",
                f"--jobs={jobs}",
                "--format=%i",
            ],
            capture_output=True,
            text=True,
        )
        if not out.stdout.strip():
            return time.perf_counter() - t0
        time.sleep(0.1)


def trues(n: int) -> Workflow:
    return Workflow(
        "bench_slurm",
        tuple(Task(f"t{i}", "true", resources={"cpu": 1, "mem": 100}) for i in range(n)),
    )


def harmless_o2dpg() -> Workflow:
    wf = load(DATA / "o2dpg" / "o2dpg_pp_3tf.json")
    tasks = tuple(t._replace(cmd=f"echo {t.name} > {t.name}.result") for t in wf.tasks)
    return replace(wf, tasks=tasks, init="true")


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f} ms"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    if "SLURM_CONF" not in os.environ:
        print(
            'bench/slurm.py: start Slurm first: eval "$(bash scripts/slurm.sh up)"', file=sys.stderr
        )
        return 2
    rows: dict[str, list[float]] = {
        k: [] for k in ("sub", "run", "notice", "herd", "plain", "o2slurm", "o2local")
    }
    o2 = harmless_o2dpg() if DATA.is_dir() else None
    for r in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            plain = plain_sbatch(args.n, base)
            wall, timings = herd_slurm(trues(args.n), base / "herd")
            rows["plain"].append(plain)
            rows["herd"].append(wall)
            rows["sub"] += [t.started - t.submitted for t in timings]
            rows["run"] += [t.ended - t.started for t in timings]
            rows["notice"] += [t.noticed - t.ended for t in timings]
            line = f"repeat {r + 1}: load {os.getloadavg()[0]:.2f}  {args.n} x true: sbatch loop {plain:6.2f} s, herd {wall:6.2f} s ({wall / plain:.2f}x)"
            if o2 is not None:
                local = herd_local(o2, base / "o2local")
                slurm, _ = herd_slurm(o2, base / "o2slurm")
                rows["o2local"].append(local)
                rows["o2slurm"].append(slurm)
                line += (
                    f"; O2DPG 3tf local {local:5.2f} s, slurm {slurm:5.2f} s ({slurm / local:.2f}x)"
                )
            print(line, flush=True)
    print(
        f"\nper task (median of {len(rows['sub'])}): sbatch -> start {median_ms(rows['sub'])}, "
        f"start -> end {median_ms(rows['run'])}, end -> noticed {median_ms(rows['notice'])}"
    )
    print(
        f"{args.n} x true: herd / plain sbatch loop = {statistics.median(rows['herd']) / statistics.median(rows['plain']):.2f} "
        f"(medians {statistics.median(rows['herd']):.2f} s / {statistics.median(rows['plain']):.2f} s)"
    )
    if rows["o2local"]:
        ratio = statistics.median(rows["o2slurm"]) / statistics.median(rows["o2local"])
        print(
            f"O2DPG pp 3tf (114 stages): slurm / local = {ratio:.2f} "
            f"(medians {statistics.median(rows['o2slurm']):.2f} s / {statistics.median(rows['o2local']):.2f} s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
