"""Spec formats: read any workflow file herd knows, telling the format from the content.

:func:`load` reads a file (gzip-compressed or not), parses it once (JSON, YAML or XML), lets
:func:`detect_data` name its format and hands the parsed data to that format's loader, imported
lazily from :data:`LOADERS`. The rules, first match wins:

=========  =================================================================================
dampe      XML whose root element is ``<Jobs>`` or a lone ``<Job>`` (DAMPE DmpWorkflow)
o2dpg      a mapping with a ``stages`` list (ALICE O2DPG ``workflow.json``)
pegasus    a mapping with a ``pegasus`` key, or with a ``jobs`` list and no ``tasks`` (Pegasus 5)
wfformat   a mapping with ``schemaVersion`` and ``workflow.specification`` or ``workflow.tasks``
native     a mapping with ``tasks`` (herd's own format, ``docs/spec.md``)
=========  =================================================================================

Anything else — a missing or unreadable file, invalid JSON/YAML/XML (with line and column), a
document of no known format — is a :class:`~herd.errors.SpecError` naming the file.

:func:`dump` writes a workflow in the native format, YAML or JSON by the file's extension.
"""

from __future__ import annotations

import gzip
import importlib
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import msgspec
import yaml

from herd.core.bulk import gc_paused
from herd.core.model import MAX_TASKS, Workflow
from herd.errors import HerdError, SpecError
from herd.formats.pegasus_catalogs import Setup

__all__ = [
    "FORMATS",
    "LOADERS",
    "Document",
    "Setup",
    "detect",
    "detect_data",
    "dump",
    "dumps",
    "gc_paused",
    "load",
    "load_document",
    "load_text",
    "loader",
    "parse",
    "read_text",
]

#: the formats herd reads, in detection order
FORMATS: tuple[str, ...] = ("dampe", "o2dpg", "pegasus", "wfformat", "native")

#: format -> "module:function"; XML loaders take the text, the others the parsed data
LOADERS: dict[str, str] = {
    "native": "herd.formats.native:load_data",
    "o2dpg": "herd.formats.o2dpg:load_data",
    "pegasus": "herd.formats.pegasus:load_data",
    "wfformat": "herd.formats.wfformat:load_data",
    "dampe": "herd.formats.dampe:load_text",
}

_KNOWN = (
    "herd reads: native herd YAML/JSON (name + tasks), ALICE O2DPG workflow.json (stages), "
    "Pegasus 5 YAML (pegasus + jobs), WfCommons WfFormat JSON (schemaVersion + workflow), "
    "DAMPE DmpWorkflow XML (<Jobs>)"
)
_XML_ROOT = re.compile(
    r"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*<([A-Za-z_][\w.:-]*)", re.DOTALL
)
_Loader = Callable[[Any, str], Workflow]

#: the libyaml-backed loader and dumper when PyYAML was built with them (an order of magnitude faster)
_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YamlDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed spec file: JSON/YAML ``data``, or XML ``text`` with its ``root`` element name."""

    source: str
    data: Any = None
    text: str | None = None
    root: str | None = None


# -- reading ------------------------------------------------------------------------------------


def load(
    path: str | os.PathLike[str],
    *,
    max_tasks: int = MAX_TASKS,
    environ: Mapping[str, str] | None = os.environ,
    setup: Setup | None = None,
) -> Workflow:
    """The workflow in ``path``, whatever its format (detected from the content), of at most
    ``max_tasks`` tasks.

    Variables in file paths are resolved from ``environ`` (:mod:`herd.formats.environ`); None
    keeps them as written (``herd convert``). ``setup``: what ``pegasus-plan`` would be given
    besides a Pegasus workflow (``--conf``, ``-D``).
    """
    source = os.fspath(path)
    raw = _read_bytes(source)
    with gc_paused(), _bounded_depth(source):
        data = _json_bytes(raw)
        if data is not _NOT_JSON:
            workflow = load_document(Document(source, data=data), max_tasks=max_tasks, setup=setup)
        else:
            document = parse(_decoded(raw, source), source)
            workflow = load_document(document, max_tasks=max_tasks, setup=setup)
    # one scan of the bytes: a spec without any '$' has no variable in a path
    return _resolved(workflow, environ) if environ is not None and b"$" in raw else workflow


def load_text(
    text: str,
    source: str = "<text>",
    *,
    max_tasks: int = MAX_TASKS,
    environ: Mapping[str, str] | None = os.environ,
) -> Workflow:
    """The workflow in ``text``; ``source`` names it in messages and in ``Workflow.source``."""
    with gc_paused(), _bounded_depth(source):
        workflow = load_document(parse(text, source), max_tasks=max_tasks)
    return _resolved(workflow, environ) if environ is not None and "$" in text else workflow


def _resolved(workflow: Workflow, environ: Mapping[str, str]) -> Workflow:
    from herd.formats.environ import resolve_paths

    return resolve_paths(workflow, environ)


def load_document(
    doc: Document, *, max_tasks: int = MAX_TASKS, setup: Setup | None = None
) -> Workflow:
    """Hand a parsed document to the loader of its format; refuse more than ``max_tasks``."""
    fmt = detect_data(doc)
    if setup is not None and fmt == "pegasus":
        from herd.formats.pegasus import load_data

        workflow = load_data(doc.data, doc.source, setup)
    elif doc.text is not None:
        try:
            workflow = loader(fmt)(doc.text, doc.source)
        except ElementTree.ParseError as exc:
            raise _xml_error(exc, doc.source) from None
    else:
        tasks = doc.data.get("tasks") if fmt == "native" else None
        if type(tasks) is list:
            _check_count(len(tasks), max_tasks, doc.source)
            from herd.formats.sweep import check_size, has_sweeps

            if has_sweeps(tasks):
                check_size(tasks, doc.source, max_tasks)  # before a sweep is expanded
        workflow = loader(fmt)(doc.data, doc.source)
    _check_count(len(workflow.tasks), max_tasks, doc.source)
    return workflow


def _check_count(tasks: int, max_tasks: int, source: str) -> None:
    if tasks > max_tasks:
        raise SpecError(
            f"{tasks:,} tasks, more than the limit of {max_tasks:,}",
            file=source,
            hint="split the workflow, or raise the limit with --max-tasks N",
        )


@contextmanager
def _bounded_depth(source: str) -> Iterator[None]:
    """Values nested deeper than Python's recursion allows (about 1,000 levels) are refused."""
    try:
        yield
    except RecursionError:
        raise SpecError(
            "values are nested too deeply (more than about 1,000 levels)",
            file=source,
            hint="flatten the document",
        ) from None


def loader(fmt: str) -> _Loader:
    """The load function of a format, imported on first use."""
    module_name, _, function = LOADERS[fmt].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SpecError(
            f"this herd installation cannot read {fmt} files ({module_name} is missing)"
        ) from None
    found: _Loader = getattr(module, function)
    return found


def read_text(path: str) -> str:
    """The text of a spec file (gunzipped when compressed), or a SpecError saying why not."""
    return _decoded(_read_bytes(path), path)


def _read_bytes(path: str) -> bytes:
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


_NOT_JSON = object()
_SPACE = re.compile(rb"[ \t\r\n]*")


def _json_bytes(raw: bytes) -> Any:
    """The JSON document in ``raw``, decoded without a text copy of the file first (a 300 MB
    spec: 0.7 s less); :data:`_NOT_JSON` when it is not JSON that msgspec reads, and the text
    path decides (YAML, XML, the messages for broken JSON)."""
    start = 3 if raw.startswith(b"\xef\xbb\xbf") else 0  # a UTF-8 byte order mark
    space = _SPACE.match(raw, start)
    start = space.end() if space else start
    if raw[start : start + 1] not in (b"{", b"["):
        return _NOT_JSON
    return _fast_json(memoryview(raw)[start:])


def _fast_json(document: str | memoryview) -> Any:
    """msgspec's decoder (several times faster than json's on large specs, the same values), or
    :data:`_NOT_JSON` when it refuses the document: json's decoder then tells the line and
    column, and reads NaN, 1e400 and lone surrogates."""
    try:
        return msgspec.json.decode(document)
    except msgspec.MsgspecError:
        return _NOT_JSON


def _decoded(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (bad byte at offset {exc.start})", file=path) from None


def parse(text: str, source: str) -> Document:
    """Parse ``text`` once: XML is recognised by its first ``<``, JSON by ``{``/``[``, else YAML."""
    text = text.removeprefix("\ufeff")
    head = text.lstrip()[:1]
    if not head:
        raise SpecError("the file is empty", file=source, hint=_KNOWN)
    if head == "<":
        return Document(source, text=text, root=_xml_root(text, source))
    if head in "{[":
        data = _fast_json(text)
        if data is not _NOT_JSON:
            return Document(source, data=data)
        try:
            return Document(source, data=json.loads(text))
        except json.JSONDecodeError as exc:
            try:  # YAML flow style also starts with a brace
                return Document(source, data=yaml.load(text, Loader=_YamlLoader))
            except yaml.YAMLError:
                problem = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                raise SpecError(problem, file=source) from None
    try:
        data = yaml.load(text, Loader=_YamlLoader)
    except yaml.YAMLError as exc:
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
    try:  # not a simple prolog: let the real parser find the root or the error
        return ElementTree.fromstring(text).tag.rpartition("}")[2]
    except ElementTree.ParseError as exc:
        raise _xml_error(exc, source) from None


def _xml_error(exc: ElementTree.ParseError, source: str) -> SpecError:
    line, column = getattr(exc, "position", (0, 0))
    message = str(exc).split(":")[0]
    return SpecError(f"invalid XML at line {line}, column {column + 1}: {message}", file=source)


def _yaml_error(exc: yaml.YAMLError, source: str) -> SpecError:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
        hint = None
        if "expected ','" in str(exc.problem) or "found unexpected ':'" in str(exc.problem):
            hint = 'inside [ ] and { }, quote strings holding braces or colons: ["sim_{tf}"]'
        return SpecError(problem, file=source, hint=hint)
    return SpecError(f"invalid YAML: {exc}", file=source)


# -- detection ----------------------------------------------------------------------------------


def detect(path: str | os.PathLike[str], text: str) -> str:
    """The format of ``text`` (read from ``path``): one of :data:`FORMATS`."""
    return detect_data(parse(text, os.fspath(path)))


def detect_data(doc: Document) -> str:
    """The format of a parsed document, by the rules in this module's docstring."""
    if doc.root is not None:
        if doc.root in ("Jobs", "Job"):
            return "dampe"
        raise SpecError(
            f"XML with root <{doc.root}> is not a workflow format herd reads",
            file=doc.source,
            hint=_KNOWN,
        )
    data = doc.data
    if isinstance(data, dict):
        if isinstance(data.get("stages"), list):
            return "o2dpg"
        if "pegasus" in data or (isinstance(data.get("jobs"), list) and "tasks" not in data):
            return "pegasus"
        workflow = data.get("workflow")
        wf_like = isinstance(workflow, dict) and (
            "specification" in workflow or "tasks" in workflow
        )
        if wf_like and "schemaVersion" in data:
            return "wfformat"
        if "tasks" in data:
            return "native"
        if wf_like:
            raise SpecError(
                "looks like WfFormat but has no schemaVersion",
                file=doc.source,
                hint='add schemaVersion, e.g. "1.5"',
            )
    kind = "a mapping" if isinstance(data, dict) else type(data).__name__
    raise SpecError(
        f"not a workflow format herd reads (found {kind} without tasks)",
        file=doc.source,
        hint=_KNOWN,
    )


# -- writing ------------------------------------------------------------------------------------


def dumps(workflow: Workflow, fmt: str = "yaml") -> str:
    """``workflow`` as native ``yaml`` or ``json`` text."""
    from herd.formats.native import dump_data

    data = dump_data(workflow)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        text: str = yaml.dump(
            data,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,
            width=1 << 30,
        )
        return text
    raise ValueError(f"unknown native flavour {fmt!r}: use 'yaml' or 'json'")


def dump(workflow: Workflow, path: str | os.PathLike[str]) -> None:
    """Write ``workflow`` as a native spec: JSON for ``.json``, YAML for ``.yaml``/``.yml``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise SpecError(
            "cannot tell the format from the extension",
            file=str(path),
            hint="use .yaml, .yml or .json",
        )
    text = dumps(workflow, "json" if suffix == ".json" else "yaml")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise HerdError(f"{path}: cannot write the workflow: {exc.strerror or exc}") from None


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Multi-line strings (scripts) as literal blocks, everything else as PyYAML would."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper: Any = type("_Dumper", (_YamlDumper,), {})
_Dumper.add_representer(str, _represent_str)
