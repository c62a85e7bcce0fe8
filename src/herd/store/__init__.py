"""Where workflow state lives: the :class:`~herd.store.base.Store` protocol and its implementations.

``open_store(location)`` opens (creating or migrating as needed) the store at ``location``: a
``postgresql://`` URL opens the PostgreSQL store (state shared by many hosts), anything else is the
path of an SQLite file, herd's embedded default (``.herd/herd.db``). :func:`locate` says which
location a command uses: ``--store``, else the environment variable ``HERD_STORE``, else the
working directory's file. Implementations are imported on first use, so that the pure core can
import the record types of ``herd.store.base`` without loading any driver.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from herd.errors import NoStateError, StoreError
from herd.store.base import Store

if TYPE_CHECKING:
    from herd.store.postgres import PostgresStore
    from herd.store.sqlite import SQLiteStore

__all__ = ["ENV", "PostgresStore", "SQLiteStore", "Store", "is_url", "locate", "open_store"]

#: the environment variable that names the store when ``--store`` does not
ENV = "HERD_STORE"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names a database server (rather than an SQLite file)."""
    return isinstance(location, str) and "://" in location


def locate(store: str | None, default: Path) -> str | Path:
    """The store a command uses: ``store`` (``--store``), else ``$HERD_STORE``, else ``default``
    (the working directory's SQLite file)."""
    chosen = store or os.environ.get(ENV) or None
    if chosen is None:
        return default
    return chosen if is_url(chosen) else Path(chosen)


def open_store(
    location: str | os.PathLike[str], *, readonly: bool = False, create: bool = True
) -> Store:
    """The store at ``location``: a ``postgresql://USER@HOST:PORT/DATABASE`` URL, or the path of
    an SQLite file (``.herd/herd.db``), created when missing.

    ``readonly`` opens an existing store for reading only (``herd status``): it takes no lock,
    never blocks a running herd, migrates nothing, and fails with
    :class:`~herd.errors.NoStateError` when there is no herd state there. Without ``create``,
    a store that holds no herd state yet is not made one (no file, no schema): commands that
    change recorded state fail with :class:`~herd.errors.NoStateError` instead.
    """
    if is_url(location):
        url = str(location)
        if not url.startswith(_POSTGRES_SCHEMES):
            raise StoreError(
                f"herd keeps its state in an SQLite file or in PostgreSQL, not at {url.split('://')[0]}://"
                "...: give a path or a postgresql://USER@HOST:PORT/DATABASE URL"
            )
        from herd.store.postgres import PostgresStore

        return PostgresStore(url, readonly=readonly, create=create)
    from herd.store.sqlite import SQLiteStore

    if not create and not Path(location).is_file():
        raise NoStateError(f"no herd database at {location}")
    return SQLiteStore(location, readonly=readonly)


def __getattr__(name: str) -> object:
    if name == "SQLiteStore":
        from herd.store.sqlite import SQLiteStore

        return SQLiteStore
    if name == "PostgresStore":
        from herd.store.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'herd.store' has no attribute {name!r}")
