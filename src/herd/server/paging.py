"""Paging of lists: ``limit`` (1 to 1,000, default 100) and an opaque ``cursor`` taken from the
``next`` of the previous page (docs/api.md, "Paging")."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query

from herd.server.problems import Problem

Limit = Annotated[int, Query(ge=1, le=1000, description="items per page")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next` of the previous page; none: the first")
]


def offset(cursor: str | None) -> int:
    """Where the page of ``cursor`` starts; 400 for a cursor this server did not make."""
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii") + b"==").decode("ascii")
    except (UnicodeError, binascii.Error, ValueError):
        text = ""
    kind, _, number = text.partition(":")
    if kind != "o" or not number.isdigit():
        raise Problem(
            400,
            "bad_request",
            "the cursor is not one this server gave: pass the `next` of a page, or none",
            field="cursor",
        )
    return int(number)


def cursor(at: int | None) -> str | None:
    """The cursor of the page starting at ``at`` (None: there is none)."""
    if at is None:
        return None
    return base64.urlsafe_b64encode(f"o:{at}".encode()).decode("ascii").rstrip("=")
