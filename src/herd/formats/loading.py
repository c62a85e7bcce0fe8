"""Load a spec file: decode it (:mod:`herd.formats.decoding`), name its format
(:mod:`herd.formats.detection`) and hand the data to that format's loader, imported lazily from
:data:`LOADERS`; refuse more tasks than the limit, and resolve variables in file paths.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from herd.core.bulk import gc_paused
from herd.core.model import MAX_TASKS, Workflow
from herd.errors import SpecError
from herd.formats.decoding import (
    NOT_JSON,
    Document,
    bounded_depth,
    decoded,
    json_bytes,
    parse,
    read_bytes,
    xml_error,
)
from herd.formats.detection import detect_data

#: format -> "module:function"; XML loaders take the text, the others the parsed data
LOADERS: dict[str, str] = {
    "native": "herd.formats.native:load_data",
    "o2dpg": "herd.formats.o2dpg:load_data",
    "pegasus": "herd.formats.pegasus:load_data",
    "wfformat": "herd.formats.wfformat:load_data",
    "dampe": "herd.formats.dampe:load_text",
}

_Loader = Callable[[Any, str], Workflow]


@dataclass(frozen=True)
class Setup:
    """What ``pegasus-plan`` would be given besides the workflow: ``--conf`` and ``-D``. (Here,
    not with the catalogs that read it: a spec of another format does not import those.)"""

    conf: str | None = None
    defines: Mapping[str, str] = field(default_factory=dict)


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
    raw = read_bytes(source)
    with gc_paused(), bounded_depth(source):
        data = json_bytes(raw)
        if data is not NOT_JSON:
            workflow = load_document(Document(source, data=data), max_tasks=max_tasks, setup=setup)
        else:
            document = parse(decoded(raw, source), source)
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
    with gc_paused(), bounded_depth(source):
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
    elif doc.text is not None:  # XML: its loader parses it with ElementTree, errors caught here
        from xml.etree import ElementTree

        try:
            workflow = loader(fmt)(doc.text, doc.source)
        except ElementTree.ParseError as exc:
            raise xml_error(exc, doc.source) from None
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
