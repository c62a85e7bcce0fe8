"""Scheduling policies (critical-path, timeframe, fifo) on the O2DPG workflows, simulated.

Usage: python bench/policy_compare.py [--data ../shared/data/o2dpg] [--cpu-limit 8] [--mem-limit MB ...]

The O2DPG ``workflow.json`` files declare cpu and mem per stage but no durations, and the real
runner knows none: herd schedules them *blind* (ranks from unit durations). The simulated clock
needs true durations, so two models are measured:

- ``unit``: every stage takes 1 s;
- ``label``: a per-stage model of a pp Monte Carlo timeframe (:data:`STAGE_SECONDS`, by the stage
  name without its ``_<tf>`` suffix, else :data:`LABEL_SECONDS` by the first label, else
  :data:`OTHER_SECONDS`). The figures are orders of magnitude from O2DPG pp productions (Geant4
  transport and TPC digitisation/reconstruction dominate), not measurements: the point is
  heterogeneity, which unit durations hide.

For each file, model, memory limit and policy the script prints makespan / lower bound
(``max(critical path, cpu-seconds / cores, mem-MB-seconds / mem)``); lower is better.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "o2dpg"
POLICIES = ("critical-path", "timeframe", "fifo")

#: seconds per stage kind (stage name without the ``_<timeframe>`` suffix)
STAGE_SECONDS = {
    "sgngen": 40.0, "sgnsim": 600.0, "tpcdigi": 240.0, "trddigi": 120.0, "digicontext": 10.0,
    "tpcclusterpart0": 90.0, "tpcclusterpart1": 90.0, "tpcclustermerge": 30.0, "tpcreco": 180.0,
    "itstpcMatch": 60.0, "pvfinder": 60.0, "svfinder": 60.0, "aod": 60.0, "aodmerge": 60.0,
    "tpctimeseries": 30.0, "itsreco": 40.0, "trdreco": 20.0, "trdreco2": 40.0, "tofmatch": 20.0,
    "toftpcmatch": 30.0, "mftreco": 30.0,
}  # fmt: skip
LABEL_SECONDS = {"GEN": 30.0, "GEANT": 600.0, "DIGI": 30.0, "RECO": 15.0, "AOD": 60.0,
                 "QC": 20.0, "ANALYSIS": 60.0}  # fmt: skip
OTHER_SECONDS = 5.0
_TF_SUFFIX = re.compile(r"_\d+$")


def label_model(task: object) -> float:
    name = _TF_SUFFIX.sub("", task.name)  # type: ignore[attr-defined]
    if name in STAGE_SECONDS:
        return STAGE_SECONDS[name]
    for label in task.labels:  # type: ignore[attr-defined]
        if label in LABEL_SECONDS:
            return LABEL_SECONDS[label]
    return OTHER_SECONDS


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--cpu-limit", type=float, default=8)
    ap.add_argument("--mem-limit", type=float, nargs="+", default=[1e6, 32000])
    args = ap.parse_args()
    files = sorted(args.data.glob("*.json")) if args.data.is_dir() else []
    if not files:
        sys.exit(f"skipped: no O2DPG workflow.json files in {args.data}")
    from herd.core.graph import build
    from herd.core.model import Limits
    from herd.core.scheduler import Policy
    from herd.formats import load
    from herd.run.simulate import simulate

    print(
        f"--cpu-limit {args.cpu_limit:g}; makespan / lower bound (lower is better), scheduled blind"
    )
    print(
        f"{'workflow':<28} {'durations':<9} {'mem MB':>8} " + " ".join(f"{p:>14}" for p in POLICIES)
    )
    totals: dict[str, list[float]] = {p: [] for p in POLICIES}
    for path in files:
        graph = build(load(path))
        models = {"unit": [1.0] * len(graph), "label": [label_model(t) for t in graph.tasks]}
        for model, durations in models.items():
            for mem in args.mem_limit:
                limits = Limits({"cpu": args.cpu_limit, "mem": mem})
                ratios = {}
                for p in POLICIES:
                    r = simulate(graph, limits, durations, policy=Policy(p), use_durations=False)
                    ratios[p] = r.ratio
                    totals[p].append(r.ratio)
                best = min(ratios.values())
                cells = " ".join(
                    f"{ratios[p]:>13.3f}{'*' if ratios[p] == best else ' '}" for p in POLICIES
                )
                print(f"{path.stem:<28} {model:<9} {mem:>8g} {cells}")
    means = {p: statistics.mean(v) for p, v in totals.items()}
    print("mean" + " " * 44 + " ".join(f"{means[p]:>14.3f}" for p in POLICIES))
    print(f"best on average: {min(means, key=means.__getitem__)} (* marks the best per row)")


if __name__ == "__main__":
    main()
