"""The ASGI application over one store, and :func:`serve`, which runs it under uvicorn.

:func:`create_app` is what ``herd serve`` runs and what the tests start: every route lives
under ``/api/v1`` (the OpenAPI document at ``/api/v1/openapi.json``, its browsable form at
``/api/v1/docs``); the dashboard's static files, when present, are served at ``/``.
Bodies larger than ``max_body`` bytes are refused with 413 before they are read whole.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI

from herd.errors import UsageError
from herd.server import campaigns, events, problems, reports, tasks, views, workers, workflows
from herd.server.problems import Problem
from herd.service.dispatch import Dispatcher
from herd.service.hub import Hub, Pool
from herd.version import __version__

logger = logging.getLogger(__name__)
#: the access log (``herd.server.access``); uvicorn's own, which prints query strings, is off
access = logging.getLogger("herd.server.access")

#: the largest request body accepted, by default (a spec of some 100,000 tasks)
MAX_BODY = 64 * 1024 * 1024
#: where the API lives
PREFIX = "/api/v1"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_app(
    store: str | None,
    *,
    workdir: Path = Path("."),
    public_read: bool = False,
    max_body: int = MAX_BODY,
    pool: int = 8,
) -> FastAPI:
    """The HTTP API over the store ``store`` (a ``postgresql://`` URL or an SQLite file),
    opened now. ``workdir``: where submitted workflows run; ``public_read``: reads need no
    token; ``max_body``: the largest request body, in bytes; ``pool``: connections at most
    for reads and submissions (the worker routes have connections of their own)."""
    hub = Hub(store, workdir, size=pool)
    queue = Pool(hub.location, workers.WORK_THREADS // 2)  # the workers': polls do not delay them
    dispatcher = Dispatcher(hub.location, queue.store)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # the threads of the hub's calls (routes, token checks): as many as its connections.
        # More only wait for one, and a crowd of status polls in 40 threads queued for the GIL
        # (each turn of a thread back from SQLite waited behind the others'): poll p99 4 s
        to_thread.current_default_thread_limiter().total_tokens = pool
        try:
            yield
        finally:
            await app.state.events.stop()
            dispatcher.close()
            queue.close()
            hub.close()

    app = FastAPI(
        title="herd",
        version=__version__,
        description="The HTTP API of herd, a workflow engine for scientific computing "
        "(docs/api.md).",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.dispatcher = dispatcher
    app.state.limiters = workers.Limiters()
    app.state.public_read = public_read
    app.state.encoded = {}  # a workflow's summary as JSON, while it stands (workflows.py)
    app.state.events = events.Broker(hub)
    problems.install(app)
    for module in (workflows, tasks, reports, events, workers, views, campaigns):
        app.include_router(module.router, prefix=PREFIX, responses=problems.ERRORS)
    app.include_router(campaigns.root, responses=problems.ERRORS)  # /metrics: before the page at /
    views.mount(app)
    app.add_middleware(_Limited, max_body=max_body)
    app.add_middleware(_Logged)
    return app


class _Logged:
    """The access log: method, path, status and milliseconds of every request. Never a header
    nor a query string (where a browser's token travels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.monotonic(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                access.info(
                    "%s %s %d %.0f ms",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.monotonic() - start) * 1000,
                )
            await send(message)

        await self.app(scope, receive, sending)


class _Limited:
    """Refuse a request body over ``max_body`` bytes (413, in the error shape): at once when
    its ``Content-Length`` says so, else as soon as the bytes read pass it."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app, self.max_body = app, max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise Problem(413, "too_large", self._message())
            return message

        await self.app(scope, counted, send)

    def _message(self) -> str:
        return (
            f"the request body is larger than the server's limit of {self.max_body:,} bytes: "
            "split the workflow, or start the server with a larger --max-body"
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = Problem(413, "too_large", self._message()).response()
        await response(scope, receive, send)


def serve(
    store: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workdir: Path = Path("."),
    public_read: bool = False,
    max_body: int = MAX_BODY,
) -> None:
    """Serve the API until SIGINT or SIGTERM (uvicorn: requests in flight end first)."""
    import socket

    import uvicorn

    app = create_app(store, workdir=workdir, public_read=public_read, max_body=max_body)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:  # bound here, so that a port in use is one line and exit 2, not uvicorn's log
        listening = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}: stop what listens there, "
            "or choose another --bind"
        ) from None
    # accepted sockets inherit it: without it a response's body waited ~40 ms for the client's
    # delayed ACK of its headers (asyncio sets it only on sockets made with IPPROTO_TCP)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    logging.getLogger("herd.server").setLevel(logging.INFO)
    logger.info("serving the API at http://%s:%d%s", host, port, PREFIX)
    config = uvicorn.Config(
        app,
        log_level="info",
        access_log=False,  # it prints query strings: herd.server.access logs requests instead
        server_header=False,
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run(sockets=[listening])
