"""The dashboard: the page at ``/`` with its static files (``static/``: plain ES modules, the
libraries vendored in ``static/vendor`` by ``scripts/vendor.sh``), and the two JSON views it draws
that the rest of the API does not give — a workflow's DAG with the state of every task, and a
run's Gantt chart with the CPU and memory in use (docs/api.md, "Dashboard"; docs/dashboard.md).

The page and its files hold no data and need no token; every view the page shows is one of the
API's JSON documents, read with the reader's token (or none under ``--public-read``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from herd.reports import plot as plotting
from herd.server.auth import Reader, check_workflow, hub_of
from herd.server.workflows import Name

router = APIRouter(tags=["dashboard"])

#: the page and its files (shipped as package data: see pyproject.toml)
STATIC = Path(__file__).parent / "static"


@router.get(
    "/workflows/{name}/graph",
    summary="The DAG with every task's state and stage, edges as index pairs (the dashboard)",
)
def graph(request: Request, caller: Reader, name: Name) -> dict[str, Any]:
    """What the dashboard's graph draws (a :class:`herd.reports.dag.Dag`)."""
    check_workflow(caller, name)
    return hub_of(request).dag(name).to_json()


@router.get(
    "/workflows/{name}/chart",
    summary="A run's Gantt bars and CPU / memory in use over time (as `herd plot` draws)",
)
def chart(
    request: Request,
    caller: Reader,
    name: Name,
    run: Annotated[int | None, Query(ge=1, description="the run's id; none: the last")] = None,
) -> dict[str, Any]:
    """What the dashboard's chart draws (a :class:`herd.reports.plot.Chart`)."""
    check_workflow(caller, name)
    return plotting.to_json(hub_of(request).chart(name, run))


def mount(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files at ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
