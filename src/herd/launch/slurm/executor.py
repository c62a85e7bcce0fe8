"""The Slurm executor: each attempt the runner starts becomes (part of) a Slurm job.

herd's own scheduler keeps deciding what runs (dependencies, priorities, retries, the store);
this executor only carries the decisions to Slurm, behind the interface of the local executor:
``start`` an attempt, ``wait`` for events, ``kill`` one, ``shutdown`` all.

- **Submission.** ``start`` queues the attempt; the next ``wait`` submits what was queued, one
  ``sbatch`` per job (``jobs.py`` writes the script into ``.herd/slurm/<workflow>/``). With
  ``group`` > 1, attempts of equal resources started in the same turn share jobs, ``group`` at a
  time. sbatch refusing a job (a bad partition or account) ends its attempts at once, as a
  command that cannot start does locally: exit code 126 and Slurm's message as the reason.
- **Ends.** A task's status file (written by its job when the task ends) gives its exit status
  and its real start and end; the files of running tasks are read every ``poll / 10`` seconds.
  Every ``poll`` seconds ``squeue`` says which jobs Slurm still has: a job that ended (or that
  Slurm no longer knows) without writing a task's status file ends that attempt as failed, with
  Slurm's state as the reason (``TIMEOUT`` and ``OUT_OF_MEMORY`` as herd's own timeout and memory
  kills, so that recovery applies).
- **Signals.** SIGINT and SIGTERM become :class:`Interrupted` events, as locally; ``shutdown``
  cancels every job herd submitted (``scancel``) and waits until Slurm reports them ended.
- A controller that stops answering makes ``squeue`` fail: herd logs it and keeps asking (the
  jobs go on running, and their status files still arrive).

State collections
-----------------
``_queued``  attempts started but not submitted yet (submitted at the next ``wait``)
``_jobs``    Slurm job id -> :class:`_Job` of every submitted job with a task not yet ended
``_by_key``  attempt key -> its :class:`_Job`
``_pending`` events produced outside ``wait`` (refused submissions), returned by the next one
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from herd.core.model import Kill, Workflow
from herd.errors import BatchError
from herd.exec.base import AttemptKey, Event, Executor, Exited, Interrupted, Launch
from herd.exec.signals import Wakeup
from herd.launch.slurm import client
from herd.launch.slurm.client import JobInfo, JobState
from herd.launch.slurm.jobs import TIMEOUT_EXIT, Member, SlurmOptions, read_status, script
from herd.store.workdir import safe_name

logger = logging.getLogger(__name__)

#: Slurm states that mean herd's own kinds of kill: the kind (what recovery and the store keep) and
#: the words
_KILL_REASONS = {
    JobState.TIMEOUT: (Kill.TIMEOUT, "timeout: Slurm stopped job {id} at its time limit"),
    JobState.OUT_OF_MEMORY: (Kill.MEMORY, "memory: Slurm stopped job {id} beyond its --mem"),
    JobState.CANCELLED: (
        Kill.INTERRUPTED,
        "cancelled in Slurm: job {id} (scancel, or an administrator)",
    ),
    JobState.NODE_FAIL: (Kill.LOST, "lost in Slurm: job {id}'s node {node} failed"),
    JobState.PREEMPTED: (Kill.LOST, "lost in Slurm: job {id} was preempted"),
    JobState.BOOT_FAIL: (Kill.LOST, "lost in Slurm: job {id}'s node {node} did not boot"),
    JobState.DEADLINE: (Kill.LOST, "lost in Slurm: job {id} missed its deadline"),
}


@dataclass(slots=True)
class _Job:
    job_id: int
    members: list[Member]
    submitted: float
    #: attempts of this job not ended yet
    open: set[AttemptKey] = field(default_factory=set)
    #: why herd cancelled it, when it did
    killed: str = ""


@dataclass(frozen=True, slots=True)
class Timing:
    """One attempt's way through Slurm, in epoch seconds (for ``bench/slurm.py``)."""

    key: AttemptKey
    job_id: int
    submitted: float  # sbatch called
    started: float  # the task began (its job's clock)
    ended: float  # the task ended (its job's clock)
    noticed: float  # herd read its status file


class SlurmExecutor:
    """Runs the runner's attempts as Slurm jobs; see the module docstring."""

    def __init__(
        self, workflow: Workflow, workdir: Path, options: SlurmOptions | None = None
    ) -> None:
        client.require("sbatch", "squeue", "scancel", "scontrol")
        client.ping()
        self.options = options or SlurmOptions()
        self.workflow = workflow.name
        self.dir = workdir / ".herd" / "slurm" / safe_name(workflow.name)
        #: task -> (its transformation, how many of it share a job): Pegasus's clusters.size
        self._clusters = {
            t.name: (str(t.meta.get("transformation")), int(t.meta["clusters_size"]))
            for t in workflow.tasks
            if t.meta and "clusters_size" in t.meta
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.timings: list[Timing] = []
        self._base_env = dict(os.environ)
        self._queued: list[Launch] = []
        self._jobs: dict[int, _Job] = {}
        self._by_key: dict[AttemptKey, _Job] = {}
        self._pending: list[Exited] = []
        self._next_squeue = 0.0
        self._wakeup = Wakeup()
        self._closed = False

    # -- the executor interface ----------------------------------------------------------------

    @property
    def running(self) -> int:
        return len(self._by_key) + len(self._queued)

    def start(self, launch: Launch) -> int:
        """Queue one attempt; it is submitted at the next :meth:`wait`. Returns 0 (the job id is
        known only then; it is in the attempt's batch script and ``herd slurm`` views)."""
        self._queued.append(launch)
        return 0

    def wait(self, deadline: float | None = None) -> list[Event]:
        """Events, waiting until there is at least one or ``deadline`` (monotonic) passes."""
        self._submit_queued()
        events: list[Event] = list(self._pending)
        self._pending = []
        while True:
            events += self._signals()
            events += self._ended_tasks()
            now = time.monotonic()
            if self._jobs and now >= self._next_squeue:
                events += self._vanished_jobs()
                self._next_squeue = now + self.options.poll
            if events or (deadline is not None and now >= deadline):
                return events
            if deadline is None and not self._jobs:
                return events
            wake = now + self.options.poll / 10
            self._wakeup.wait(max(0.0, min(wake, deadline or wake) - now))

    def kill(self, key: AttemptKey, reason: str = "cancelled") -> bool:
        """Cancel the job of one attempt (with the other tasks of its group)."""
        job = self._by_key.get(key)
        if job is None:
            return False
        job.killed = reason
        client.scancel([job.job_id])
        return True

    def shutdown(self, grace: float | None = None, reason: str = "shutdown") -> list[Exited]:
        """Cancel every job herd submitted and wait until Slurm has ended them; the Exited
        events of their attempts (their real outcome when they ended meanwhile)."""
        self._queued.clear()
        if not self._jobs:
            return []
        try:
            client.scancel(self._jobs)
        except BatchError as exc:
            logger.error(
                "%s: cancel herd's jobs with `scancel %s`", exc, " ".join(map(str, self._jobs))
            )
        until = time.monotonic() + (grace or 0.0) + 30.0
        exited: list[Exited] = []
        while self._jobs and time.monotonic() < until:
            exited += self._ended_tasks()
            exited += self._vanished_jobs(reason=reason)
            if self._jobs:
                self._wakeup.wait(self.options.poll / 10)
        for job in list(self._jobs.values()):  # Slurm did not say: herd stops waiting anyway
            exited += [
                self._lost(job, key, Kill.INTERRUPTED, f"{reason}: job {job.job_id} did not end")
                for key in list(job.open)
            ]
        return exited

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.shutdown()
        finally:
            self._closed = True
            self._wakeup.close()

    # -- submitting ----------------------------------------------------------------------------

    def _submit_queued(self) -> None:
        queued, self._queued = self._queued, []
        for members in self._groups(queued):
            self._submit(members)

    def _groups(self, launches: list[Launch]) -> list[list[Member]]:
        """Jobs to submit, in start order: attempts of equal resources (and, for a task with
        Pegasus's ``clusters.size``, of the same transformation) share a job, ``group`` (or
        that size) at a time."""
        by_key: dict[tuple[object, ...], list[Member]] = {}
        jobs: list[list[Member]] = []
        for launch in launches:
            member = Member(launch, self._path(launch.key, ".status"))
            member.status.unlink(missing_ok=True)  # an attempt number reused after herd forget
            transformation, size = self._clusters.get(launch.key[0], (None, self.options.group))
            key = (transformation, size, *sorted(launch.resources.items()))
            group = by_key.setdefault(key, [])
            if not group:
                jobs.append(group)
            group.append(member)
            if len(group) >= size:
                by_key.pop(key)
        return jobs

    def _submit(self, members: list[Member]) -> None:
        first = members[0].launch.key
        path = self._path(first, ".sh")
        log = self._path(first, ".job.log")
        path.write_text(script(members, self.options, self._base_env, log, self.workflow))
        submitted = time.time()
        try:
            job_id = client.sbatch(path)
        except BatchError as exc:
            logger.error("%s (task %s)", exc, first[0])
            for m in members:
                self._pending.append(
                    _exit(m.launch.key, submitted, 126, None, f"cannot start: {exc}")
                )
            return
        job = _Job(job_id, members, submitted, {m.launch.key for m in members})
        self._jobs[job_id] = job
        for m in members:
            self._by_key[m.launch.key] = job

    def _path(self, key: AttemptKey, suffix: str) -> Path:
        return self.dir / f"{safe_name(key[0])}.{key[1]}{suffix}"

    # -- ends ----------------------------------------------------------------------------------

    def _ended_tasks(self) -> list[Exited]:
        events: list[Exited] = []
        for job in list(self._jobs.values()):
            events += self._ended_tasks_of(job)
        return events

    def _done(self, job: _Job, m: Member, code: int, start: float, end: float) -> Exited:
        key = m.launch.key
        self._close(job, key)
        self.timings.append(Timing(key, job.job_id, job.submitted, start, end, time.time()))
        if code == TIMEOUT_EXIT and m.launch.timeout:
            return _exit(
                key,
                start,
                None,
                None,
                f"timeout {end - start:.1f} s > {m.launch.timeout:g} s limit",
                end,
                Kill.TIMEOUT,
            )
        if code > 128:
            return _exit(key, start, None, code - 128, "", end)
        return _exit(key, start, code, None, "", end)

    def _vanished_jobs(self, reason: str = "") -> list[Exited]:
        """Attempts whose job Slurm has ended (or forgotten) without their status file."""
        try:
            known = client.squeue(self._jobs)
        except BatchError as exc:
            logger.warning("%s; herd keeps waiting for its %d job(s)", exc, len(self._jobs))
            return []
        forgotten = [job_id for job_id in self._jobs if job_id not in known]
        known.update(client.sacct(forgotten))  # accounting, where the cluster keeps it
        events: list[Exited] = []
        for job in list(self._jobs.values()):
            info = known.get(job.job_id)
            if info is not None and info.state.alive:
                continue
            events += self._ended_tasks_of(job)  # written just before the job ended
            stopped = reason or job.killed
            kill, why = (Kill.INTERRUPTED, stopped) if stopped else _why(job.job_id, info)
            for key in list(job.open):
                events.append(self._lost(job, key, kill, why))
        return events

    def _ended_tasks_of(self, job: _Job) -> list[Exited]:
        events: list[Exited] = []
        for m in job.members:
            status = read_status(m.status) if m.launch.key in job.open else None
            if status is not None:
                events.append(self._done(job, m, status.exit_status, status.start, status.end))
        return events

    def _lost(self, job: _Job, key: AttemptKey, kill: Kill, reason: str) -> Exited:
        self._close(job, key)
        logger.warning("task %s attempt %d: %s", key[0], key[1], reason)
        return _exit(key, job.submitted, None, None, reason, kill=kill)

    def _close(self, job: _Job, key: AttemptKey) -> None:
        job.open.discard(key)
        self._by_key.pop(key, None)
        if not job.open:
            self._jobs.pop(job.job_id, None)

    def _signals(self) -> list[Event]:
        return [Interrupted(s) for s in self._wakeup.drain() if s in Wakeup.STOPS]


def _why(job_id: int, info: JobInfo | None) -> tuple[Kill, str]:
    """How Slurm ended a job before its task wrote its status, and in words."""
    if info is None:
        return Kill.LOST, f"lost in Slurm: job {job_id} is no longer known to the controller"
    known = _KILL_REASONS.get(info.state)
    if known is not None:
        return known[0], known[1].format(id=job_id, node=info.node or "?")
    return (
        Kill.LOST,
        f"lost in Slurm: job {job_id} ended {info.state.value} ({info.reason}) before the task did; see its .job.log",
    )


def _exit(
    key: AttemptKey,
    start: float,
    code: int | None,
    signum: int | None,
    reason: str,
    end: float | None = None,
    kill: Kill | None = None,
) -> Exited:
    end = end or time.time()
    return Exited(key, 0, start, end, code, signum, reason, 0.0, 0.0, 0, None, None, kill=kill)


def slurm_executor(options: SlurmOptions) -> Callable[[Workflow, Path], Executor]:
    """The runner's executor factory for ``--executor slurm``."""
    return functools.partial(SlurmExecutor, options=options)
