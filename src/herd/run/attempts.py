"""What a run needs to start an attempt and to collect what it leaves.

An attempt gets its environment (the process's, the workflow's and the task's, merged once per
env mapping, plus ``HERD_WORKFLOW``, ``HERD_TASK``, ``HERD_ATTEMPT`` and ``HERD_USER_DATA``), its
working directory (created once), its log files ``.herd/logs/<workflow>/<task>.<n>.out|err`` and
its provenance record. Logs and the user data file are created by the task's first byte: a file
an earlier attempt of the same number left (before ``herd forget``) is removed first, found by one
listing of the folder. After it ends, the lines the task wrote to ``$HERD_USER_DATA`` become user
data and events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from herd.core.model import Task, TaskState, Workflow
from herd.exec.base import Exited, Launch
from herd.plan.commands import Commands
from herd.plan.files import Files
from herd.plan.planner import Verdict
from herd.store.base import AttemptFinished, AttemptRecord, Change, FileStamp, UserData, UserEvent
from herd.store.workdir import Workdir, safe_name

logger = logging.getLogger(__name__)

#: the suffix of the file an attempt's $HERD_USER_DATA names
DATA = ".data.jsonl"


class Attempts:
    """The attempts of one run: environments, directories, log files, records."""

    def __init__(
        self, workflow: Workflow, workdir: Path, wd: Workdir, host: str, user: str
    ) -> None:
        self.wf, self.workdir, self.host, self.user = workflow, workdir, host, user
        self.base_env = dict(os.environ)
        #: id of a task env -> (that env, kept alive; the environment of its tasks without herd's
        #: variables): tasks share env mappings, so the merge is done once per mapping
        self.task_envs: dict[int, tuple[Mapping[str, str], dict[str, str]]] = {}
        self.commands = Commands(workflow)
        #: a task's ``cwd`` field -> its directory, created (tasks share a few)
        self.cwds: dict[str | None, Path] = {}
        self.log_dir = wd.make_logs_dir(workflow.name)
        self.old_logs: set[str] | None = None  # files in log_dir before the first start

    def env(self, task: Task, number: int, user_data: str) -> dict[str, str]:
        entry = self.task_envs.get(id(task.env))
        if entry is None:
            merged = {**self.base_env, **self.wf.env, **task.env}
            entry = self.task_envs[id(task.env)] = (task.env, merged)
        env = entry[1].copy()
        env["HERD_WORKFLOW"] = self.wf.name
        env["HERD_TASK"] = task.name
        env["HERD_ATTEMPT"] = str(number)
        env["HERD_USER_DATA"] = user_data
        return env

    def log_stem(self, task: str, number: int) -> str:
        """An attempt's files are ``.herd/logs/<workflow>/<task>.<n>`` + ``.out``, ``.err``,
        :data:`DATA`."""
        return f"{self.log_dir}/{safe_name(task)}.{number}"

    def fresh_log(self, path: str) -> str:
        """``path``, which an earlier attempt with this number (before ``herd forget``) may have
        left: removed, since logs and user data files are created only when the task writes. One
        listing of the folder instead of a failed unlink per file."""
        if self.old_logs is None:
            self.old_logs = {entry.path for entry in os.scandir(self.log_dir)}
        if path in self.old_logs:
            self.old_logs.discard(path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return path

    def cwd(self, task: Task) -> Path:
        cwd = self.cwds.get(task.cwd)
        if cwd is None:
            cwd = self.workdir / task.cwd if task.cwd else self.workdir
            cwd.mkdir(parents=True, exist_ok=True)  # the O2DPG runner creates task dirs too
            self.cwds[task.cwd] = cwd
        return cwd

    def record(
        self,
        ids: tuple[int, int],
        task: Task,
        number: int,
        pid: int,
        start: float,
        launch: Launch,
        verdict: Verdict,
        reason: str,
        resources: Mapping[str, float],
    ) -> AttemptRecord:
        """The provenance record of an attempt just started; ``ids``: (workflow id, run id)."""
        return AttemptRecord(
            workflow_id=ids[0],
            run_id=ids[1],
            task=task.name,
            number=number,
            host=self.host,
            user=self.user,
            pid=pid,
            start=start,
            cmd=self.commands.expanded(task),
            env_digest=verdict.env_digest,
            fingerprint=verdict.fingerprint,
            reason=reason,
            cwd=str(launch.cwd),
            stdout_path=str(launch.stdout),
            stderr_path=str(launch.stderr),
            resources=dict(resources),
        )

    def user_data(self, wid: int, task: str, number: int) -> list[Change]:
        """What attempt ``number`` of ``task`` wrote to ``$HERD_USER_DATA``, as changes."""
        return user_changes(self.log_stem(task, number) + DATA, wid, task, number)


def user_changes(path: str, wid: int, task: str, number: int) -> list[Change]:
    """The user data and events an attempt wrote to its ``$HERD_USER_DATA`` file ``path``."""
    if not os.access(path, os.F_OK):  # most tasks record nothing: no exception, no file object
        return []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    with open(fd, encoding="utf-8") as f:
        lines = f.read().splitlines()
    changes = []
    for n, line in enumerate(lines, 1):
        change = user_record(wid, task, number, line)
        if change is None:
            logger.warning("%s:%d: not a JSON object, ignored", path, n)
        else:
            changes.append(change)
    return changes


def user_record(wid: int, task: str, number: int, line: str) -> Change | None:
    """A line a task wrote to ``$HERD_USER_DATA``: ``{"key": k, "value": v}`` is user data,
    any other object an event (its ``time`` field, epoch seconds, defaults to now)."""
    if not line.strip():
        return None
    try:
        obj: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    if set(obj) == {"key", "value"}:
        return UserData(wid, task, number, str(obj["key"]), obj["value"])
    when = obj.pop("time", None)
    return UserEvent(
        wid, task, number, float(when) if isinstance(when, int | float) else time.time(), obj
    )


def attempt_finished(
    wid: int,
    task: str,
    number: int,
    ev: Exited,
    state: TaskState,
    inputs: Mapping[str, FileStamp] | None,
    outputs: Mapping[str, FileStamp] | None,
) -> AttemptFinished:
    """The record of an attempt's end, from its process's exit."""
    return AttemptFinished(
        wid,
        task,
        number,
        ev.end,
        state,
        ev.exit_code,
        ev.signal,
        ev.kill_reason,
        ev.kill,
        ev.utime,
        ev.stime,
        ev.max_rss,
        ev.peak_mem,
        ev.mean_cpu,
        inputs or {},
        outputs or {},
    )


def outcome(ev: Exited) -> str:
    if ev.log_error and ev.exit_code == 0:
        return ev.log_error
    if ev.kill_reason:
        return f"killed: {ev.kill_reason}"
    if ev.signal:
        return f"signal {signal.Signals(ev.signal).name}"
    return f"exit {ev.exit_code}"


def stamps(files: Files, task: Task, paths: Sequence[str]) -> dict[str, FileStamp]:
    """The stamps of those of ``paths`` that exist."""
    out: dict[str, FileStamp] = {}
    for p in paths:
        stamp = files.stamp(task, p)
        if stamp is not None:
            out[p] = stamp
    return out


def read_end(path: Path, most: int) -> tuple[str, bool]:
    """The last ``most`` bytes of a file ("" when it cannot be read), and whether that is not
    the whole of it."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - most))
        return f.read().decode("utf-8", "replace"), size > most
    return "", False
