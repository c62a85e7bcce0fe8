"""Launch throughput: N independent `true` tasks, herd run -j J vs xargs -P J, side by side.

Usage: python bench/throughput.py [-n 10000] [-j 2] [--repeat 3]

Each repeat runs xargs then herd (fresh working directory, state kept durable in SQLite) and the
script prints tasks/s of each, the ratio herd/xargs per repeat, and the median ratio. The machine
is shared: trust the ratios, not the absolute rates.
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

HERD = [sys.executable, "-m", "herd.cli"]


def xargs_rate(n: int, jobs: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(f"seq {n} | xargs -P {jobs} -n 1 true", shell=True, check=True)
    return n / (time.perf_counter() - t0)


def herd_rate(n: int, jobs: int, root: Path) -> float:
    work = Path(tempfile.mkdtemp(dir=root))
    spec = work / "wf.json"
    tasks = [{"name": f"t{i}", "cmd": "true", "resources": {"cpu": 0}} for i in range(n)]
    spec.write_text(json.dumps({"name": "throughput", "tasks": tasks}))
    t0 = time.perf_counter()
    subprocess.run([*HERD, "run", str(spec), "-C", str(work), "-j", str(jobs), "-q"], check=True, stdout=subprocess.DEVNULL)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("-j", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            x = xargs_rate(args.n, args.j)
            h = herd_rate(args.n, args.j, Path(tmp))
            ratios.append(h / x)
            print(f"repeat {k + 1}: xargs -P {args.j} {x:7.0f} tasks/s   herd -j {args.j} {h:7.0f} tasks/s   ratio {h / x:.2f}")
    print(f"median ratio herd/xargs over {args.repeat} repeats: {statistics.median(ratios):.2f} (targets: >= 0.5 issue 2, >= 0.7 issue 5)")


if __name__ == "__main__":
    main()
