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

File access goes through a :class:`Files` object so that the planning logic stays testable and the
million-task path stats each file once (:meth:`Files.stat_all`, in a child process while the store
is read).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import os
import re
import signal
from array import array
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from herd.core.graph import Graph, ancestors, descendants, file_key, match
from herd.core.model import Task, TaskState, Workflow
from herd.store.base import FileStamp, TaskRecord

DIGEST_LIMIT = 16 * 1024 * 1024
_NAME = re.compile(r"\w+")
_BARE = re.compile(r"\$\w")  # what may be a $NAME reference


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


class Files:
    """File access for planning and provenance, rooted at the working directory."""

    def __init__(self, root: Path, *, checksum: bool = False) -> None:
        self.root = root
        self.checksum = checksum
        top = os.fspath(root)
        self._prefix = top if top.endswith("/") else top + "/"

    def path(self, task: Task, path: str) -> Path:
        return self.root / file_key(task, path)

    def _full_key(self, key: str) -> str:
        # os.path.join as a string concatenation: planning stats millions of inputs
        return key if key.startswith("/") else self._prefix + key

    def exists(self, task: Task, path: str) -> bool:
        return self.exists_of(file_key(task, path))

    def exists_of(self, key: str) -> bool:
        """:meth:`exists` of the file a :func:`~herd.core.graph.file_key` names."""
        return os.path.exists(self._full_key(key))

    def stamp(self, task: Task, path: str, known: FileStamp | None = None) -> FileStamp | None:
        """(size, mtime_ns, digest) of a file, None when missing. ``known`` saves a digest when
        size and mtime are unchanged."""
        return self.stamp_of(file_key(task, path), known)

    def stamp_of(self, key: str, known: FileStamp | None = None) -> FileStamp | None:
        """:meth:`stamp` of the file a :func:`~herd.core.graph.file_key` names."""
        stat = self.stat_of(key)
        if stat is None:
            return None
        if known is not None and (known[0], known[1]) == stat and not self.checksum:
            return known
        return (stat[0], stat[1], self._digest(self._full_key(key), stat[0]))

    def stat_of(self, key: str) -> tuple[int, int] | None:
        """(size, mtime_ns) of the file a file key names, None when it is missing."""
        return _stat(self._full_key(key))

    def input_stamps(
        self, task: Task, keys: tuple[str, ...], known: Mapping[str, FileStamp]
    ) -> dict[str, FileStamp | None]:
        """The stamp of every input of ``task`` by its path as the task gives it (``keys``: their
        file keys); ``known``: the stamps of its last success, by path."""
        stamp_of = self.stamp_of
        return {p: stamp_of(k, known.get(p)) for p, k in zip(task.inputs, keys, strict=True)}

    def stat_all(self, keys: Collection[str]) -> None:
        """The files ``keys`` name will be asked for (a snapshot stats them all at once)."""

    def snapshot(self) -> Files:
        """The same files, each input stat'ed and hashed at most once: for one planning pass,
        while files do not change and many tasks may read one file (a calibration file read by
        every timeframe)."""
        return _Snapshot(self.root, checksum=self.checksum)

    def _digest(self, full: str, size: int) -> str:
        if not self.checksum and size > DIGEST_LIMIT:
            return ""
        try:
            return file_digest(full)
        except OSError:  # a folder, an unreadable file: compared by size and mtime
            return ""


class _Snapshot(Files):
    """:class:`Files` remembering every stat and digest of an input it made, and the listing of
    every folder it looked into :data:`LIST_AFTER` times. A listed folder answers existence
    tests without a system call: a name not in it is missing, a name in it exists unless it is a
    symbolic link (which may dangle: that one is stat'ed). A workflow that has not run yet has a
    million missing inputs, one that has run a million outputs to find; a ``stat`` costs 2-9 µs
    here, a listing under 1 µs per entry."""

    LIST_AFTER = 32
    #: :meth:`stat_all` of more files than this runs in a child process while herd goes on
    BACKGROUND_AFTER = 100_000

    def __init__(self, root: Path, *, checksum: bool = False) -> None:
        super().__init__(root, checksum=checksum)
        self._digests: dict[str, str] = {}
        #: folder -> its listing; None when it cannot be listed (each file is stat'ed)
        self._listings: dict[str, _Listing | None] = {}
        self._lookups: dict[str, int] = {}  # folders not listed yet -> lookups so far
        self._by_key: dict[str, tuple[int, int] | None] = {}  # file key -> its stat
        self._pending: _Background | None = None  # a stat_all still running

    def snapshot(self) -> Files:
        return self

    def stat_all(self, keys: Collection[str]) -> None:
        """Stat the files ``keys`` name in one pass, folder by folder (see :meth:`_stats`).

        More than :data:`BACKGROUND_AFTER` files are stat'ed by a forked child process, on the
        other core, while this one goes on (reading the store); the first question the answers
        are needed for waits for them. A million stats cost 4-7 s here, in system calls and in
        the building of ``os.stat_result`` objects.
        """
        self._collect()
        if len(keys) > self.BACKGROUND_AFTER:
            self._pending = _Background.start(self, list(keys))
        if self._pending is None:
            self._by_key.update(self._stats(keys))

    def _stats(self, keys: Iterable[str]) -> dict[str, tuple[int, int] | None]:
        """The stats of the files ``keys`` name, folder by folder: a folder holding more than
        :data:`LIST_AFTER` of them is listed when one of the first :data:`LIST_AFTER` is missing
        (the others missing from it then cost no system call), and the stats of one folder come
        together (spread over a planning pass, a million stats cost twice as long: the
        kernel's caches go cold between them)."""
        prefix = self._prefix
        folders: dict[str, tuple[list[str], list[str]]] = {}  # folder -> (keys, names)
        for key in keys:
            folder, _, name = (key if key.startswith("/") else prefix + key).rpartition("/")
            group = folders.get(folder)
            if group is None:
                group = folders[folder] = ([], [])
            group[0].append(key)
            group[1].append(name)
        listings, sample = self._listings, self.LIST_AFTER
        found: dict[str, tuple[int, int] | None] = {}
        for folder, (in_folder, names) in folders.items():
            base = folder + "/"
            listing = listings.get(folder, _UNLISTED)
            stats: list[tuple[int, int] | None] = []
            if listing is _UNLISTED and len(names) > sample:
                # the first files say whether a listing pays: not when they all exist (the
                # folder of a finished run: every file is stat'ed anyway)
                stats = list(map(_stat, map(base.__add__, names[:sample])))
                if None in stats:
                    listing = listings[folder] = _names_in(folder or "/")
            if listing is _UNLISTED or listing is None:
                stats += map(_stat, map(base.__add__, names[len(stats) :]))
            else:
                there = listing.names  # (symbolic links are stat'ed too: they may dangle)
                stats += [_stat(base + n) if n in there else None for n in names[len(stats) :]]
            found.update(zip(in_folder, stats, strict=True))
        return found

    def _collect(self) -> None:
        """Take the answers of a :meth:`stat_all` running in the background."""
        pending, self._pending = self._pending, None
        if pending is not None:
            stats = pending.result()
            if stats is None:  # (the child failed)
                self._by_key.update(self._stats(pending.keys))
            else:
                self._by_key.update(zip(pending.keys, stats, strict=True))

    def exists_of(self, key: str) -> bool:
        stat = self._by_key.get(key, _UNSTATED)
        if stat is not _UNSTATED:
            return stat is not None
        if self._pending is not None:
            self._collect()
            return self.exists_of(key)
        full = self._full_key(key)
        known = self._known(full)
        return os.path.exists(full) if known is None else known

    def stat_of(self, key: str) -> tuple[int, int] | None:
        stat = self._by_key.get(key, _UNSTATED)
        if stat is _UNSTATED:
            if self._pending is not None:
                self._collect()
                return self.stat_of(key)
            full = self._full_key(key)
            stat = self._by_key[key] = None if self._known(full) is False else _stat(full)
        return stat

    def _known(self, full: str) -> bool | None:
        """Whether ``full`` exists by its folder's listing; None when the listing cannot say."""
        folder, _, name = full.rpartition("/")
        listing = self._listings.get(folder, _UNLISTED)
        if listing is _UNLISTED:
            seen = self._lookups[folder] = self._lookups.get(folder, 0) + 1
            if seen < self.LIST_AFTER:
                return None
            listing = self._listings[folder] = _names_in(folder or "/")
        if listing is None:
            return None
        if name not in listing.names:
            return False
        return None if name in listing.links else True

    def _digest(self, full: str, size: int) -> str:
        digest = self._digests.get(full)
        if digest is None:
            digest = self._digests[full] = super()._digest(full, size)
        return digest


def _stat(full: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, None when missing."""
    try:
        st = os.stat(full)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


_UNSTATED = (-2, -2)  # a marker (compared by identity): not stat'ed yet


class _Background:
    """A :meth:`_Snapshot.stat_all` in a forked child (which has the keys and the code without
    being told): it sends the stats back, in key order, through a pipe as pairs of 64-bit
    integers (size -1: missing). :meth:`result` is None when the child did not deliver."""

    def __init__(self, keys: list[str], pid: int, fd: int) -> None:
        self.keys, self.pid, self.fd = keys, pid, fd

    @classmethod
    def start(cls, snapshot: _Snapshot, keys: list[str]) -> _Background | None:
        """Fork the child; None when this system cannot (the caller stats in-process)."""
        if not hasattr(os, "fork"):
            return None
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:  # the child: stat, send, and leave without running any of the parent's cleanup
            code = 1
            try:
                os.close(read_end)
                stats = snapshot._stats(keys)
                flat = array("q")
                for key in keys:
                    flat.extend(stats[key] or _MISSING)
                with open(write_end, "wb") as out:
                    out.write(flat.tobytes())
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        return cls(keys, pid, read_end)

    def result(self) -> list[tuple[int, int] | None] | None:
        with open(self.fd, "rb") as answers:
            data = answers.read()
        try:
            status = os.waitpid(self.pid, 0)[1]
        except ChildProcessError:  # reaped by someone else (a SIGCHLD handler): the data decides
            status = 0
        self.pid = 0
        if status != 0 or len(data) != 16 * len(self.keys):
            return None
        flat = array("q")
        flat.frombytes(data)
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return [None if size < 0 else (size, mtime) for size, mtime in pairs]

    def __del__(self) -> None:
        if self.pid:  # never asked for (planning failed, or needed no file): stop the child
            with contextlib.suppress(OSError):
                os.close(self.fd)
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)


_MISSING = (-1, -1)


class _Listing(NamedTuple):
    names: frozenset[str]
    #: the names that are symbolic links
    links: frozenset[str]


_UNLISTED = _Listing(frozenset(), frozenset())  # a marker: the folder was not listed yet
#: a folder with more entries than this is not kept in memory: its files are stat'ed one by one
LISTING_LIMIT = 2_000_000


def _names_in(folder: str) -> _Listing | None:
    """The names in ``folder`` (none when it does not exist); None when it cannot be listed or
    holds more than :data:`LISTING_LIMIT` entries."""
    links: list[str] = []
    try:
        with os.scandir(folder) as entries:
            names = []
            for entry in islice(entries, LISTING_LIMIT + 1):
                names.append(entry.name)
                if entry.is_symlink():
                    links.append(entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return _Listing(frozenset(), frozenset())
    except OSError:
        return None
    return _Listing(frozenset(names), frozenset(links)) if len(names) <= LISTING_LIMIT else None


def file_digest(path: str | Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _digest(*parts: str) -> str:
    return _blake2b("\x1f".join(parts).encode(), digest_size=12).hexdigest()


_blake2b = hashlib.blake2b


def task_env(workflow: Workflow, task: Task) -> dict[str, str]:
    """The variables the workflow and the task set for this task (task wins)."""
    if not workflow.env:
        return dict(task.env)
    return {**workflow.env, **task.env}


def expanded_command(task: Task, env: Mapping[str, str]) -> str:
    """The command with ``$VAR`` and ``${VAR}`` taken from ``env`` expanded; others kept."""
    return _expander(env)(task.argv_or_shell)


def _expander(env: Mapping[str, str]) -> Callable[[str], str]:
    """:func:`expanded_command` for one env, made once and applied to many commands.

    The pattern matches only the names ``env`` defines (``$NAME`` not followed by a word
    character, ``${NAME}``): other variables are left as they are without a call per occurrence.
    When no value holds a ``$``, ``{`` or ``}`` (so that no replacement can make or unmake another
    reference), the ``${NAME}`` forms are replaced by ``str.replace``; what is left is the answer
    unless a ``$`` followed by a word character remains (a ``$NAME`` form, or text that the
    pattern must judge), and then the pattern runs on the command as given. A million O2DPG
    commands, two variables each, take a third of the time.
    """
    names = [name for name in env if _NAME.fullmatch(name)]
    if not names:
        return _unchanged
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"\$(?:({alternatives})(?!\w)|\{{({alternatives})\}})")
    substitute = pattern.sub

    def value(m: re.Match[str]) -> str:
        return env[m[1] or m[2]]

    def expand(cmd: str) -> str:
        return substitute(value, cmd) if "$" in cmd else cmd

    if any(c in env[name] for name in names for c in "${}"):
        return expand
    braced = [("${" + name + "}", env[name]) for name in names]
    bare = _BARE.search

    def expand_braced_first(cmd: str) -> str:
        if "${" not in cmd:
            return expand(cmd)
        out = cmd
        for form, text in braced:
            out = out.replace(form, text)
        return out if bare(out) is None else substitute(value, cmd)

    return expand_braced_first


def _unchanged(cmd: str) -> str:
    return cmd


def _env_digest(env: Mapping[str, str]) -> str:
    return _digest(*sorted(f"{k}={v}" for k, v in env.items())) if env else ""


def digests(workflow: Workflow, task: Task) -> tuple[str, str]:
    """(command digest, env digest) of a task."""
    env = task_env(workflow, task)
    return _digest(expanded_command(task, env)), _env_digest(env)


class Commands:
    """:func:`expanded_command` and :func:`digests` for the tasks of one workflow, the env part
    computed once per task env.

    Tasks share their env mapping (most have none; the loaders share equal ones), so a million
    tasks cost a million command digests but only a few env merges and env digests.
    """

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow
        #: id of a task env -> (that env, kept alive; the expander; the env digest)
        self._envs: dict[int, tuple[Mapping[str, str], Callable[[str], str], str]] = {}

    def expanded(self, task: Task) -> str:
        return self._entry(task)[1](task.argv_or_shell)

    def digests(self, task: Task) -> tuple[str, str]:
        """(command digest, env digest) of a task."""
        entry = self._envs.get(id(task.env)) or self._entry(task)
        cmd = task.cmd
        expanded = entry[1](cmd if type(cmd) is str else task.argv_or_shell)
        return _blake2b(expanded.encode(), digest_size=12).hexdigest(), entry[2]  # _digest(one)

    def _entry(self, task: Task) -> tuple[Mapping[str, str], Callable[[str], str], str]:
        entry = self._envs.get(id(task.env))
        if entry is None:
            env = task_env(self.workflow, task)
            entry = self._envs[id(task.env)] = (task.env, _expander(env), _env_digest(env))
        return entry


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
                verdicts[p] = Verdict(
                    True, reason, "", *self.digests(tasks[p]), Why.TEMP_NEEDED, i
                )


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
