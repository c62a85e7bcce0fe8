"""This machine's capacities, and the run limits built from them and from the user's flags."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path

from herd.core.model import Limits, Workflow
from herd.errors import UsageError


def cores() -> float:
    """Cores this process may use (its affinity mask, not just the machine's count)."""
    try:
        return float(len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return float(os.cpu_count() or 1)


def memory_mb() -> float:
    """This machine's physical memory, MB (the kernel's MemTotal)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e6


def gpus() -> float:
    """NVIDIA GPUs the driver shows, narrowed by CUDA_VISIBLE_DEVICES when set."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return float(len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    nvidia = Path("/proc/driver/nvidia/gpus")
    return float(len(list(nvidia.iterdir()))) if nvidia.is_dir() else 0.0


def parse_named(values: list[str]) -> dict[str, float]:
    """``["tape=2", "license=1"]`` -> ``{"tape": 2.0, "license": 1.0}``."""
    out: dict[str, float] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value) if sep and name.isidentifier() else math.nan
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and number >= 0):
            raise UsageError(
                "--limit wants NAME=NUMBER, a resource name and a finite amount of 0 or more, "
                f"e.g. --limit tape_drive=2; got {item!r}"
            )
        out[name] = number
    return out


def run_limits(
    workflow: Workflow,
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Mapping[str, float] | None = None,
    jobs: int | None = None,
) -> Limits:
    """Limits for a run: flags first, then the spec's own ``limits``, then this machine."""
    values: dict[str, float] = {"cpu": cores(), "mem": memory_mb(), "gpu": gpus()}
    values.update(workflow.limits)
    for name, value in (("cpu", cpu), ("mem", mem), ("gpu", gpu)):
        if value is not None:
            values[name] = value
    values.update(named or {})
    for name, value in values.items():
        if math.isnan(value) or value < 0:  # NaN compares false: it hung the scheduler
            raise UsageError(f"the limit for {name} must be a number, 0 or more, not {value:g}")
    if jobs is not None and jobs < 1:
        raise UsageError(f"-j/-jmax must be at least 1, not {jobs}")
    return Limits(values, max_tasks=jobs)


def submit_limits(
    workflow: Workflow,
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Mapping[str, float] | None = None,
) -> Limits:
    """Limits checked when a workflow is submitted for workers: the named pools (the spec's,
    then ``--limit``), which hold across all workers, and cores, memory and GPUs only when
    given (the largest worker's): this machine is not where the tasks run."""
    inf = float("inf")
    values = {"cpu": inf if cpu is None else cpu, "mem": inf if mem is None else mem}
    values["gpu"] = inf if gpu is None else gpu
    values.update(workflow.limits)
    values.update(named or {})
    return Limits(values)


def worker_resources(
    *,
    cpu: float | None = None,
    mem: float | None = None,
    gpu: float | None = None,
    named: Mapping[str, float] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, float]:
    """What a worker offers: flags first, then the Slurm allocation it runs in
    (``SLURM_CPUS_ON_NODE``, ``SLURM_MEM_PER_NODE`` or ``SLURM_MEM_PER_CPU`` times the cores, in
    MB, ``SLURM_GPUS_ON_NODE``), then this machine."""
    cores_ = cpu if cpu is not None else _slurm(environ, "SLURM_CPUS_ON_NODE")
    cores_ = cores() if cores_ is None else cores_
    if mem is None:
        mem = _slurm(environ, "SLURM_MEM_PER_NODE")
        per_cpu = _slurm(environ, "SLURM_MEM_PER_CPU")
        if mem is None and per_cpu is not None:
            mem = per_cpu * cores_
    if gpu is None:
        gpu = _slurm(environ, "SLURM_GPUS_ON_NODE")
    values = {
        "cpu": cores_,
        "mem": memory_mb() if mem is None else mem,
        "gpu": gpus() if gpu is None else gpu,
        **(named or {}),
    }
    for name, value in values.items():
        if value < 0:
            raise UsageError(f"a worker's {name} must be 0 or more, not {value:g}")
    return values


def _slurm(environ: Mapping[str, str], name: str) -> float | None:
    text = environ.get(name)
    if not text:
        return None
    try:  # SLURM_CPUS_ON_NODE may read "8(x2)" on some versions: the count comes first
        return float(text.split("(")[0].rstrip("M") or "x")
    except ValueError:
        return None
