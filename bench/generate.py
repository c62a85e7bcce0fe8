"""Large realistic workflows in herd's native JSON, for the scale benchmarks (bench/scale.py).

Usage:
  python bench/generate.py o2dpg --timeframes 50000 -o bench/out/o2dpg_1m.json     # 1,000,504 tasks
  python bench/generate.py montage --side 500 -o bench/out/montage_1m.json          # 1,000,502 tasks

``o2dpg``: an ALICE O2DPG-like Monte Carlo production. Three global tasks (geometry prefetch, GRP
creation, collision context) start the workflow; every timeframe is a chain of 20 stages — event
generation, Geant4 transport, digitisation (TPC, TRD, the rest), TPC clusterisation and
reconstruction, ITS/FT0 reconstruction, matching, TRD/TOF, vertexing, AOD and a TPC QC task — with
the cpu, mem and labels the O2DPG generator gives the corresponding stages (``o2dpg_pp_20tf.json``),
``timeframe`` set, a per-stage ``duration`` (seconds, orders of magnitude of a pp production) and
``cwd: tf<N>``. AODs are merged per group of 100 timeframes, then once more at the end. Edges are
explicit ``needs`` (``--links files`` writes inputs/outputs instead).

``montage``: a Montage-like mosaic of ``side x side`` images. Per image: ``mProject``; per pair of
neighbouring images (right and below): ``mDiffFit``; per row: ``mConcatFit``; one global
``mBgModel``; per image ``mBackground``; per row ``mImgtbl`` and ``mAdd``; a final ``mAdd``. Edges
come from files (``inputs``/``outputs``, the raw images being workflow inputs no task writes), as
WfCommons Montage instances record them; ``--links needs`` writes explicit needs instead.

Tasks are written one per line as they are made, so memory stays small at any size.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

Task = dict[str, Any]

# --- O2DPG-like --------------------------------------------------------------------------------

#: name -> (needs within the timeframe, cpu, mem MB, labels, duration s)
O2DPG_STAGES: dict[str, tuple[tuple[str, ...], float, float, tuple[str, ...], float]] = {
    "gensgnconf": ((), 1, 500, (), 2),
    "sgngen": (("gensgnconf",), 1, 1000, ("GEN",), 40),
    "sgnsim": (("sgngen",), 7, 4000, ("GEANT",), 600),
    "digicontext": (("sgnsim",), 1, 500, ("DIGI",), 10),
    "tpcdigi": (("digicontext",), 8, 9000, ("DIGI",), 240),
    "trddigi": (("digicontext",), 8, 8000, ("DIGI",), 120),
    "restdigi": (("digicontext",), 1, 500, ("DIGI", "SMALLDIGI"), 30),
    "ft0fv0emcctp_digi": (("digicontext",), 1, 500, ("DIGI", "SMALLDIGI"), 20),
    "tpcclusterpart0": (("tpcdigi", "ft0fv0emcctp_digi"), 2, 8000, ("RECO",), 90),
    "tpcclusterpart1": (("tpcdigi", "ft0fv0emcctp_digi"), 2, 8000, ("RECO",), 90),
    "tpcclustermerge": (("tpcclusterpart0", "tpcclusterpart1"), 1, 10000, ("RECO",), 30),
    "tpcreco": (("ft0fv0emcctp_digi", "tpcclustermerge"), 3, 16000, ("RECO",), 180),
    "itsreco": (("restdigi",), 1, 2000, ("RECO",), 40),
    "ft0reco": (("ft0fv0emcctp_digi",), 1, 1000, ("RECO",), 10),
    "itstpcMatch": (("tpcreco", "itsreco", "ft0reco"), 3, 8000, ("RECO",), 60),
    "trdreco": (("trddigi", "itstpcMatch", "tpcreco", "itsreco"), 1, 2000, ("RECO",), 20),
    "tofmatch": (("itstpcMatch", "restdigi"), 1, 1500, ("RECO",), 20),
    "pvfinder": (("trdreco", "ft0reco", "itstpcMatch", "tofmatch"), 8, 4000, ("RECO",), 60),
    "aod": (("pvfinder",), 1, 4000, ("AOD",), 60),
    "tpcqc": (("tpcreco",), 1, 2000, ("QC",), 20),
}
O2DPG_GLOBAL = (
    ("geomprefetch", (), 0, 500, 5),
    ("grpcreate", ("geomprefetch",), 0, 500, 5),
    ("precollcontext", ("grpcreate",), 1, 500, 20),
)
MERGE_GROUP = 100
_ENV = {"ALICEO2_CCDB_LOCALCACHE": "./ccdb", "O2DPG_SEED": "624"}


def o2dpg_tasks(timeframes: int, files: bool) -> Iterator[Task]:
    for name, needs, cpu, mem, seconds in O2DPG_GLOBAL:
        cmd = f"${{O2_ROOT}}/bin/o2-{name} --ccdb ${{ALICEO2_CCDB_LOCALCACHE}} --run 310000"
        yield _task(name, cmd, needs, {"cpu": cpu, "mem": mem}, duration=seconds, files=files)
    for tf in range(1, timeframes + 1):
        yield from _timeframe(tf, files)
        if tf % MERGE_GROUP == 0 or tf == timeframes:
            first = (tf - 1) // MERGE_GROUP * MERGE_GROUP + 1
            aods = tuple(f"aod_{k}" for k in range(first, tf + 1))
            yield _task(
                f"aodmerge_{first}_{tf}",
                f"o2-aod-merger --input aods_{first}_{tf}.txt",
                aods,
                {"cpu": 1, "mem": 2000},
                labels=("AOD",),
                duration=60,
                files=files,
            )
    groups = tuple(
        f"aodmerge_{first}_{min(first + MERGE_GROUP - 1, timeframes)}"
        for first in range(1, timeframes + 1, MERGE_GROUP)
    )
    yield _task(
        "aodmerge",
        "o2-aod-merger --input aod_groups.txt --output AO2D.root",
        groups,
        {"cpu": 1, "mem": 2000},
        labels=("AOD",),
        duration=120,
        files=files,
    )


def _timeframe(tf: int, files: bool) -> Iterator[Task]:
    for stage, (needs, cpu, mem, labels, seconds) in O2DPG_STAGES.items():
        deps = tuple(f"{n}_{tf}" for n in needs)
        if stage == "gensgnconf":
            deps = ("precollcontext",)
        elif stage == "sgngen":
            deps = (*deps, "grpcreate")
        cmd = (
            f"${{O2_ROOT}}/bin/o2-{stage} --tf {tf} -n 20 --seed $((${{O2DPG_SEED}} + {tf})) "
            f"--ccdb ${{ALICEO2_CCDB_LOCALCACHE}} > {stage}.log"
        )
        yield _task(
            f"{stage}_{tf}",
            cmd,
            deps,
            {"cpu": cpu, "mem": mem},
            labels=labels,
            timeframe=tf,
            cwd=f"tf{tf}",
            duration=seconds,
            files=files,
        )


# --- Montage-like ------------------------------------------------------------------------------


def montage_tasks(side: int, files: bool) -> Iterator[Task]:
    rows = cols = side
    img = [[f"{r}_{c}" for c in range(cols)] for r in range(rows)]
    for r in range(rows):
        for c in range(cols):
            yield _file_task(
                f"mProject_{img[r][c]}",
                "mProject",
                [f"raw/{img[r][c]}.fits"],
                [f"proj/{img[r][c]}.fits"],
                10,
                files,
            )
    diffs: list[list[str]] = [[] for _ in range(rows)]
    for r in range(rows):
        for c in range(cols):
            for dr, dc, tag in ((0, 1, "r"), (1, 0, "d")):
                if r + dr < rows and c + dc < cols:
                    out = f"diff/{img[r][c]}_{tag}.tbl"
                    diffs[r].append(out)
                    other = img[r + dr][c + dc]
                    yield _file_task(
                        f"mDiffFit_{img[r][c]}_{tag}",
                        "mDiffFit",
                        [f"proj/{img[r][c]}.fits", f"proj/{other}.fits"],
                        [out],
                        2,
                        files,
                    )
    for r in range(rows):
        yield _file_task(f"mConcatFit_{r}", "mConcatFit", diffs[r], [f"fits/{r}.tbl"], 20, files)
    yield _file_task(
        "mBgModel",
        "mBgModel",
        [f"fits/{r}.tbl" for r in range(rows)],
        ["corrections.tbl"],
        120,
        files,
        mem=4000,
    )
    for r in range(rows):
        for c in range(cols):
            yield _file_task(
                f"mBackground_{img[r][c]}",
                "mBackground",
                [f"proj/{img[r][c]}.fits", "corrections.tbl"],
                [f"corr/{img[r][c]}.fits"],
                3,
                files,
            )
    for r in range(rows):
        row = [f"corr/{img[r][c]}.fits" for c in range(cols)]
        yield _file_task(f"mImgtbl_{r}", "mImgtbl", row, [f"imgtbl/{r}.tbl"], 5, files)
        yield _file_task(
            f"mAdd_{r}", "mAdd", [f"imgtbl/{r}.tbl", *row], [f"band/{r}.fits"], 60, files, mem=2000
        )
    yield _file_task(
        "mAdd",
        "mAdd",
        [f"band/{r}.fits" for r in range(rows)],
        ["mosaic.fits"],
        300,
        files,
        mem=8000,
    )


def _file_task(
    name: str,
    program: str,
    inputs: list[str],
    outputs: list[str],
    seconds: float,
    files: bool,
    mem: float = 500,
) -> Task:
    cmd = f"{program} {' '.join(inputs[:2])}{' ...' if len(inputs) > 2 else ''} {outputs[0]}"
    task: Task = {"name": name, "cmd": cmd, "resources": {"cpu": 1, "mem": mem}}
    task["labels"] = [program]
    task["duration"] = seconds
    task["inputs"], task["outputs"] = inputs, outputs
    if not files:  # the producers of the inputs become needs (resolved by the caller)
        task["_links"] = True
    return task


def _with_needs(tasks: Iterator[Task]) -> Iterator[Task]:
    """Replace inputs/outputs by the needs they imply (``--links needs`` for montage)."""
    producer: dict[str, str] = {}
    for task in tasks:
        if task.pop("_links", False):
            needs = sorted({producer[p] for p in task["inputs"] if p in producer})
            for path in task["outputs"]:
                producer[path] = task["name"]
            del task["inputs"], task["outputs"]
            if needs:
                task["needs"] = needs
        yield task


# --- shared ----------------------------------------------------------------------------------


def _task(
    name: str,
    cmd: str,
    needs: tuple[str, ...],
    resources: dict[str, float],
    *,
    labels: tuple[str, ...] = (),
    timeframe: int | None = None,
    cwd: str | None = None,
    duration: float,
    files: bool,
) -> Task:
    task: Task = {"name": name, "cmd": cmd}
    if files:  # each stage writes <name>.out and reads what its needs wrote
        task["inputs"] = [f"../out/{n}.out" if cwd else f"out/{n}.out" for n in needs]
        task["outputs"] = [f"../out/{name}.out" if cwd else f"out/{name}.out"]
    elif needs:
        task["needs"] = list(needs)
    task["resources"] = resources
    if labels:
        task["labels"] = list(labels)
    if timeframe is not None:
        task["timeframe"] = timeframe
    if cwd:
        task["cwd"] = cwd
    task["duration"] = duration
    return task


def write(out: TextIO, name: str, tasks: Iterator[Task], env: dict[str, str] | None = None) -> int:
    """Write the workflow, one task per line; return the number of tasks."""
    head: dict[str, Any] = {"name": name}
    if env:
        head["env"] = env
    out.write(json.dumps(head)[:-1] + ', "tasks": [\n')
    n = 0
    for task in tasks:
        out.write((",\n" if n else "") + json.dumps(task, separators=(",", ":")))
        n += 1
    out.write("\n]}\n")
    return n


def generate(kind: str, size: int, out: TextIO, links: str | None = None) -> int:
    """Write workflow ``kind`` of ``size`` (timeframes, or images per side) to ``out``."""
    if kind == "o2dpg":
        files = links == "files"
        return write(out, f"o2dpg_{size}tf", o2dpg_tasks(size, files), _ENV)
    files = links != "needs"
    tasks = montage_tasks(size, files)
    return write(out, f"montage_{size}x{size}", tasks if files else _with_needs(tasks))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("kind", choices=["o2dpg", "montage"])
    ap.add_argument("--timeframes", type=int, default=50_000, help="o2dpg: timeframes")
    ap.add_argument("--side", type=int, default=500, help="montage: images per side")
    ap.add_argument("--links", choices=["needs", "files"], help="how edges are written")
    ap.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    args = ap.parse_args()
    size = args.timeframes if args.kind == "o2dpg" else args.side
    if args.output is None:
        n = generate(args.kind, size, sys.stdout, args.links)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        with args.output.open("w") as f:
            n = generate(args.kind, size, f, args.links)
    print(f"{n} tasks written to {args.output or 'stdout'}", file=sys.stderr)


if __name__ == "__main__":
    main()
