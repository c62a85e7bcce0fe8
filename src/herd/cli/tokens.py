"""``herd token create|list|revoke``: the bearer tokens of ``herd serve`` (docs/api.md)."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from herd.cli.command import command
from herd.cli.options import add_store
from herd.core.model import Scope
from herd.errors import UsageError

if TYPE_CHECKING:
    from herd.service.tokens import TokenRecord

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration(text: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or plain seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if found is None or not float(found[1]) > 0:
        raise argparse.ArgumentTypeError(
            f"--expires wants a duration such as 30d, 12h, 90m or 3600, not '{text}'"
        )
    return float(found[1]) * _UNITS[found[2] or "s"]


def _setup(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["create", "list", "revoke"], help="what to do")
    p.add_argument("id", nargs="?", type=int, metavar="ID", help="the token to revoke")
    add_store(p)
    p.add_argument(
        "-C", "--workdir", type=Path, default=Path("."), help="working directory (default: .)"
    )
    p.add_argument(
        "--scope",
        choices=[s.value for s in Scope],
        help="create: read (GET only), submit (also submit, cancel, reset, retry), worker (claim "
        "and finish only), admin (everything)",
    )
    p.add_argument("--workflow", metavar="NAME", help="create: a token for this workflow only")
    p.add_argument(
        "--expires", type=duration, metavar="DURATION", help="create: valid this long (30d, 12h)"
    )
    p.add_argument("--note", default="", help="create: what the token is for, shown by list")
    p.add_argument("--json", action="store_true", help="list: machine-readable output")


@command(
    "token",
    "Make, list or revoke tokens for `herd serve`; a new token is printed once, on the last line.",
    "herd token create --scope worker --expires 7d --note 'site A workers'",
    setup=_setup,
)
def cmd_token(args: argparse.Namespace) -> int:
    from herd.service import tokens

    if args.action == "create":
        if args.scope is None:
            raise UsageError("herd token create needs --scope read|submit|worker|admin")
        record, secret = tokens.create(
            args.workdir,
            args.store,
            Scope(args.scope),
            workflow=args.workflow,
            expires=args.expires,
            note=args.note,
        )
        print(f"herd: token {record.id}: {_describe(record)} (shown once: keep it now)")
        print(secret)
    elif args.action == "list":
        found = tokens.listed(args.workdir, args.store)
        if args.json:
            print(json.dumps([_json(r) for r in found], indent=1))
        else:
            for r in found:
                print(f"{r.id:>4}  {_describe(r)}")
    else:
        if args.id is None:
            raise UsageError("herd token revoke needs the token's ID (see `herd token list`)")
        record = tokens.revoke(args.workdir, args.store, args.id)
        print(f"herd: revoked token {record.id} ({_describe(record)})")
    return 0


def _when(t: float | None) -> str:
    return "never" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _describe(r: TokenRecord) -> str:
    """``scope read, workflow W (or every workflow), expires WHEN, NOTE``, and why it no longer
    works when it does not."""
    where = f"workflow '{r.workflow}'" if r.workflow else "every workflow"
    text = f"scope {r.scope.value} on {where}, made {_when(r.created)}, expires {_when(r.expires)}"
    if r.revoked is not None:
        text += f", REVOKED {_when(r.revoked)}"
    elif r.expires is not None and r.expires <= time.time():
        text += ", EXPIRED"
    return text + (f": {r.note}" if r.note else "")


def _json(r: TokenRecord) -> dict[str, object]:
    return {
        "id": r.id,
        "scope": r.scope.value,
        "workflow": r.workflow,
        "note": r.note,
        "created": r.created,
        "expires": r.expires,
        "revoked": r.revoked,
    }
