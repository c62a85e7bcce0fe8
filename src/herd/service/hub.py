"""One store shared by the requests of a long-lived front end (``herd serve``).

The CLI opens the store for one command and closes it (:mod:`herd.service.state`); a server
answers many requests at once for hours. :class:`Hub` opens the store once (migrating it), keeps
a small pool of connections (a :class:`~herd.store.base.Store` is used by one thread at a time)
and offers every operation the HTTP API needs as a method returning typed results: the same
report views the CLI renders (:mod:`herd.reports`), the same submission as ``herd submit``
(:mod:`herd.run.enqueue`). Front ends hold a ``Hub`` but never see the store behind it.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herd.core.graph import build, descendants, match
from herd.core.model import MAX_TASKS, Limits, TaskState, Workflow
from herd.core.scheduler import Policy
from herd.errors import NotFoundError, SpecError, UsageError
from herd.exec.machine import submit_limits
from herd.formats import load
from herd.reports import analyze as analyzing
from herd.reports import dag as dags
from herd.reports import plot as plotting
from herd.reports import provenance as provenances
from herd.reports import stats as statistics
from herd.reports import status as statuses
from herd.reports import why as explaining
from herd.run.enqueue import Submitted, submit_workflow
from herd.run.submit import RunOptions, prepare
from herd.service import views
from herd.service.tokens import Grant, check
from herd.store import locate, open_store
from herd.store.base import AttemptRecord, RunRecord, Store, TaskRecord, WorkflowRecord
from herd.store.queued import WorkerRecord
from herd.store.workdir import Workdir

__all__ = [
    "Change",
    "Grant",
    "Hub",
    "Pool",
    "Submitted",
    "Summary",
    "TaskPage",
    "TaskRecord",
    "Watch",
]

#: the states a finished task is in (progress counts them)
_DONE = frozenset({TaskState.SUCCEEDED, TaskState.SKIPPED})


@dataclass(frozen=True, slots=True)
class Summary:
    """A workflow with its task counts by state and the last run."""

    workflow: WorkflowRecord
    counts: dict[str, int]
    last_run: RunRecord | None

    @property
    def progress(self) -> float:
        """The share of its tasks that are done (succeeded or skipped), 0 to 1."""
        total = sum(self.counts.values())
        done = sum(self.counts.get(s.value, 0) for s in _DONE)
        return done / total if total else 0.0


@dataclass(frozen=True, slots=True)
class TaskPage:
    """Some tasks of a workflow, in the store's order, and the offset of the next page (None at
    the end)."""

    tasks: list[TaskRecord]
    labels: dict[str, tuple[str, ...]]
    next: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """News for live views: ``event`` is ``tasks`` (``tasks`` changed state, ``counts`` are the
    workflow's new counts) or ``workflow`` (it appeared, or was forgotten: ``gone``)."""

    event: str
    workflow: str
    tasks: tuple[TaskRecord, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    gone: bool = False

    def to_json(self) -> dict[str, Any]:
        if self.event == "workflow":
            return {"workflow": self.workflow, "gone": self.gone}
        return {
            "workflow": self.workflow,
            "counts": self.counts,
            "tasks": [statuses.task_json(t) for t in self.tasks],
        }


#: what a task looked like at the last look: its state, attempts and change time
_Seen = tuple[TaskState, int, float]


@dataclass(slots=True)
class Watch:
    """What :meth:`Hub.changes` saw at its last look, to tell what changed since."""

    workflows: set[str] | None = None
    tasks: dict[str, dict[str, _Seen]] = field(default_factory=dict)
    #: the store's change mark at the last look (:meth:`herd.store.watched.Watched.change_mark`)
    mark: int | None = None


class Pool:
    """At most ``size`` connections to the store at ``location``, each lent to one thread at a
    time (opened when first needed, kept while idle)."""

    def __init__(self, location: str | Path, size: int) -> None:
        self.location = location
        self._idle: queue.LifoQueue[Store] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A connection of the pool, for this thread alone until the block ends."""
        with self._slots:
            try:
                opened = self._idle.get_nowait()
            except queue.Empty:
                opened = open_store(self.location)
            try:
                yield opened
            except (NotFoundError, SpecError, UsageError):
                self._idle.put(opened)  # an answer, not a fault: the connection is sound
                raise
            except BaseException:
                opened.close()  # it may be mid-transaction or broken: never lend it again
                raise
            else:
                self._idle.put(opened)

    def close(self) -> None:
        """Close every idle connection (those lent out are closed when given back)."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


class Hub:
    """The store at ``location`` (a ``postgresql://`` URL or an SQLite file; created and
    migrated when missing), for many requests at once: at most ``size`` connections, each lent
    to one thread at a time. ``workdir`` is where submitted workflows run (their tasks' working
    directory, logs) and where submitted specs are kept (``.herd/specs``)."""

    def __init__(self, location: str | None, workdir: Path, *, size: int = 4) -> None:
        self.workdir = workdir.resolve()
        self.location = locate(location, Workdir(self.workdir).db_path)
        if isinstance(self.location, Path):
            self.location.parent.mkdir(parents=True, exist_ok=True)
        self._pool = Pool(self.location, size)
        self._marks = Pool(self.location, 1)  # never writes: it sees every commit's mark
        #: the summaries of the last looks, with the change mark they were taken at
        self._summaries: dict[str, tuple[int, Summary]] = {}
        self._listed: tuple[int, list[Summary]] | None = None
        with self.store():  # open (and migrate) now: a bad URL fails at start, not at a request
            pass

    def store(self) -> contextlib.AbstractContextManager[Store]:
        """A connection of the pool, for this thread alone until the block ends."""
        return self._pool.store()

    def close(self) -> None:
        """Close every idle connection (those lent out are closed when given back)."""
        self._pool.close()
        self._marks.close()

    # --- reads -------------------------------------------------------------------------------

    def workflows(self) -> list[Summary]:
        """Every workflow in the store, oldest first, with its counts."""
        mark = self._mark()
        if self._listed is not None and self._listed[0] == mark:
            return self._listed[1]
        with self.store() as store:
            found = [_summary(store, w) for w in store.workflows()]
        self._listed = (mark, found)
        return found

    def workflow(self, name: str) -> Summary:
        """The workflow with its counts: the answer of the last look while the store's change
        mark has not moved since (a crowd of status polls costs one count per commit)."""
        mark = self._mark()
        kept = self._summaries.get(name)
        if kept is not None and kept[0] == mark:
            return kept[1]
        with self.store() as store:
            found = _summary(store, _named(store, name))
        self._summaries[name] = (mark, found)
        return found

    def _mark(self) -> int:
        """The store's change mark now (:meth:`herd.store.watched.Watched.change_mark`)."""
        with self._marks.store() as marker:
            return marker.change_mark()

    def status(self, name: str | None) -> statuses.Status:
        """What ``herd status`` shows of the workflow ``name`` (None: the store's only one)."""
        with self.store() as store:
            return statuses.status(store, _known(store, name))

    def tasks(
        self,
        name: str,
        *,
        state: Sequence[TaskState] = (),
        label: str | None = None,
        pattern: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> TaskPage:
        """The tasks of the workflow in one of the states ``state`` (any: empty), with the label
        ``label``, whose name matches the regular expression ``pattern`` (anywhere in it), from
        ``offset`` on, at most ``limit``."""
        matcher = _regex(pattern)
        with self.store() as store:
            record = _named(store, name)
            records = store.task_records(record.id)
            labels = store.task_labels(record.id)
        wanted = set(state)
        chosen = [
            t
            for t in sorted(records.values(), key=_natural)
            if (not wanted or t.state in wanted)
            and (label is None or label in labels.get(t.name, ()))
            and (matcher is None or matcher.search(t.name))
        ]
        page = chosen[offset : offset + limit]
        more = offset + limit if offset + limit < len(chosen) else None
        return TaskPage(page, {t.name: labels.get(t.name, ()) for t in page}, more)

    def task(self, name: str, task: str) -> tuple[TaskRecord, tuple[str, ...]]:
        """One task's record and labels."""
        with self.store() as store:
            record = _named(store, name)
            found = store.task_records(record.id).get(task)
            if found is None:
                raise NotFoundError(f"no task '{task}' in workflow '{name}': see its task list")
            return found, store.task_labels(record.id).get(task, ())

    def attempts(self, name: str, task: str) -> list[AttemptRecord]:
        """The attempts of one task, oldest first."""
        with self.store() as store:
            record = _named(store, name)
            if task not in store.task_records(record.id):
                raise NotFoundError(f"no task '{task}' in workflow '{name}': see its task list")
            return store.attempts(record.id, task)

    def provenance(self, name: str, task: str, attempt: int | None = None) -> list[dict[str, Any]]:
        """What ``herd provenance`` prints."""
        with self.store() as store:
            record = _named(store, name)
            try:
                return provenances.records(store, record, task, attempt)
            except UsageError as exc:
                raise NotFoundError(exc.message) from None

    def log(
        self, name: str, task: str, attempt: int | None, *, stream: str, lines: int
    ) -> tuple[int, analyzing.LogTail]:
        """The last ``lines`` lines of ``stream`` (``stdout`` or ``stderr``) of an attempt of
        ``task`` (default: its last), and the attempt's number; when the file is not on this
        host, what its worker sent: the whole output (``herd worker --ship-logs``), else the
        tail of a failure's stderr."""
        with self.store() as store:
            record = _named(store, name)
            tried = [a for a in store.attempts(record.id, task) if attempt in (None, a.number)]
            if not tried:
                what = f"attempt {attempt} of task '{task}'" if attempt else f"task '{task}'"
                raise NotFoundError(f"no record of {what} in workflow '{name}'")
            chosen = tried[-1]
            path = chosen.stdout_path if stream == "stdout" else chosen.stderr_path
            found = analyzing.tail(analyzing.locate(path, self.workdir), lines)
            if found.problem:
                text = _sent(store, record.id, task, chosen.number, stream)
                if text is not None:
                    kept = tuple(text.splitlines()[-lines:]) if lines else ()
                    found = analyzing.LogTail(path, kept)
            return chosen.number, found

    def runs(self, name: str) -> list[RunRecord]:
        with self.store() as store:
            return store.runs(_named(store, name).id)

    def stats(self, name: str) -> statistics.Stats:
        """What ``herd stats`` shows."""
        with self.store() as store:
            return statistics.stats(store, _named(store, name).id)

    def analyze(self, name: str, *, lines: int, all_attempts: bool) -> analyzing.Analysis:
        """What ``herd analyze`` shows."""
        with self.store() as store:
            wid = _named(store, name).id
            return analyzing.analyze(
                store, wid, lines=lines, all_attempts=all_attempts, workdir=self.workdir
            )

    def dag(self, name: str) -> dags.Dag:
        """The DAG with every task's state, to draw (the dashboard's graph)."""
        with self.store() as store:
            return views.dag_of(store, _named(store, name), self.workdir)

    def chart(self, name: str, run: int | None = None) -> plotting.Chart:
        """What ``herd plot`` draws of run ``run`` (None: the last)."""
        with self.store() as store:
            return views.chart_of(store, _named(store, name), run)

    def why(self, name: str, task: str) -> list[explaining.Step]:
        """Why ``task`` would run (or not) if the workflow were submitted again now, root cause
        last (``herd why``): its kept spec planned against the store and this host's files."""
        with self.store() as store:
            record = _named(store, name)
            workflow = self._kept(record)
            options = RunOptions(workdir=self.workdir, limits=submit_limits(workflow))
            prepared = prepare(workflow, options, store)
        if task not in prepared.graph.index:
            raise NotFoundError(f"no task '{task}' in workflow '{name}': see its task list")
        return explaining.explain(prepared.graph, prepared.plan, task)

    def _kept(self, record: WorkflowRecord) -> Workflow:
        """The workflow as its spec, kept where it was submitted from, says now."""
        if not record.source:
            raise UsageError(
                f"workflow '{record.name}' was built in Python: no spec to read it from"
            )
        try:
            return load(record.source, environ=None)
        except SpecError as exc:
            raise UsageError(
                f"cannot read the spec of workflow '{record.name}' ({exc.message}): submit it "
                "again with POST /api/v1/workflows"
            ) from None

    def workers(self) -> list[WorkerRecord]:
        with self.store() as store:
            return store.workers()

    def changes(self, watch: Watch, wanted: set[str] | None) -> list[Change]:
        """What changed in the workflows ``wanted`` (every one: None) since the last look that
        ``watch`` remembers (nothing at the first look at a workflow). Nothing is read when
        the store's change mark has not moved since: an idle stream costs one cheap query."""
        mark = self._mark()
        if mark == watch.mark and _seen_all(watch, wanted):
            return []
        watch.mark = mark  # taken before the look: a change made during it is seen next time
        out: list[Change] = []
        with self.store() as store:
            records = {w.name: w for w in store.workflows()}
            if watch.workflows is not None:
                for name in records.keys() - watch.workflows:
                    out.append(Change("workflow", name))
                for name in watch.workflows - records.keys():
                    out.append(Change("workflow", name, gone=True))
            watch.workflows = set(records)
            names = set(records) if wanted is None else wanted & set(records)
            for name in list(watch.tasks):
                if name not in names:
                    del watch.tasks[name]
            for name in sorted(names):
                now = store.task_records(records[name].id)
                seen = {t.name: (t.state, t.attempts, t.updated) for t in now.values()}
                before = watch.tasks.get(name)
                watch.tasks[name] = seen
                if before is None:
                    continue
                moved = tuple(t for t in now.values() if before.get(t.name) != seen[t.name])
                if moved:
                    counts = {s.value: 0 for s in TaskState}
                    for t in now.values():
                        counts[t.state.value] += 1
                    out.append(Change("tasks", name, moved, counts))
        return out

    def authenticate(self, token: str) -> Grant | None:
        """The grant of ``token``: None when it is unknown, expired or revoked (the secret
        compared in constant time, :func:`herd.service.tokens.check`)."""
        with self.store() as store:
            return check(store, token, now=time.time())

    # --- writes ------------------------------------------------------------------------------

    def read_spec(self, body: bytes, filename: str, *, max_tasks: int = MAX_TASKS) -> Workflow:
        """The workflow in the spec ``body`` (any format herd reads; ``filename`` names it in
        messages), kept in ``.herd/specs`` as its source (reports read its labels there).
        Variables in its paths are kept as written: the server's environment is not the
        submitter's."""
        path = self._keep(body, filename)
        with _called(path, filename):
            return load(path, max_tasks=max_tasks, environ=None)

    def submit(
        self,
        workflow: Workflow,
        *,
        policy: Policy = Policy.CRITICAL_PATH,
        limits: Limits | None = None,
        filename: str | None = None,
    ) -> Submitted:
        """Plan ``workflow`` (read by :meth:`read_spec` from ``filename``) into the store for
        workers, as ``herd submit`` does."""
        options = RunOptions(
            workdir=self.workdir,
            limits=limits or submit_limits(workflow),
            policy=policy,
            argv=("herd", "serve", "submit", workflow.source or workflow.name),
        )
        with self.store() as store, _called(Path(workflow.source or ""), filename or ""):
            return submit_workflow(workflow, options, store)

    def _keep(self, body: bytes, filename: str) -> Path:
        """Write ``body`` to ``.herd/specs/DIGEST/NAME`` (NAME: the bare, safe file name it was
        sent as, so that a format that names a workflow after its file, O2DPG's, names it as
        ``herd submit NAME`` does) and return it."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename).name).lstrip(".") or "spec"
        folder = Workdir(self.workdir).state_dir / "specs" / hashlib.sha256(body).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe[:80]
        if not path.exists():
            partial = path.with_name(path.name + f".{threading.get_ident()}.part")
            partial.write_bytes(body)
            partial.replace(path)
        return path

    def cancel(self, name: str) -> list[str]:
        """Cancel what is left of the workflow's queue (see ``Store.cancel``); a workflow that
        ``herd run`` drives (nothing queued) is stopped where it runs, not here."""
        with self.store() as store:
            record = _named(store, name)
            if not store.queue_counts([record.id]) and _running_locally(store, record):
                raise UsageError(
                    f"workflow '{name}' is run by `herd run` on {_running_locally(store, record)},"
                    " not by workers: stop it there (Ctrl-C or SIGTERM)"
                )
            return store.cancel(record.id, now=time.time(), reason="cancelled through the API")

    def retry(self, name: str) -> tuple[Workflow, Submitted]:
        """Submit the workflow again from its kept spec: its failed and cancelled tasks (and
        any whose inputs changed) are queued again, the rest is up to date."""
        with self.store() as store:
            record = _named(store, name)
        workflow = self._kept(record)
        return workflow, self.submit(workflow, filename=record.source)

    def reset(self, name: str, patterns: Sequence[str], *, downstream: bool = False) -> list[str]:
        """Forget that the tasks whose names fully match one of ``patterns`` (with
        ``downstream``, and every task that needs them, from the kept spec) succeeded, as
        ``herd reset`` does; return their names."""
        for p in patterns:
            _regex(p)
        with self.store() as store:
            record = _named(store, name)
            known = store.task_records(record.id)
            spec = load(record.source, environ=None) if downstream and record.source else None
            if spec is not None:
                graph = build(spec)
                chosen = match(graph, list(patterns))
                chosen = descendants(graph, chosen) if chosen else chosen
                names = [graph.name(i) for i in sorted(chosen) if graph.name(i) in known]
            else:
                names = [t for t in known if any(re.fullmatch(p, t) for p in patterns)]
            if not names:
                raise UsageError(f"no task of workflow '{name}' matches {' '.join(patterns)}")
            store.reset(record.id, names)
        return names


def _seen_all(watch: Watch, wanted: set[str] | None) -> bool:
    """Whether ``watch`` holds the last look at every workflow in ``wanted`` (None: all)."""
    if watch.workflows is None:
        return False
    return (watch.workflows if wanted is None else wanted & watch.workflows) <= watch.tasks.keys()


def _running_locally(store: Store, record: WorkflowRecord) -> str:
    """The host whose ``herd run`` runs the workflow now, or ""."""
    runs = store.runs(record.id)
    last = runs[-1] if runs else None
    return last.host if last is not None and last.ended is None else ""


_DIGITS = re.compile(r"(\d+)")


def _natural(task: TaskRecord) -> tuple[tuple[int, str], ...]:
    """The order of task lists, the same on every store: by name, numbers in it by value
    (``sim_2`` before ``sim_10``)."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part) for part in _DIGITS.split(task.name)
    )


@contextlib.contextmanager
def _called(path: Path, filename: str) -> Iterator[None]:
    """Spec errors naming the kept file ``path`` name the file the submitter sent instead."""
    try:
        yield
    except SpecError as exc:
        if exc.file != str(path):
            raise
        raise type(exc)(
            exc.problem, file=filename, task=exc.task, field=exc.field, hint=exc.hint
        ) from None


def _sent(store: Store, workflow_id: int, task: str, number: int, stream: str) -> str | None:
    """The ``stream`` of an attempt as its worker sent it with the finish, or None."""
    shipped = store.shipped_log(workflow_id, task, number)
    if shipped is not None:
        return shipped.stdout if stream == "stdout" else shipped.stderr
    return store.failure_log(workflow_id, task, number) if stream == "stderr" else None


def _summary(store: Store, workflow: WorkflowRecord) -> Summary:
    found = store.task_counts(workflow.id)  # not task_records: a poll, 30 ms for 5,000 tasks
    counts = {s.value: found.get(s, 0) for s in TaskState}
    runs = store.runs(workflow.id)
    return Summary(workflow, counts, runs[-1] if runs else None)


def _named(store: Store, name: str) -> WorkflowRecord:
    record = store.workflow(name)
    if record is None:
        raise NotFoundError(f"no workflow '{name}' in the store: list them at /api/v1/workflows")
    return record


def _known(store: Store, name: str | None) -> str:
    """``name``, or the store's only workflow's."""
    return statuses.pick_workflow(store, name).name if name is None else _named(store, name).name


def _regex(pattern: str | None, *, full: bool = False) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        kind = "a task name pattern" if not full else "a task pattern"
        raise UsageError(f"{pattern!r} is not {kind} (a regular expression): {exc}") from None
