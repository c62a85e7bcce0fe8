"""Data movement for Pegasus workflows: the commands of herd's staging tasks.

``python -m herd.exec.stage in PFN LFN [--sha256 HEX] [--executable]``
    Fetch a replica (a path, ``file://`` or ``http(s)://``) to ``LFN`` in the working directory:
    through a temporary file renamed at the end, so a reader never sees half a file, and with the
    sha256 checked when the catalog gives one (a mismatch fails the task and keeps nothing).
    Another scheme cannot be fetched: the task fails saying so, unless ``LFN`` is already there.

``python -m herd.exec.stage out --storage DIR [--copy LFN]... [--register LFN]... --catalog FILE
--site NAME``
    Copy outputs to the output site's storage directory (Pegasus ``stageOut``) and record them in
    the output replica catalog (``registerReplica``): a Pegasus 5 YAML replica catalog, updated
    under an exclusive lock so that parallel tasks add to it safely.

Every failure is one line on stderr, ``herd stage: …``, and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

#: schemes herd fetches; anything else needs the file placed by hand
SCHEMES = ("file", "http", "https")
_CHUNK = 1 << 20


class StageError(Exception):
    """A transfer that failed; the message says what to do."""


def scheme(pfn: str) -> str:
    """``file`` for a plain path, else the URL's scheme."""
    head, sep, _ = pfn.partition("://")
    return head.lower() if sep and head.replace("+", "").replace("-", "").isalnum() else "file"


def local_path(pfn: str) -> str:
    """The path of a ``file://`` URL or a plain path."""
    return pfn[len("file://") :] if pfn.startswith("file://") else pfn


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stage_in(pfn: str, lfn: str, expected: str | None, executable: bool) -> None:
    kind = scheme(pfn)
    target = Path(lfn)
    if kind not in SCHEMES:
        if target.exists():
            _check(target, expected, pfn)
            print(f"herd stage: {lfn} is already here ({kind}:// is not fetched)", file=sys.stderr)
            return
        raise StageError(
            f"cannot fetch {pfn}: herd fetches {', '.join(s + '://' for s in SCHEMES)} only; "
            f"copy the file to {lfn} in the working directory"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.herd-stage")
    try:
        _fetch(pfn, kind, temp)
        _check(temp, expected, pfn)
        if executable:
            temp.chmod(temp.stat().st_mode | 0o111)
        os.replace(temp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _fetch(pfn: str, kind: str, temp: Path) -> None:
    if kind == "file":
        source = local_path(pfn)
        try:
            shutil.copyfile(source, temp)
        except OSError as exc:
            raise StageError(f"cannot copy {source}: {exc.strerror or exc}") from None
        return
    try:
        with urllib.request.urlopen(pfn, timeout=60) as response, open(temp, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except urllib.error.HTTPError as exc:
        raise StageError(f"cannot fetch {pfn}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise StageError(f"cannot fetch {pfn}: {reason}") from None


def _check(path: Path, expected: str | None, pfn: str) -> None:
    if not expected:
        return
    found = sha256(path)
    if found != expected.lower():
        raise StageError(
            f"checksum mismatch for {pfn}: the replica catalog says sha256 {expected}, the file "
            f"has {found}; fix the catalog entry or the file"
        )


def stage_out(
    storage: str, copy: Sequence[str], register: Sequence[str], catalog: str | None, site: str
) -> None:
    placed: dict[str, str] = {}
    for lfn in copy:
        target = Path(storage) / lfn
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{os.getpid()}.herd-stage")
        try:
            shutil.copyfile(lfn, temp)
            os.replace(temp, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise StageError(f"cannot copy {lfn} to {target}: {exc.strerror or exc}") from None
        placed[lfn] = str(target.resolve())
    if register:
        if not catalog:
            raise StageError("--register needs --catalog")
        entries = {lfn: placed.get(lfn) or str(Path(lfn).resolve()) for lfn in register}
        _register(Path(catalog), entries, site)


def _register(catalog: Path, entries: dict[str, str], site: str) -> None:
    """Add (or replace) the lfns' entries of the output replica catalog, under a lock."""
    catalog.parent.mkdir(parents=True, exist_ok=True)
    lock = catalog.with_name(f".{catalog.name}.lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        data: dict[str, Any] = {"pegasus": "5.0", "replicas": []}
        if catalog.exists():
            loaded = yaml.safe_load(catalog.read_text()) or {}
            if not isinstance(loaded, dict) or not isinstance(loaded.get("replicas", []), list):
                raise StageError(f"{catalog} is not a Pegasus replica catalog: move it away")
            data = {**data, **loaded}
        kept = [r for r in data["replicas"] if r.get("lfn") not in entries]
        for lfn, pfn in entries.items():
            entry = {"lfn": lfn, "pfns": [{"site": site, "pfn": pfn}]}
            kept.append({**entry, "checksum": {"sha256": sha256(pfn)}})
        data["replicas"] = kept
        temp = catalog.with_name(f".{catalog.name}.{os.getpid()}")
        temp.write_text(yaml.safe_dump(data, sort_keys=False))
        os.replace(temp, catalog)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m herd.exec.stage", description=__doc__)
    sub = parser.add_subparsers(dest="direction", required=True)
    fetch = sub.add_parser("in", help="fetch a replica into the working directory")
    fetch.add_argument("pfn")
    fetch.add_argument("lfn")
    fetch.add_argument("--sha256")
    fetch.add_argument("--executable", action="store_true")
    out = sub.add_parser("out", help="copy outputs to storage and register them")
    out.add_argument("--storage", required=True)
    out.add_argument("--copy", action="append", default=[])
    out.add_argument("--register", action="append", default=[])
    out.add_argument("--catalog")
    out.add_argument("--site", default="local")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.direction == "in":
            stage_in(args.pfn, args.lfn, args.sha256, args.executable)
        else:
            stage_out(args.storage, args.copy, args.register, args.catalog, args.site)
    except StageError as exc:
        print(f"herd stage: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
