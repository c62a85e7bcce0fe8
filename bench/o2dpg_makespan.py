"""O2DPG pp 20-timeframe workflow (726 stages), every command `sleep 0.1`, --cpu-limit 8.

Usage: python bench/o2dpg_makespan.py [--file ../shared/data/o2dpg/o2dpg_pp_20tf.json] [--repeat 3]

Prints herd's wall time, the lower bound max(critical path, total work / 8) computed from the
declared cpu of each stage (0.1 s each), and their ratio (target <= 1.3). The memory limit is
set high so that only cores bind, as in the issue's definition of the bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "data" / "o2dpg" / "o2dpg_pp_20tf.json"
SLEEP = 0.1


def lower_bound(stages: list[dict]) -> tuple[float, float, float]:
    from herd.core.graph import build, critical_path
    from herd.formats import load

    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"stages": stages}, f)
        f.flush()
        graph = build(load(f.name))
    cp = critical_path(graph, [SLEEP] * len(graph))
    work = sum(SLEEP * t.resource("cpu") for t in graph.tasks) / 8
    return max(cp, work), cp, work


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--file", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not args.file.exists():
        sys.exit(f"skipped: {args.file} not found (clone herd beside ../shared)")
    data = json.loads(args.file.read_text())
    for stage in data["stages"]:
        stage["cmd"] = f"sleep {SLEEP}"
    bound, cp, work = lower_bound(data["stages"])
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "workflow.json"
        spec.write_text(json.dumps(data))
        for k in range(args.repeat):
            work_dir = Path(tmp) / f"run{k}"
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "herd.cli",
                    "run",
                    "-f",
                    str(spec),
                    "-C",
                    str(work_dir),
                    "--cpu-limit",
                    "8",
                    "--mem-limit",
                    "1000000",
                    "-q",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            walls.append(time.perf_counter() - t0)
            print(f"repeat {k + 1}: wall {walls[-1]:.2f} s   ratio {walls[-1] / bound:.2f}")
    wall = statistics.median(walls)
    print(
        f"{len(data['stages']) - 1} tasks; lower bound {bound:.2f} s (critical path {cp:.2f} s, work/8 {work:.2f} s)"
    )
    print(f"median wall {wall:.2f} s; ratio wall/lower bound {wall / bound:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
