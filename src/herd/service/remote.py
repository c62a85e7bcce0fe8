"""The read commands against a ``herd serve`` instead of a store: ``herd
status|stats|analyze|why|plot --server URL [--token T]``.

Each asks the API for the JSON its report serves (docs/api.md, "Reports") and decodes it into
the same typed result the local view returns (:class:`~herd.reports.status.Status`,
:class:`~herd.reports.stats.Stats`, :class:`~herd.reports.analyze.Analysis`, the
:class:`~herd.reports.why.Step` of ``herd why``, the :class:`~herd.reports.plot.Chart` of
``herd plot``), so the CLI renders
both alike; nothing is parsed back from text. The standard library speaks HTTP: a client needs
no extra package. The API's errors become herd's: 401/403/4xx a :class:`UsageError` (exit 2),
404 a :class:`NotFoundError`, an unreachable or failing server a :class:`StoreError` (exit 3),
each with the server's own message.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import msgspec

from herd.errors import NotFoundError, StoreError, UsageError
from herd.reports import analyze as analyzing
from herd.reports import plot as plotting
from herd.reports import stats as statistics
from herd.reports import status as statuses
from herd.reports import why as explaining

#: the environment variable holding the token when ``--token`` is not given (a token on the
#: command line is seen by every user of the host, in ``ps``)
TOKEN_ENV = "HERD_TOKEN"
#: seconds to wait for an answer
TIMEOUT = 60.0


class Client:
    """GETs against the API at ``url`` (``http://HOST:PORT``), with ``token`` (else
    ``$HERD_TOKEN``) as the bearer token."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = TIMEOUT) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise UsageError(f"--server wants http://HOST:PORT or https://HOST, not '{url}'")
        self.base = url.rstrip("/") + "/api/v1"
        self.token = token or os.environ.get(TOKEN_ENV) or None
        self.timeout = timeout

    def get(self, path: str, **params: Any) -> Any:
        """The decoded JSON answer to ``GET path?params`` (None values left out)."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.base}{path}" + (f"?{query}" if query else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return _json(answer.read(), url)
        except urllib.error.HTTPError as exc:
            raise _error(exc.code, exc.read(), url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreError(
                f"cannot reach herd serve at {self.base}: {reason}: check the URL and that the "
                "server runs"
            ) from None

    def workflow(self, name: str | None) -> str:
        """``name``, else the name of the server's only workflow."""
        if name is not None:
            return name
        found = [w["name"] for w in self.get("/workflows", limit=2)["items"]]
        if not found:
            raise UsageError(f"the store behind {self.base} holds no workflow yet")
        if len(found) > 1:
            raise UsageError(
                f"the store behind {self.base} holds several workflows: name one with --workflow"
            )
        return str(found[0])


def _json(raw: bytes, url: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise StoreError(f"{url} did not answer JSON: is it herd serve?") from None


def _error(status: int, raw: bytes, url: str) -> Exception:
    try:
        message = str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {status} from {url}"
    if status == 404:
        return NotFoundError(message)
    if status >= 500:
        return StoreError(f"herd serve failed: {message}")
    return UsageError(message)


def _typed(data: Any, kind: type[Any], url: str) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise StoreError(
            f"{url} answered a {getattr(kind, '__name__', kind)} this herd cannot read ({exc}): use the same herd "
            "version on both sides"
        ) from None


def status(server: str, token: str | None, workflow: str | None) -> statuses.Status:
    """What ``herd status`` shows, from the server."""
    client = Client(server, token)
    data = client.get("/status", workflow=workflow)
    try:
        return statuses.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(
            f"{client.base}/status answered a status this herd cannot read ({exc!r}): use the "
            "same herd version on both sides"
        ) from None


def _report(
    server: str, token: str | None, workflow: str | None, view: str, kind: type[Any], **params: Any
) -> Any:
    """The workflow's report ``view`` (``stats``, ``analyze``), decoded as ``kind``."""
    client = Client(server, token)
    name = urllib.parse.quote(client.workflow(workflow), safe="")
    return _typed(client.get(f"/workflows/{name}/{view}", **params), kind, client.base)


def stats(server: str, token: str | None, workflow: str | None) -> statistics.Stats:
    """What ``herd stats`` shows, from the server."""
    found: statistics.Stats = _report(server, token, workflow, "stats", statistics.Stats)
    return found


def analyze(
    server: str, token: str | None, workflow: str | None, *, lines: int, all_attempts: bool
) -> analyzing.Analysis:
    """What ``herd analyze`` shows, from the server."""
    flag = "true" if all_attempts else "false"
    found: analyzing.Analysis = _report(
        server, token, workflow, "analyze", analyzing.Analysis, lines=lines, all=flag
    )
    return found


def why(server: str, token: str | None, workflow: str | None, task: str) -> list[explaining.Step]:
    """What ``herd why TASK`` shows, planned by the server against its store and files with the
    spec it keeps."""
    quoted = urllib.parse.quote(task, safe="")
    found: list[explaining.Step] = _report(
        server, token, workflow, f"why/{quoted}", list[explaining.Step]
    )
    return found


def chart(
    server: str, token: str | None, workflow: str | None, run: int | None
) -> tuple[plotting.Chart, str]:
    """What ``herd plot`` draws of run ``run`` (None: the last), from the server; and the
    workflow's name."""
    client = Client(server, token)
    name = client.workflow(workflow)
    path = f"/workflows/{urllib.parse.quote(name, safe='')}/chart"
    found: plotting.Chart = _typed(client.get(path, run=run), plotting.Chart, client.base)
    return found, name
