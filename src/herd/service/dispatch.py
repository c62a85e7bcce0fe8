"""The queue as a server shares it with workers over HTTP (``herd worker --server``).

A :class:`Dispatcher` is what the server's worker endpoints (:mod:`herd.server.workers`) call:
the store's queue transactions (:class:`~herd.store.base.WorkerStore`) with the server's clock,
on connections borrowed one request at a time from the server's pool
(:meth:`herd.service.hub.Hub.store`), and what a server adds for workers it cannot see:

``version``   a counter of the moments work may have become claimable: a watcher thread waits
              on the store (``LISTEN/NOTIFY`` on PostgreSQL, the file's data version on SQLite)
              and bumps it, and so does every finish, release and reap made here. A worker's long
              poll (:meth:`Dispatcher.wait`) returns as soon as it moves past the value the worker
              saw last, or after a bounded wait: no busy loop on either side.
``_claims``   each worker's last claim by its request name: a claim sent again (its answer was
              lost on the way) gets the same answer instead of a second set of tasks.
``_owners``   the id of the token that registered each worker the store is known to hold (None:
              none, a database worker). A worker token drives (claims, heartbeats, finishes,
              releases, stops) only the workers it registered, an admin token any
              (:meth:`Dispatcher.allow`); a token for one workflow lists only the workers of
              that workflow's tokens. Learnt at registration here, or from the store once: an
              owner never changes, so the check costs no round trip to the store.
reaping       the watcher also reaps expired leases every :data:`REAP_EVERY` seconds, so the
              tasks of a worker that vanished come back even when no other worker is left.

A finish refused because its lease was taken back is recorded by the store as a stale report
(:class:`~herd.store.queued.StaleReport`) and returned here as not accepted; the endpoint answers
409.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from herd.core.model import Scope, TaskState
from herd.errors import ForbiddenError, HerdError, NotFoundError, UsageError
from herd.service.tokens import Grant, check
from herd.store import open_store
from herd.store.base import RunRecord, Store, WorkflowRecord
from herd.store.queued import Claimed, Lost, WorkerRecord
from herd.store.wire import (
    AttemptKey,
    ClaimIn,
    ClaimOut,
    CountsOut,
    FinishIn,
    FinishOut,
    HeartbeatIn,
    HeartbeatOut,
    OpenOut,
    OutcomeIn,
    ReapOut,
    Register,
    Registered,
    ReleaseIn,
    ReleaseOut,
    RunsOut,
    StatesIn,
    StatesOut,
    StopIn,
    Stopped,
    WaitOut,
    WorkersOut,
    check_outcomes,
    decode,
    encode,
    outcome,
    schema,
)

#: the requests and answers of the worker endpoints, for the server (docs/api.md, "Workers")
__all__ = [
    "AttemptKey",
    "ClaimIn",
    "ClaimOut",
    "CountsOut",
    "Dispatcher",
    "FinishIn",
    "FinishOut",
    "HeartbeatIn",
    "HeartbeatOut",
    "OpenOut",
    "ReapOut",
    "Register",
    "Registered",
    "ReleaseIn",
    "ReleaseOut",
    "RunsOut",
    "StatesIn",
    "StatesOut",
    "StopIn",
    "Stopped",
    "WaitOut",
    "WorkersOut",
    "WorkflowRecord",
    "decode",
    "encode",
    "schema",
]

logger = logging.getLogger(__name__)

#: the longest a long poll for work is held (seconds)
WAIT_MAX = 5.0
#: seconds between two reaps by the server itself
REAP_EVERY = 1.0
#: the shortest and longest lease a worker may ask for (seconds)
LEASE_RANGE = (1.0, 86400.0)


class Dispatcher:
    """The shared queue of one store (see the module docstring). Thread-safe."""

    def __init__(
        self, location: str | Path, borrow: Callable[[], AbstractContextManager[Store]]
    ) -> None:
        self.location, self._borrow = location, borrow
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.version = 0
        self._claims: dict[int, tuple[str, list[Claimed]]] = {}
        #: the workers the store is known to hold (registered here, or found there): their owners
        self._owners: dict[int, int | None] = {}
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="herd-work-watcher", daemon=True)
        self._watch_store = open_store(location)
        self._watcher.start()

    def close(self) -> None:
        """Stop the watcher (and its connection); wake every long poll."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._watcher.join(timeout=5.0)

    # --- the queue --------------------------------------------------------------------------

    def register(self, r: Register, by: Grant | None = None) -> int:
        """A new worker's id, owned by the token of ``by`` (None: by none)."""
        _check_lease(r.lease)
        token_id = None if by is None else by.token
        with self._borrow() as store:
            worker_id = store.register_worker(
                host=r.host,
                pid=r.pid,
                user=r.user,
                resources=r.resources,
                now=time.time(),
                lease=r.lease,
                token_id=token_id,
            )
        with self._lock:
            self._owners[worker_id] = token_id
        return worker_id

    def allow(self, by: Grant | None, worker_id: int) -> None:
        """Nothing when ``by`` may drive worker ``worker_id``: an admin token (or no check,
        None) any worker, a worker token those it registered; 403 otherwise, and 404 when the
        store holds no such worker (a claim, heartbeat, finish, release or stop of a worker
        nobody registered changes nothing, and says so). The store is asked once per worker and
        server."""
        owner = self._owner(worker_id)
        if by is None or by.scope is Scope.ADMIN or owner == by.token:
            return
        if owner is None:
            raise ForbiddenError(
                f"worker {worker_id} was registered without a token (a database worker, `herd "
                "worker --store`): only an admin token may drive it over HTTP; register a worker "
                "of your own (POST /queue/workers)"
            )
        raise ForbiddenError(
            f"worker {worker_id} was registered by another token: a worker token drives only "
            "the workers it registered; register one of your own (POST /queue/workers) or use "
            "an admin token"
        )

    def _owner(self, worker_id: int) -> int | None:
        with self._lock:
            if worker_id in self._owners:
                return self._owners[worker_id]
        self.workers()  # learns every worker's owner
        with self._lock:
            if worker_id in self._owners:
                return self._owners[worker_id]
        raise NotFoundError(f"no worker {worker_id}: register first")

    def claim(self, worker_id: int, c: ClaimIn, by: Grant | None = None) -> list[Claimed]:
        _check_lease(c.lease)
        self.allow(by, worker_id)
        again = self._claimed_before(worker_id, c)
        if again is not None:
            return again
        with self._borrow() as store:
            claimed = store.claim(worker_id, c.free, **_terms(c))
        return self._remember(worker_id, c, claimed)

    def _claimed_before(self, worker_id: int, c: ClaimIn) -> list[Claimed] | None:
        """The answer to the same claim sent before (its first answer was lost), or None."""
        with self._lock:
            last = self._claims.get(worker_id)
        return last[1] if c.request and last is not None and last[0] == c.request else None

    def _remember(self, worker_id: int, c: ClaimIn, claimed: list[Claimed]) -> list[Claimed]:
        with self._lock:
            self._claims[worker_id] = (c.request, claimed)
        return claimed

    def heartbeat(
        self, worker_id: int, lease: float, by: Grant | None = None
    ) -> set[tuple[int, str, int]]:
        _check_lease(lease)
        self.allow(by, worker_id)
        with self._borrow() as store:
            return store.heartbeat(worker_id, now=time.time(), lease=lease)

    def finish(
        self,
        worker_id: int,
        outcomes: Sequence[OutcomeIn],
        claim: ClaimIn | None = None,
        by: Grant | None = None,
    ) -> tuple[list[bool], list[Claimed]]:
        """Whether each outcome was accepted (False: stale, recorded as such); then what
        ``claim`` took, when one came with them."""
        check_outcomes(outcomes)
        self.allow(by, worker_id)
        reports = [outcome(o) for o in outcomes]
        again = None if claim is None else self._claimed_before(worker_id, claim)
        if claim is None or again is not None:
            with self._borrow() as store:
                accepted = store.finish(worker_id, reports, now=time.time())
            self._bump()
            return accepted, again or []
        _check_lease(claim.lease)
        with self._borrow() as store:  # one transaction a turn
            accepted, claimed = store.finish_and_claim(
                worker_id, reports, claim.free, **_terms(claim)
            )
        self._bump()
        return accepted, self._remember(worker_id, claim, claimed)

    def release(
        self,
        worker_id: int,
        attempts: Sequence[tuple[int, str, int]],
        reason: str,
        by: Grant | None = None,
    ) -> list[Lost]:
        self.allow(by, worker_id)
        with self._borrow() as store:
            released = store.release(worker_id, attempts, now=time.time(), reason=reason)
        self._bump()
        return released

    def stop(self, worker_id: int, state: str, by: Grant | None = None) -> None:
        self.allow(by, worker_id)
        with self._borrow() as store:
            store.stop_worker(worker_id, now=time.time(), state=state)
        with self._lock:
            self._claims.pop(worker_id, None)
        self._bump()

    def reap(self) -> list[Lost]:
        with self._borrow() as store:
            lost = store.reap(now=time.time())
        if lost:
            self._bump()
        return lost

    def wait(self, since: int, timeout: float) -> tuple[bool, int]:
        """Block until the work counter moves past ``since`` or ``timeout`` (at most
        :data:`WAIT_MAX`) passes; whether it moved, and its value."""
        deadline = time.monotonic() + min(max(timeout, 0.0), WAIT_MAX)
        with self._changed:
            while self.version == since and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return self.version != since, self.version

    # --- lookups ----------------------------------------------------------------------------

    def workers(self, by: Grant | None = None) -> list[WorkerRecord]:
        """Every worker; for a token of one workflow (``by``), those registered by tokens of
        that workflow."""
        with self._borrow() as store:
            found = store.workers()
            bound = None if by is None or by.workflow is None else store.tokens()
        with self._lock:
            self._owners.update((w.id, w.token_id) for w in found)
        if bound is None or by is None:
            return found
        ours = {t.id for t in bound if t.workflow == by.workflow}
        return [w for w in found if w.token_id in ours]

    def authenticate(self, token: str) -> Grant | None:
        """As :meth:`herd.service.hub.Hub.authenticate`, on the workers' own connections."""
        with self._borrow() as store:
            return check(store, token, now=time.time())

    def counts(self, workflows: Sequence[int] | None) -> dict[TaskState, int]:
        with self._borrow() as store:
            return store.queue_counts(workflows)

    def workflow(self, name: str) -> WorkflowRecord:
        with self._borrow() as store:
            found = store.workflow(name)
        if found is None:
            raise NotFoundError(f"no workflow '{name}' in the store: `herd submit` it first")
        return found

    def runs(self, workflow_id: int) -> list[RunRecord]:
        with self._borrow() as store:
            return store.runs(workflow_id)

    def queue_states(self, workflow_id: int, tasks: Sequence[str]) -> dict[str, TaskState]:
        with self._borrow() as store:
            return store.queue_states(workflow_id, tasks)

    def open_campaigns(self, workflows: Sequence[int] | None) -> int:
        with self._borrow() as store:
            return store.open_campaigns(workflows)

    def _bump(self) -> None:
        with self._changed:
            self.version += 1
            self._changed.notify_all()

    def _watch(self) -> None:
        """Bump the counter when another participant commits work; reap expired leases."""
        store = self._watch_store
        next_reap = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    if store.wait_for_work(0.25):
                        self._bump()
                    if time.monotonic() >= next_reap:
                        next_reap = time.monotonic() + REAP_EVERY
                        lost = store.reap(now=time.time())
                        if lost:
                            logger.warning("took back %d attempt(s) of silent workers", len(lost))
                            self._bump()
                except HerdError as exc:  # the store restarts: keep watching
                    logger.warning("watching %s for work: %s", self.location, exc)
                    self._stop.wait(1.0)
        finally:
            store.close()


def _terms(c: ClaimIn) -> dict[str, Any]:
    """The keywords of :meth:`~herd.store.base.WorkerStore.claim` for the claim ``c``, now."""
    return {
        "now": time.time(),
        "lease": c.lease,
        "workflows": c.workflows,
        "limit": c.limit,
        "ends_before": c.ends_before,
        "capacity": c.capacity,
    }


def _check_lease(lease: float) -> None:
    low, high = LEASE_RANGE
    if not low <= lease <= high:
        raise UsageError(f"a lease lasts {low:g} to {high:g} seconds, not {lease:g}")
