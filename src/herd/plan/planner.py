"""Planning: which tasks run, which are skipped, and why.

For every task herd computes a *fingerprint* of what determines its result: the command (with
``$VAR``/``${VAR}`` expanded from the workflow's and task's own ``env``), that env, the fingerprints
of the tasks it needs, and the content of its input files; every attempt records it. A task is
skipped only when the store says its last run succeeded with the same command, env and inputs, no
task it needs runs, and its outputs exist (or, for a task the store has no success for, when its
done marker exists: O2DPG's ``<cwd>/<name>.log_done``). Fingerprints are computed for the tasks
that run and the selected tasks they depend on: a resumed run with nothing to do computes none.

Every task that runs gets exactly one reason, the first that applies:

``forced``                 named by ``--force`` or reached by ``--rerun-from``
``new``                    never attempted
``interrupted``            its last attempt was cut short (herd was killed or stopped)
``failed before``          its last attempt failed (or it was cancelled)
``command changed``        the command is not the one it last succeeded with
``env changed``            its environment is not the one it last succeeded with
``input <path> changed``   an input file's content differs from its last success
``upstream <task> reran``  a task it needs runs in this run
``output <path> missing``  an output is gone (a ``temp`` output only counts when a task that
                           reads it runs, and then its producer runs again to make it)

Input files are compared by (size, mtime) first; when those differ the content digest decides,
so touching a file without changing it causes no rerun. Digests are computed for files up to
``DIGEST_LIMIT`` bytes; with ``checksum`` for every size, and every input is digested and compared
by content whatever its size and mtime say. A folder or a file herd cannot read is compared by
(size, mtime) alone.

File access goes through a :class:`~herd.plan.files.Files` object so that the planning logic
stays testable and the million-task path stats each file once (:mod:`herd.plan.files`); commands
are expanded and digested by :mod:`herd.plan.commands`.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from herd.core.graph import Graph, ancestors, descendants, file_key, match
from herd.core.model import Task, TaskState
from herd.plan.commands import Commands, _digest
from herd.plan.files import Files
from herd.store.base import FileStamp, TaskRecord


class Why(enum.Enum):
    """Why a task runs (or is skipped): the typed fact behind a verdict's words."""

    FORCED = "forced"
    NEW = "new"
    INTERRUPTED = "interrupted"
    FAILED_BEFORE = "failed before"
    COMMAND_CHANGED = "command changed"
    ENV_CHANGED = "env changed"
    INPUT_CHANGED = "input changed"
    UPSTREAM = "upstream reran"  # the cause: the task it needs that runs
    OUTPUT_MISSING = "output missing"
    TEMP_NEEDED = "temp output needed"  # the cause: the task that reads the deleted temp file
    UP_TO_DATE = "up to date"
    MARKED_DONE = "done marker"


#: why a task runs, its words, and the task that caused it (-1: none)
Reason = tuple[Why, str, int]


class Verdict(NamedTuple):
    """The plan for one task (a named tuple: a million are made per plan). The fingerprint
    and the digests are those of a task that runs; a skipped task's are empty. ``reason`` says
    ``why`` in words; ``cause`` is the task that caused it (:attr:`Why.UPSTREAM`,
    :attr:`Why.TEMP_NEEDED`), -1 otherwise."""

    run: bool
    reason: str
    fingerprint: str
    cmd_digest: str
    env_digest: str
    why: Why
    cause: int = -1


@dataclass(frozen=True, slots=True)
class Plan:
    """The verdict for every selected task (by id) and the set of ids to run."""

    verdicts: dict[int, Verdict]
    todo: frozenset[int]

    def reasons(self, graph: Graph) -> dict[str, str]:
        """Task name -> why it runs, for the tasks that run."""
        return {graph.name(i): v.reason for i, v in sorted(self.verdicts.items()) if v.run}


# --- planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRequest:
    selected: Collection[int]
    force: tuple[str, ...] = ()
    rerun_from: tuple[str, ...] = ()


def make_plan(
    graph: Graph, records: Mapping[str, TaskRecord], files: Files, request: PlanRequest
) -> Plan:
    """Decide, for every selected task in topological order, whether it runs and why.

    ``files``: a :meth:`~Files.snapshot` already told of the inputs of the selected tasks
    (:meth:`~Files.stat_all` of :func:`~herd.core.graph.input_files`) plans fastest.
    """
    return _Planner(graph, records, files, request).plan()


class _Planner:
    """The context one planning pass shares: what is forced, what runs so far, temp files."""

    def __init__(
        self, graph: Graph, records: Mapping[str, TaskRecord], files: Files, request: PlanRequest
    ) -> None:
        self.graph, self.records, self.request = graph, records, request
        self.files = files.snapshot()
        self.forced = match(graph, request.force) if request.force else set()
        if request.rerun_from:
            self.forced |= descendants(graph, match(graph, request.rerun_from))
        self.temp = _temp_producers(graph)
        self.todo: set[int] = set()
        self.digests = Commands(graph.workflow).digests

    def plan(self) -> Plan:
        verdicts: dict[int, Verdict] = {}
        graph, selected = self.graph, self.request.selected
        digests_of = self.digests
        tasks, records, todo = graph.tasks, self.records, self.todo
        order = graph.order
        if len(selected) < len(graph):
            order = array("l", (i for i in order if i in selected))
        for i in order:
            task = tasks[i]
            cmd_d, env_d = digests_of(task)
            rec = records.get(task.name)
            reason = self._reason(i, task, rec, cmd_d, env_d)
            if reason is not None:
                todo.add(i)
                why, words, cause = reason
                verdicts[i] = Verdict(True, words, "", cmd_d, env_d, why, cause)
            else:
                verdicts[i] = _MARKED_DONE if rec is None or not rec.fingerprint else _UP_TO_DATE
        self._regenerate_temp(verdicts)
        self._fingerprint(order, verdicts)
        return Plan(verdicts, frozenset(todo))

    def _reason(
        self, i: int, task: Task, rec: TaskRecord | None, cmd_d: str, env_d: str
    ) -> Reason | None:
        """Why task ``i`` must run, or None when it is up to date."""
        if i in self.forced:
            return _FORCED
        if rec is None or not rec.fingerprint or rec.state not in _DONE:
            first = _first_run_reason(rec)
            if task.done_marker and self.files.exists(task, task.done_marker):
                return None  # done by another tool (the O2DPG runner): trust its marker
            return first
        if rec.cmd_digest != cmd_d:
            return _COMMAND_CHANGED
        if rec.env_digest != env_d:
            return _ENV_CHANGED
        if task.inputs:
            changed = self._changed_input(task, self.graph.input_keys[i], rec.inputs)
            if changed:
                return Why.INPUT_CHANGED, f"input {changed} changed", -1
        if self.todo:  # (a resumed run with nothing to do skips the loop a million times)
            for p in self.graph.parents(i):
                if p in self.todo:
                    return Why.UPSTREAM, f"upstream {self.graph.name(p)} reran", p
        exists_of = self.files.exists_of
        for path, key in zip(task.outputs, self.graph.output_keys[i], strict=True):
            if not exists_of(key) and path not in task.temp:
                return Why.OUTPUT_MISSING, f"output {path} missing", -1
        return None

    def _changed_input(
        self, task: Task, keys: tuple[str, ...], known: Mapping[str, FileStamp]
    ) -> str:
        """The first input whose content differs from the task's last success, "" when none.
        Size and mtime as they were mean unchanged (unless ``checksum``: then always the
        digest); otherwise the content digest decides."""
        stat_of, stamp_of, temp = self.files.stat_of, self.files.stamp_of, self.temp
        trust_stat = not self.files.checksum
        for path, key in zip(task.inputs, keys, strict=True):
            now, then = stat_of(key), known.get(path)
            if trust_stat and now and then and now[0] == then[0] and now[1] == then[1]:
                continue
            if now is None and key in temp:
                continue  # a temp file cleaned after use: its producer is judged on its own
            if _changed(stamp_of(key, then), then):
                return path
        return ""

    def _fingerprint(self, order: Sequence[int], verdicts: dict[int, Verdict]) -> None:
        """Give every task that runs its fingerprint, which needs the fingerprints of the
        selected tasks it depends on: computed for those alone, in topological order (a resumed
        run with nothing to do computes none)."""
        todo = self.todo
        if not todo:
            return
        if len(todo) < len(verdicts):
            needed = ancestors(self.graph, todo).intersection(verdicts)
            order = [i for i in order if i in needed]
        graph, records, files = self.graph, self.records, self.files
        tasks, input_keys = graph.tasks, graph.input_keys
        ptr, parents = graph.parent_ptr, graph.parent_ids
        fingerprints = [""] * len(graph)  # "" for tasks not selected
        fingerprint_of = fingerprints.__getitem__
        for i in order:
            task, v = tasks[i], verdicts[i]
            digests = (v.cmd_digest, v.env_digest) if v.run else self.digests(task)
            parts = [*digests, *map(fingerprint_of, parents[ptr[i] : ptr[i + 1]])]
            if task.inputs:
                rec = records.get(task.name)
                stamps = files.input_stamps(task, input_keys[i], rec.inputs if rec else _NO_STAMPS)
                parts += [f"{k}:{s[2] if s else '-'}" for k, s in sorted(stamps.items())]
            fp = fingerprints[i] = _digest(*parts)
            if v.run:
                verdicts[i] = v._replace(fingerprint=fp)

    def _regenerate_temp(self, verdicts: dict[int, Verdict]) -> None:
        """Producers of deleted temp files that a running task reads run again (readers first)."""
        if not self.temp:
            return
        tasks, todo = self.graph.tasks, self.todo
        for i in reversed(self.graph.order):
            if i not in todo:
                continue
            for path in tasks[i].inputs:
                p = self.temp.get(file_key(tasks[i], path))
                if p is None or p in todo or p not in self.request.selected:
                    continue
                if self.files.exists(tasks[i], path):
                    continue
                todo.add(p)
                reason = f"output {path} missing (temp, needed by {tasks[i].name})"
                verdicts[p] = Verdict(True, reason, "", *self.digests(tasks[p]), Why.TEMP_NEEDED, i)


_DONE = (TaskState.SUCCEEDED, TaskState.SKIPPED)
_NO_STAMPS: Mapping[str, FileStamp] = {}


def _changed(now: FileStamp | None, then: FileStamp | None) -> bool:
    """Content differs: by digest when both have one, else by (size, mtime)."""
    if now is None or then is None:
        return now != then
    if now[2] and then[2]:
        return now[2] != then[2]
    return (now[0], now[1]) != (then[0], then[1])


def _first_run_reason(rec: TaskRecord | None) -> Reason:
    if rec is None or rec.attempts == 0:
        return _NEW
    if rec.state in (TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.RETRYING):
        return _INTERRUPTED
    return _FAILED_BEFORE


#: the reasons that name no file and no task, made once
_FORCED: Reason = (Why.FORCED, "forced", -1)
_NEW: Reason = (Why.NEW, "new", -1)
_INTERRUPTED: Reason = (Why.INTERRUPTED, "interrupted", -1)
_FAILED_BEFORE: Reason = (Why.FAILED_BEFORE, "failed before", -1)
_COMMAND_CHANGED: Reason = (Why.COMMAND_CHANGED, "command changed", -1)
_ENV_CHANGED: Reason = (Why.ENV_CHANGED, "env changed", -1)
_UP_TO_DATE = Verdict(False, "up to date", "", "", "", Why.UP_TO_DATE)
_MARKED_DONE = Verdict(False, "done (marker file exists)", "", "", "", Why.MARKED_DONE)


def _temp_producers(graph: Graph) -> dict[str, int]:
    return {file_key(task, path): i for i, task in enumerate(graph.tasks) for path in task.temp}
