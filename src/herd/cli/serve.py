"""``herd serve``: the HTTP API over a store (docs/api.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from herd.cli.command import command
from herd.cli.options import add_store
from herd.errors import UsageError


def _bind(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` (host 127.0.0.1); ``[::1]:PORT`` for IPv6."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"--bind wants HOST:PORT (127.0.0.1:8080), not '{text}'")
    return host, int(port)


def _setup(p: argparse.ArgumentParser) -> None:
    add_store(p)
    p.add_argument(
        "--bind",
        type=_bind,
        default=("127.0.0.1", 8080),
        metavar="HOST:PORT",
        help="where to listen (default 127.0.0.1:8080: this host only; put TLS in front with a "
        "reverse proxy before listening elsewhere, see docs/operations.md)",
    )
    p.add_argument(
        "--public-read",
        action="store_true",
        help="let anyone who reaches the server read (writes always need a token)",
    )
    p.add_argument(
        "-C",
        "--workdir",
        type=Path,
        default=Path("."),
        help="where submitted workflows run and their specs are kept (default: .)",
    )
    p.add_argument(
        "--max-body",
        type=float,
        default=64.0,
        metavar="MB",
        help="the largest request body (a submitted spec) in MB (default 64)",
    )


@command(
    "serve",
    "Serve the HTTP API (and the dashboard) over a store; tokens from `herd token create`.",
    "herd serve --store postgresql://db.example.org/herd --bind 127.0.0.1:8080",
    setup=_setup,
)
def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from herd.server.app import serve
    except ModuleNotFoundError as exc:
        raise UsageError(
            f"herd serve needs the server extra ({exc.name} is missing): pip install 'herd[server]'"
        ) from None
    if not args.max_body > 0:
        raise UsageError(f"--max-body wants a size in MB above 0, not {args.max_body:g}")
    host, port = args.bind
    serve(
        args.store,
        host=host,
        port=port,
        workdir=args.workdir,
        public_read=args.public_read,
        max_body=int(args.max_body * 1024 * 1024),
    )
    return 0
