"""``herd run``: the driver that feeds real process exits to the pure scheduler.

One turn of the loop: block in :meth:`LocalExecutor.wait` until a process exits, a timer is due,
a signal arrives, the progress display wants a refresh or a commit is due; tell the scheduler what
happened; carry out its decisions at once (start processes, arm retry timers, record
cancellations). What the turns produce goes to the store in batches, each one transaction:

- **Group commit.** Before waiting, herd commits what is pending, unless it committed less than
  :data:`~herd.run.journal.COMMIT_DELAY` ago; then it waits at most until that delay is over, and commits. A lone exit
  is on disk at once; a burst of short tasks shares one commit per 10 ms instead of paying one
  each (with thousands of tasks a second, commits are most of herd's work).
- **Whole turns only.** A batch is one or more whole turns, committed in order, so the store
  always holds the run's history up to the end of some turn: never a dependent's attempt without
  the success it started on (recorded in the same turn or an earlier one), never an exit without
  its start. (Within a turn, the tasks an exit allows are started, and recorded, before the exit
  is: the next task waits for nothing.)

``kill -9`` at any moment, and the next ``herd run`` resumes exactly what is on record: finished
tasks are skipped; what was running, or had ended in the last few milliseconds without its commit,
runs again, after :func:`stop_leftovers` has killed the processes the dead herd left (found by
their ``HERD_TASK_TOKEN``, so a process started just before the kill is found too). Files a task
leaves besides its record (done markers, removed temp files) are consistent with either outcome:
a done marker counts as done, a removed temp input is made again. Done markers are made in the
loop after the turn's starts (before, if a task that follows one may start), or by a thread where
creating them is slow (:mod:`herd.exec.markers`); a commit waits for the markers of the successes
it records, so a success is never on record, nor shown (after its commit), without its marker.

The working directory is locked for the whole run (``.herd/lock``); a second ``herd run`` there
refuses at once.
"""

from __future__ import annotations

import contextlib
import getpass
import heapq
import logging
import os
import signal
import socket
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from herd.core import records
from herd.core.graph import Graph
from herd.core.model import HookEvent, RunStatus, Task, TaskState, Workflow
from herd.core.scheduler import (
    AddTasks,
    Cancel,
    Decision,
    Finished,
    RetryAt,
    RetryDue,
    Scheduler,
    Settled,
    Stop,
)
from herd.core.scheduler import Start as StartDecision
from herd.errors import HerdError
from herd.exec.base import Exited, Interrupted, Launch, Sampled
from herd.exec.hooks import run_hooks
from herd.exec.leftovers import stop_leftovers
from herd.exec.markers import Markers
from herd.exec.markers import touch as touch  # (herd.run.worker makes its markers with it)
from herd.plan.clean import TempFiles
from herd.plan.files import Files
from herd.plan.planner import Plan, PlanRequest, make_plan
from herd.run.attempts import DATA, Attempts, attempt_finished, outcome
from herd.run.journal import Journal
from herd.run.nested import expand, nested_jobs
from herd.run.submit import Prepared, RunOptions, prepare, record
from herd.store import locate, open_store
from herd.store.base import (
    AttemptStarted,
    FileStamp,
    Sample,
    Store,
    TaskChanged,
)
from herd.store.workdir import Workdir

logger = logging.getLogger(__name__)

#: exit codes of ``herd run`` (documented in docs/cli.md)
EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass(frozen=True, slots=True)
class RunResult:
    status: RunStatus
    counts: dict[TaskState, int]
    elapsed: float
    exit_code: int


@records.record
class _Ended:
    """An attempt the runner saw end, with what it concluded, to record."""

    task: Task
    number: int
    exit: Exited
    ok: bool
    detail: str  # why it failed; "" when ok
    state: TaskState  # the task's state after the scheduler heard of it
    inputs: dict[str, FileStamp] | None  # stamps taken at the end (of a success)
    outputs: dict[str, FileStamp] | None


class Reporter(Protocol):
    """What the runner tells the display (``progress.py``); all calls are cheap."""

    def begin(self, workflow: Workflow, todo: int, skipped: int) -> None: ...
    def started(self, task: Task, attempt: int, reason: str) -> None: ...
    def finished(self, task: Task, state: TaskState, seconds: float, detail: str) -> None: ...
    def added(self, todo: int) -> None:
        """Tasks joined the run (a sub-workflow): ``todo`` more to run."""
        ...

    def refresh(self, scheduler: Scheduler, running: Sequence[str]) -> float | None:
        """Redraw; return the monotonic time of the next wanted refresh, or None."""
        ...

    def end(self, result: RunResult) -> None: ...


# --- running --------------------------------------------------------------------------------


def run_workflow(
    workflow: Workflow, options: RunOptions, reporter: Reporter, graph: Graph | None = None
) -> RunResult:
    """Run ``workflow`` to the end (or until interrupted) and return how it went; ``graph``:
    the workflow's, already built."""
    # absolute, so that provenance (cwd, log paths) means the same from any directory
    options = replace(options, workdir=options.workdir.resolve())
    wd = Workdir(options.workdir)
    with wd.lock():
        store = open_store(locate(options.store, wd.db_path))
        try:
            from herd.run.worker import serve_queue  # (the worker builds on this module)

            served = serve_queue(workflow, options, store)
            if served is not None:
                return served
            prepared = prepare(workflow, options, store, graph)
            workflow_id = record(store, workflow, prepared)
            return _Run(workflow, options, reporter, store, wd, prepared, workflow_id).run()
        finally:
            store.close()


# --- running --------------------------------------------------------------------------------


class _Run:
    """The state of one ``herd run`` while it executes."""

    def __init__(
        self,
        workflow: Workflow,
        options: RunOptions,
        reporter: Reporter,
        store: Store,
        wd: Workdir,
        prepared: Prepared,
        workflow_id: int,
    ) -> None:
        self.wf, self.options, self.reporter = workflow, options, reporter
        self.store, self.wd = store, wd
        self.graph, self.plan, self.wid = prepared.graph, prepared.plan, workflow_id
        self.records, self.selected = prepared.records, prepared.selected
        self.files = Files(options.workdir, checksum=options.checksum)
        self.host, self.user, self.pid = socket.gethostname(), getpass.getuser(), os.getpid()
        self.attempts = Attempts(workflow, options.workdir, wd, self.host, self.user)
        self.exits: list[_Ended] = []  # attempts that ended this turn, to record
        #: done markers of this turn's successes, and whether a task that follows one may start
        self.new_markers: list[str] = []
        self.markers_block = False
        self.markers = Markers()
        #: (task, state, seconds, detail) to show once committed, in order
        self.unreported: list[tuple[Task, TaskState, float, str]] = []
        self.journal = Journal(store, before=self.markers.flush, after=self._report)
        self.timers: list[tuple[float, int]] = []
        self.running: dict[int, tuple[int, float]] = {}  # task -> (attempt number, start)
        self.signum = 0
        self.temp = TempFiles(self.graph, self.plan.todo, self.selected)
        #: sub-workflow jobs (herd.run.nested), and those that ran, until their group settles
        self.nested = {self.graph.index[name] for name in nested_jobs(workflow)}
        self.groups: dict[int, _Ended] = {}

    def run(self) -> RunResult:
        t0 = time.monotonic()
        self._stop_leftovers()
        self.run_id = self.store.begin_run(
            self.wid,
            started=time.time(),
            host=self.host,
            user=self.user,
            pid=self.pid,
            argv=self.options.argv,
            limits={k: v for k, v in self.options.limits.resources.items()},
        )
        todo = self.plan.todo
        self.reporter.begin(self.wf, len(todo), len(self.selected) - len(todo))
        sched = Scheduler(
            self.graph,
            self.options.limits,
            todo=todo,
            policy=self.options.policy,
            durations=self._durations(),
            keep_going=self.options.keep_going,
        )
        with (
            contextlib.closing(self.options.executor(self.wf, self.options.workdir)) as ex,
            contextlib.closing(self.markers),
        ):
            self.ex = ex
            if todo and self.wf.init and not self._run_init():
                sched.handle(Stop(time.monotonic(), "the workflow's init command failed"))
            else:
                self._hooks(HookEvent.START, todo)
                self._loop(sched)
        result = self._finish(sched, time.monotonic() - t0)
        self._hooks(HookEvent.SUCCESS if result.exit_code == EXIT_OK else HookEvent.ERROR, todo,
                    result.status)  # fmt: skip
        self._hooks(HookEvent.END, todo, result.status)
        return result

    def _hooks(self, event: HookEvent, todo: frozenset[int], status: str = "") -> None:
        """The workflow's hooks (Pegasus), only in a run that has tasks to run."""
        if self.wf.hooks and todo:
            env = {**self.attempts.base_env, **self.wf.env}
            cwd, log_dir = self.options.workdir, self.attempts.log_dir
            run_hooks(self.wf, event, cwd=cwd, env=env, log_dir=log_dir, status=status)

    def _stop_leftovers(self) -> None:
        """Tasks of an earlier herd on this host that was killed (its run never ended) may still
        run: stop them before their tasks run again."""
        for run in self.store.runs(self.wid)[-3:]:
            if run.status is RunStatus.RUNNING and run.host == self.host and run.pid != self.pid:
                killed = stop_leftovers(run.pid)
                if killed:
                    logger.warning(
                        "stopped %d process(es) left running by herd pid %d (run #%d was killed)",
                        len(killed),
                        run.pid,
                        run.id,
                    )

    def _durations(self) -> list[float | None]:
        """What the scheduler may expect of each task to run: the spec's ``duration`` hint, else
        the mean of its successful attempts so far (a rerun schedules better than a first run);
        None when neither is known."""
        tasks = self.graph.tasks
        durations: list[float | None] = [t.duration for t in tasks]
        if not self.plan.todo or all(durations[i] is not None for i in self.plan.todo):
            return durations
        known = self.store.durations(self.wid)
        for i in self.plan.todo:
            if durations[i] is None:
                durations[i] = known.get(tasks[i].name)
        return durations

    # --- the loop ---------------------------------------------------------------------------

    def _loop(self, sched: Scheduler) -> None:
        self._apply(sched, sched.start())
        refresh_at = self.reporter.refresh(sched, self._running_names())
        while sched.active:
            deadline = min(
                self.journal.due(),
                self.timers[0][0] if self.timers else float("inf"),
                refresh_at if refresh_at is not None else float("inf"),
            )
            events = self.ex.wait(None if deadline == float("inf") else deadline)
            decisions: list[Decision] = []
            for ev in events:
                decisions.extend(self._event(sched, ev))
            if self.markers_block:  # a task that follows one may start now: the marker first
                self._hand_markers()
            self._apply(sched, decisions)  # the next tasks start before the last ones are recorded
            self._hand_markers()  # (the markers no task waits for: after the starts)
            self._record_exits()
            self._fire_timers(sched)
            now = time.monotonic()
            if refresh_at is not None and now >= refresh_at:
                refresh_at = self.reporter.refresh(sched, self._running_names())
        self.journal.commit()

    def _event(self, sched: Scheduler, ev: Exited | Sampled | Interrupted) -> list[Decision]:
        if isinstance(ev, Exited):
            return self._exited(sched, ev)
        if isinstance(ev, Sampled):
            task, number = ev.key
            self.journal.batch.append(
                Sample(self.wid, task, number, ev.time, ev.rss, ev.cpu, ev.processes)
            )
            return []
        return self._interrupted(sched, ev.signum)

    def _interrupted(self, sched: Scheduler, signum: int) -> list[Decision]:
        if self.signum:
            return []
        self.signum = signum
        if signum == signal.SIGHUP:
            _leave_terminal()
        logger.warning("%s received: stopping every task", signal.Signals(signum).name)
        decisions = sched.handle(Stop(time.monotonic(), "run interrupted"))
        for ev in self.ex.shutdown(grace=self.options.grace):
            decisions.extend(self._exited(sched, ev))
        return decisions

    def _fire_timers(self, sched: Scheduler) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, i = heapq.heappop(self.timers)
            self._apply(sched, sched.handle(RetryDue(i, now)))

    def _apply(self, sched: Scheduler, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, StartDecision):
                self._start(sched, d)
            elif isinstance(d, RetryAt):
                heapq.heappush(self.timers, (d.at, d.task))
            elif isinstance(d, Cancel):
                self._cancel(d)
            elif isinstance(d, Settled):
                self._settled(sched, d)

    # --- starting ---------------------------------------------------------------------------

    def _start(self, sched: Scheduler, d: StartDecision) -> None:
        task = self.graph.tasks[d.task]
        rec = self.records.get(task.name)
        number = (rec.attempts if rec else 0) + d.attempt
        verdict = self.plan.verdicts[d.task]
        reason = verdict.reason if d.attempt == 1 else f"retry {d.attempt - 1}"
        attempts = self.attempts
        stem = attempts.log_stem(task.name, number)
        env = attempts.env(task, number, attempts.fresh_log(stem + DATA))
        cwd = attempts.cwd(task)
        # the logs' paths as strings: the executor only passes them on (a Path costs more)
        stdout = cwd / task.stdout if task.stdout else attempts.fresh_log(stem + ".out")
        stderr = cwd / task.stderr if task.stderr else attempts.fresh_log(stem + ".err")
        for path, declared in ((stdout, task.stdout), (stderr, task.stderr)):
            if declared:  # created at the first byte: an earlier attempt's output must go
                Path(path).unlink(missing_ok=True)
        launch = Launch(
            key=(task.name, number),
            cmd=task.cmd,
            cwd=cwd,
            env=env,
            stdout=stdout,
            stderr=stderr,
            stdin=cwd / task.stdin if task.stdin else None,
            timeout=d.timeout,
            mem_limit=self._mem_limit(d.resources),
            mem_ratio=self.options.mem_kill_ratio,
            resources=d.resources,
        )
        pid = self.ex.start(launch)
        start = time.time()
        self.running[d.task] = (number, start)
        key = (self.wid, self.run_id)
        record = attempts.record(
            key, task, number, pid, start, launch, verdict, reason, d.resources
        )
        self.journal.batch.append(AttemptStarted(record))
        self.journal.batch.append(
            TaskChanged(self.wid, task.name, TaskState.RUNNING, start, attempts=number)
        )
        self.reporter.started(task, number, reason)

    def _mem_limit(self, resources: Mapping[str, float]) -> int | None:
        """Bytes the watchdog allows (times the ratio); None when the task declares no memory."""
        if self.options.mem_kill_ratio <= 0:
            return None
        return int(resources.get("mem", 0) * 1e6) or None

    def _run_init(self) -> bool:
        """Run the workflow's init command once, before any task (O2DPG global init)."""
        out, err = self.wd.task_log_paths(self.wf.name, "__init__", 1)
        for path in (out, err):  # created at the first byte: the last run's must go
            path.unlink(missing_ok=True)
        env = {**self.attempts.base_env, **self.wf.env}
        assert self.wf.init is not None
        self.ex.start(
            Launch(
                ("__init__", 1),
                self.wf.init,
                self.options.workdir,
                env,
                out,
                err,
                None,
                None,
                None,
                0.0,
            )
        )
        while True:
            for ev in self.ex.wait(None):
                if isinstance(ev, Exited):
                    if ev.exit_code != 0:
                        logger.error("the init command failed (%s); see %s", outcome(ev), err)
                    return ev.exit_code == 0
                if isinstance(ev, Interrupted):
                    self.ex.shutdown(grace=self.options.grace)
                    self.signum = ev.signum
                    return False

    def _running_names(self) -> list[str]:
        return [self.graph.name(i) for i in self.running]

    # --- finishing --------------------------------------------------------------------------

    def _exited(self, sched: Scheduler, ev: Exited) -> list[Decision]:
        name, number = ev.key
        i = self.graph.index[name]
        self.running.pop(i, None)
        task = self.graph.tasks[i]
        ok = ev.exit_code == 0 and not ev.kill_reason and not ev.log_error
        detail = "" if ok else outcome(ev)
        inputs = outputs = None
        for redirect in (task.stdout, task.stderr):
            if redirect:  # a declared redirection exists even when the task printed nothing
                (self.attempts.cwd(task) / redirect).touch()
        if ok:
            inputs = self._stamps(task, "inputs") if task.inputs else {}
            outputs = self._stamps(task, "outputs") if task.outputs else {}
            missing = [p for p in task.outputs if p not in (outputs or {})]
            if missing:
                ok, detail = False, f"declared output {missing[0]} was not created"
            elif task.done_marker:
                self.new_markers.append(self.files.full_path(task, task.done_marker))
                self.markers_block = self.markers_block or len(self.graph.children(i)) > 0
        if ok and self.temp:
            self._remove_temp(i)
        if ok and i in self.nested:
            decisions = self._expand(sched, i, time.monotonic())
        else:
            decisions = sched.handle(Finished(i, ok, time.monotonic(), ev.kill, detail))
        ended = _Ended(task, number, ev, ok, detail, sched.state[i], inputs, outputs)
        if ended.state is TaskState.RUNNING:  # a sub-workflow job: it ends with its group
            self.groups[i] = ended
        self.exits.append(ended)
        return decisions  # committed with the starts they lead to, in one transaction

    def _record_exits(self) -> None:
        """Record the attempts :meth:`_exited` saw end (after the tasks they let start started:
        the turn is committed as a whole anyway)."""
        for ended in self.exits:
            self._record_exit(ended)
            if ended.state is not TaskState.RUNNING:  # (a sub-workflow job ends when Settled)
                seconds = ended.exit.end - ended.exit.start
                self.unreported.append((ended.task, ended.state, seconds, ended.detail))
        self.exits.clear()

    def _hand_markers(self) -> None:
        """Make this turn's done markers, or hand them to their thread (:mod:`herd.exec.markers`);
        wait for them when a task that follows one may start now (it must find the marker, as in
        O2DPG): the loop then calls this before the turn's starts, else after them."""
        self.markers.create(self.new_markers)
        self.new_markers = []
        if self.markers_block:
            self.markers.flush()
            self.markers_block = False

    def _remove_temp(self, i: int) -> None:
        for key in self.temp.release(i):
            path = self.options.workdir / key
            try:
                path.unlink()
                logger.info("removed temp file %s: every task reading it succeeded", key)
            except FileNotFoundError:
                pass

    def _record_exit(self, ended: _Ended) -> None:
        task, number, ev, ok, detail = ended.task, ended.number, ended.exit, ended.ok, ended.detail
        state, inputs, outputs = ended.state, ended.inputs, ended.outputs
        attempt_state = (
            TaskState.SUCCEEDED
            if ok
            else (TaskState.CANCELLED if state is TaskState.CANCELLED else TaskState.FAILED)
        )
        self.journal.batch.append(
            attempt_finished(self.wid, task.name, number, ev, attempt_state, inputs, outputs)
        )
        self.journal.batch.extend(self.attempts.user_data(self.wid, task.name, number))
        if state is TaskState.RUNNING:  # a sub-workflow job: its state comes with Settled
            return
        self.journal.batch.append(self._change(ended, ok, state, detail))

    def _change(self, ended: _Ended, ok: bool, state: TaskState, detail: str) -> TaskChanged:
        task, ev, inputs = ended.task, ended.exit, ended.inputs
        v = self.plan.verdicts[self.graph.index[task.name]]
        if ok:
            return TaskChanged(
                self.wid,
                task.name,
                TaskState.SUCCEEDED,
                ev.end,
                reason="",
                exit_code=0,
                fingerprint=v.fingerprint,
                cmd_digest=v.cmd_digest,
                env_digest=v.env_digest,
                inputs=inputs or {},
            )
        return TaskChanged(
            self.wid, task.name, state, ev.end, reason=detail, exit_code=ev.exit_code
        )

    # --- sub-workflows (herd.run.nested) ---------------------------------------------------------

    def _expand(self, sched: Scheduler, i: int, now: float) -> list[Decision]:
        """Sub-workflow job ``i`` succeeded: its workflow's tasks join the run, as its group."""
        try:
            grown = expand(self.graph, i, self.options.workdir)
        except HerdError as exc:
            return sched.handle(Finished(i, False, now, None, f"sub-workflow: {exc}"))
        self.journal.commit()
        self.graph, self.wf = grown.graph, grown.graph.workflow
        self.wid = self.store.add_workflow(self.wf)  # the new tasks' rows
        new = frozenset(grown.added)
        files = Files(self.options.workdir, checksum=self.options.checksum)
        plan = make_plan(self.graph, self.records, files, PlanRequest(new))
        self.plan = Plan({**self.plan.verdicts, **plan.verdicts}, self.plan.todo | plan.todo)
        self.selected |= new
        self.nested |= {self.graph.index[name] for name in grown.nested}
        self.reporter.added(len(plan.todo))
        return sched.handle(AddTasks(self.graph, plan.todo, now, group=i))

    def _settled(self, sched: Scheduler, d: Settled) -> None:
        self._record_exits()  # the members' ends first (rare: no hurry to start the next task)
        ended = self.groups.pop(d.task)
        state = sched.state[d.task]
        detail = f"sub-workflow: {d.reason}" if d.reason else ""
        self.journal.batch.append(
            replace(self._change(ended, d.ok, state, detail), time=time.time())
        )
        self.unreported.append((ended.task, state, time.time() - ended.exit.start, detail))

    def _stamps(self, task: Task, which: str) -> dict[str, FileStamp]:
        paths: tuple[str, ...] = getattr(task, which)
        known = self.records.get(task.name)
        prior = known.inputs if known is not None and which == "inputs" else {}
        out: dict[str, FileStamp] = {}
        for p in paths:
            stamp = self.files.stamp(task, p, prior.get(p))
            if stamp is not None:
                out[p] = stamp
        return out

    def _cancel(self, d: Cancel) -> None:
        task = self.graph.tasks[d.task]
        by = None if d.cause is None else self.graph.name(d.cause)
        state, now = TaskState.CANCELLED, time.time()
        self.journal.batch.append(
            TaskChanged(self.wid, task.name, state, now, reason=d.reason, cancelled_by=by)
        )
        self.unreported.append((task, TaskState.CANCELLED, 0.0, d.reason))

    def _report(self) -> None:
        """Show what ended, once it is on record (the journal calls this after each commit)."""
        for task, state, seconds, detail in self.unreported:
            self.reporter.finished(task, state, seconds, detail)
        self.unreported.clear()

    def _finish(self, sched: Scheduler, elapsed: float) -> RunResult:
        if self.signum:
            status, code = RunStatus.INTERRUPTED, 128 + self.signum
        elif sched.succeeded:
            status, code = RunStatus.SUCCEEDED, EXIT_OK
        else:
            status, code = RunStatus.FAILED, EXIT_FAILED
        self.store.end_run(self.run_id, ended=time.time(), status=status)
        result = RunResult(status, dict(sched.counts), elapsed, code)
        self.reporter.end(result)
        return result


def _leave_terminal() -> None:
    """The terminal hung up: what herd still prints while it stops goes nowhere, instead of
    failing on a terminal that is gone (files and pipes keep their output)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if stat.S_ISCHR(os.fstat(fd).st_mode):  # a terminal (isatty may fail once hung up)
                os.dup2(devnull, fd)
    os.close(devnull)
