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

from collections.abc import Callable
from typing import Annotated

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


def require(scope: Scope) -> Callable[..., Caller]:
    """A FastAPI dependency: the caller's grant when its token allows ``scope``; 401 without a
    valid token, 403 with a token of another scope. Anonymous reads pass under
    ``--public-read``."""

    def check(
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
        grant = hub_of(request).authenticate(token)
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
