"""``/events``: server-sent events of task state changes, for live views (docs/api.md,
"Events").

One :class:`Broker` per server looks for changes, whatever the number of clients: while anyone
listens, a single loop asks the service every :data:`INTERVAL` seconds what changed in the
workflows listened to (:meth:`herd.service.hub.Hub.changes`: a cheap look at the store's change
marks first, the changed tasks only when there are some) and puts the news on each listener's
queue. A listener whose queue is full (a client that does not read) is told to ``resync`` and
its backlog dropped: a slow client never holds the server's memory. A comment line every
:data:`KEEPALIVE` seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from herd.server.auth import Reader, check_workflow, hub_of
from herd.service.hub import Hub, Watch

logger = logging.getLogger(__name__)

router = APIRouter(tags=["events"])

#: seconds between two looks at the store while someone listens
INTERVAL = 0.5
#: a look that took t seconds is followed by a pause of SHARE x t (when above INTERVAL)
SHARE = 20
#: seconds between two keep-alive comments on an idle stream
KEEPALIVE = 15.0
#: events a listener may have waiting before it is told to resync
BACKLOG = 256


@dataclass(eq=False)
class _Listener:
    workflow: str | None
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(
        default_factory=lambda: asyncio.Queue(BACKLOG)
    )

    def put(self, event: str, data: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(("resync", {"workflow": self.workflow}))


class Broker:
    """The one loop that looks for changes, and the listeners it tells."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.listeners: set[_Listener] = set()
        self._watch = Watch()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    @contextlib.asynccontextmanager
    async def listen(self, workflow: str | None) -> AsyncIterator[_Listener]:
        listener = _Listener(workflow)
        self.listeners.add(listener)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop())
        try:
            yield listener
        finally:
            self.listeners.discard(listener)

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self.listeners and not self._stopped:
            began = loop.time()
            try:
                await self._look()
            except Exception:  # a store that went away for a moment: try again next time
                logger.warning("events: could not read the store", exc_info=True)
            # a slow look (a big workflow) waits longer: at most 1/SHARE of the time watching
            await asyncio.sleep(max(INTERVAL, (loop.time() - began) * SHARE))

    async def _look(self) -> None:
        names = {x.workflow for x in self.listeners}
        wanted = None if None in names else {n for n in names if n is not None}
        news = await run_in_threadpool(self.hub.changes, self._watch, wanted)
        for change in news:
            data = change.to_json()
            for x in list(self.listeners):
                if x.workflow in (None, change.workflow):
                    x.put(change.event, data)


def _frame(event: str, data: dict[str, Any], number: int) -> str:
    return f"id: {number}\nevent: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@router.get(
    "/events",
    summary="Server-sent events: task state changes (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def events(
    request: Request,
    caller: Reader,
    workflow: Annotated[
        str | None, Query(max_length=500, description="only this workflow; none: every one")
    ] = None,
    timeout: Annotated[
        float | None,
        Query(gt=0, le=86400, description="end the stream after this many seconds"),
    ] = None,
) -> StreamingResponse:
    if caller is not None and caller.workflow is not None:
        workflow = workflow or caller.workflow
        check_workflow(caller, workflow)
    if workflow is not None:
        await run_in_threadpool(hub_of(request).workflow, workflow)  # 404 when unknown
    broker: Broker = request.app.state.events
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout if timeout else None

    async def stream() -> AsyncIterator[str]:
        number = 0
        async with broker.listen(workflow) as listener:
            yield _frame("hello", {"workflow": workflow, "interval": INTERVAL}, number)
            while not broker._stopped:
                left = KEEPALIVE if end is None else min(KEEPALIVE, end - loop.time())
                if left <= 0:
                    return
                try:
                    event, data = await asyncio.wait_for(listener.queue.get(), left)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                number += 1
                yield _frame(event, data, number)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
