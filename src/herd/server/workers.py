"""The worker protocol over HTTP: register, claim, heartbeat, finish, release (docs/api.md,
"Workers"), the same transactions and fencing as database workers. Its routes join the
application through :data:`router` (``herd.server.app`` includes it under ``/api/v1``); they
need a token of scope ``worker`` (:data:`herd.server.auth.WorkerCaller`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["workers"])
