"""What the CLI's read commands show, as JSON: ``/status`` (``herd status``), a workflow's runs,
``/stats`` (``herd stats``), ``/analyze`` (``herd analyze``), and ``/workers``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from herd.reports import analyze as analyzing
from herd.reports import stats as statistics
from herd.server.auth import Reader, check_workflow, hub_of
from herd.server.models import RunList, RunOut, StatusOut, WhyStep, WorkerList, WorkerOut
from herd.server.tasks import TaskName
from herd.server.workflows import Name

router = APIRouter(tags=["reports"])


@router.get("/status", summary="Where every task stands (as `herd status --json`)")
def status(
    request: Request,
    caller: Reader,
    workflow: Annotated[
        str | None,
        Query(max_length=500, description="the workflow; none: the store's only one"),
    ] = None,
) -> StatusOut:
    if workflow is None and caller is not None and caller.workflow is not None:
        workflow = caller.workflow
    if workflow is not None:
        check_workflow(caller, workflow)
    return StatusOut.model_validate(hub_of(request).status(workflow).to_json())


@router.get("/workflows/{name}/runs", summary="A workflow's runs, oldest first")
def runs(request: Request, caller: Reader, name: Name) -> RunList:
    check_workflow(caller, name)
    found = hub_of(request).runs(name)
    return RunList(items=[RunOut.model_validate(r, from_attributes=True) for r in found])


@router.get("/workflows/{name}/stats", summary="Counts, retries, times, a table per label")
def stats(request: Request, caller: Reader, name: Name) -> dict[str, Any]:
    """What ``herd stats --json`` prints (a :class:`herd.reports.stats.Stats`)."""
    check_workflow(caller, name)
    return statistics.to_json(hub_of(request).stats(name))


@router.get("/workflows/{name}/analyze", summary="Failed tasks: outcome, kill reason, log tails")
def analyze(
    request: Request,
    caller: Reader,
    name: Name,
    lines: Annotated[int, Query(ge=0, le=10000, description="log lines per attempt")] = 20,
    all: Annotated[bool, Query(description="also failed attempts that were retried")] = False,
) -> dict[str, Any]:
    """What ``herd analyze --json`` prints (a :class:`herd.reports.analyze.Analysis`)."""
    check_workflow(caller, name)
    found = hub_of(request).analyze(name, lines=lines, all_attempts=all)
    return analyzing.to_json(found)


@router.get(
    "/workflows/{name}/why/{task}",
    summary="Why a task would run (or not) if submitted again, root cause last (`herd why`)",
)
def why(request: Request, caller: Reader, name: Name, task: TaskName) -> list[WhyStep]:
    check_workflow(caller, name)
    steps = hub_of(request).why(name, task)
    return [WhyStep(task=s.task, run=s.run, reason=s.reason) for s in steps]


@router.get("/workers", summary="Every worker the store knows, with the tasks each holds")
def workers(request: Request, caller: Reader) -> WorkerList:
    found = hub_of(request).workers()
    return WorkerList(items=[WorkerOut.model_validate(w, from_attributes=True) for w in found])
