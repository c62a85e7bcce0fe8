"""What a worker token made for one workflow (``herd token create --scope worker --workflow
W``) reaches of the queue: W's tasks only, as every other token for one workflow acts on it
alone (docs/api.md, "Authentication").

A claim from such a worker is narrowed to W (a claim naming another workflow is refused with
403); finishes and releases of attempts of another workflow are refused; the counts, runs and
open campaigns it asks about are W's. Before W is submitted there is nothing it may claim. A
token for every workflow passes through unchanged, at no cost.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from anyio import to_thread
from fastapi import Request

from herd.errors import NotFoundError
from herd.server.auth import Caller
from herd.server.problems import Problem
from herd.service import dispatch


async def allowed(request: Request, caller: Caller, asked: list[int] | None) -> list[int] | None:
    """The workflow ids a request may act on: ``asked`` (None: every one) narrowed to the
    token's workflow; 403 when ``asked`` names another."""
    if caller is None or caller.workflow is None:
        return asked
    own = await _own(request, caller.workflow)
    if asked is None:
        return own
    if set(asked) - set(own):
        raise _refused(caller.workflow)
    return asked


async def check(request: Request, caller: Caller, ids: Iterable[int]) -> None:
    """403 unless every workflow id of ``ids`` is the token's workflow's."""
    if caller is not None and caller.workflow is not None:
        await allowed(request, caller, sorted(set(ids)))


async def claim(request: Request, caller: Caller, c: dispatch.ClaimIn) -> dispatch.ClaimIn:
    """The claim ``c`` narrowed to the token's workflow."""
    if caller is None or caller.workflow is None:
        return c
    return msgspec.structs.replace(c, workflows=await allowed(request, caller, c.workflows))


async def _own(request: Request, name: str) -> list[int]:
    """The id of workflow ``name`` as a list, empty when it is not submitted yet."""
    d: dispatch.Dispatcher = request.app.state.dispatcher
    limiter = request.app.state.limiters.work
    try:
        found = await to_thread.run_sync(d.workflow, name, limiter=limiter)
    except NotFoundError:
        return []
    return [found.id]


def _refused(workflow: str) -> Problem:
    return Problem(
        403,
        "forbidden",
        f"this token is for workflow '{workflow}' only: its workers claim, finish and release "
        "that workflow's tasks alone",
    )
