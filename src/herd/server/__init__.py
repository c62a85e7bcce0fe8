"""``herd serve``: the HTTP API over :mod:`herd.service`, for sites that cannot reach the
database, for the dashboard and for token-holding clients (docs/api.md is the contract).

==================  =========================================================================
``app``             :func:`~app.create_app`: the ASGI application (FastAPI) over one store; the
                    error shape every response shares; the body size limit; :func:`~app.serve`
                    runs it under uvicorn
``auth``            bearer tokens and their scopes: who may read, submit, work, administer
``models``          the JSON shapes of the API (the OpenAPI document is generated from them)
``workflows``       ``/workflows``: submit, list, one, cancel, reset, retry failed
``tasks``           ``/workflows/{name}/tasks``: filter, one, attempts, provenance, log tail
``reports``         runs, status, stats, analyze (what the CLI's reports show), workers
``events``          ``/events``: server-sent events of task state changes, for live views
``workers``         the worker protocol over HTTP (register, claim, heartbeat, finish, release)
==================  =========================================================================

A front end like the CLI: it imports only :mod:`herd.service`, the views' results, the typed
model and the errors (``tests/unit/test_layers.py``).
"""

from __future__ import annotations

from herd.server.app import create_app

__all__ = ["create_app"]
