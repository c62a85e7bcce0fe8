"""The run's changes on their way to the store: group commit of whole loop turns.

The runner appends every change in the order it happened (:attr:`Journal.batch`) and commits
batches of whole turns, each one store transaction: at once when the last commit is older than
:data:`COMMIT_DELAY`, else when that delay is over (:meth:`Journal.due`). A lone exit is on disk
at once; a burst of short tasks shares one commit per 10 ms instead of paying one each. Because a
batch is one or more whole turns in order, the store always holds the run's history up to the end
of some turn (see :mod:`herd.run.local`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from herd.store.base import Change, Store

#: seconds between two commits of the run's changes, at the most frequent
COMMIT_DELAY = 0.01


class Journal:
    """The changes of the turns not committed yet, and when the last commit was."""

    __slots__ = ("after", "batch", "before", "committed", "store")

    def __init__(
        self,
        store: Store,
        *,
        before: Callable[[], None] = lambda: None,
        after: Callable[[], None] = lambda: None,
    ) -> None:
        """``before`` runs before a batch is written (the done markers it records must exist),
        ``after`` after every commit (what ended is shown once it is on record)."""
        self.store, self.before, self.after = store, before, after
        #: changes in the order they happened, since the last commit
        self.batch: list[Change] = []
        #: monotonic time of the last commit
        self.committed = 0.0

    def due(self) -> float:
        """Commit what is pending, unless the last commit was less than :data:`COMMIT_DELAY` ago:
        then the monotonic time when it is due (``inf``: nothing pending)."""
        if not self.batch:
            return float("inf")
        due = self.committed + COMMIT_DELAY
        if time.monotonic() < due:
            return due
        self.commit()
        return float("inf")

    def commit(self) -> None:
        """Write what is pending now, in one transaction."""
        if self.batch:
            self.before()
            self.store.write(self.batch)
            self.batch = []
            self.committed = time.monotonic()
        self.after()
