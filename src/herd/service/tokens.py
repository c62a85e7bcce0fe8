"""Tokens of ``herd serve``: made, listed and revoked by ``herd token``, checked on every
request that carries one (docs/api.md, "Authentication").

A token reads ``herd_<id>_<secret>``: the id finds its row, the secret (256 random bits) is
checked against the SHA-256 digest the store keeps, in constant time. The secret itself is
shown once, by :func:`create`, and kept nowhere. A slow hash is not needed: the secret is not a
password a person chose, and no dictionary holds it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from herd.core.model import Scope
from herd.errors import NotFoundError, UsageError
from herd.service.state import writable
from herd.store.base import Store, TokenRecord

__all__ = ["Grant", "TokenRecord", "check", "create", "listed", "revoke"]

_TOKEN = re.compile(r"herd_([1-9][0-9]{0,17})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token lets its holder do: its ``scope``, on ``workflow`` only (None: on
    every workflow); ``token`` is its id (``herd token list``)."""

    token: int
    scope: Scope
    workflow: str | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def create(
    workdir: Path,
    store: str | None,
    scope: Scope,
    *,
    workflow: str | None = None,
    expires: float | None = None,
    note: str = "",
) -> tuple[TokenRecord, str]:
    """A new token of ``scope`` (for ``workflow`` only, valid ``expires`` seconds when given):
    its record, and the token itself, to show once."""
    if expires is not None and not expires > 0:
        raise UsageError(f"--expires wants a duration above 0, not {expires:g} s")
    secret = secrets.token_urlsafe(32)
    now = time.time()
    with writable(workdir, store) as opened:
        token_id = opened.add_token(
            digest=_digest(secret),
            scope=scope,
            workflow=workflow,
            note=note,
            now=now,
            expires=now + expires if expires is not None else None,
        )
        record = opened.token(token_id)
    assert record is not None
    return record, f"herd_{token_id}_{secret}"


def listed(workdir: Path, store: str | None) -> list[TokenRecord]:
    """Every token the store knows (their digests, never their secrets), oldest first."""
    with writable(workdir, store) as opened:
        return opened.tokens()


def revoke(workdir: Path, store: str | None, token_id: int) -> TokenRecord:
    """End token ``token_id`` at once; its record (as it was before)."""
    with writable(workdir, store) as opened:
        record = opened.token(token_id)
        if record is None:
            raise NotFoundError(f"no token {token_id} in the store: see `herd token list`")
        opened.revoke_token(token_id, now=time.time())
        return record


def check(store: Store, text: str, *, now: float) -> Grant | None:
    """The grant of the token ``text``: None when it is malformed, unknown, expired or
    revoked, or its secret does not match (compared in constant time)."""
    found = _TOKEN.fullmatch(text)
    if found is None:
        return None
    record = store.token(int(found[1]))
    if record is None:
        hmac.compare_digest(_digest(found[2]), _digest(""))  # (as long as a known id takes)
        return None
    if not hmac.compare_digest(record.digest, _digest(found[2])):
        return None
    if record.revoked is not None or (record.expires is not None and record.expires <= now):
        return None
    return Grant(record.id, record.scope, record.workflow)
