"""``herd worker``: claim ready tasks from a store and run them on this machine.

A worker is another driver of herd's execution: it runs what it claims through the same
:class:`~herd.executor.LocalExecutor` as ``herd run`` (logs, monitoring, the memory watchdog,
timeouts) and records attempts the way the runner does (:func:`herd.run.attempts.attempt_finished`,
user data and events from ``$HERD_USER_DATA``), but the queue, the order and the counts live in the
store (``Store.claim`` / ``finish``), shared with every other worker. It needs only the store's
:class:`~herd.store.base.WorkerStore` part: a database store, or the HTTP client of a herd server
(:class:`~herd.store.remote.RemoteQueue`, ``herd worker --server``). The failure policy is the
scheduler's (:func:`herd.scheduler.after_failure`: recovery with more memory or time, retries with
back-off); the worker reports the decision with the attempt, in one transaction.

One turn of the loop: reap expired leases (at most every :data:`REAP_EVERY` seconds: any worker
may, so a dead worker's tasks come back within its lease and a second), renew its own leases
(every third of the lease; attempts the store says it holds that it never heard of — a claim
whose answer was lost — are given back), claim what fits the free resources when work may have
come (its own finish, another participant's commit — looked for every :data:`BUSY_POLL` seconds
while tasks run and cores are free — or every :data:`RECHECK` seconds for retries coming due),
then wait for a process to end — or, with nothing running, for the store to signal work
(``Store.wait_for_work``). Short tasks are claimed ahead (:mod:`herd.run.ahead`): when one ends,
the next starts from the worker's buffer at once, and the finish goes to the store while it runs.
Finished attempts go to the store in one ``finish`` (with the claim refilling the buffer) for
all that ended since the last (at most :meth:`~herd.run.ahead.Ahead.flush_after` seconds later),
with the tail of a failure's output and, with ``ship_logs``, the whole output (the last
:data:`~herd.run.worker_end.SHIP_MAX` bytes of each stream) for readers that share no filesystem
with this host.

Stopping: ``--idle-exit`` seconds with nothing to do, the served workflows finished, ``--max-tasks``
started, or ``--end-time`` reached. SIGTERM or SIGINT *drains*: claim nothing more, let running
tasks end within ``drain`` seconds, then stop them and release their leases, so other workers
take them at once (and the tasks claimed ahead at once); a second signal stops them at once.
SIGKILL loses nothing: the leases expire (an ended attempt not reported yet runs again).
"""

from __future__ import annotations

import getpass
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.core.model import RunStatus, Task, TaskState, Workflow
from herd.exec.base import Exited, Interrupted, Launch, Sampled
from herd.exec.executor import LocalExecutor
from herd.exec.leftovers import stop_leftovers
from herd.exec.markers import touch
from herd.exec.monitor import is_alive
from herd.plan.clean import remove_unneeded
from herd.plan.files import Files
from herd.run.ahead import Ahead
from herd.run.attempts import DATA, attempt_finished, outcome, stamps, user_changes
from herd.run.submit import RunOptions
from herd.run.worker_end import SHIP_MAX as SHIP_MAX  # (herd.store.queued names it here)
from herd.run.worker_end import failure, shipped
from herd.store.base import Change, Sample, Store, WorkerStore
from herd.store.campaigned import OpenCampaigns
from herd.store.queued import Claimed, Outcome, QueuedTask, WorkerRecord

if TYPE_CHECKING:
    from herd.run.local import RunResult

logger = logging.getLogger(__name__)

#: seconds between two reaps of expired leases by one worker
REAP_EVERY = 1.0
#: seconds between two claims when nothing signalled work (retries come due, SQLite polling)
RECHECK = 0.5
#: seconds between two looks for new work while tasks run and cores are free
BUSY_POLL = 0.02


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """What ``herd worker`` is told."""

    resources: Mapping[str, float]
    workflows: tuple[str, ...] = ()
    idle_exit: float | None = None
    max_tasks: int | None = None
    #: epoch seconds: claim only tasks expected to end before, stop claiming at
    end_time: float | None = None
    #: seconds a claim lasts without a heartbeat
    lease: float = 30.0
    #: seconds running tasks get to end after SIGTERM before they are stopped and released
    drain: float = 20.0
    #: seconds between SIGTERM and SIGKILL when stopping a task
    grace: float = 5.0
    mem_kill_ratio: float = 2.0
    #: send every attempt's whole output with its finish (the site shares no disk with readers)
    ship_logs: bool = False
    #: tasks per core to hold claimed ahead (None: by their durations, see herd.run.ahead)
    ahead: int | None = None


@dataclass(frozen=True, slots=True)
class WorkerResult:
    worker_id: int
    finished: int  # attempts reported
    succeeded: int
    released: int  # attempts stopped while draining and given back
    lost: int  # attempts the store took back (the lease expired)
    reason: str  # why the worker stopped, in words
    exit_code: int
    #: it stopped because it was asked to (a signal): it drained, and gave back what still ran
    drained: bool = False


@dataclass(slots=True)
class _Held:
    """An attempt this worker claimed and runs."""

    claimed: Claimed
    launch: Launch
    changes: list[Change] = field(default_factory=list)
    lost: bool = False


class Worker:
    """One worker process: see the module docstring."""

    def __init__(self, store: WorkerStore, options: WorkerOptions) -> None:
        self.store, self.options = store, options
        self.host, self.user, self.pid = socket.gethostname(), getpass.getuser(), os.getpid()
        self.base_env = dict(os.environ)
        self.held: dict[tuple[str, int], _Held] = {}  # by launch key (task, number)
        self.free = dict(options.resources)
        self.started = self.succeeded = self.finished = self.released = self.lost = 0
        self.draining = False
        self.signals = 0
        self.made_dirs: set[str] = set()
        self.cleaned: set[int] = set()  # dead workers of this host whose processes were stopped
        #: temp files read by tasks that succeeded here, to remove once every reader did
        self.temp: dict[tuple[int, str], Mapping[str, tuple[str, ...]]] = {}
        self.claimed_at = -RECHECK  # (monotonic) when it last looked for work to claim
        self.ahead = Ahead(options.resources, options.ahead)  # claimed, not started yet
        self.pending: list[Outcome] = []  # ended attempts not reported yet
        self.pending_since = 0.0  # (monotonic) when the first of them ended

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> WorkerResult:
        self.waiting_for = 0  # --workflow names not submitted yet
        self.wids = self._workflow_ids()
        if self.waiting_for:
            logger.warning(
                "not submitted yet: %s; waiting for them",
                ", ".join(n for n in self.options.workflows if self._submitted(n) is None),
            )
        self.id = self.store.register_worker(
            host=self.host,
            pid=self.pid,
            user=self.user,
            resources=self.options.resources,
            now=time.time(),
            lease=self.options.lease,
        )
        offers = _describe(self.options.resources)
        logger.info("worker %d on %s (pid %d) offers %s", self.id, self.host, self.pid, offers)
        try:
            with LocalExecutor(grace=self.options.grace) as ex:
                self.ex = ex
                reason = self._loop()
        finally:
            self.store.stop_worker(self.id, now=time.time())
        counts = (self.finished, self.succeeded, self.released, self.lost)
        return WorkerResult(self.id, *counts, reason, 0, self.draining)

    def _workflow_ids(self) -> list[int] | None:
        """The ids of the ``--workflow`` names submitted so far (None: serve every workflow).
        A name not submitted yet is looked up again at every claim: workers may start first."""
        if not self.options.workflows:
            return None
        ids = []
        for name in self.options.workflows:
            wid = self._submitted(name)
            if wid is not None:
                ids.append(wid)
        self.waiting_for = len(self.options.workflows) - len(ids)
        return ids

    def _submitted(self, name: str) -> int | None:
        """The id of workflow ``name`` once it has a run. ``herd submit`` records the workflow
        in one transaction and its run with the queued tasks in a later one: in between, its
        queue is empty and would look finished."""
        rec = self.store.workflow(name)
        return rec.id if rec is not None and self.store.runs(rec.id) else None

    def _loop(self) -> str:
        opts = self.options
        mono = time.monotonic()
        beat_every = max(opts.lease / 3, 0.05)
        next_beat = next_reap = next_claim = mono
        idle_since = mono
        drain_until = float("inf")
        work = True  # work may have come: claim
        while True:
            mono = time.monotonic()
            if mono >= next_reap:
                self._reap()
                next_reap = mono + REAP_EVERY
            if mono >= next_beat:
                self._heartbeat()
                next_beat = mono + beat_every
            # (a claim waits for room: a core free, or the buffer of tasks claimed ahead half empty)
            free = self._claim_free()
            if self.pending and (free is not None or self._flush_due(mono)):
                # what it claimed with the finish filled the room, or there may be more
                work = self._finish(free)
            elif free is not None and (work or mono >= next_claim):
                work = self._claim(free)  # there may be more that fits
            next_claim = self.claimed_at + RECHECK
            self._start_ready()
            if self.held or self.ahead or self.pending:
                idle_since = mono
            else:
                reason = self._why_stop(mono - idle_since)
                if reason:
                    return reason
                wait = min(next_beat, next_reap, next_claim, mono + RECHECK) - mono
                if opts.idle_exit is not None:
                    wait = min(wait, idle_since + opts.idle_exit - mono)
                work = self.store.wait_for_work(max(wait, 0.0))
            deadline = min(next_beat, next_reap, drain_until)
            if self.pending:
                deadline = min(deadline, self.pending_since + self.ahead.flush_after())
            room = bool(self.held) and self._claim_free() is not None
            if room:  # free cores: look for work others made ready while these run
                deadline = min(deadline, next_claim, time.monotonic() + BUSY_POLL)
            events = self.ex.wait(deadline if self.held else time.monotonic())
            if room and not events:
                work = self.store.wait_for_work(0.0)
            for ev in events:
                if isinstance(ev, Exited):
                    done = self._exited(ev)
                    if done is not None:
                        self.pending_since = self.pending_since if self.pending else mono
                        self.pending.append(done)
                elif isinstance(ev, Sampled):
                    self._sampled(ev)
                elif self._interrupted(ev):
                    drain_until = time.monotonic() + opts.drain
                    self._release_ahead("released: the worker was stopped before it started")
            self._start_ready()  # at once: the finish goes to the store while they run
            if time.monotonic() >= drain_until or self.signals > 1:
                self._release_all("released: the worker was stopped")
                drain_until = float("inf")
            if not self.held and self.draining and not self.pending:
                return "drained"

    def _flush_due(self, mono: float) -> bool:
        """Whether the ended attempts go to the store now, though no claim is to be made."""
        return (
            self.draining
            or not self.held  # nothing runs meanwhile
            or not self.ahead
            or mono >= self.pending_since + self.ahead.flush_after()
        )

    def _why_stop(self, idle: float) -> str:
        """Why an idle worker should stop now, or ""."""
        opts = self.options
        if self.draining:
            return "drained"
        if opts.max_tasks is not None and self.started >= opts.max_tasks:
            return f"started --max-tasks {opts.max_tasks}"
        if opts.end_time is not None and time.time() >= opts.end_time:
            return "reached --end-time"
        if self.waiting_for:
            self.wids = self._workflow_ids()
        counts = self.store.queue_counts(self.wids)
        live = isinstance(self.store, OpenCampaigns) and self.store.open_campaigns(self.wids)
        if counts and not self.waiting_for and not live and not any(counts.get(s) for s in OPEN):
            return "the workflows it serves are finished"
        if opts.idle_exit is not None and idle >= opts.idle_exit:
            return f"idle for --idle-exit {opts.idle_exit:g} s"
        return ""

    # --- claiming and starting --------------------------------------------------------------

    def _claim_free(self) -> dict[str, float] | None:
        """What a claim may take now (its ``free``), or None: none is to be made."""
        opts = self.options
        if self.draining:
            return None
        if opts.max_tasks is not None and opts.max_tasks - self.started - len(self.ahead) <= 0:
            return None
        if opts.end_time is not None and time.time() >= opts.end_time:
            return None
        return self.ahead.request(self.free)

    def _claim(self, free: dict[str, float]) -> bool:
        start = time.monotonic()
        claimed = self.store.claim(self.id, free, **self._terms())
        self.ahead.add(claimed, trip=time.monotonic() - start)
        return bool(claimed) and self._claim_free() is not None

    def _terms(self) -> dict[str, Any]:
        """The terms of a claim now (the ``Store.claim`` keywords but ``free``)."""
        opts = self.options
        if self.waiting_for:
            self.wids = self._workflow_ids()
        limit = None if opts.max_tasks is None else opts.max_tasks - self.started - len(self.ahead)
        self.claimed_at = time.monotonic()
        return {
            "now": time.time(),
            "lease": opts.lease,
            "workflows": self.wids,
            "limit": limit,
            "ends_before": opts.end_time,
            "capacity": opts.resources,
        }

    def _start_ready(self) -> None:
        """Start the tasks claimed ahead that fit what is free, in their order."""
        end = self.options.end_time
        while self.ahead and not self.draining:
            if end is not None:  # claimed to end before it, but started later than claimed
                now = time.time()
                late = {k for k, c in self.ahead.keyed() if now + (c.task.duration or 0) >= end}
                self._release_ahead("released: it would end after --end-time", late)
            c = self.ahead.next(self.free)
            if c is None:
                return
            self._start(c)

    def _start(self, c: Claimed) -> None:
        task, number = c.task, c.number
        for name, amount in c.resources.items():
            if name in self.free:
                self.free[name] -= amount
        stem = self._log_stem(task, number)
        cwd = Path(task.cwd)
        if task.cwd not in self.made_dirs:
            cwd.mkdir(parents=True, exist_ok=True)
            self.made_dirs.add(task.cwd)
        stdout, stderr = (Path(p) for p in task.log_paths(number))
        for path in (stdout, stderr, Path(stem + DATA)):
            path.unlink(missing_ok=True)  # an earlier attempt's (before herd forget)
        env = {**self.base_env, **task.env}
        env.update(
            HERD_WORKFLOW=c.workflow,
            HERD_TASK=task.name,
            HERD_ATTEMPT=str(number),
            HERD_USER_DATA=stem + DATA,
        )
        mem = c.resources.get("mem", 0.0) if self.options.mem_kill_ratio > 0 else 0.0
        launch = Launch(
            key=(f"{c.workflow_id}:{task.name}", number),  # task names repeat across workflows
            cmd=task.cmd,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            stdin=cwd / task.stdin if task.stdin else None,
            timeout=c.timeout,
            mem_limit=int(mem * 1e6) or None,
            mem_ratio=self.options.mem_kill_ratio,
            resources=c.resources,
        )
        self.held[launch.key] = _Held(c, launch)
        self.started += 1
        self.ex.start(launch)

    def _log_stem(self, task: QueuedTask, number: int) -> str:
        folder = task.log_dir or os.path.join(".herd", "logs")
        if folder not in self.made_dirs:
            os.makedirs(folder, exist_ok=True)
            self.made_dirs.add(folder)
        return task.log_stem(number)

    # --- ending -----------------------------------------------------------------------------

    def _exited(self, ev: Exited) -> Outcome | None:
        held = self.held.pop(ev.key)
        c = held.claimed
        for name, amount in c.resources.items():
            if name in self.free:
                self.free[name] += amount
        if ev.pid:
            self.ahead.observe(ev.end - ev.start)
        if held.lost:
            return None  # the store took it back: another worker runs it now
        task, number = c.task, c.number
        ok = ev.exit_code == 0 and not ev.kill_reason and not ev.log_error
        detail = "" if ok else outcome(ev)
        stand_in = Task(task.name, task.cmd, inputs=task.inputs, outputs=task.outputs)
        files = Files(Path(task.cwd))
        for redirect in (task.stdout, task.stderr):
            if redirect:  # a declared redirection exists even when the task printed nothing
                touch(Path(task.cwd) / redirect)
        inputs = outputs = None
        if ok:
            inputs, outputs = (
                stamps(files, stand_in, task.inputs),
                stamps(files, stand_in, task.outputs),
            )
            missing = [p for p in task.outputs if p not in outputs]
            if missing:
                ok, detail = False, f"declared output {missing[0]} was not created"
            elif task.done_marker:
                touch(files.path(stand_in, task.done_marker))
        state = TaskState.SUCCEEDED if ok else TaskState.FAILED
        finished = attempt_finished(c.workflow_id, task.name, number, ev, state, inputs, outputs)
        changes = held.changes + user_changes(
            str(self._log_stem(task, number)) + DATA, c.workflow_id, task.name, number
        )
        ship = shipped(c) if self.options.ship_logs else None
        if ok:
            if task.temp_inputs:
                self.temp[(c.workflow_id, task.name)] = task.temp_inputs
            return Outcome(
                finished, ev.pid, ev.start, TaskState.SUCCEEDED, changes=changes, shipped=ship
            )
        mem_cap = self.options.resources.get("mem", float("inf"))
        return replace(failure(c, ev, finished, detail, changes, mem_cap), shipped=ship)

    def _sampled(self, ev: Sampled) -> None:
        held = self.held.get(ev.key)
        if held is not None:
            c = held.claimed
            held.changes.append(
                Sample(c.workflow_id, c.task.name, c.number, ev.time, ev.rss, ev.cpu, ev.processes)
            )

    def _finish(self, free: dict[str, float] | None) -> bool:
        """Report the ended attempts and, in the same transaction, claim what fits ``free``
        (None: claim nothing); whether it claimed any and there is room for more."""
        outcomes, self.pending = self.pending, []
        start = time.monotonic()
        if free is None:
            accepted = self.store.finish(self.id, outcomes, now=time.time())
            claimed: list[Claimed] = []
        else:
            accepted, claimed = self.store.finish_and_claim(
                self.id, outcomes, free, **self._terms()
            )
        self.ahead.add(claimed, trip=time.monotonic() - start)
        for o, ok in zip(outcomes, accepted, strict=True):
            if not ok:
                self.lost += 1
                logger.warning(
                    "attempt %d of %s was taken back by the store (its lease "
                    "expired); its outcome is dropped",
                    o.attempt.number,
                    o.attempt.task,
                )
                continue
            self.finished += 1
            self.succeeded += o.then is TaskState.SUCCEEDED
        self._remove_temp(outcomes, accepted)
        return bool(claimed) and self._claim_free() is not None

    def _remove_temp(self, outcomes: Sequence[Outcome], accepted: Sequence[bool]) -> None:
        for o, ok in zip(outcomes, accepted, strict=True):
            temp = self.temp.pop((o.attempt.workflow_id, o.attempt.task), None)
            for path in (
                remove_unneeded(self.store, o.attempt.workflow_id, temp or {}) if ok else ()
            ):
                logger.info("removed temp file %s: every task reading it succeeded", path)

    # --- leases and signals -----------------------------------------------------------------

    def _heartbeat(self) -> None:
        held = self.store.heartbeat(self.id, now=time.time(), lease=self.options.lease)
        known = set()
        for key, h in self.held.items():
            c = h.claimed
            known.add((c.workflow_id, c.task.name, c.number))
            if not h.lost and (c.workflow_id, c.task.name, c.number) not in held:
                h.lost = True
                self.lost += 1
                logger.warning("lost the lease of %s attempt %d: stopping it", *key)
                self.ex.kill(key, "lease lost")
        for c in self.ahead.drop({k for k in self._ahead_keys() if k not in held}):
            self.lost += 1
            logger.warning(
                "lost the lease of %s attempt %d before it started", c.task.name, c.number
            )
        known.update(self._ahead_keys())  # and the ended ones not reported yet:
        known.update(
            (o.attempt.workflow_id, o.attempt.task, o.attempt.number) for o in self.pending
        )
        unknown = sorted(held - known)
        if unknown:  # a claim whose answer never came (the server restarted): give them back
            reason = "released: its worker never learnt of the claim"
            self.store.release(self.id, unknown, now=time.time(), reason=reason)
            logger.warning("gave back %d attempt(s) claimed for it unawares", len(unknown))

    def _reap(self) -> None:
        """Take back expired leases. First, the processes that dead workers of this host left
        are stopped (once per dead worker), so that a task never runs twice at once here."""
        for w in self.store.workers():
            if self._dead_here(w):
                self.cleaned.add(w.id)
                killed = stop_leftovers(w.pid)
                if killed:
                    logger.warning(
                        "stopped %d process(es) left by dead worker %d (pid %d)",
                        len(killed),
                        w.id,
                        w.pid,
                    )
        lost = self.store.reap(now=time.time())
        if lost:
            logger.warning(
                "took back %d attempt(s) of dead workers: %s",
                len(lost),
                ", ".join(f"{x.task} ({x.then.value})" for x in lost),
            )

    def _dead_here(self, w: WorkerRecord) -> bool:
        """A worker of this host that died without stopping (its processes may still run)."""
        here = w.host == self.host and w.pid != self.pid and w.id not in self.cleaned
        return here and w.state != "stopped" and not is_alive(w.pid)

    def _interrupted(self, ev: Interrupted) -> bool:
        """SIGTERM/SIGINT: start draining (True the first time)."""
        self.signals += 1
        if self.draining:
            return False
        self.draining = True
        logger.warning(
            "signal %d: draining (claiming nothing more; %d task(s) running get %g s)",
            ev.signum,
            len(self.held),
            self.options.drain,
        )
        self.store.stop_worker(self.id, now=time.time(), state="draining")
        return True

    def _ahead_keys(self) -> set[tuple[int, str, int]]:
        return {k for k, _ in self.ahead.keyed()}

    def _release_ahead(self, reason: str, keys: set[tuple[int, str, int]] | None = None) -> None:
        """Give back tasks claimed ahead (all by default): other workers take them at once."""
        gone = self.ahead.drop(self._ahead_keys() if keys is None else keys)
        if gone:
            back = sorted((c.workflow_id, c.task.name, c.number) for c in gone)
            self.released += len(self.store.release(self.id, back, now=time.time(), reason=reason))

    def _release_all(self, reason: str) -> None:
        self._release_ahead(reason)
        if not self.held:
            return
        keys = [
            (h.claimed.workflow_id, h.claimed.task.name, h.claimed.number)
            for h in self.held.values()
            if not h.lost
        ]
        for h in self.held.values():
            h.lost = True  # their exits are not outcomes
        for ev in self.ex.shutdown(reason=reason):
            self._exited(ev)
        released = self.store.release(self.id, keys, now=time.time(), reason=reason)
        self.released += len(released)


#: the queue states of a task that is not finished
OPEN = (TaskState.WAITING, TaskState.READY, TaskState.RUNNING)


def _describe(resources: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(resources.items()))


def serve_queue(workflow: Workflow, options: RunOptions, store: Store) -> RunResult | None:
    """A workflow submitted for workers (``herd submit``) whose queue is not finished: this run
    is one more worker on it, within the run's limits, until it is finished (None otherwise)."""
    from herd.run.local import EXIT_FAILED, EXIT_OK, RunResult

    rec = store.workflow(workflow.name)
    if rec is None or not any(store.queue_counts([rec.id]).get(s) for s in OPEN):
        return None
    logger.warning(
        "workflow '%s' was submitted for workers and is not finished: this run serves its "
        "queue beside them (what was submitted runs, not this spec)",
        workflow.name,
    )
    t0 = time.monotonic()
    worker = WorkerOptions(
        resources=dict(options.limits.resources),
        workflows=(workflow.name,),
        grace=options.grace,
        mem_kill_ratio=options.mem_kill_ratio,
    )
    done = Worker(store, worker).run()
    counts = store.queue_counts([rec.id])
    if done.drained:
        status, code = RunStatus.INTERRUPTED, 128 + signal.SIGINT
    elif counts.get(TaskState.FAILED) or counts.get(TaskState.CANCELLED):
        status, code = RunStatus.FAILED, EXIT_FAILED
    else:
        status, code = RunStatus.SUCCEEDED, EXIT_OK
    return RunResult(status, dict(counts), time.monotonic() - t0, code)
