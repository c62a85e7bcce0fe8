"""The worker protocol over HTTP (docs/api.md, "Workers"): what ``herd worker --server`` calls,
the same transactions and fencing as database workers, under ``/api/v1/queue``.

Every route needs a token of scope ``worker`` (or ``admin``); a worker token can do nothing
else, drives only the workers it registered (:meth:`~herd.service.dispatch.Dispatcher.allow`:
403 for another's), and one made for a workflow reaches that workflow's tasks alone
(:mod:`herd.server.scoped`). Bodies and answers are the queue's own records as JSON
(:mod:`herd.service.dispatch` re-exports their types; their schemas are in the OpenAPI
document). The service does the work (:class:`~herd.service.dispatch.Dispatcher`): the routes
only decode, call it in a thread and encode. A finish of an attempt whose lease was taken back is refused with 409 (code ``stale``),
its report recorded as stale; the body also says which outcomes of the batch were accepted.
The long poll ``GET /queue/wait`` holds no connection to the store while it waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Path, Query, Request, Response

from herd.core.model import TaskState
from herd.errors import UsageError
from herd.server import scoped
from herd.server.auth import WorkerCaller, check_workflow
from herd.server.problems import Problem
from herd.service import dispatch
from herd.service.dispatch import Dispatcher

router = APIRouter(prefix="/queue", tags=["workers"])

T = TypeVar("T")
WorkerId = Annotated[int, Path(ge=1, le=2**62, description="the id `register` returned")]


def dispatcher_of(request: Request) -> Dispatcher:
    """The queue the application shares with its workers."""
    found: Dispatcher = request.app.state.dispatcher
    return found


async def _body(request: Request, kind: type[T], what: str) -> T:
    """The JSON body as a ``kind``; 422 in the error shape when it is not one."""
    try:
        return dispatch.decode(await request.body(), kind, what)
    except UsageError as exc:
        raise Problem(422, "invalid_request", exc.message) from None


def _json(value: Any, status: int = 200) -> Response:
    return Response(dispatch.encode(value), status_code=status, media_type="application/json")


def _doc(
    answer: type[Any], body: type[Any] | None = None, more: dict[int | str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI parts of a route whose body and answer are queue records."""
    extra: dict[str, Any] = {}
    if body is not None:
        content = {"application/json": {"schema": dispatch.schema(body)}}
        extra["openapi_extra"] = {"requestBody": {"required": True, "content": content}}
    ok = {"description": "OK", "content": {"application/json": {"schema": dispatch.schema(answer)}}}
    return {"responses": {200: ok, **(more or {})}, "response_class": Response, **extra}


#: threads for the worker routes' store calls (their own: polls of the status and the
#: dashboard, on the default 40, do not delay the queue), and for the long polls, which hold one
#: each while they wait but no connection
WORK_THREADS = 16
WAIT_THREADS = 1000


@dataclass(frozen=True)
class Limiters:
    """The worker routes' threads (see :data:`WORK_THREADS`)."""

    work: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(WORK_THREADS))
    wait: CapacityLimiter = field(default_factory=lambda: CapacityLimiter(WAIT_THREADS))


async def _call(request: Request, work: Callable[[Dispatcher], T], *, waits: bool = False) -> T:
    """``work`` on the dispatcher, in a thread of the worker routes; values the store cannot
    hold (an integer past 64 bits, text that is not Unicode) are the request's fault: 422."""
    d = dispatcher_of(request)
    limiters: Limiters = request.app.state.limiters
    try:
        return await to_thread.run_sync(work, d, limiter=limiters.wait if waits else limiters.work)
    except (OverflowError, UnicodeError) as exc:
        raise Problem(
            422, "invalid_request", f"a value of the request cannot be stored: {exc}"
        ) from None


@router.post(
    "/workers", summary="Register a worker; its id", **_doc(dispatch.Registered, dispatch.Register)
)
async def register(request: Request, caller: WorkerCaller) -> Response:
    r = await _body(request, dispatch.Register, "a worker's registration")
    return _json(dispatch.Registered(await _call(request, lambda d: d.register(r, caller))))


@router.post(
    "/workers/{worker_id}/claim",
    summary="Claim ready tasks that fit the worker's free resources",
    **_doc(dispatch.ClaimOut, dispatch.ClaimIn),
)
async def claim(worker_id: WorkerId, request: Request, caller: WorkerCaller) -> Response:
    c = await scoped.claim(request, caller, await _body(request, dispatch.ClaimIn, "a claim"))
    return _json(dispatch.ClaimOut(await _call(request, lambda d: d.claim(worker_id, c, caller))))


@router.post(
    "/workers/{worker_id}/heartbeat",
    summary="Renew the worker's leases; the attempts it still holds",
    **_doc(dispatch.HeartbeatOut, dispatch.HeartbeatIn),
)
async def heartbeat(worker_id: WorkerId, request: Request, caller: WorkerCaller) -> Response:
    h = await _body(request, dispatch.HeartbeatIn, "a heartbeat")
    held = await _call(request, lambda d: d.heartbeat(worker_id, h.lease, caller))
    return _json(dispatch.HeartbeatOut([dispatch.AttemptKey(*h) for h in sorted(held)]))


_STALE = {
    "description": "stale: the lease of some attempts had been taken back (reaped or "
    "released); their reports are recorded as stale, the others accepted",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


@router.post(
    "/workers/{worker_id}/finish",
    summary="Report how claimed attempts ended (fenced by their leases); claim more",
    **_doc(dispatch.FinishOut, dispatch.FinishIn, {409: _STALE}),
)
async def finish(worker_id: WorkerId, request: Request, caller: WorkerCaller) -> Response:
    f = await _body(request, dispatch.FinishIn, "a finish")
    await scoped.check(request, caller, (o.attempt.workflow_id for o in f.outcomes))
    more = None if f.claim is None else await scoped.claim(request, caller, f.claim)
    accepted, claimed = await _call(
        request, lambda d: d.finish(worker_id, f.outcomes, more, caller)
    )
    if all(accepted):
        return _json(dispatch.FinishOut(accepted, claimed))
    stale = [o.attempt for o, ok in zip(f.outcomes, accepted, strict=True) if not ok]
    first = stale[0]
    message = (
        f"attempt {first.number} of task '{first.task}'"
        + (f" and {len(stale) - 1} more" if len(stale) > 1 else "")
        + f" no longer belong to worker {worker_id}: their leases were taken back (the worker "
        "was silent longer than its lease) and the tasks run again elsewhere; the reports "
        "are recorded as stale"
    )
    body = {"error": {"code": "stale", "message": message, "task": first.task}}
    return _json({**body, "accepted": accepted, "claimed": claimed}, 409)


@router.post(
    "/workers/{worker_id}/release",
    summary="Give back attempts the worker will not finish (draining)",
    **_doc(dispatch.ReleaseOut, dispatch.ReleaseIn),
)
async def release(worker_id: WorkerId, request: Request, caller: WorkerCaller) -> Response:
    r = await _body(request, dispatch.ReleaseIn, "a release")
    await scoped.check(request, caller, (a.workflow_id for a in r.attempts))
    keys = [a.key for a in r.attempts]
    released = await _call(request, lambda d: d.release(worker_id, keys, r.reason, caller))
    return _json(dispatch.ReleaseOut(released))


@router.post(
    "/workers/{worker_id}/stop",
    summary="Mark the worker stopped (its leases released) or draining",
    **_doc(dispatch.Stopped, dispatch.StopIn),
)
async def stop(worker_id: WorkerId, request: Request, caller: WorkerCaller) -> Response:
    s = await _body(request, dispatch.StopIn, "a stop")
    await _call(request, lambda d: d.stop(worker_id, s.state, caller))
    return _json(dispatch.Stopped(s.state))


@router.post("/reap", summary="Take back every expired lease", **_doc(dispatch.ReapOut))
async def reap(request: Request, caller: WorkerCaller) -> Response:
    return _json(dispatch.ReapOut(await _call(request, lambda d: d.reap())))


@router.get(
    "/workers",
    summary="Every worker, for a worker (a token for one workflow: the workers of that "
    "workflow's tokens)",
    **_doc(dispatch.WorkersOut),
)
async def workers(request: Request, caller: WorkerCaller) -> Response:
    return _json(dispatch.WorkersOut(await _call(request, lambda d: d.workers(caller))))


@router.get(
    "/wait",
    summary="Long poll: return when work may have become claimable",
    **_doc(dispatch.WaitOut),
)
async def wait(
    request: Request,
    caller: WorkerCaller,
    since: Annotated[int, Query(ge=-1, le=2**62, description="the version seen last")] = -1,
    timeout: Annotated[
        float, Query(ge=0, le=dispatch.WAIT_MAX, description="seconds to wait at most")
    ] = 0.0,
) -> Response:
    work, version = await _call(request, lambda d: d.wait(since, timeout), waits=True)
    return _json(dispatch.WaitOut(work, version))


@router.get("/counts", summary="Queued tasks by state", **_doc(dispatch.CountsOut))
async def counts(
    request: Request,
    caller: WorkerCaller,
    workflow: Annotated[list[int] | None, Query(description="workflow ids (default: all)")] = None,
) -> Response:
    workflow = await scoped.allowed(request, caller, workflow)
    found: dict[TaskState, int] = await _call(request, lambda d: d.counts(workflow))
    return _json(dispatch.CountsOut({s.value: n for s, n in found.items()}))


@router.get(
    "/workflows/{name}",
    summary="A workflow's record, for a worker told to serve it",
    **_doc(dispatch.WorkflowRecord),
)
async def workflow(name: str, request: Request, caller: WorkerCaller) -> Response:
    check_workflow(caller, name)
    return _json(await _call(request, lambda d: d.workflow(name)))


@router.get("/runs", summary="A workflow's runs, for a worker", **_doc(dispatch.RunsOut))
async def runs(
    request: Request,
    caller: WorkerCaller,
    workflow_id: Annotated[int, Query(ge=1, le=2**62)],
) -> Response:
    await scoped.check(request, caller, [workflow_id])
    return _json(dispatch.RunsOut(await _call(request, lambda d: d.runs(workflow_id))))


@router.post(
    "/states",
    summary="The queue states of named tasks (a worker removes temp files once all readers "
    "succeeded)",
    **_doc(dispatch.StatesOut, dispatch.StatesIn),
)
async def states(request: Request, caller: WorkerCaller) -> Response:
    asked = await _body(request, dispatch.StatesIn, "a question of queue states")
    await scoped.check(request, caller, [asked.workflow_id])
    found = await _call(request, lambda d: d.queue_states(asked.workflow_id, asked.tasks))
    return _json(dispatch.StatesOut({task: state.value for task, state in found.items()}))


@router.get(
    "/campaigns/open",
    summary="How many open campaigns have one of the workflows (a worker serving one waits "
    "for runs)",
    **_doc(dispatch.OpenOut),
)
async def open_campaigns(
    request: Request,
    caller: WorkerCaller,
    workflow: Annotated[list[int] | None, Query(description="workflow ids (default: all)")] = None,
) -> Response:
    workflow = await scoped.allowed(request, caller, workflow)
    return _json(dispatch.OpenOut(await _call(request, lambda d: d.open_campaigns(workflow))))
