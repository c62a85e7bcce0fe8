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
    needs = Depends(token_for(scope))

    async def check(request: Request, token: str | None = needs) -> Caller:
        if token is None:
            return None
        return judged(await _authenticate(request, token, scope), scope)

    return check


def token_for(scope: Scope) -> Callable[..., Awaitable[str | None]]:
    """A FastAPI dependency: the request's token, not checked yet (a route that checks it in
    the thread of its own store call, :func:`grant_of`, saves a thread's turn); 401 when there
    is none, None for an anonymous read under ``--public-read``."""

    async def token(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> str | None:
        found = credentials.credentials if credentials is not None else None
        if found is None and request.method == "GET":
            found = request.query_params.get("token")  # a browser's EventSource sends no header
        if found is None and not (scope is Scope.READ and request.app.state.public_read):
            raise Problem(
                401,
                "unauthorized",
                "this needs a token: send `Authorization: Bearer TOKEN` (`herd token create "
                f"--scope {scope.value}` makes one)",
            )
        return found

    return token


def judged(grant: Grant | None, scope: Scope) -> Grant:
    """``grant`` when it allows ``scope``: 401 for an unknown, expired or revoked token (None),
    403 for a token of another scope."""
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


def grant_of(
    authenticate: Callable[[str], Grant | None], token: str | None, scope: Scope
) -> Caller:
    """The caller of a request with ``token`` (from :func:`token_for`), checked by
    ``authenticate`` in the calling thread: a route's store call checks its token in the same
    thread's turn."""
    return None if token is None else judged(authenticate(token), scope)


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
#: a read's token, for routes that check it in the thread of their store call
ReaderToken = Annotated[str | None, Depends(token_for(Scope.READ))]
