"""A million tasks: load + plan, simulate, record in the store, resume — wall time and peak RSS.

Usage: python bench/scale.py [FILE ...] [--repeat 3] [--steps dry-run simulate store resume]

Without FILEs, the two 1M-task workflows of ``bench/generate.py`` are used (and generated into
``bench/out/`` when missing): ``o2dpg_1m.json`` (50,000 timeframes x 20 stages, explicit needs) and
``montage_1m.json`` (a 500 x 500 mosaic, edges from files). Every measurement runs in a fresh
process, through a small wrapper process that reports the wall time and the peak RSS of its one
child (``getrusage(RUSAGE_CHILDREN).ru_maxrss``):

``dry-run``   ``herd run FILE --dry-run -q --cpu-limit 64 --mem-limit 1000000``: load, validate,
              plan, print one line per task (to a file) and the summary.     target <= 30 s, 3 GB
``simulate``  ``herd simulate FILE --cpu-limit 64 --mem-limit 1000000``.     target <= 120 s
``store``     ``SQLiteStore.add_workflow`` of the loaded workflow into a new database (the time of
              that call alone; loading is reported beside it).               target <= 20 s
``resume``    ``herd run FILE -q --cpu-limit 64 --mem-limit 1000000`` in a working directory
              left as a finished run leaves it: every file the tasks read or write exists (empty),
              the store says every task succeeded with its current fingerprint and input
              stamps, and the loaded spec is in ``.herd/cache`` (``herd.formats.built``). It is prepared
              once per file, beforehand (not timed), through the Store API:
              the plan's verdicts written as ``TaskChanged(SUCCEEDED, fingerprint=...)`` batches,
              then ``sync``; the repeats resume the same directory.
                                                                             target <= 30 s
The machine is shared: the script prints every repeat and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DEFAULT_FILES = {
    "o2dpg_1m.json": ["o2dpg", "--timeframes", "50000"],
    "montage_1m.json": ["montage", "--side", "500"],
}
HERD = [sys.executable, "-m", "herd.cli"]
LIMITS = ["--cpu-limit", "64", "--mem-limit", "1000000"]
TARGETS = {"dry-run": 30.0, "simulate": 120.0, "store": 20.0, "resume": 30.0}
RSS_TARGET_MB = 3000.0
STEPS = tuple(TARGETS)


# --- measuring --------------------------------------------------------------------------------


def measured(cmd: list[str], stdout: Path) -> dict[str, Any]:
    """Run ``cmd`` under the wrapper (a fresh process); its wall time, peak RSS and last line."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        subprocess.run(
            [sys.executable, __file__, "--wrap", report.name, str(stdout), "--", *cmd], check=True
        )
        result: dict[str, Any] = json.loads(Path(report.name).read_text())
    return result


def wrap(report: str, stdout: str, cmd: list[str]) -> None:
    """The wrapper: run ``cmd`` once, write {wall, cpu, rss_mb, code, out} to ``report``."""
    t0 = time.perf_counter()
    with open(stdout, "w") as out:
        code = subprocess.run(cmd, stdout=out).returncode
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_mb = usage.ru_maxrss / 1024  # KB on Linux
    with open(stdout, "rb") as f:  # the last lines only: a dry run prints a million
        f.seek(max(0, os.path.getsize(stdout) - 4096))
        lines = f.read().decode(errors="replace").splitlines()
    Path(report).write_text(
        json.dumps(
            {
                "wall": wall,
                "cpu": usage.ru_utime + usage.ru_stime,
                "rss_mb": rss_mb,
                "code": code,
                "out": lines[-8:],
            }
        )
    )


# --- the steps --------------------------------------------------------------------------------


def step_dry_run(path: Path, tmp: Path) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(dir=tmp))
    return measured(
        [*HERD, "run", str(path), "--dry-run", "-q", "-C", str(work), *LIMITS], work / "stdout.txt"
    )


def step_simulate(path: Path, tmp: Path) -> dict[str, Any]:
    return measured([*HERD, "simulate", str(path), *LIMITS], tmp / "simulate.txt")


def step_store(path: Path, tmp: Path) -> dict[str, Any]:
    db = Path(tempfile.mkdtemp(dir=tmp)) / "herd.db"
    result = measured(
        [sys.executable, __file__, "--child", "store", str(path), str(db)], tmp / "store.txt"
    )
    timings = json.loads(result["out"][-1])
    result["load"], result["wall"] = timings["load"], timings["add_workflow"]
    result["cpu"] = timings["add_workflow_cpu"]
    return result


_FINISHED: dict[Path, Path] = {}  # spec -> its working directory, left as a finished run leaves it


def step_resume(path: Path, tmp: Path) -> dict[str, Any]:
    work = _FINISHED.get(path)
    if work is None:
        work = _FINISHED[path] = Path(tempfile.mkdtemp(dir=tmp))
        print(f"  {path.name:<18} resume    preparing a finished run (not timed) ...", flush=True)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--child", "mark-done", str(path), str(work)], check=True
        )
        os.sync()  # a million new files: written back now, not while the repeats are timed
        print(f"  {path.name:<18} resume    prepared in {time.perf_counter() - t0:.0f} s")
    return measured([*HERD, "run", str(path), "-q", "-C", str(work), *LIMITS], work / "out.txt")


STEP_FUNCTIONS: dict[str, Any] = {
    "dry-run": step_dry_run,
    "simulate": step_simulate,
    "store": step_store,
    "resume": step_resume,
}


# --- children (fresh processes) ---------------------------------------------------------------


def child_store(path: str, db: str) -> None:
    """Load, then time ``add_workflow`` alone into a new store; print both times as JSON."""
    from herd.formats import load
    from herd.store import open_store

    t0 = time.perf_counter()
    workflow = load(path)
    t1 = time.perf_counter()
    store = open_store(db)
    t2, c2 = time.perf_counter(), time.process_time()
    store.add_workflow(workflow)
    t3, c3 = time.perf_counter(), time.process_time()
    store.close()
    print(json.dumps({"load": t1 - t0, "add_workflow": t3 - t2, "add_workflow_cpu": c3 - c2}))


def child_mark_done(path: str, workdir: str) -> None:
    """Leave ``workdir`` as a finished run would: every file the tasks read or write exists (empty),
    every task succeeded with its fingerprint and the stamps of its inputs, and the loaded spec
    is kept in ``.herd/cache`` (as a run keeps a spec of 50,000 tasks or more)."""
    from herd.core.graph import file_key
    from herd.core.model import Limits, TaskState
    from herd.formats.built import load_built
    from herd.plan.files import Files
    from herd.run.submit import RunOptions, prepare
    from herd.store import open_store
    from herd.store.base import TaskChanged
    from herd.store.workdir import Workdir

    root = Path(workdir)
    workflow, graph = load_built(path, root, save=True)  # the cache a run leaves (formats.built)
    folders: set[Path] = set()
    for task in workflow.tasks:
        for p in (*task.inputs, *task.outputs):
            file = root / file_key(task, p)
            if file.parent not in folders:
                file.parent.mkdir(parents=True, exist_ok=True)
                folders.add(file.parent)
            os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o644))
    options = RunOptions(workdir=root, limits=Limits({"cpu": 64, "mem": 1e6}))
    wd = Workdir(root)
    wd.db_path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(wd.db_path)
    prepared = prepare(workflow, options, store, graph)
    wid = store.add_workflow(workflow)
    files = Files(root).snapshot()
    now = time.time()
    batch = []
    for i, v in prepared.plan.verdicts.items():
        task = prepared.graph.tasks[i]
        stamps = {p: files.stamp(task, p) for p in task.inputs}
        batch.append(
            TaskChanged(
                wid,
                task.name,
                TaskState.SUCCEEDED,
                now,
                attempts=1,
                exit_code=0,
                fingerprint=v.fingerprint,
                cmd_digest=v.cmd_digest,
                env_digest=v.env_digest,
                inputs={p: s for p, s in stamps.items() if s is not None},
            )
        )
        if len(batch) == 50_000:
            store.write(batch)
            batch = []
    store.write(batch)
    store.close()


# --- main -------------------------------------------------------------------------------------


def default_files() -> list[Path]:
    files = []
    for name, args in DEFAULT_FILES.items():
        path = OUT / name
        if not path.exists():
            print(f"generating {path} ...", flush=True)
            subprocess.run(
                [sys.executable, str(HERE / "generate.py"), *args, "-o", str(path)], check=True
            )
        files.append(path)
    return files


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--wrap":
        report, stdout, dashdash, *cmd = sys.argv[2:]
        assert dashdash == "--"
        wrap(report, stdout, cmd)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        {"store": child_store, "mark-done": child_mark_done}[sys.argv[2]](*sys.argv[3:])
        return
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    ap.add_argument("--json", type=Path, help="append the results to this JSON-lines file")
    args = ap.parse_args()
    files = args.files or default_files()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.repeat} repeats")
    with tempfile.TemporaryDirectory(dir=OUT if OUT.exists() else None) as tmp:
        for path in files:
            for step in args.steps:
                run_step(path, step, args.repeat, Path(tmp), args.json)


def run_step(path: Path, step: str, repeat: int, tmp: Path, log: Path | None) -> None:
    walls, cpus, rss = [], [], []
    for k in range(repeat):
        r = STEP_FUNCTIONS[step](path, tmp)
        if r is None:
            return
        if r["code"] != 0:
            sys.exit(f"{step} on {path.name} failed (exit {r['code']}):\n" + "\n".join(r["out"]))
        walls.append(r["wall"])
        cpus.append(r["cpu"])
        rss.append(r["rss_mb"])
        extra = f"  (load {r['load']:.1f} s)" if "load" in r else ""
        print(
            f"  {path.name:<18} {step:<9} run {k + 1}: {r['wall']:7.2f} s wall "
            f"{r['cpu']:7.2f} s cpu  peak RSS {r['rss_mb']:6.0f} MB  "
            f"load average {os.getloadavg()[0]:.1f}{extra}",
            flush=True,
        )
    wall, peak = statistics.median(walls), statistics.median(rss)
    ok = wall <= TARGETS[step] and (step != "dry-run" or peak <= RSS_TARGET_MB)
    print(
        f"{path.name:<18} {step:<9} median {wall:7.2f} s wall {statistics.median(cpus):7.2f} s cpu"
        f"  peak RSS {peak:6.0f} MB  "
        f"target {TARGETS[step]:.0f} s: {'met' if ok else 'NOT met'}"
    )
    print("    " + "\n    ".join(r["out"][-3:]), flush=True)
    if log is not None:
        with log.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "file": path.name,
                        "step": step,
                        "walls": walls,
                        "cpus": cpus,
                        "rss_mb": rss,
                        "median": wall,
                        "tail": r["out"][-3:],
                    }
                )
                + "\n"
            )


if __name__ == "__main__":
    main()
