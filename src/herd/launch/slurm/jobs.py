"""Batch scripts for ``herd run --executor slurm``: one job runs one task, or a group of short ones.

A script is plain text a user can read and resubmit by hand: the resources as ``#SBATCH`` lines,
then per task its directory, the variables herd sets (the workflow's, the task's, ``HERD_*``; the
rest of the environment is sbatch's default, the submitting shell's), its command with its
redirections and timeout, and one line that writes the task's *status file*: exit status, start
and end time (epoch seconds). herd learns that a task ended from that file, and from Slurm only
that a job ended without writing it (cancelled, timed out, node failure).

Tasks of a group run one after another (Pegasus's horizontal clustering): the job asks for the
largest request of its tasks, and for the sum of their time limits.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from herd.exec.base import Launch

#: exit status of a task the wrapper's ``timeout`` killed (coreutils' convention)
TIMEOUT_EXIT = 124
#: seconds between the wrapper's SIGTERM at a task's timeout and its SIGKILL
GRACE = 5


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """What ``herd run --executor slurm`` passes to every job."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    #: further sbatch options, as written on sbatch's command line (``--constraint=haswell``)
    extra: tuple[str, ...] = ()
    #: at most this many tasks of equal resources that become ready together share one job
    group: int = 1
    #: seconds between two looks at the controller (job states); status files are read 10x more
    poll: float = 1.0


@dataclass(frozen=True, slots=True)
class Member:
    """One task of a job: what the runner asked for and where its status is written."""

    launch: Launch
    status: Path


def job_name(members: Sequence[Member]) -> str:
    first = members[0].launch.key[0]
    return first if len(members) == 1 else f"{first}+{len(members) - 1}"


def script(
    members: Sequence[Member],
    options: SlurmOptions,
    base_env: Mapping[str, str],
    log: Path,
    workflow: str,
) -> str:
    """The batch script of one job running ``members`` in order."""
    names = ", ".join(m.launch.key[0] for m in members)
    lines = [
        "#!/bin/sh",
        f"# herd run --executor slurm: workflow '{workflow}', task(s) {names}",
        "# resources: the largest request of the tasks; time: the sum of their timeouts",
        *(f"#SBATCH {opt}" for opt in sbatch_options(members, options, log)),
        "# the environment is the submitting shell's (sbatch --export=ALL); herd's own",
        "# variables are set per task below",
    ]
    for m in members:
        lines += ["", *_task(m, base_env)]
    return "\n".join(lines) + "\n"


def sbatch_options(members: Sequence[Member], options: SlurmOptions, log: Path) -> list[str]:
    demand = _largest([m.launch.resources for m in members])
    out = [
        f"--job-name={job_name(members)}",
        f"--cpus-per-task={max(1, math.ceil(demand.get('cpu', 1.0)))}",
    ]
    if demand.get("mem"):
        out.append(f"--mem={math.ceil(demand['mem'])}M")  # 0 would mean the whole node's
    if demand.get("gpu"):
        out.append(f"--gres=gpu:{math.ceil(demand['gpu'])}")
    minutes = _minutes([m.launch.timeout for m in members])
    if minutes:
        out.append(f"--time={minutes}")
    out += [f"--output={log}", "--no-requeue"]  # a retry is herd's decision, with a new attempt
    for flag, value in (
        ("partition", options.partition),
        ("account", options.account),
        ("qos", options.qos),
    ):
        if value:
            out.append(f"--{flag}={value}")
    return [*out, *options.extra]


def _largest(requests: Sequence[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for request in requests:
        for k, v in request.items():
            out[k] = max(out.get(k, 0.0), float(v))
    return out


def _minutes(timeouts: Sequence[float | None]) -> int | None:
    """Slurm's time limit in whole minutes, with each task's kill grace; None when any task has
    no limit (the partition's default applies)."""
    if not timeouts or any(t is None for t in timeouts):
        return None
    return math.ceil(sum((t or 0.0) + GRACE for t in timeouts) / 60) + 1


def _task(m: Member, base_env: Mapping[str, str]) -> list[str]:
    launch = m.launch
    name, number = launch.key
    q = shlex.quote
    status = str(m.status)
    setting = [f"export {k}={q(v)}" for k, v in launch.env.items() if base_env.get(k) != v]
    dropped = sorted(k for k in base_env if k not in launch.env)
    if dropped:
        setting.append(f"unset {' '.join(dropped)}")
    redirect = f"<{q(str(launch.stdin)) if launch.stdin else '/dev/null'}"
    redirect += f" >{q(str(launch.stdout)) if launch.stdout else '/dev/null'}"
    if launch.stderr is not None and launch.stderr == launch.stdout:
        redirect += " 2>&1"
    else:
        redirect += f" 2>{q(str(launch.stderr)) if launch.stderr else '/dev/null'}"
    return [
        f"# task {name}, attempt {number}",
        "s=$(date +%s.%N)",
        "(",
        f"  cd {q(str(launch.cwd))} || exit 126",
        *(f"  {line}" for line in setting),
        f"  exec {_command(launch)}",
        f") {redirect}",
        "rc=$?",
        f'printf "%s %s %s\\n" "$rc" "$s" "$(date +%s.%N)" >{q(status + ".tmp")} '
        f"&& mv {q(status + '.tmp')} {q(status)}",
    ]


def _command(launch: Launch) -> str:
    argv = ["/bin/sh", "-c", launch.cmd] if isinstance(launch.cmd, str) else list(launch.cmd)
    if launch.timeout:
        limit = f"{launch.timeout:g}"
        argv = ["timeout", f"--kill-after={GRACE}", limit, *argv]
    return shlex.join(argv)


@dataclass(frozen=True, slots=True)
class Status:
    """What a task's status file says."""

    exit_status: int
    start: float
    end: float


def read_status(path: Path) -> Status | None:
    """The status file's content; None while the task has not ended (or the file is torn)."""
    try:
        words = path.read_text().split()
    except FileNotFoundError:
        return None
    try:
        return Status(int(words[0]), float(words[1]), float(words[2]))
    except (IndexError, ValueError):
        return None
