"""Which format a parsed spec file is in, told from the content. The rules, first match wins:

=========  =================================================================================
dampe      XML whose root element is ``<Jobs>`` or a lone ``<Job>`` (DAMPE DmpWorkflow)
o2dpg      a mapping with a ``stages`` list (ALICE O2DPG ``workflow.json``)
pegasus    a mapping with a ``pegasus`` key, or with a ``jobs`` list and no ``tasks`` (Pegasus 5)
wfformat   a mapping with ``schemaVersion`` and ``workflow.specification`` or ``workflow.tasks``
native     a mapping with ``tasks`` (herd's own format, ``docs/spec.md``)
=========  =================================================================================

A document of no known format is a :class:`~herd.errors.SpecError` naming the file.
"""

from __future__ import annotations

import os

from herd.errors import SpecError
from herd.formats.decoding import KNOWN, Document, parse

#: the formats herd reads, in detection order
FORMATS: tuple[str, ...] = ("dampe", "o2dpg", "pegasus", "wfformat", "native")


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
            hint=KNOWN,
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
        hint=KNOWN,
    )
