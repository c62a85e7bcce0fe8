"""Campaigns over HTTP (docs/campaigns.md): ``GET /api/v1/campaigns`` (each with its counts by
status), ``GET /api/v1/campaigns/{name}`` (the runs x tasks matrix, as ``herd campaign status
--json``), and ``GET /metrics`` (the store as Prometheus gauges, :mod:`herd.service.metrics`),
served at the root where Prometheus looks. Every route is a read (a token of scope ``read``,
or none under ``--public-read``; Prometheus sends one with ``authorization.credentials``). A
token for one workflow sees the campaign of that name alone (a campaign's workflow bears its
name), and no ``/metrics``: they cover every workflow."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import PlainTextResponse

from herd.server.auth import Reader, check_workflow, hub_of
from herd.server.problems import Problem
from herd.service import campaigns, metrics

router = APIRouter(tags=["campaigns"])
#: ``/metrics``, outside ``/api/v1``
root = APIRouter(tags=["metrics"])

Name = Annotated[str, Path(max_length=500, description="the campaign")]


@router.get("/campaigns", summary="Every campaign, with its run x task counts by status")
def listing(request: Request, caller: Reader) -> dict[str, Any]:
    found = campaigns.listing_on(hub_of(request))
    if caller is not None and caller.workflow is not None:
        found = [s for s in found if s.record.name == caller.workflow]
    return {
        "items": [
            {
                "name": s.record.name,
                "runs": s.record.runs,
                "open": s.record.closed is None,
                "created": s.record.created,
                "tasks": [t.name for t in s.record.template.tasks],
                "status": {str(k): v for k, v in s.counts.items()},
            }
            for s in found
        ]
    }


@router.get("/campaigns/{name}", summary="A campaign's runs x tasks matrix")
def matrix(
    request: Request,
    caller: Reader,
    name: Name,
    runs: Annotated[
        str | None, Query(max_length=50, description="run numbers A-B, A- or A")
    ] = None,
    task: Annotated[str | None, Query(max_length=500, description="only this task")] = None,
) -> dict[str, Any]:
    """What ``herd campaign status --json`` prints."""
    check_workflow(caller, name)
    chosen = campaigns.runs_range(runs) if runs else None
    return campaigns.status_on(hub_of(request), name, runs=chosen, task=task).to_json()


@root.get(
    "/metrics",
    summary="The store as Prometheus gauges (text exposition format 0.0.4)",
    response_class=PlainTextResponse,
    include_in_schema=False,  # outside /api/v1, and text: not part of the JSON API's document
)
def prometheus(request: Request, caller: Reader) -> PlainTextResponse:
    if caller is not None and caller.workflow is not None:
        raise Problem(
            403,
            "forbidden",
            f"this token is for workflow '{caller.workflow}' only; /metrics covers every "
            "workflow: give Prometheus a token for every workflow",
        )
    text = metrics.collect_on(hub_of(request))
    return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)
