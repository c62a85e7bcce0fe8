"""The PostgreSQL store beside the SQLite store: a million tasks in, and `herd run` throughput.

Usage: python bench/postgres.py [--tasks 1000000] [--run-tasks 2000] [--repeat 3]
                                [--steps store run] [--url postgresql://...]

``store``  ``add_workflow`` of an O2DPG-shaped workflow of ``--tasks`` tasks (50 k timeframes x 20
           stages, labels and resources shared as the loaders share them) into a new store,
           adding it again unchanged (a resumed run), then ``task_records`` (what a resumed run
           reads), each timed alone, in one process per store and repeat.
``run``    ``herd run`` of ``--run-tasks`` independent ``true`` tasks, ``-q --cpu-limit 2``, in a
           new working directory: the default SQLite store, then ``--store`` PostgreSQL.

Each PostgreSQL measurement gets a new schema (``search_path`` in the URL) in the database of
``--url`` (default ``$HERD_BENCH_POSTGRES``, else the local server), dropped afterwards. The machine
is shared: every repeat is printed, then the medians and the ratio PostgreSQL / SQLite (time) or
PostgreSQL / SQLite (rate) side by side.
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
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

DEFAULT_URL = os.environ.get("HERD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
HERD = [sys.executable, "-m", "herd.cli"]


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")


# --- store: a million tasks ------------------------------------------------------------------


def child_store(location: str, tasks: int) -> None:
    """In a fresh process: time add_workflow, add again, task_records; print JSON."""
    from herd.core.model import Task, Workflow
    from herd.store import open_store

    resources, labels = {"cpu": 1.0, "mem": 2000.0}, ("sim",)
    workflow = Workflow(
        "scale",
        tuple(
            Task(
                f"tf{i // 20}_stage{i % 20}",
                f"o2-sim --tf {i // 20} --stage {i % 20}",
                labels=labels,
                resources=resources,
                timeframe=i // 20,
            )
            for i in range(tasks)
        ),
    )
    store = open_store(location)
    try:
        t0 = time.perf_counter()
        wid = store.add_workflow(workflow)
        t1 = time.perf_counter()
        store.add_workflow(workflow)
        t2 = time.perf_counter()
        records = store.task_records(wid)
        t3 = time.perf_counter()
    finally:
        store.close()
    assert len(records) == tasks
    print(json.dumps({"add": t1 - t0, "add again": t2 - t1, "task_records": t3 - t2}))


def measure_store(kind: str, url: str, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, _location(kind, url, Path(tmp)) as location:
        out = subprocess.run(
            [sys.executable, __file__, "--child-store", location, "--tasks", str(tasks)],
            capture_output=True,
            text=True,
            check=True,
        )
    return dict(json.loads(out.stdout))


@contextmanager
def _location(kind: str, url: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield str(tmp / "herd.db")
    else:
        with fresh_schema(url) as schema_url:
            yield schema_url


# --- run: herd run throughput ----------------------------------------------------------------


def measure_run(kind: str, url: str, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, _location(kind, url, Path(tmp)) as location:
        spec = Path(tmp) / "wf.json"
        spec.write_text(
            json.dumps(
                {"name": "many", "tasks": [{"name": f"t{i}", "cmd": "true"} for i in range(tasks)]}
            )
        )
        store = [] if kind == "sqlite" else ["--store", location]
        t0 = time.perf_counter()
        subprocess.run(
            [*HERD, "run", str(spec), "-q", "--cpu-limit", "2", *store],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
    return {"wall": wall, "tasks/s": tasks / wall}


# --- report ----------------------------------------------------------------------------------


def compare(step: str, repeat: int, measure: Callable[[str], dict[str, float]]) -> None:
    results: dict[str, list[dict[str, float]]] = {"sqlite": [], "postgres": []}
    for i in range(repeat):
        for kind in results:  # interleaved: both stores see the same machine load
            result = measure(kind)
            results[kind].append(result)
            shown = ", ".join(f"{k} {v:.2f}" for k, v in result.items())
            print(f"  {step} #{i + 1} {kind:8s} {shown}", flush=True)
    print(f"{step}: medians of {repeat} (ratio = postgres / sqlite)")
    for key in results["sqlite"][0]:
        lite = statistics.median(r[key] for r in results["sqlite"])
        pg = statistics.median(r[key] for r in results["postgres"])
        unit = "" if key.endswith("/s") else " s"
        print(
            f"  {key:14s} sqlite {lite:9.2f}{unit}   postgres {pg:9.2f}{unit}   ratio {pg / lite:5.2f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--run-tasks", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--steps", nargs="+", default=["store", "run"], choices=["store", "run"])
    ap.add_argument("--url", default=DEFAULT_URL)
    ap.add_argument("--child-store", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_store:
        child_store(args.child_store, args.tasks)
        return
    if "store" in args.steps:
        compare(
            f"store ({args.tasks:,} tasks)",
            args.repeat,
            lambda kind: measure_store(kind, args.url, args.tasks),
        )
    if "run" in args.steps:
        compare(
            f"herd run ({args.run_tasks:,} true tasks)",
            args.repeat,
            lambda kind: measure_run(kind, args.url, args.run_tasks),
        )


if __name__ == "__main__":
    main()
