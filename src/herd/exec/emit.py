"""Recording user data and events from inside a task (torc's user data and events).

herd gives every attempt a file in ``$HERD_USER_DATA``; a task appends JSON lines to it, with
``herd emit`` from a shell or with these functions from Python. When the attempt ends, herd stores
them with it. A line ``{"key": k, "value": v}`` is a result; any other object is an event
(its ``time`` field, epoch seconds, defaults to when it was written).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from herd.errors import UsageError

VAR = "HERD_USER_DATA"


def _path() -> str:
    path = os.environ.get(VAR)
    if not path:
        raise UsageError(
            f"${VAR} is not set: `herd emit` records data for the task herd is running, "
            "so call it from inside a task's command"
        )
    return path


def _append(obj: dict[str, Any]) -> None:
    line = json.dumps(obj, separators=(",", ":"))
    with open(_path(), "a") as f:
        f.write(line + "\n")


def emit(key: str, value: Any) -> None:
    """Record a result of the current task, e.g. ``emit("events", 1000)``."""
    _append({"key": key, "value": value})


def emit_event(data: dict[str, Any], when: float | None = None) -> None:
    """Record a timestamped event of the current task, e.g. ``emit_event({"stage": "merged"})``."""
    _append({**data, "time": time.time() if when is None else when})


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, lists, objects), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text
