"""Spec files to data: read the bytes (gunzipped when compressed), decode them once as JSON, YAML
or XML, and refuse what would not load in bounded time and memory — nesting deeper than Python's
recursion, YAML aliases that repeat a value exponentially often — with a
:class:`~herd.errors.SpecError` naming the file, and the line and column when the syntax is wrong.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import msgspec

from herd.errors import SpecError

if TYPE_CHECKING:
    from xml.etree import ElementTree

    import yaml

#: what herd reads, the hint of a document it cannot name
KNOWN = (
    "herd reads: native herd YAML/JSON (name + tasks), ALICE O2DPG workflow.json (stages), "
    "Pegasus 5 YAML (pegasus + jobs), WfCommons WfFormat JSON (schemaVersion + workflow), "
    "DAMPE DmpWorkflow XML (<Jobs>)"
)
_XML_ROOT = re.compile(
    r"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*<([A-Za-z_][\w.:-]*)", re.DOTALL
)


@functools.cache
def pyyaml() -> tuple[ModuleType, Any]:
    """PyYAML and its safe loader, libyaml's when PyYAML was built with it (an order of magnitude
    faster); imported at the first YAML document, since a JSON or XML spec does not need the
    20 ms its import takes."""
    import yaml

    return yaml, getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed spec file: JSON/YAML ``data``, or XML ``text`` with its ``root`` element name."""

    source: str
    data: Any = None
    text: str | None = None
    root: str | None = None


@contextmanager
def bounded_depth(source: str) -> Iterator[None]:
    """Values nested deeper than Python's recursion allows (about 1,000 levels) are refused."""
    try:
        yield
    except RecursionError:
        raise SpecError(
            "values are nested too deeply (more than about 1,000 levels)",
            file=source,
            hint="flatten the document",
        ) from None


def read_text(path: str) -> str:
    """The text of a spec file (gunzipped when compressed), or a SpecError saying why not."""
    return decoded(read_bytes(path), path)


def read_bytes(path: str) -> bytes:
    """The bytes of a spec file, gunzipped when compressed, or a SpecError saying why not."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", file=path, hint="check the path") from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a workflow file", file=path) from None
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", file=path) from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SpecError(f"corrupt gzip data: {exc}", file=path) from None
    return raw


NOT_JSON = object()
_SPACE = re.compile(rb"[ \t\r\n]*")


def json_bytes(raw: bytes) -> Any:
    """The JSON document in ``raw``, decoded without a text copy of the file first (what that
    saves: docs/performance.md); :data:`NOT_JSON` when it is not JSON that msgspec reads, and the
    text path decides (YAML, XML, the messages for broken JSON)."""
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark
    space = _SPACE.match(raw, start)
    start = space.end() if space else start
    if raw[start : start + 1] not in (b"{", b"["):
        return NOT_JSON
    return _fast_json(memoryview(raw)[start:])


def _fast_json(document: str | memoryview) -> Any:
    """msgspec's decoder (several times faster than json's on large specs, the same values), or
    :data:`NOT_JSON` when it refuses the document: json's decoder then tells the line and
    column, and reads NaN, 1e400 and lone surrogates."""
    try:
        return msgspec.json.decode(document)
    except msgspec.MsgspecError:
        return NOT_JSON


def decoded(raw: bytes, path: str) -> str:
    """``raw`` as UTF-8 text (a byte order mark dropped), or a SpecError at the bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (bad byte at offset {exc.start})", file=path) from None


def parse(text: str, source: str) -> Document:
    """Parse ``text`` once: XML is recognised by its first ``<``, JSON by ``{``/``[``, else YAML."""
    text = text.removeprefix("\ufeff")
    head = text.lstrip()[:1]
    if not head:
        raise SpecError("the file is empty", file=source, hint=KNOWN)
    if head == "<":
        return Document(source, text=text, root=_xml_root(text, source))
    if head in "{[":
        data = _fast_json(text)
        if data is not NOT_JSON:
            return Document(source, data=data)
        try:
            return Document(source, data=json.loads(text))
        except json.JSONDecodeError as exc:
            lib, loader = pyyaml()
            try:  # YAML flow style also starts with a brace
                return Document(source, data=lib.load(text, Loader=loader))
            except lib.YAMLError:
                problem = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                raise SpecError(problem, file=source) from None
    lib, loader = pyyaml()
    try:
        data = lib.load(text, Loader=loader)
    except lib.YAMLError as exc:
        raise _yaml_error(exc, source) from None
    if "&" in text and _ANCHOR.search(text):  # aliases may repeat a value exponentially often
        _check_aliases(data, source)
    return Document(source, data=data)


#: a YAML anchor (``&name`` at the start of a value), not the ``&&`` or ``2>&1`` of a command
_ANCHOR = re.compile(r"(?:^|[\s\[{,:])&[^\s\[\]{},&]", re.MULTILINE)
#: what YAML aliases may add: the document read as a tree may hold this many times the values
#: it holds in memory (a value an alias repeats counts each time), and at least this many values
ALIAS_FACTOR, ALIAS_FLOOR = 10, 1_000_000


def _check_aliases(data: Any, source: str) -> None:
    """Refuse a document whose aliases expand it past :data:`ALIAS_FACTOR` times its size (a
    "billion laughs"): every reader of the data (loaders, digests, dumps) walks it as a tree."""
    sizes: dict[int, int] = {}  # id of a list or mapping -> values in it, read as a tree
    written = 0  # values in memory: each list or mapping counted once

    def size(value: Any) -> int:
        nonlocal written
        kind = type(value)
        if kind is not list and kind is not dict:
            return 1
        known = sizes.get(id(value))
        if known is None:
            written += len(value)
            items = value.values() if kind is dict else value
            known = sizes[id(value)] = 1 + sum(size(v) for v in items)
        return known

    expanded, limit = size(data), max(ALIAS_FLOOR, ALIAS_FACTOR * written)
    if expanded > limit:
        raise SpecError(
            f"YAML aliases expand the document to {expanded:,} values, more than {limit:,}",
            file=source,
            hint="write the repeated values out, or use the defaults: mapping",
        )


def _xml_root(text: str, source: str) -> str:
    match = _XML_ROOT.match(text)
    if match is not None:
        return match.group(1).rpartition(":")[2]
    from xml.etree import ElementTree

    try:  # not a simple prolog: let the real parser find the root or the error
        return ElementTree.fromstring(text).tag.rpartition("}")[2]
    except ElementTree.ParseError as exc:
        raise xml_error(exc, source) from None


def xml_error(exc: ElementTree.ParseError, source: str) -> SpecError:
    """The SpecError of an XML syntax error, at its line and column."""
    line, column = getattr(exc, "position", (0, 0))
    message = str(exc).split(":")[0]
    return SpecError(f"invalid XML at line {line}, column {column + 1}: {message}", file=source)


def _yaml_error(exc: yaml.YAMLError, source: str) -> SpecError:
    if isinstance(exc, pyyaml()[0].MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        hint = None
        if "expected ','" in str(exc.problem) or "found unexpected ':'" in str(exc.problem):
            hint = 'inside [ ] and { }, quote strings holding braces or colons: ["sim_{tf}"]'
        return SpecError(problem, file=source, hint=hint)
    return SpecError(f"invalid YAML: {exc}", file=source)
