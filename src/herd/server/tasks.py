"""``/workflows/{name}/tasks``: a workflow's tasks filtered by state, label and name; one task,
its attempts, their provenance, and the tail of an attempt's log."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from herd.core.model import TaskState
from herd.reports.status import task_json
from herd.server import paging
from herd.server.auth import Reader, check_workflow, hub_of
from herd.server.models import AttemptList, AttemptOut, LogOut, Provenance, TaskOut, TaskPage
from herd.server.workflows import Name
from herd.service.hub import TaskRecord

router = APIRouter(tags=["tasks"])

TaskName = Annotated[str, Path(description="the task's name", max_length=1000)]
Attempt = Annotated[int | None, Query(ge=1, description="the attempt's number; none: every one")]


def task_out(t: TaskRecord, labels: tuple[str, ...]) -> TaskOut:
    return TaskOut(**task_json(t), labels=list(labels))


@router.get("/workflows/{name}/tasks", summary="A workflow's tasks, filtered and paged")
def list_tasks(
    request: Request,
    caller: Reader,
    name: Name,
    state: Annotated[list[TaskState], Query(description="any of these states (repeatable)")] = [],  # noqa: B006
    label: Annotated[str | None, Query(max_length=200, description="tasks with this label")] = None,
    match: Annotated[
        str | None,
        Query(max_length=500, description="a regular expression the name contains a match of"),
    ] = None,
    limit: paging.Limit = 100,
    cursor: paging.Cursor = None,
) -> TaskPage:
    check_workflow(caller, name)
    page = hub_of(request).tasks(
        name, state=state, label=label, pattern=match, offset=paging.offset(cursor), limit=limit
    )
    items = [task_out(t, page.labels.get(t.name, ())) for t in page.tasks]
    return TaskPage(items=items, next=paging.cursor(page.next))


@router.get("/workflows/{name}/tasks/{task}", summary="One task")
def one_task(request: Request, caller: Reader, name: Name, task: TaskName) -> TaskOut:
    check_workflow(caller, name)
    record, labels = hub_of(request).task(name, task)
    return task_out(record, labels)


@router.get("/workflows/{name}/tasks/{task}/attempts", summary="A task's attempts, oldest first")
def attempts(request: Request, caller: Reader, name: Name, task: TaskName) -> AttemptList:
    check_workflow(caller, name)
    found = hub_of(request).attempts(name, task)
    return AttemptList(items=[AttemptOut.model_validate(a, from_attributes=True) for a in found])


@router.get(
    "/workflows/{name}/tasks/{task}/provenance",
    summary="Provenance records of a task's attempts (as `herd provenance`)",
)
def provenance(
    request: Request, caller: Reader, name: Name, task: TaskName, attempt: Attempt = None
) -> Provenance:
    check_workflow(caller, name)
    return hub_of(request).provenance(name, task, attempt)


@router.get("/workflows/{name}/tasks/{task}/log", summary="The tail of an attempt's log")
def log(
    request: Request,
    caller: Reader,
    name: Name,
    task: TaskName,
    attempt: Attempt = None,
    stream: Annotated[Literal["stdout", "stderr"], Query()] = "stderr",
    lines: Annotated[int, Query(ge=0, le=10000, description="lines from the end")] = 50,
) -> LogOut:
    check_workflow(caller, name)
    number, tail = hub_of(request).log(name, task, attempt, stream=stream, lines=lines)
    return LogOut(
        task=task,
        attempt=number,
        stream=stream,
        path=tail.path,
        lines=list(tail.lines),
        problem=tail.problem,
    )
