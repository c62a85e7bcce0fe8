"""Planning: which tasks run, which are skipped, and why.

For every task herd computes a *fingerprint* of what determines its result: the command (with
``$VAR``/``${VAR}`` expanded from the workflow's and task's own ``env``), that env, the fingerprints
of the tasks it needs, and the content of its input files. A task is skipped only when the store
says its last run succeeded with the same fingerprint and its outputs exist (or, for a task the store
has no success for, when its done marker exists: O2DPG's ``<cwd>/<name>.log_done``).

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

Input files are compared by (size, mtime) first; when those differ (or with ``checksum``) the
content digest decides, so touching a file without changing it causes no rerun. Digests are
computed for files up to ``DIGEST_LIMIT`` bytes, and for any size with ``checksum``.

File access goes through a :class:`Files` object so that the planning logic stays testable and the
million-task path can stat only what it must.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from herd.graph import Graph, descendants, file_key, match
from herd.model import Task, TaskState, Workflow
from herd.store.base import FileStamp, TaskRecord

DIGEST_LIMIT = 16 * 1024 * 1024
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The plan for one task."""

    run: bool
    reason: str
    fingerprint: str
    cmd_digest: str
    env_digest: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The verdict for every selected task (by id) and the set of ids to run."""

    verdicts: dict[int, Verdict]
    todo: frozenset[int]

    def reasons(self, graph: Graph) -> dict[str, str]:
        """Task name -> why it runs, for the tasks that run."""
        return {graph.name(i): v.reason for i, v in sorted(self.verdicts.items()) if v.run}


class Files:
    """File access for planning and provenance, rooted at the working directory."""

    def __init__(self, root: Path, *, checksum: bool = False) -> None:
        self.root = root
        self.checksum = checksum

    def path(self, task: Task, path: str) -> Path:
        return self.root / file_key(task, path)

    def exists(self, task: Task, path: str) -> bool:
        return os.path.exists(self.path(task, path))

    def stamp(self, task: Task, path: str, known: FileStamp | None = None) -> FileStamp | None:
        """(size, mtime_ns, digest) of a file, None when missing. ``known`` saves a digest when
        size and mtime are unchanged."""
        full = self.path(task, path)
        try:
            st = os.stat(full)
        except OSError:
            return None
        unchanged = known is not None and (known[0], known[1]) == (st.st_size, st.st_mtime_ns)
        if unchanged and known is not None and (known[2] or not self.checksum):
            return known
        digest = ""
        if self.checksum or st.st_size <= DIGEST_LIMIT:
            digest = file_digest(full)
        return (st.st_size, st.st_mtime_ns, digest)


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


def task_env(workflow: Workflow, task: Task) -> dict[str, str]:
    """The variables the workflow and the task set for this task (task wins)."""
    if not workflow.env:
        return dict(task.env)
    return {**workflow.env, **task.env}


def expanded_command(task: Task, env: Mapping[str, str]) -> str:
    """The command with ``$VAR`` and ``${VAR}`` taken from ``env`` expanded; others kept."""
    cmd = task.argv_or_shell
    if not env or "$" not in cmd:
        return cmd
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), cmd)


def digests(workflow: Workflow, task: Task) -> tuple[str, str]:
    """(command digest, env digest) of a task."""
    env = task_env(workflow, task)
    cmd = _digest(expanded_command(task, env))
    env_digest = _digest(*sorted(f"{k}={v}" for k, v in env.items())) if env else ""
    return cmd, env_digest


# --- planning -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlanRequest:
    selected: Collection[int]
    force: tuple[str, ...] = ()
    rerun_from: tuple[str, ...] = ()


def make_plan(
    graph: Graph, records: Mapping[str, TaskRecord], files: Files, request: PlanRequest
) -> Plan:
    """Decide, for every selected task in topological order, whether it runs and why."""
    return _Planner(graph, records, files, request).plan()


class _Planner:
    """The context one planning pass shares: what is forced, what runs so far, temp files."""

    def __init__(
        self, graph: Graph, records: Mapping[str, TaskRecord], files: Files, request: PlanRequest
    ) -> None:
        self.graph, self.records, self.files, self.request = graph, records, files, request
        self.forced = match(graph, request.force) if request.force else set()
        if request.rerun_from:
            self.forced |= descendants(graph, match(graph, request.rerun_from))
        self.temp = _temp_producers(graph)
        self.todo: set[int] = set()

    def plan(self) -> Plan:
        verdicts: dict[int, Verdict] = {}
        fingerprints: dict[int, str] = {}
        graph, selected = self.graph, self.request.selected
        for i in graph.order:
            if i not in selected:
                continue
            task = graph.tasks[i]
            cmd_d, env_d = digests(graph.workflow, task)
            rec = self.records.get(task.name)
            stamps = _input_stamps(self.files, task, rec)
            fp = _digest(
                cmd_d,
                env_d,
                *(fingerprints.get(p, "") for p in graph.parents(i)),
                *(f"{k}:{v[2] if v else '-'}" for k, v in sorted(stamps.items())),
            )
            fingerprints[i] = fp
            reason = self._reason(i, task, rec, cmd_d, env_d, stamps)
            if reason:
                self.todo.add(i)
            verdicts[i] = Verdict(bool(reason), reason or _done_reason(rec), fp, cmd_d, env_d)
        self._regenerate_temp(verdicts)
        return Plan(verdicts, frozenset(self.todo))

    def _reason(
        self,
        i: int,
        task: Task,
        rec: TaskRecord | None,
        cmd_d: str,
        env_d: str,
        stamps: Mapping[str, FileStamp | None],
    ) -> str:
        """Why task ``i`` must run, or "" when it is up to date."""
        if i in self.forced:
            return "forced"
        if rec is None or not rec.fingerprint or rec.state not in _DONE:
            first = _first_run_reason(rec)
            if task.done_marker and self.files.exists(task, task.done_marker):
                return ""  # done by another tool (the O2DPG runner): trust its marker
            return first
        if rec.cmd_digest != cmd_d:
            return "command changed"
        if rec.env_digest != env_d:
            return "env changed"
        for path, stamp in stamps.items():
            if stamp is None and file_key(task, path) in self.temp:
                continue  # a temp file cleaned after use: its producer is judged on its own
            if _changed(stamp, rec.inputs.get(path)):
                return f"input {path} changed"
        for p in self.graph.parents(i):
            if p in self.todo:
                return f"upstream {self.graph.name(p)} reran"
        for path in task.outputs:
            if path not in task.temp and not self.files.exists(task, path):
                return f"output {path} missing"
        return ""

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
                old = verdicts[p]
                reason = f"output {path} missing (temp, needed by {tasks[i].name})"
                verdicts[p] = Verdict(True, reason, old.fingerprint, old.cmd_digest, old.env_digest)


_DONE = (TaskState.SUCCEEDED, TaskState.SKIPPED)


def _input_stamps(files: Files, task: Task, rec: TaskRecord | None) -> dict[str, FileStamp | None]:
    if not task.inputs:
        return {}
    known = rec.inputs if rec is not None else {}
    return {p: files.stamp(task, p, known.get(p)) for p in task.inputs}


def _changed(now: FileStamp | None, then: FileStamp | None) -> bool:
    """Content differs: by digest when both have one, else by (size, mtime)."""
    if now is None or then is None:
        return now != then
    if now[2] and then[2]:
        return now[2] != then[2]
    return (now[0], now[1]) != (then[0], then[1])


def _first_run_reason(rec: TaskRecord | None) -> str:
    if rec is None or rec.attempts == 0:
        return "new"
    if rec.state in (TaskState.WAITING, TaskState.READY, TaskState.RUNNING, TaskState.RETRYING):
        return "interrupted"
    return "failed before"


def _done_reason(rec: TaskRecord | None) -> str:
    if rec is None or not rec.fingerprint:
        return "done (marker file exists)"
    return "up to date"


def _temp_producers(graph: Graph) -> dict[str, int]:
    return {file_key(task, path): i for i, task in enumerate(graph.tasks) for path in task.temp}
