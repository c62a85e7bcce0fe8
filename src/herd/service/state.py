"""Opening what herd remembers: the store, and one workflow in it.

The store is the one ``store`` names (``--store``: a ``postgresql://`` URL or an SQLite file), else
``$HERD_STORE``, else the working directory's ``.herd/herd.db`` (:func:`herd.store.locate`). Every
operation that reads or changes recorded state starts here, so that "herd has not run anything
here yet" and "which workflow?" are decided, and worded, in one place.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from herd.errors import NoStateError, UsageError
from herd.formats import load
from herd.store import ENV, is_url, locate, open_store
from herd.store.base import Store, WorkflowRecord
from herd.store.workdir import Workdir

#: what to do when herd never ran in the directory, after "herd has not run anything in DIR yet"
RUN_FIRST = ": run `herd run FILE` first"


def where(workdir: Path, store: str | None = None) -> str:
    """The store a command reads, for messages: its URL (without the password), its file, or
    the working directory."""
    chosen = store or os.environ.get(ENV)
    if not chosen:
        return str(workdir)
    if is_url(chosen):
        from herd.store.postgres import redact  # (only for a URL: it loads the driver)

        return redact(chosen)
    return chosen


def recorded_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """The command line as runs record it: a store URL's password left out."""
    if not any("://" in arg for arg in argv):
        return tuple(argv)
    from herd.store.postgres import redact

    return tuple(redact(arg) if "://" in arg else arg for arg in argv)


@contextlib.contextmanager
def existing_store(workdir: Path, store: str | None = None) -> Iterator[Store | None]:
    """The store ``store`` names (by default the working directory's), read only, if it holds
    herd state (read-only commands create nothing); None when it does not."""
    try:
        opened = open_store(locate(store, Workdir(workdir).db_path), readonly=True)
    except NoStateError:
        yield None
        return
    try:
        yield opened
    finally:
        opened.close()


def open_existing(workdir: Path, store: str | None, then: str) -> Store:
    """The store ``store`` names (by default the working directory's) open for writing, if it
    holds herd state; else a :class:`UsageError` ending with ``then``, and nothing is created
    (no file, no schema in an empty database)."""
    try:
        return open_store(locate(store, Workdir(workdir).db_path), create=False)
    except NoStateError:
        raise UsageError(
            f"herd has not run anything in {where(workdir, store)} yet{then}"
        ) from None


@contextlib.contextmanager
def writable(workdir: Path, store: str | None = None) -> Iterator[Store]:
    """The store ``store`` names (else ``$HERD_STORE``, else the working directory's), created
    when missing and open for writing (``herd submit``, ``herd worker``, ``herd campaign``)."""
    location = locate(store, Workdir(workdir).db_path)
    if isinstance(location, Path):
        location.parent.mkdir(parents=True, exist_ok=True)
    opened = open_store(location)
    try:
        yield opened
    finally:
        opened.close()


@contextlib.contextmanager
def reading(
    workdir: Path, workflow: str | None, *, store: str | None = None, then: str = RUN_FIRST
) -> Iterator[tuple[Store, WorkflowRecord]]:
    """The store (read only) and the workflow called ``workflow`` in it, or its only one. A
    :class:`UsageError` ending with ``then`` when herd never ran there."""
    with existing_store(workdir, store) as opened:
        if opened is None:
            raise UsageError(f"herd has not run anything in {where(workdir, store)} yet{then}")
        yield opened, _pick(opened, workflow, where(workdir, store))


@contextlib.contextmanager
def changing(
    workdir: Path, workflow: str | None, spec: str | None = None, *, store: str | None = None
) -> Iterator[tuple[Store, WorkflowRecord]]:
    """The store open for writing under the working directory's run lock (no ``herd run`` there
    changes it meanwhile) and the workflow called ``workflow``, else the one the spec file
    ``spec`` names (read once the store is known to exist), else the store's only one."""
    wd = Workdir(workdir)
    with wd.lock():
        opened = open_existing(workdir, store, ": nothing to change")
        try:
            if workflow is None and spec:
                workflow = load(spec).name
            yield opened, _pick(opened, workflow, where(workdir, store))
        finally:
            opened.close()


def _pick(store: Store, workflow: str | None, where: str) -> WorkflowRecord:
    """:func:`herd.reports.status.pick_workflow`, imported at the first use: ``herd run``, which
    imports this module, does not pay the 25 ms the reports take to import."""
    from herd.reports.status import pick_workflow

    return pick_workflow(store, workflow, where)
