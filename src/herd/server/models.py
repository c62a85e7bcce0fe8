"""The JSON shapes of the API: FastAPI validates responses against them and writes the OpenAPI
document (``/api/v1/openapi.json``) from them. Field meanings are those of the store's records
(``herd.store.base``, documented in ``sql/schema.sql``): times in epoch seconds, memory in bytes.
The reports (``stats``, ``analyze``) are their own dataclasses, shown as they are."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from herd.core.model import Kill, RunStatus, TaskState


class ErrorDetail(BaseModel):
    code: str = Field(description="a code of docs/api.md: not_found, invalid_spec, ...")
    message: str = Field(description="what happened and what to do, one line")
    file: str | None = None
    task: str | None = None
    field: str | None = None


class ErrorBody(BaseModel):
    """Every failure, whatever the path or the status."""

    error: ErrorDetail


class RunOut(BaseModel):
    id: int
    workflow_id: int
    started: float
    ended: float | None
    status: RunStatus
    host: str
    user: str
    pid: int
    argv: list[str]
    limits: dict[str, float]


class WorkflowOut(BaseModel):
    id: int
    name: str
    source: str | None
    format: str
    created: float
    tasks: int = Field(description="tasks in the workflow")
    counts: dict[str, int] = Field(description="tasks by state (every state, 0 included)")
    progress: float = Field(description="share of the tasks done (succeeded or skipped), 0..1")
    last_run: RunOut | None


class WorkflowPage(BaseModel):
    items: list[WorkflowOut]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class StatusTask(BaseModel):
    name: str
    state: TaskState
    attempts: int
    exit_code: int | None
    reason: str
    cancelled_by: str | None = Field(
        default=None, description="cancelled: the task whose failure cancelled it"
    )
    updated: float


class TaskOut(StatusTask):
    labels: list[str]


class TaskPage(BaseModel):
    items: list[TaskOut]
    next: str | None = Field(description="the cursor of the next page; null on the last")


class AttemptOut(BaseModel):
    workflow_id: int
    run_id: int
    task: str
    number: int
    host: str
    user: str
    pid: int
    start: float
    end: float | None
    state: TaskState
    reason: str = Field(description="why it ran (new, command changed, ...)")
    cmd: str
    cwd: str
    exit_code: int | None
    signal: int | None
    kill_reason: str
    kill: Kill | None
    utime: float | None
    stime: float | None
    max_rss: int | None
    peak_mem: int | None
    mean_cpu: float | None
    stdout_path: str
    stderr_path: str
    resources: dict[str, float]


class AttemptList(BaseModel):
    items: list[AttemptOut]


class RunList(BaseModel):
    items: list[RunOut]


class LogOut(BaseModel):
    task: str
    attempt: int
    stream: str
    path: str
    lines: list[str]
    problem: str = Field(description="why there are no lines (missing, empty); empty when read")


class WorkerOut(BaseModel):
    id: int
    host: str
    pid: int
    user: str
    started: float
    heartbeat: float
    state: str = Field(description="active, draining, stopped or lost")
    resources: dict[str, float]
    held: int
    lease: float = Field(description="seconds its leases last without a heartbeat")
    token_id: int | None = Field(
        None,
        description="the id of the token that registered it over HTTP (`herd token list`); "
        "null: registered without one (a database worker)",
    )


class WorkerList(BaseModel):
    items: list[WorkerOut]


class StatusOut(BaseModel):
    """What ``herd status --json`` prints."""

    workflow: str
    id: int
    source: str | None
    format: str
    created: float
    task_count: int
    counts: dict[str, int]
    last_run: RunOut | None
    interrupted: bool
    workers: list[WorkerOut]
    tasks: list[StatusTask]
    now: float


class WhyStep(BaseModel):
    """One link of ``herd why``'s chain: a task, whether it would run, and why."""

    task: str
    run: bool
    reason: str


class SubmittedOut(BaseModel):
    workflow: str
    id: int
    run_id: int
    queued: int = Field(description="tasks queued for workers")
    skipped: int = Field(description="tasks up to date")


class ResetIn(BaseModel):
    tasks: list[str] = Field(min_length=1, description="full-match regular expressions")
    downstream: bool = False


class ChangedOut(BaseModel):
    workflow: str
    tasks: list[str] = Field(description="the tasks changed (the first 1,000)")
    count: int


Provenance = list[dict[str, Any]]
