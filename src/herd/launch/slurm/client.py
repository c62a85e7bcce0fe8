"""Slurm's commands, run as a user runs them: ``sbatch``, ``squeue``, ``scancel``, ``scontrol``.

Every failure becomes one :class:`BatchError` naming the command and what Slurm said. Job states
come from the controller (``squeue --states=all``, which shows a job until ``MinJobAge`` after
it ended, as ``scontrol show job`` does), and for a job it has forgotten from ``sacct`` where the
cluster keeps accounting: no accounting database is needed.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from herd.errors import BatchError

#: seconds one Slurm command may take before herd gives up on it
TIMEOUT = 60.0


class JobState(enum.Enum):
    """The states of ``squeue``'s ``%T``; ``alive`` ones may still run the job's tasks."""

    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    REQUEUED = "REQUEUED"
    RESIZING = "RESIZING"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    REVOKED = "REVOKED"

    @property
    def alive(self) -> bool:
        return self in _ALIVE


_ALIVE = frozenset(
    {
        JobState.PENDING,
        JobState.CONFIGURING,
        JobState.RUNNING,
        JobState.COMPLETING,
        JobState.SUSPENDED,
        JobState.REQUEUED,
        JobState.RESIZING,
        JobState.SIGNALING,
        JobState.STAGE_OUT,
    }
)


@dataclass(frozen=True, slots=True)
class JobInfo:
    job_id: int
    state: JobState
    #: Slurm's reason (``None``, ``Resources``, ``NodeDown``, ...)
    reason: str
    node: str
    name: str = ""
    #: time left (``squeue``'s ``%L``)
    left: str = ""


def require(*commands: str) -> None:
    """Fail early, and clearly, when Slurm's client commands are not installed here."""
    for command in commands:
        if shutil.which(command) is None:
            raise BatchError(
                f"{command} not found: herd's Slurm executor runs where Slurm's commands are "
                "(a login node); install slurm-client or put it on PATH"
            )


def ping() -> None:
    """Raise unless the Slurm controller answers."""
    out = _run(["scontrol", "ping"], what="scontrol ping", ok_codes=(0, 1))
    if " is UP" not in out:
        said = out.strip().splitlines()[0] if out.strip() else "no answer"
        raise BatchError(
            f"the Slurm controller does not answer (scontrol ping: {said}): start it, or point "
            f"SLURM_CONF at your cluster's slurm.conf (now {os.environ.get('SLURM_CONF', 'unset')})"
        )


def sbatch(script: Path, options: Sequence[str] = ()) -> int:
    """Submit ``script``; its job id. Options besides the script's own ``#SBATCH`` lines come
    first on the command line, which wins over them."""
    out = _run(["sbatch", "--parsable", *options, str(script)], what=f"sbatch {script.name}")
    try:
        return int(out.strip().split(";")[0])
    except ValueError:
        raise BatchError(f"sbatch {script.name}: unexpected answer {out.strip()!r}") from None


def squeue(job_ids: Iterable[int]) -> dict[int, JobInfo]:
    """What the controller knows of these jobs (absent: never known, or ended long ago)."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    out = _run(
        [
            "squeue",
            "--noheader",
            "--states=all",
            f"--jobs={','.join(map(str, ids))}",
            "--format=%i|%T|%r|%N",
        ],
        what="squeue",
        ok_codes=(0, 1),  # 1: every id is unknown (purged); the output is then empty
    )
    found: dict[int, JobInfo] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        try:
            state = JobState(parts[1].split()[0])
        except ValueError:  # a state this herd does not know: treat as still there
            state = JobState.PENDING
        found[int(parts[0])] = JobInfo(int(parts[0]), state, parts[2], parts[3])
    return found


def sacct(job_ids: Iterable[int]) -> dict[int, JobInfo]:
    """What Slurm's accounting knows of jobs the controller has forgotten (ended more than
    ``MinJobAge`` ago); empty when the cluster keeps no accounting."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    argv = ["sacct", "--noheader", "--allocations", "--parsable2", "--format=JobID,State,NodeList"]
    try:
        done = subprocess.run(
            [*argv, f"--jobs={','.join(map(str, ids))}"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    found: dict[int, JobInfo] = {}
    for line in done.stdout.splitlines() if done.returncode == 0 else []:
        parts = line.split("|")
        if len(parts) == 3 and parts[0].isdigit():
            state = JobState.__members__.get(parts[1].split()[0], JobState.FAILED)
            found[int(parts[0])] = JobInfo(int(parts[0]), state, "", parts[2])
    return found


def live_job_names(prefix: str) -> set[str]:
    """Names starting with ``prefix`` of this user's jobs that are pending or running."""
    out = _run(
        ["squeue", "--me", "--noheader", "--states=PENDING,RUNNING,CONFIGURING", "--format=%j"],
        what="squeue",
    )
    return {name for name in out.split() if name.startswith(prefix)}


def jobs_named(prefix: str) -> list[JobInfo]:
    """This user's jobs whose name starts with ``prefix``, in any state the controller keeps."""
    out = _run(
        ["squeue", "--me", "--noheader", "--states=all", "--format=%i|%T|%r|%N|%j|%L"],
        what="squeue",
    )
    found = []
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 6 and parts[4].startswith(prefix) and parts[0].isdigit():
            state = JobState.__members__.get(parts[1].split()[0], JobState.PENDING)
            found.append(JobInfo(int(parts[0]), state, parts[2], parts[3], parts[4], parts[5]))
    return found


def node_shape(partition: str | None) -> tuple[int, float, int]:
    """(cores, MB, GPUs) of the partition's smallest node, from ``sinfo``."""
    argv = ["sinfo", "--noheader", "--format=%c|%m|%G"]
    if partition:
        argv.append(f"--partition={partition}")
    rows = [line.split("|") for line in _run(argv, what="sinfo").split()]
    if not rows:
        raise BatchError(
            f"sinfo lists no node in partition {partition or '(default)'}: check --partition"
        )
    cpus = min(int(r[0].rstrip("+")) for r in rows)
    mem = min(float(r[1].rstrip("+")) for r in rows)
    gpus = min(_gpus(r[2]) for r in rows)
    return cpus, mem, gpus


def _gpus(gres: str) -> int:
    """GPUs in sinfo's ``%G`` (``gpu:4``, ``gpu:a100:2(S:0-1)``, ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def scancel(job_ids: Iterable[int]) -> None:
    ids = [str(i) for i in sorted(set(job_ids))]
    if ids:
        _run(["scancel", *ids], what="scancel")


def _run(argv: list[str], *, what: str, ok_codes: tuple[int, ...] = (0,)) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        require(argv[0])
        raise
    except subprocess.TimeoutExpired:
        raise BatchError(
            f"{what} took more than {TIMEOUT:.0f} s: is Slurm overloaded or down?"
        ) from None
    if done.returncode not in ok_codes:
        message = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise BatchError(f"{what} failed: {message[-1] if message else f'exit {done.returncode}'}")
    return done.stdout
