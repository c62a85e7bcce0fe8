"""Workers against a local run: throughput, the store's claim + finish, and an O2DPG makespan.

Usage: python bench/workers.py [--store URL] [-n 10000] [--repeat 3] [--part throughput ...]

Parts (all by default):

- ``throughput``: ``n`` independent ``true`` tasks (cpu 1 each). Side by side, per repeat:
  ``seq n | xargs -P2 -I{} /bin/sh -c true``; a local ``herd run --cpu-limit 2 -q``; and
  ``herd submit`` then 2 and 4 ``herd worker --cpus 1`` processes on the store (the rate counts
  from the workers' start to the last one's exit, which is when the workflow is finished; the
  submit is timed apart). Prints each rate and the ratio of the workers' rate to the local run's
  (target >= 0.5).
- ``claim``: the store alone, no process: ``n`` tasks submitted, then claimed and finished in
  batches of 1, 2, 8 and 32 by one in-process worker, then in batches of 8 by 4 worker
  processes at once (target >= 5,000 tasks/s). A worker's turn is what ``herd worker`` does:
  ``finish_and_claim``, one transaction (a herd without it: a finish, then a claim). Printed
  per second of wall time and per CPU-second of the workers' processes and their PostgreSQL
  server processes (on a loaded machine the wall time counts other programs' turns).
- ``o2dpg``: the O2DPG pp 20-timeframe workflow (726 stages, every command ``sleep 0.1``), 8 cores
  split over 2 workers of 4; a stage asking more cores than a worker has gets all of the worker's.
  Prints the wall time from the workers' start and its ratio to the lower bound max(critical
  path, total work / 8), computed with those demands (target <= 1.3).

``--store`` is an SQLite file (default: a fresh one per measurement) or a PostgreSQL URL (its
schema is emptied before each measurement). The machine is shared: trust the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERD = [sys.executable, "-m", "herd.cli"]
HERE = Path(__file__).resolve().parent
O2DPG = HERE.parent.parent / "shared" / "data" / "o2dpg" / "o2dpg_pp_20tf.json"
SLEEP = 0.1


def timed(cmd: list[str] | str, *, shell: bool = False, cwd: Path | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
    return time.perf_counter() - t0


@contextmanager
def store_for(base: str | None, tmp: Path, tag: str) -> Iterator[str]:
    """A fresh store: a new SQLite file, or the PostgreSQL database emptied."""
    if base is None or not base.startswith(("postgresql://", "postgres://")):
        yield str(tmp / f"{tag}.db")
        return
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")
    yield base


def workers(store: str, n: int, cwd: Path, *extra: str) -> float:
    """Seconds from starting ``n`` workers to the last one's exit (the workflow finished)."""
    argv = [*HERD, "worker", "--store", store, "--mem", "100000", *extra]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL) for _ in range(n)]
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a worker failed (exit {p.returncode})")
    return time.perf_counter() - t0


def throughput(args: argparse.Namespace, tmp: Path) -> None:
    n = args.n
    spec = tmp / "true.json"
    tasks = [{"name": f"t{i}", "cmd": "true"} for i in range(n)]
    spec.write_text(json.dumps({"name": "throughput", "tasks": tasks}))
    rows: dict[str, list[float]] = {
        "xargs -P2": [],
        "herd run": [],
        "2 workers": [],
        "4 workers": [],
    }
    for k in range(args.repeat):
        rows["xargs -P2"].append(
            n / timed(f"seq {n} | xargs -P 2 -I{{}} /bin/sh -c true", shell=True)
        )
        run_dir = tmp / f"run{k}"
        run_dir.mkdir()
        rows["herd run"].append(
            n
            / timed(
                [*HERD, "run", str(spec), "--cpu-limit", "2", "--mem-limit", "100000", "-q"],
                cwd=run_dir,
            )
        )
        for count in (2, 4):
            work = tmp / f"w{count}-{k}"
            work.mkdir()
            with store_for(args.store, tmp, f"w{count}-{k}") as store:
                submit = timed([*HERD, "submit", str(spec), "--store", store], cwd=work)
                wall = workers(store, count, work, "--cpus", "1")
            rows[f"{count} workers"].append(n / wall)
            print(
                f"repeat {k + 1}: {count} workers {n / wall:7.0f} tasks/s (submit {submit:.2f} s)"
                f"   local run {rows['herd run'][-1]:7.0f}   xargs {rows['xargs -P2'][-1]:7.0f}"
                f"   load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    local = statistics.median(rows["herd run"])
    print(f"\n{n} `true` tasks, median of {args.repeat} (tasks/s):")
    for name, rates in rows.items():
        rate = statistics.median(rates)
        print(f"  {name:<10} {rate:8.0f}   ratio to the local run {rate / local:.2f}")
    print("target: workers >= 0.5 x the local run")


def _turns(url: str, wid: int, batch: int, out: Any = None) -> tuple[int, float, float]:
    """One in-process worker claiming and finishing ``batch`` tasks a turn until none is left:
    (tasks, CPU seconds of this process, CPU seconds of its PostgreSQL backend)."""
    from herd.core.model import TaskState
    from herd.store import open_store
    from herd.store.base import AttemptFinished, Outcome

    store = open_store(url)
    try:
        me = store.register_worker(
            host="bench",
            pid=os.getpid(),
            user="bench",
            resources={"cpu": batch},
            now=time.time(),
            lease=60,
        )
        backend = _backend(store)
        c0, b0 = time.process_time(), _cpu_of(backend)
        if out is not None:
            out.wait()  # (a barrier: the workers start together)
        done = 0
        free = {"cpu": float(batch)}
        claimed = store.claim(me, free, now=time.time(), lease=60)
        while claimed:
            now = time.time()
            outcomes = [
                Outcome(
                    AttemptFinished(
                        wid, c.task.name, c.number, now, TaskState.SUCCEEDED, exit_code=0
                    ),
                    pid=1,
                    started=now,
                    then=TaskState.SUCCEEDED,
                )
                for c in claimed
            ]
            done += len(claimed)
            if hasattr(store, "finish_and_claim"):  # a worker's turn: one transaction
                _, claimed = store.finish_and_claim(me, outcomes, free, now=now, lease=60)
            else:  # (herd before finish_and_claim: a finish, then a claim)
                store.finish(me, outcomes, now=now)
                claimed = store.claim(me, free, now=now, lease=60)
        return done, time.process_time() - c0, _cpu_of(backend) - b0
    finally:
        store.close()


def _backend(store: Any) -> int | None:
    """The pid of a PostgreSQL store's server process (on this host), else None."""
    conn = getattr(store, "_conn", None)
    if conn is None or not hasattr(conn, "pgconn"):
        return None
    return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def _cpu_of(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_process(url: str, wid: int, batch: int, barrier: Any, results: Any) -> None:
    results.put(_turns(url, wid, batch, barrier))


def claim_rate(args: argparse.Namespace, tmp: Path) -> None:
    import multiprocessing

    from herd.core.model import Task, Workflow
    from herd.store import open_store
    from herd.store.base import QueuedTask

    n = args.n
    for batch, count in ((1, 1), (2, 1), (8, 1), (32, 1), (8, 4)):
        with store_for(args.store, tmp, f"claim{batch}x{count}") as url:
            store = open_store(url)
            try:
                wf = Workflow("claims", tuple(Task(f"t{i}", "true") for i in range(n)))
                wid = store.add_workflow(wf)
                queued = [
                    QueuedTask(f"t{i}", "true", str(tmp), {}, {"cpu": 1.0}, i) for i in range(n)
                ]
                store.submit(
                    wid,
                    queued,
                    pools={},
                    now=time.time(),
                    host="bench",
                    user="bench",
                    pid=os.getpid(),
                    argv=[],
                )
            finally:
                store.close()
            t0 = time.perf_counter()
            if count == 1:
                done, cpu, server = _turns(url, wid, batch)
                wall = time.perf_counter() - t0
            else:
                ctx = multiprocessing.get_context("fork")
                barrier, results = ctx.Barrier(count + 1), ctx.Queue()
                procs = [
                    ctx.Process(target=_worker_process, args=(url, wid, batch, barrier, results))
                    for _ in range(count)
                ]
                for p in procs:
                    p.start()
                barrier.wait()
                t0 = time.perf_counter()
                parts = [results.get() for _ in procs]
                wall = time.perf_counter() - t0
                for p in procs:
                    p.join()
                done = sum(x[0] for x in parts)
                cpu, server = sum(x[1] for x in parts), sum(x[2] for x in parts)
        assert done == n, (done, n)
        who = "1 worker" if count == 1 else f"{count} workers"
        print(
            f"claim + finish, {who}, batches of {batch:2d}: {n / wall:6.0f} tasks/s of wall "
            f"time, {n / (cpu + server):6.0f} per CPU-second (the workers' processes "
            f"{cpu:.2f} s, their PostgreSQL backends {server:.2f} s)   load "
            f"{os.getloadavg()[0]:.1f}",
            flush=True,
        )
    print("target: >= 5,000 tasks/s")


def o2dpg(args: argparse.Namespace, tmp: Path) -> None:
    from herd.core.graph import build, critical_path
    from herd.formats import load

    if not O2DPG.exists():
        print(f"o2dpg: skipped: {O2DPG} not found (clone herd beside ../shared)")
        return
    data = json.loads(O2DPG.read_text())
    for stage in data["stages"]:
        stage["cmd"] = f"sleep {SLEEP}"
    spec = tmp / "workflow.json"
    spec.write_text(json.dumps(data))
    graph = build(load(str(spec)))
    cp = critical_path(graph, [SLEEP] * len(graph))
    work = sum(SLEEP * min(t.resource("cpu"), 4.0) for t in graph.tasks) / 8
    bound = max(cp, work)
    walls = []
    for k in range(args.repeat):
        run = tmp / f"o2dpg{k}"
        run.mkdir()
        with store_for(args.store, tmp, f"o2dpg{k}") as store:
            subprocess.run(
                [*HERD, "submit", "-f", str(spec), "--store", store],
                cwd=run,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            walls.append(workers(store, 2, run, "--cpus", "4"))
        print(f"repeat {k + 1}: wall {walls[-1]:.2f} s   ratio {walls[-1] / bound:.2f}", flush=True)
    wall = statistics.median(walls)
    print(
        f"{len(graph)} tasks over 2 workers of 4 cores; lower bound {bound:.2f} s "
        f"(critical path {cp:.2f} s, work/8 {work:.2f} s)"
    )
    print(f"median wall {wall:.2f} s; ratio wall/lower bound {wall / bound:.2f} (target <= 1.3)")


PARTS = {"throughput": throughput, "claim": claim_rate, "o2dpg": o2dpg}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--store", help="a PostgreSQL URL (default: a new SQLite file each time)")
    ap.add_argument("-n", type=int, default=10_000, help="tasks for throughput and claim")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--part", action="append", choices=sorted(PARTS), help="(default: all)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.part or list(PARTS):
            print(f"== {name} (store: {args.store or 'SQLite'})", flush=True)
            PARTS[name](args, Path(tmp))


if __name__ == "__main__":
    main()
