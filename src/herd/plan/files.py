"""File access for planning and provenance: stats and content digests of the files tasks read and
write, rooted at the working directory.

:class:`Files` answers one question at a time. Its :meth:`~Files.snapshot` remembers every stat and
digest it made for one planning pass, lists folders that hold many inputs instead of stat'ing
each, and, asked for more than :attr:`_Snapshot.BACKGROUND_AFTER` files at once
(:meth:`~Files.stat_all`), stats them in a forked child on the other core while herd reads the
store (:class:`_Background`); the plan waits for the answers at its first question, and stats
in-process when the child failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from array import array
from collections.abc import Collection, Iterable, Mapping
from itertools import islice
from pathlib import Path
from typing import NamedTuple

from herd.core.graph import file_key
from herd.core.model import Task
from herd.store.base import FileStamp

DIGEST_LIMIT = 16 * 1024 * 1024


class Files:
    """File access for planning and provenance, rooted at the working directory."""

    def __init__(self, root: Path, *, checksum: bool = False) -> None:
        self.root = root
        self.checksum = checksum
        top = os.fspath(root)
        self._prefix = top if top.endswith("/") else top + "/"

    def path(self, task: Task, path: str) -> Path:
        return self.root / file_key(task, path)

    def full_path(self, task: Task, path: str) -> str:
        """:meth:`path` as a string (cheaper to make: the runner's done markers)."""
        return self._full_key(file_key(task, path))

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
    million missing inputs, one that has run a million outputs to find, and a listing costs a
    fraction of a ``stat`` per entry (docs/performance.md, "Figures behind the design")."""

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
        are needed for waits for them. A million stats cost seconds, in system calls and in the
        building of ``os.stat_result`` objects (docs/performance.md).
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
