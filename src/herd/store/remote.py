"""A worker's store over HTTP: ``herd worker --server URL --token T`` at a site that reaches the
server but not the database.

:class:`RemoteQueue` implements :class:`~herd.store.base.WorkerStore` by calling the server's
worker endpoints (docs/api.md, "Workers"; :mod:`herd.server.workers`), so :class:`~herd.run.
worker.Worker` runs the same loop on it as on a database: leases, heartbeats, drain, fencing.

The token goes in ``Authorization: Bearer`` and is never logged. Times come from the server's
clock (the ``now`` arguments are ignored): leases are the server's to judge.

Faults
------
When the server cannot be reached, times out or answers 5xx (a restart, a proxy's 502/503), a
call is sent again after an exponential back-off with full jitter (0.2 s doubling, at most
:data:`BACKOFF_MAX`), for up to ``retry_for`` seconds; then a :class:`~herd.errors.StoreError`.
Sending again is safe: heartbeat, release, stop and reap are idempotent; a finish already
recorded is accepted again (the store recognises its own report); a claim carries a request
name, and the server answers a repeated claim with its first answer. A claim whose answer was
lost in a server restart is given back by the worker at its next heartbeat (it learns from the
server that it holds tasks it never heard of). A 4xx is not retried: its message (the server's
error shape) becomes the :class:`~herd.errors.StoreError`'s. A finish refused because the lease
was taken back comes as 409 with the attempts that were accepted: the others are stale.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from herd.core.model import TaskState
from herd.errors import StoreError
from herd.store import wire
from herd.store.base import RunRecord, WorkflowRecord
from herd.store.queued import Claimed, Lost, Outcome, WorkerRecord

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: the versioned prefix of the worker endpoints
PREFIX = "/api/v1/queue"
#: seconds of the first back-off; it doubles up to BACKOFF_MAX
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 10.0
#: seconds between two looks for work when the worker asks without waiting (tasks running)
POLL_FLOOR = 0.1
#: seconds between two looks at the server's workers, and two reaps asked of it
LOOK_EVERY = 10.0


class RemoteQueue:
    """The worker protocol over HTTP (see the module docstring)."""

    def __init__(
        self, url: str, token: str, *, timeout: float = 30.0, retry_for: float = 600.0
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        self._client = httpx.Client(
            base_url=self.url + PREFIX,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "herd-worker"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            verify=tls_for(self.url),
        )
        self._version = -1  # the server's work counter when last looked at
        self._looked = 0.0  # monotonic time of the last look
        self._failing_since: float | None = None
        self._workers: tuple[float, list[WorkerRecord]] | None = None
        self._reaped = -LOOK_EVERY

    def __repr__(self) -> str:
        return f"RemoteQueue({self.url!r})"

    def close(self) -> None:
        self._client.close()

    # --- lookups ----------------------------------------------------------------------------

    def workflow(self, name: str) -> WorkflowRecord | None:
        got = self._call("GET", f"/workflows/{_quote(name)}", missing_ok=True)
        return None if got is None else msgspec.convert(got, WorkflowRecord)

    def runs(self, workflow_id: int) -> list[RunRecord]:
        return self._answer(wire.RunsOut, "GET", "/runs", params={"workflow_id": workflow_id}).runs

    def queue_counts(self, workflows: Sequence[int] | None = None) -> dict[TaskState, int]:
        if workflows is not None and not workflows:
            return {}
        params = {} if workflows is None else {"workflow": list(workflows)}
        counts = self._answer(wire.CountsOut, "GET", "/counts", params=params).counts
        return {TaskState(k): n for k, n in counts.items()}

    def queue_states(self, workflow_id: int, tasks: Sequence[str]) -> dict[str, TaskState]:
        """As a database's: a worker removes a temp file once every reader succeeded."""
        body = wire.StatesIn(workflow_id, list(tasks))
        found = self._answer(wire.StatesOut, "POST", "/states", body).states
        return {task: TaskState(state) for task, state in found.items()}

    def open_campaigns(self, workflows: Sequence[int] | None = None) -> int:
        """As a database's: a worker serving an open campaign waits for its runs."""
        if workflows is not None and not workflows:
            return 0
        params = {} if workflows is None else {"workflow": list(workflows)}
        return self._answer(wire.OpenOut, "GET", "/campaigns/open", params=params).open

    def workers(self) -> list[WorkerRecord]:
        """The server's workers, asked at most every :data:`LOOK_EVERY` seconds (a worker looks
        for dead workers of its host every second)."""
        mono = time.monotonic()
        if self._workers is None or mono - self._workers[0] >= LOOK_EVERY:
            found = self._answer(wire.WorkersOut, "GET", "/workers").workers
            self._workers = (mono, found)
        return self._workers[1]

    # --- the queue's transactions -----------------------------------------------------------

    def register_worker(
        self,
        *,
        host: str,
        pid: int,
        user: str,
        resources: Mapping[str, float],
        now: float,
        lease: float,
        token_id: int | None = None,
    ) -> int:
        """(``token_id`` is not sent: the server records the token this queue sends.)"""
        body = wire.Register(host, pid, user, dict(resources), lease)
        return self._answer(wire.Registered, "POST", "/workers", body).id

    def claim(
        self,
        worker_id: int,
        free: Mapping[str, float],
        *,
        now: float,
        lease: float,
        workflows: Sequence[int] | None = None,
        limit: int | None = None,
        ends_before: float | None = None,
        capacity: Mapping[str, float] | None = None,
    ) -> list[Claimed]:
        body = _claim_in(free, lease, workflows, limit, ends_before, capacity)
        return self._answer(wire.ClaimOut, "POST", f"/workers/{worker_id}/claim", body).claimed

    def heartbeat(self, worker_id: int, *, now: float, lease: float) -> set[tuple[int, str, int]]:
        path = f"/workers/{worker_id}/heartbeat"
        held = self._answer(wire.HeartbeatOut, "POST", path, wire.HeartbeatIn(lease)).held
        return {h.key for h in held}

    def finish(self, worker_id: int, outcomes: Sequence[Outcome], *, now: float) -> list[bool]:
        return self._finish(worker_id, outcomes, None)[0]

    def finish_and_claim(
        self, worker_id: int, outcomes: Sequence[Outcome], free: Mapping[str, float], **terms: Any
    ) -> tuple[list[bool], list[Claimed]]:
        """:meth:`finish`, then :meth:`claim` (``terms``: its keywords), in one round trip."""
        claim = _claim_in(
            free,
            terms["lease"],
            terms.get("workflows"),
            terms.get("limit"),
            terms.get("ends_before"),
            terms.get("capacity"),
        )
        return self._finish(worker_id, outcomes, claim)

    def _finish(
        self, worker_id: int, outcomes: Sequence[Outcome], claim: wire.ClaimIn | None
    ) -> tuple[list[bool], list[Claimed]]:
        body = wire.FinishIn([wire.outcome_in(o) for o in outcomes], claim)
        got = self._answer(
            wire.FinishOut, "POST", f"/workers/{worker_id}/finish", body, stale_ok=True
        )
        if len(got.accepted) != len(outcomes):
            raise StoreError(
                f"{self.url} answered a finish of {len(outcomes)} attempts with "
                f"{len(got.accepted)} verdicts: is it a herd server of this version?"
            )
        return got.accepted, got.claimed

    def release(
        self, worker_id: int, attempts: Sequence[tuple[int, str, int]], *, now: float, reason: str
    ) -> list[Lost]:
        body = wire.ReleaseIn([wire.AttemptKey(*a) for a in attempts], reason)
        return self._answer(wire.ReleaseOut, "POST", f"/workers/{worker_id}/release", body).released

    def stop_worker(self, worker_id: int, *, now: float, state: str = "stopped") -> None:
        self._call("POST", f"/workers/{worker_id}/stop", wire.StopIn.of(state))

    def reap(self, *, now: float) -> list[Lost]:
        """Ask the server to reap, at most every :data:`LOOK_EVERY` seconds: it reaps by itself
        every second."""
        mono = time.monotonic()
        if mono - self._reaped < LOOK_EVERY:
            return []
        self._reaped = mono
        return self._answer(wire.ReapOut, "POST", "/reap").lost

    def wait_for_work(self, timeout: float) -> bool:
        """Long-poll the server's work counter: True when it moved since the last look. Without
        a timeout (tasks running, cores free) it asks at most every :data:`POLL_FLOOR`
        seconds."""
        mono = time.monotonic()
        if timeout <= 0 and mono - self._looked < POLL_FLOOR:
            return False
        params = {"since": self._version, "timeout": round(max(timeout, 0.0), 3)}
        got = self._answer(wire.WaitOut, "GET", "/wait", params=params, wait=timeout)
        self._looked = time.monotonic()
        moved = got.version != self._version
        self._version = got.version
        return moved and got.work

    # --- plumbing ---------------------------------------------------------------------------

    def _answer(
        self,
        kind: type[T],
        method: str,
        path: str,
        body: msgspec.Struct | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        wait: float = 0.0,
        stale_ok: bool = False,
    ) -> T:
        got = self._call(method, path, body, params=params, wait=wait, stale_ok=stale_ok)
        try:
            return msgspec.convert(got, kind)
        except msgspec.ValidationError as exc:
            raise StoreError(
                f"{self.url} answered {method} {path} with something herd cannot read ({exc}): "
                "is it a herd server of this version?"
            ) from None

    def _call(
        self,
        method: str,
        path: str,
        body: msgspec.Struct | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        wait: float = 0.0,
        missing_ok: bool = False,
        stale_ok: bool = False,
    ) -> Any:
        """The decoded JSON answer; sent again while the server is unreachable or answers 5xx
        (see the module docstring). None for a 404 when ``missing_ok``; a 409's body when
        ``stale_ok`` (a finish with stale attempts)."""
        content = None if body is None else wire.encode(body)
        headers = {"Content-Type": "application/json"} if content is not None else None
        timeout = self._client.timeout
        if wait > 0:  # a long poll: the server holds the answer up to ``wait``
            timeout = httpx.Timeout(timeout.read + wait if timeout.read else None, connect=10.0)
        deadline = time.monotonic() + self.retry_for
        delay = BACKOFF_FIRST
        while True:
            try:
                r = self._client.request(
                    method, path, content=content, params=params, headers=headers, timeout=timeout
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc or 'no answer'}"
            else:
                if r.status_code < 500:
                    self._recovered()
                    return self._read(r, method, path, missing_ok, stale_ok)
                problem = f"HTTP {r.status_code}: {_message(r)}"
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    f"the herd server at {self.url} did not answer {method} {path} for "
                    f"{self.retry_for:g} s ({problem}): check that `herd serve` runs and is "
                    "reachable from here, then start the worker again"
                )
            pause = min(random.uniform(0, delay), left)  # full jitter: workers do not stampede
            self._failing(problem, pause)
            time.sleep(pause)
            delay = min(delay * 2, BACKOFF_MAX)

    def _read(self, r: httpx.Response, method: str, path: str, missing: bool, stale: bool) -> Any:
        if r.status_code == 404 and missing:
            return None
        if r.is_success or (r.status_code == 409 and stale):
            try:
                return r.json() if r.content else {}
            except ValueError:
                raise StoreError(
                    f"{self.url} answered {method} {path} with something that is not JSON: "
                    "is the URL that of a herd server?"
                ) from None
        what = {401: "refused the token", 403: "refused the token"}.get(r.status_code, "refused")
        raise StoreError(
            f"the herd server at {self.url} {what} ({method} {path}, HTTP {r.status_code}): "
            f"{_message(r)}"
        )

    def _failing(self, problem: str, pause: float) -> None:
        mono = time.monotonic()
        if self._failing_since is None:
            self._failing_since = mono
            logger.warning(
                "the herd server at %s does not answer (%s); trying again with back-off for up "
                "to %g s",
                self.url,
                problem,
                self.retry_for,
            )
        else:
            logger.info(
                "still no answer from %s (%s); next try in %.1f s", self.url, problem, pause
            )

    def _recovered(self) -> None:
        if self._failing_since is not None:
            logger.warning(
                "the herd server at %s answers again (after %.1f s)",
                self.url,
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None


def _claim_in(
    free: Mapping[str, float],
    lease: float,
    workflows: Sequence[int] | None,
    limit: int | None,
    ends_before: float | None,
    capacity: Mapping[str, float] | None,
) -> wire.ClaimIn:
    """A claim, named so that the server answers it once when it is sent again."""
    return wire.ClaimIn(
        dict(free),
        lease,
        None if workflows is None else list(workflows),
        limit,
        ends_before,
        None if capacity is None else dict(capacity),
        request=uuid.uuid4().hex,
    )


def tls_for(url: str) -> ssl.SSLContext | bool:
    """What ``httpx`` verifies a server with: the system's CA bundle for ``https://``; for plain
    ``http://`` a context that trusts no one, never used (redirects are not followed): loading
    the bundle costs 45-130 ms of CPU per client."""
    if url.lower().startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _message(r: httpx.Response) -> str:
    """The message of the server's error shape, else the start of the body."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:200].strip() or r.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    return str(body)[:200]


def _quote(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
