"""Where workflow state lives: the :class:`~herd.store.base.Store` protocol and its implementations.

``open_store(path)`` opens (creating or migrating as needed) the SQLite store, herd's embedded
default. The implementation is imported on first use, so that the pure core can import the record
types of ``herd.store.base`` without loading any driver.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from herd.store.base import Store

if TYPE_CHECKING:
    from herd.store.sqlite import SQLiteStore

__all__ = ["SQLiteStore", "Store", "open_store"]


def open_store(path: str | os.PathLike[str], *, readonly: bool = False) -> Store:
    """The store in the SQLite file ``path`` (``.herd/herd.db``), created when missing.

    ``readonly`` opens an existing database for reading only (``herd status``): it takes no lock,
    never blocks a running herd, and fails with :class:`~herd.errors.StoreError` when the file is
    missing.
    """
    from herd.store.sqlite import SQLiteStore

    return SQLiteStore(path, readonly=readonly)


def __getattr__(name: str) -> object:
    if name == "SQLiteStore":
        from herd.store.sqlite import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module 'herd.store' has no attribute {name!r}")
