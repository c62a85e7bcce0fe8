"""Who may do what: bearer tokens and their scopes (docs/api.md, "Authentication").

Every request that changes something needs ``Authorization: Bearer TOKEN`` with a token whose
scope allows it (:meth:`herd.core.model.Scope.allows`); reads need one of scope ``read`` (or
above) unless the server runs with ``--public-read``. A ``GET`` may carry the token as the
query parameter ``token`` instead (a browser's ``EventSource`` cannot send headers): the
server's access log leaves query strings out. A token made for one workflow
(``herd token create --workflow W``) acts on that workflow only. Tokens are checked by the
service (:meth:`herd.service.hub.Hub.authenticate`: hashed, compared in constant time); this
module never logs one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from anyio import to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from herd.core.model import Scope
from herd.server.problems import Problem
from herd.service.hub import Grant, Hub

#: the OpenAPI security scheme; missing or malformed headers are answered in our error shape
bearer = HTTPBearer(auto_error=False, description="a token from `herd token create`")

#: what a route gets from :func:`require`: the grant, or None for an anonymous public read
Caller = Grant | None


def hub_of(request: Request) -> Hub:
    """The service the application was created over."""
    hub: Hub = request.app.state.hub
    return hub


def require(scope: Scope) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency: the caller's grant when its token allows ``scope``; 401 without a
    valid token, 403 with a token of another scope. Anonymous reads pass under
    ``--public-read``."""

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        token = credentials.credentials if credentials is not None else None
        if token is None and request.method == "GET":
            token = request.query_params.get("token")  # a browser's EventSource sends no header
        if token is None:
            if scope is Scope.READ and request.app.state.public_read:
                return None
            raise Problem(
                401,
                "unauthorized",
                "this needs a token: send `Authorization: Bearer TOKEN` (`herd token create "
                f"--scope {scope.value}` makes one)",
            )
        grant = await _authenticate(request, token, scope)
        if grant is None:
            raise Problem(
                401,
                "unauthorized",
                "the token is unknown, expired or revoked: ask for a new one (`herd token list`)",
            )
        if not grant.scope.allows(scope):
            raise Problem(
                403,
                "forbidden",
                f"a token of scope '{grant.scope.value}' may not do this: it needs scope "
                f"'{scope.value}'",
            )
        return grant

    return check


async def _authenticate(request: Request, token: str, scope: Scope) -> Grant | None:
    """The token's grant, in a thread: a worker's on the workers' own connections and threads
    (status polls do not delay the queue), any other's on the hub's."""
    state = request.app.state
    if scope is Scope.WORKER:
        d = state.dispatcher
        return await to_thread.run_sync(d.authenticate, token, limiter=state.limiters.work)
    return await to_thread.run_sync(hub_of(request).authenticate, token)


def check_workflow(caller: Caller, workflow: str) -> None:
    """403 when the caller's token is for another workflow than ``workflow``."""
    if caller is not None and caller.workflow is not None and caller.workflow != workflow:
        raise Problem(
            403,
            "forbidden",
            f"this token is for workflow '{caller.workflow}' only, not '{workflow}'",
        )


Reader = Annotated[Caller, Depends(require(Scope.READ))]
Submitter = Annotated[Caller, Depends(require(Scope.SUBMIT))]
WorkerCaller = Annotated[Caller, Depends(require(Scope.WORKER))]
