"""Build a small Monte Carlo production with herd's Python API and write it as a native spec.

Three timeframes, each simulated, digitised and reconstructed; one analysis reads every
reconstruction. The commands are shell stand-ins (they write small text files), so the workflow
runs anywhere::

    python examples/api_example.py            # writes mc.yaml
    herd run mc.yaml                          # or: python examples/api_example.py --run

Dependencies come from the files: digi_1 reads what sim_1 writes, so it runs after it. The
analysis also declares an explicit dependency, to show :meth:`Workflow.add_dependency`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from herd.api import File, Task, Workflow

TIMEFRAMES = (1, 2, 3)


def stage(name: str, tf: int, source: File | None, target: File, *, cpu: float, mem: float) -> Task:
    """One step of one timeframe: read ``source`` (if any), write ``target``."""
    read = f"cat {source} > {target} && " if source else f": > {target} && "
    script = f"mkdir -p tf{tf} && {read}echo '{name} tf{tf}' >> {target}"
    task = Task(f"{name}_{tf}", shell=script, retries=1, timeframe=tf)
    task.add_outputs(target).set_resources(cpu=cpu, mem=mem).add_labels(name, f"tf{tf}")
    return task.add_inputs(source) if source else task


def build() -> Workflow:
    """The sim → digi → reco → analysis workflow."""
    wf = Workflow("mc-production", env={"ALIEN_JDL_LPMPRODUCTIONTAG": "LHC24a1"})
    recos = []
    for tf in TIMEFRAMES:
        kine, digits, tracks = (File(f"tf{tf}/{kind}.root") for kind in ("sim", "digi", "reco"))
        wf.add_tasks(
            stage("sim", tf, None, kine, cpu=1, mem=500).add_env(SEED=tf),
            stage("digi", tf, kine, digits, cpu=0.5, mem=250),
            stage("reco", tf, digits, tracks, cpu=1, mem=1000).set_timeout(3600),
        )
        recos.append(tracks)
    result = File("analysis.root")
    analysis = Task("analysis", shell=f"cat {' '.join(map(str, recos))} > {result}")
    analysis.add_inputs(*recos).add_outputs(result).add_labels("analysis").set_priority(10)
    wf.add_tasks(analysis)
    wf.add_dependency(analysis, parents=[f"reco_{tf}" for tf in TIMEFRAMES])
    return wf


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", default="mc.yaml", help="the spec to write")
    parser.add_argument("--run", action="store_true", help="also run it, in the spec's directory")
    args = parser.parse_args(argv)
    wf = build()
    path = wf.write(args.output)
    print(f"wrote {path}: {len(wf)} tasks")
    if args.run:
        result = wf.run(workdir=path.parent)
        print(f"run {result.status} in {result.elapsed:.1f} s")
    return path


if __name__ == "__main__":
    main()
