"""Convert a workflow file from any format herd reads to the native spec or to WfFormat.

The target is ``to`` when given, else the destination's name: ``*.wfformat.json`` (or
``.wfformat.json.gz``) is WfFormat 1.5, ``*.yaml``/``*.yml``/``*.json`` the native spec. Native can
express every workflow; WfFormat keeps what it has no field for in ``herd`` extension objects (see
:mod:`herd.formats.wfformat`), and refuses, with a :class:`~herd.errors.SpecError` saying what
would be lost, task names and paths outside its id character set.

``command_template`` applies to WfFormat sources, whose tasks carry recorded commands that rarely
exist on another machine: ``"replay"`` (sleep for the recorded runtime, then create the outputs at
their recorded sizes), ``"instant"`` (only create them), or a template of your own
(:data:`herd.formats.wfformat.TEMPLATE_FIELDS`).
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import replace
from pathlib import Path

from herd.core.model import Workflow, frozen_map
from herd.errors import HerdError, UsageError

__all__ = ["TARGETS", "convert", "load_source", "target_format"]

#: the formats herd writes
TARGETS: tuple[str, ...] = ("native", "wfformat")


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    to: str | None = None,
    command_template: str | None = None,
) -> Workflow:
    """Read ``src`` (any format), write it to ``dst`` in the target format, return the workflow.

    >>> convert("montage.json.gz", "montage.yaml", command_template="replay")  # doctest: +SKIP
    """
    target = target_format(dst, to)
    workflow = _with_losses(load_source(src, command_template), target)
    if target == "native":
        from herd.formats import dump

        dump(workflow, dst)
    else:
        from herd.formats.wfformat_write import dump_data

        _write_json(dump_data(workflow), Path(dst))
    return workflow


def _with_losses(workflow: Workflow, target: str) -> Workflow:
    """The workflow with a warning for each thing of it the target format cannot hold."""
    lost = []
    if workflow.hooks:
        lost.append(
            f"its {len(workflow.hooks)} workflow hook(s) are not written: {target} has none"
        )
    nested = workflow.meta.get("nested", ())
    if nested:
        lost.append(
            f"sub-workflow job(s) {', '.join(nested)} are written as their file check only: "
            f"{target} cannot say that their workflow joins the run"
        )
    if not lost:
        return workflow
    warnings = (*workflow.meta.get("warnings", ()), *(f"{workflow.source}: {w}" for w in lost))
    return replace(workflow, meta=frozen_map({**workflow.meta, "warnings": warnings}))


def target_format(dst: str | os.PathLike[str], to: str | None = None) -> str:
    """``native`` or ``wfformat``: ``to`` when given, else told by the destination's name."""
    if to is not None:
        if to not in TARGETS:
            raise UsageError(f"cannot write '{to}' workflows: herd writes {' and '.join(TARGETS)}")
        return to
    name = Path(dst).name.lower()
    if name.endswith((".wfformat.json", ".wfformat.json.gz")):
        return "wfformat"
    if name.endswith((".yaml", ".yml", ".json")):
        return "native"
    raise UsageError(
        f"cannot tell the target format from '{dst}': name it *.yaml, *.yml or *.json for the "
        "native spec, *.wfformat.json for WfFormat, or pass to='native' / to='wfformat'"
    )


def load_source(src: str | os.PathLike[str], command_template: str | None = None) -> Workflow:
    """Load ``src`` in whatever format it is; ``command_template`` only for WfFormat sources."""
    from herd.formats import detect_data, load_document, parse, read_text

    source = os.fspath(src)
    document = parse(read_text(source), source)
    fmt = detect_data(document)
    if command_template is None:
        return load_document(document)
    if fmt != "wfformat":
        raise UsageError(
            f"a command template applies to WfFormat instances only; {source} is a {fmt} workflow"
        )
    from herd.formats.wfformat import load_data

    return load_data(document.data, source, command_template)


def _write_json(data: object, path: Path) -> None:
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    raw = gzip.compress(text.encode()) if path.name.endswith(".gz") else text.encode()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(raw)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise HerdError(f"{path}: cannot write the workflow: {exc.strerror or exc}") from None
