"""A big workflow, loaded and validated, kept between runs with its graph.

Loading a million-task spec and building its graph is, in about equal parts, a third of a resumed
run that has nothing to do. :func:`load_built` keeps both in the working directory,
``.herd/cache/<digest of the spec's path>.pickle``, and reads them back in a third of that time
(docs/performance.md, "Figures behind the design")
while the spec's bytes, its path and herd's own code are those they were built from: the file
starts with a line naming them (BLAKE2b of the bytes and of the path; herd's version, the size and
mtime of each of its modules, Python's version), checked before anything else is read.

Only a run writes the file (``save=True``; a dry run reads it but creates nothing), and only
for specs of :data:`CACHE_FROM` tasks or more; smaller ones load in well under
a second. A file that is missing, stale, unreadable or corrupt is ignored (and replaced by the next
run): the spec is loaded as usual. The file is a pickle, so it is as trusted as the rest of
``.herd/``: herd reads it only from the working directory it was asked to use.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
from pathlib import Path

from herd.core.bulk import gc_paused
from herd.core.graph import Graph, build
from herd.core.model import MAX_TASKS, Workflow
from herd.formats import Setup, load
from herd.store.workdir import Workdir
from herd.version import __version__

logger = logging.getLogger(__name__)

#: specs with fewer tasks are not kept (they load in well under a second)
CACHE_FROM = 50_000


def load_built(
    path: str,
    workdir: Path,
    *,
    save: bool,
    max_tasks: int = MAX_TASKS,
    setup: Setup | None = None,
) -> tuple[Workflow, Graph]:
    """The workflow in ``path`` and its validated graph: from the working directory's cache when
    it was built from these bytes by this herd, else loaded and built (and kept, with ``save``,
    when the spec is big). ``setup``: as :func:`herd.formats.load` takes it."""
    source = os.path.abspath(path)
    try:
        # (the bytes are not kept: 300 MB at 1 M)
        key = _key(source + repr(setup or ""), Path(path).read_bytes())
    except OSError:
        # (its error says what is wrong with the path)
        workflow = load(path, max_tasks=max_tasks, setup=setup)
        return workflow, _built(workflow)
    cache = Workdir(workdir).state_dir / "cache" / f"{_digest(source.encode())}.pickle"
    kept = _read(cache, key)
    if kept is not None and len(kept[0].tasks) <= max_tasks:
        return kept
    workflow = load(path, max_tasks=max_tasks, setup=setup)
    graph = _built(workflow)
    if save and len(workflow.tasks) >= CACHE_FROM:
        _write(cache, key, workflow, graph)
    return workflow, graph


def _built(workflow: Workflow) -> Graph:
    with gc_paused():  # (as runner.prepare builds it)
        return build(workflow)


def _key(source: str, raw: bytes) -> bytes:
    """What the cached objects were built from, as one line."""
    return f"herd-built 1 {_digest(raw)} {_code()} {_digest(source.encode())}\n".encode()


def _code() -> str:
    """herd's version, its modules' sizes and mtimes, and Python's version, as one digest."""
    root = Path(__file__).parents[1]  # the whole herd package, not only formats/
    parts = [__version__, sys.version]
    for module in sorted(root.rglob("*.py")):
        st = module.stat()
        parts.append(f"{module.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return _digest("\n".join(parts).encode())


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _read(cache: Path, key: bytes) -> tuple[Workflow, Graph] | None:
    try:
        with open(cache, "rb") as f:
            if f.readline() != key:
                return None
            with gc_paused():  # a million tasks come back: nothing for the collector to walk
                workflow, graph = pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a corrupt or foreign file: load the spec as usual
        logger.debug("ignoring %s: %s", cache, exc)
        return None
    if not isinstance(workflow, Workflow) or not isinstance(graph, Graph):
        return None
    # paths were resolved from herd's environment when it was kept (herd.formats.environ)
    kept_env = workflow.meta.get("environment", {})
    if any(os.environ.get(name) != value for name, value in kept_env.items()):
        return None
    # other files the loader read (a Pegasus workflow's catalogs)
    if any(
        _stamp(path) != tuple(stamp) for path, stamp in workflow.meta.get("read_files", {}).items()
    ):
        return None
    return workflow, graph


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _write(cache: Path, key: bytes, workflow: Workflow, graph: Graph) -> None:
    """Write the file whole or not at all (a temporary file renamed over the old one)."""
    temp = cache.with_name(f".{cache.name}.{os.getpid()}")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "wb") as f:
            f.write(key)
            pickle.dump((workflow, graph), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, cache)
    except OSError as exc:  # a full disk or a read-only directory: next time, then
        logger.warning("could not keep the loaded workflow in %s: %s", cache, exc)
        with contextlib.suppress(OSError):
            temp.unlink()
