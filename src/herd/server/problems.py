"""The one error shape of the API, for every failure (docs/api.md, "Errors")::

    {"error": {"code": "not_found", "message": "no workflow 'x' in the store: ...",
               "file": ..., "task": ..., "field": ...}}

``file``, ``task`` and ``field`` appear when known (a spec's errors carry them as ``herd
validate`` prints them). :func:`install` makes FastAPI and Starlette answer their own failures
(unknown path, wrong method, a parameter that does not validate) in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from herd.errors import (
    ForbiddenError,
    HerdError,
    LockedError,
    NotFoundError,
    SpecError,
    StoreError,
    UsageError,
)
from herd.server.models import ErrorBody

logger = logging.getLogger(__name__)

#: HTTP statuses of the generic failures, and their codes
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal",
    503: "unavailable",
}


class Problem(Exception):
    """An answer in the error shape: ``status``, a ``code`` from docs/api.md, a message that says
    what to do, and where (``file``, ``task``, ``field``) when known."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        file: str | None = None,
        task: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.where = {"file": file, "task": task, "field": field}
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update({k: v for k, v in self.where.items() if v is not None})
        headers = dict(self.headers)
        if self.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"error": body}, status_code=self.status, headers=headers)


def from_herd(exc: HerdError) -> Problem:
    """The answer to a :class:`HerdError` the service raised."""
    if isinstance(exc, NotFoundError):
        return Problem(404, "not_found", exc.message)
    if isinstance(exc, ForbiddenError):
        return Problem(403, "forbidden", exc.message)
    if isinstance(exc, SpecError):
        return Problem(
            422,
            "invalid_spec",
            exc.message,
            file=exc.file,
            task=exc.task,
            field=exc.field,
        )
    if isinstance(exc, UsageError):
        return Problem(400, "bad_request", exc.message)
    if isinstance(exc, LockedError):
        return Problem(409, "conflict", exc.message)
    if isinstance(exc, StoreError):
        return Problem(503, "unavailable", exc.message)
    return Problem(500, "internal", exc.message)


def install(app: FastAPI) -> None:
    """Answer every failure in the error shape."""

    @app.exception_handler(Problem)
    async def problem(request: Request, exc: Problem) -> JSONResponse:
        return exc.response()

    @app.exception_handler(HerdError)
    async def herd_error(request: Request, exc: HerdError) -> JSONResponse:
        return from_herd(exc).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = _CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code
        if exc.status_code == 404:
            detail = f"no such path: {request.url.path} (the API is under /api/v1, see docs/api.md)"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            allowed = _allowed(app, request)
            detail = (
                f"{request.method} is not allowed on {request.url.path} (only "
                f"{', '.join(allowed)}): see docs/api.md"
            )
            headers["Allow"] = ", ".join(allowed)
        return Problem(exc.status_code, code, detail, headers=headers).response()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(where) or None
        message = str(first.get("msg", "the request is not valid"))
        text = f"{field}: {message}" if field else message
        return Problem(422, "invalid_request", text, field=field).response()

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        logger.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return Problem(
            500,
            "internal",
            f"internal error: {type(exc).__name__}: this is a bug in herd, please report it",
        ).response()


def _allowed(app: FastAPI, request: Request) -> list[str]:
    """The methods of every route at the request's path (Starlette's own ``Allow`` names only
    those of the first route that matches it)."""
    methods: set[str] = set()
    for route in app.routes:
        if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
            methods |= route.methods or set()
    return sorted(methods)


#: the error answers every route documents (OpenAPI ``responses``)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": code}
    for status, code in _CODES.items()
    if status in (400, 401, 403, 404, 413, 422, 500, 503)
}
