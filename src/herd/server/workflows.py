"""``/workflows``: submit a spec, list workflows with their progress, one workflow, and the
changes a submitter makes to one (reset, cancel, retry failed)."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Body, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from herd.core.model import Scope
from herd.server import paging
from herd.server.auth import Reader, ReaderToken, Submitter, check_workflow, grant_of, hub_of
from herd.server.models import ChangedOut, ResetIn, RunOut, SubmittedOut, WorkflowOut, WorkflowPage
from herd.service.hub import Submitted, Summary
from herd.service.runs import Policy

router = APIRouter(tags=["workflows"])

Name = Annotated[str, Path(description="the workflow's name", max_length=500)]

#: the formats a spec body may be in (detected from the content, as `herd run FILE` does)
_SPEC_BODY = {
    "required": True,
    "description": "a workflow spec in any format herd reads: native YAML or JSON, O2DPG "
    "workflow.json, Pegasus wf.yml, WfFormat JSON, DAMPE XML (gzip allowed)",
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in (
            "application/yaml",
            "application/json",
            "application/xml",
            "application/gzip",
            "application/octet-stream",
        )
    },
}


def workflow_out(s: Summary) -> WorkflowOut:
    w = s.workflow
    last = RunOut.model_validate(s.last_run, from_attributes=True) if s.last_run else None
    return WorkflowOut(
        id=w.id,
        name=w.name,
        source=w.source,
        format=str(w.format),
        created=w.created,
        tasks=w.tasks,
        counts=s.counts,
        progress=s.progress,
        last_run=last,
    )


@router.get("/workflows", summary="Workflows with their task counts and progress")
def list_workflows(
    request: Request, caller: Reader, limit: paging.Limit = 100, cursor: paging.Cursor = None
) -> WorkflowPage:
    start = paging.offset(cursor)
    known = hub_of(request).workflows()
    if caller is not None and caller.workflow is not None:
        known = [s for s in known if s.workflow.name == caller.workflow]
    page = known[start : start + limit]
    more = start + limit if start + limit < len(known) else None
    return WorkflowPage(items=[workflow_out(s) for s in page], next=paging.cursor(more))


@router.post(
    "/workflows",
    status_code=201,
    summary="Submit a workflow spec for workers to run (as `herd submit`)",
    openapi_extra={"requestBody": _SPEC_BODY},
)
async def submit(
    request: Request,
    caller: Submitter,
    filename: Annotated[
        str, Query(max_length=200, description="the spec's file name, for messages")
    ] = "spec",
    policy: Annotated[Policy, Query(description="the order workers claim ready tasks in")] = (
        Policy.CRITICAL_PATH
    ),
) -> SubmittedOut:
    body = await request.body()
    hub = hub_of(request)
    workflow = await run_in_threadpool(hub.read_spec, body, filename)
    check_workflow(caller, workflow.name)
    done = await run_in_threadpool(hub.submit, workflow, policy=policy, filename=filename)
    return _submitted(workflow.name, done)


def _submitted(name: str, done: Submitted) -> SubmittedOut:
    return SubmittedOut(
        workflow=name,
        id=done.workflow_id,
        run_id=done.run_id,
        queued=done.queued,
        skipped=done.skipped,
    )


_OUT = {"$ref": "#/components/schemas/WorkflowOut"}


@router.get(
    "/workflows/{name}",
    summary="One workflow with its task counts and last run",
    response_class=Response,
    responses={200: {"description": "OK", "content": {"application/json": {"schema": _OUT}}}},
)
async def one_workflow(request: Request, token: ReaderToken, name: Name) -> Response:
    # what a crowd of status polls asks: the token checked and the summary looked up in one
    # thread's turn, its JSON encoded once per summary (the hub keeps one while the store's
    # change mark stands, Hub.workflow)
    hub = hub_of(request)
    encoded: dict[str, tuple[Summary, bytes]] = request.app.state.encoded

    def look() -> bytes:
        check_workflow(grant_of(hub.authenticate, token, Scope.READ), name)
        found = hub.workflow(name)
        kept = encoded.get(name)
        if kept is not None and kept[0] is found:
            return kept[1]
        body = workflow_out(found).model_dump_json().encode()
        encoded[name] = (found, body)
        return body

    return Response(await to_thread.run_sync(look), media_type="application/json")


@router.post(
    "/workflows/{name}/cancel",
    summary="Cancel what is left of a submitted workflow (running attempts are stopped)",
)
def cancel(request: Request, caller: Submitter, name: Name) -> ChangedOut:
    check_workflow(caller, name)
    names = hub_of(request).cancel(name)
    return ChangedOut(workflow=name, tasks=names[:1000], count=len(names))


@router.post(
    "/workflows/{name}/retry",
    summary="Queue the failed tasks (and those they cancelled) again, from the kept spec",
)
def retry(request: Request, caller: Submitter, name: Name) -> SubmittedOut:
    check_workflow(caller, name)
    workflow, done = hub_of(request).retry(name)
    return _submitted(workflow.name, done)


@router.post(
    "/workflows/{name}/reset",
    summary="Forget that tasks succeeded so that they run again (as `herd reset`)",
)
def reset(
    request: Request, caller: Submitter, name: Name, body: Annotated[ResetIn, Body()]
) -> ChangedOut:
    check_workflow(caller, name)
    names = hub_of(request).reset(name, body.tasks, downstream=body.downstream)
    return ChangedOut(workflow=name, tasks=names[:1000], count=len(names))
