"""Schedule quality: herd's simulated makespan vs HEFT, both divided by the same lower bound.

Usage: python bench/heft_compare.py [--data ../shared/data/wfinstances] [--cores 4 16 64] [--no-cache]

For every WfCommons instance (``*.json.gz``) and every machine size N:

- herd: ``herd.run.simulate`` with the recorded ``runtimeInSeconds`` as durations, ``--cpu-limit N``
  (a task takes the instance's ``coreCount``, 1 when absent, capped at N), critical-path policy,
  the scheduler told the durations (as with spec hints);
- HEFT: ``HeftScheduler`` of the PyPI package ``anrg-saga`` (insertion-based HEFT, Topcuoglu et
  al. 2002) on N identical nodes of speed 1 linked at infinite speed, every dependency (explicit
  and file-derived, as herd's graph has them) carrying 0 data: no communication cost. HEFT runs one
  task per node, so a multi-core task occupies one node only (an advantage to HEFT; the instances
  shipped in ../shared/data all have one core per task);
- the lower bound: ``max(critical path, total core-seconds / N)`` (``herd.run.simulate.lower_bound``).

The table gives makespan / lower bound for each, and herd / HEFT; the summary gives the mean ratio
of each and the worst herd / HEFT. Targets: mean herd ratio <= mean HEFT ratio, and no instance more
than 5 % worse than HEFT (herd / HEFT <= 1.05).

``anrg-saga`` pulls in a large dependency tree (pytest, mypy, z3, pandas, ...), so it is installed
into a venv of its own, ``bench/.venv-saga``, created on first use when the running interpreter
cannot import it; this script then runs itself there in ``--heft-worker`` mode (JSON on stdin and
stdout, no herd import). HEFT is slow in pure Python (minutes for the 2,122-task Montage at 64
nodes), so its makespans are cached in ``bench/out/heft-cache.json`` by a digest of the task graph.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import math
import statistics
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "wfinstances"
SAGA_VENV = HERE / ".venv-saga"
CACHE = HERE / "out" / "heft-cache.json"
EPS = 1e-6


# --- herd side ------------------------------------------------------------------------------


def herd_problem(
    path: Path, cores: int, keep_priority: bool = False
) -> tuple[Any, Any, list[float]]:
    """The instance as herd sees it on an N-core machine: (graph, limits, durations).

    The ``priority`` the instances record (Pegasus job priorities, which beat herd's own order) is
    dropped unless ``keep_priority``: HEFT sees no priorities either.
    """
    from herd.core.graph import build
    from herd.core.model import Limits, frozen_map
    from herd.formats import load
    from herd.run.simulate import durations_of

    wf = load(path)
    tasks = tuple(
        t._replace(
            resources=frozen_map({**t.resources, "cpu": min(t.resource("cpu"), cores)}),
            priority=t.priority if keep_priority else 0,
        )
        for t in wf.tasks
    )
    graph = build(dataclasses.replace(wf, tasks=tasks))
    return graph, Limits({"cpu": float(cores)}), durations_of(graph, None)


def herd_makespan(
    graph: Any,
    limits: Any,
    durations: list[float],
    policy: str = "critical-path",
    *,
    use_durations: bool = True,
) -> float:
    from herd.core.scheduler import Policy
    from herd.run.simulate import simulate

    result = simulate(graph, limits, durations, policy=Policy(policy), use_durations=use_durations)
    return float(result.makespan)


def heft_job(graph: Any, durations: list[float], cores: int) -> dict[str, Any]:
    """What the HEFT worker needs: task names with costs, edges by index, the node count."""
    edges = [[p, c] for c in range(len(graph)) for p in graph.parents(c)]
    return {"costs": list(durations), "edges": edges, "nodes": cores}


# --- HEFT side (runs in the saga venv; imports no herd) --------------------------------------


def heft_schedule(job: dict[str, Any]) -> float:
    """HEFT's makespan for one job, after checking the schedule it returned."""
    import logging

    from saga import Network, TaskGraph
    from saga.schedulers import HeftScheduler

    logging.disable(logging.WARNING)  # "multiple sources; adding super source" for every graph
    costs, nodes = job["costs"], job["nodes"]
    names = [f"t{i}" for i in range(len(costs))]
    tasks = [(names[i], float(c)) for i, c in enumerate(costs)]
    deps = [(names[p], names[c], 0.0) for p, c in job["edges"]]
    machines = [f"n{k}" for k in range(nodes)]
    links = [(a, b, math.inf) for i, a in enumerate(machines) for b in machines[i:]]
    schedule = HeftScheduler().schedule(
        Network.create([(m, 1.0) for m in machines], links), TaskGraph.create(tasks, deps)
    )
    placed = {t.name: t for _, row in schedule.items() for t in row}
    for _, row in schedule.items():  # one task at a time per node
        row = sorted(row, key=lambda t: t.start)
        assert all(a.end <= b.start + EPS for a, b in itertools.pairwise(row)), "HEFT overlaps"
    for p, c, _ in deps:  # precedence
        assert placed[p].end <= placed[c].start + EPS, f"HEFT broke {p} -> {c}"
    return max(t.end for t in placed.values())


def heft_worker() -> None:
    jobs = json.load(sys.stdin)
    json.dump([heft_schedule(job) for job in jobs], sys.stdout)


def saga_python() -> list[str]:
    """The interpreter that can import saga: this one, or bench/.venv-saga (created if needed)."""
    try:
        import saga  # noqa: F401

        return []
    except ImportError:
        pass
    python = SAGA_VENV / "bin" / "python"
    probe = [str(python), "-c", "import saga.schedulers"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return [str(python)]
    print(f"installing anrg-saga into {SAGA_VENV} (once; a few minutes) ...", file=sys.stderr)
    venv.create(SAGA_VENV, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "anrg-saga"], check=True)
    subprocess.run(probe, check=True)
    return [str(python)]


def heft_makespans(jobs: list[dict[str, Any]], use_cache: bool) -> list[float]:
    cache: dict[str, float] = {}
    if use_cache and CACHE.exists():
        cache = json.loads(CACHE.read_text())
    keys = [hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest() for job in jobs]
    missing = [job for key, job in zip(keys, jobs, strict=True) if key not in cache]
    if missing:
        python = saga_python()
        if python:
            out = subprocess.run(
                [*python, __file__, "--heft-worker"],
                input=json.dumps(missing),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            results = json.loads(out)
        else:
            results = [heft_schedule(job) for job in missing]
        todo = iter(results)
        for key, job in zip(keys, jobs, strict=True):
            if job in missing:
                cache[key] = next(todo)
        CACHE.parent.mkdir(exist_ok=True)
        CACHE.write_text(json.dumps(cache, indent=0))
    return [cache[key] for key in keys]


# --- report ---------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cores", type=int, nargs="+", default=[4, 16, 64])
    ap.add_argument(
        "--keep-priority",
        action="store_true",
        help="keep the Pegasus job priorities the instances record (herd obeys them; HEFT cannot)",
    )
    ap.add_argument("--no-cache", action="store_true", help="recompute HEFT even when cached")
    ap.add_argument("--json", type=Path, help="also write the rows to this file")
    ap.add_argument("--heft-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.heft_worker:
        heft_worker()
        return
    files = sorted(args.data.glob("*.json.gz")) if args.data.is_dir() else []
    if not files:
        sys.exit(f"skipped: no WfCommons instances (*.json.gz) in {args.data}")
    from herd.run.simulate import lower_bound

    rows: list[dict[str, Any]] = []
    jobs = []
    for path in files:
        for cores in args.cores:
            graph, limits, durations = herd_problem(path, cores, args.keep_priority)
            bound, _ = lower_bound(graph, limits, durations)
            herd = herd_makespan(graph, limits, durations)
            blind = herd_makespan(graph, limits, durations, use_durations=False)
            rows.append(
                {
                    "instance": path.name.removesuffix(".json.gz"),
                    "tasks": len(graph),
                    "cores": cores,
                    "bound": bound,
                    "herd": herd,
                    "blind": blind,
                }
            )
            jobs.append(heft_job(graph, durations, cores))
    for row, heft in zip(rows, heft_makespans(jobs, not args.no_cache), strict=True):
        row["heft"] = heft
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def report(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'instance':<48} {'tasks':>5} {'cores':>5} {'herd/LB':>8} {'HEFT/LB':>8} {'herd/HEFT':>9}"
        f" {'blind/LB':>8}"
    )
    for r in rows:
        r["herd_ratio"], r["heft_ratio"] = r["herd"] / r["bound"], r["heft"] / r["bound"]
        r["vs_heft"], r["blind_ratio"] = r["herd"] / r["heft"], r["blind"] / r["bound"]
        flag = "  <-- more than 5% worse" if r["vs_heft"] > 1.05 else ""
        print(
            f"{r['instance']:<48} {r['tasks']:>5} {r['cores']:>5} {r['herd_ratio']:>8.3f} "
            f"{r['heft_ratio']:>8.3f} {r['vs_heft']:>9.3f} {r['blind_ratio']:>8.3f}{flag}"
        )
    herd_mean = statistics.mean(r["herd_ratio"] for r in rows)
    heft_mean = statistics.mean(r["heft_ratio"] for r in rows)
    blind_mean = statistics.mean(r["blind_ratio"] for r in rows)
    worst = max(rows, key=lambda r: r["vs_heft"])
    print(
        f"\n{len(rows)} cases: mean makespan/LB herd {herd_mean:.3f}, HEFT {heft_mean:.3f}; "
        f"worst herd/HEFT {worst['vs_heft']:.3f} ({worst['instance']} at {worst['cores']} cores)"
    )
    print(
        f"herd without durations (blind: ranks count tasks, as on a first run without hints): "
        f"mean makespan/LB {blind_mean:.3f}"
    )
    ok = herd_mean <= heft_mean + 1e-12 and worst["vs_heft"] <= 1.05
    print(
        f"targets (mean herd <= mean HEFT, worst herd/HEFT <= 1.05): {'met' if ok else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
