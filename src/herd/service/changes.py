"""Operations that change what herd remembers or what lies on disk: reset, forget, clean, emit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from herd.core.graph import build, descendants, match
from herd.core.model import Workflow
from herd.errors import UsageError
from herd.exec import emit as emitting
from herd.plan.clean import clean as remove
from herd.plan.files import Files
from herd.service.state import changing
from herd.store.workdir import Workdir


def reset(
    workdir: Path,
    workflow: Workflow,
    patterns: Sequence[str],
    *,
    downstream: bool = False,
    name: str | None = None,
    store: str | None = None,
) -> list[str]:
    """Forget that the tasks matching ``patterns`` (full-match regexes) succeeded, and with
    ``downstream`` every task that needs them, so that they run again; history is kept. ``name``:
    the workflow's name in the store, when not the spec's. Returns the tasks reset."""
    graph = build(workflow)
    chosen = match(graph, list(patterns))
    if not chosen:
        raise UsageError(f"no task matches {' '.join(patterns)}: see `herd list`")
    if downstream:
        chosen = descendants(graph, chosen)
    names = [graph.name(i) for i in sorted(chosen)]
    chosen_name = name if name is not None else workflow.name
    with changing(workdir, chosen_name, store=store) as (opened, record):
        opened.reset(record.id, names)
    return names


def forget(
    workdir: Path, workflow: str | None, spec: str | None = None, *, store: str | None = None
) -> str:
    """Drop every record of a workflow (its files stay): the one called ``workflow``, else the one
    the spec file ``spec`` names, else the store's only one. Returns its name."""
    with changing(workdir, workflow, spec, store=store) as (opened, record):
        opened.forget(record.id)
    return record.name


def clean(
    workflow: Workflow, workdir: Path, *, intermediate: bool = False, dry_run: bool = False
) -> list[Path]:
    """Remove the workflow's temp outputs (with ``intermediate``, also the outputs other tasks
    read) from ``workdir``, under the run lock; return their paths (on a dry run, remove
    nothing and take no lock)."""
    graph, files = build(workflow), Files(workdir.resolve())
    if dry_run:
        return remove(graph, files, intermediate=intermediate, dry_run=True)
    with Workdir(workdir).lock():  # never under a running herd: its tasks read them
        return remove(graph, files, intermediate=intermediate)


def emit(key: str, value: str) -> None:
    """From inside a task: record result ``key`` with its attempt (``value`` as JSON when it
    parses, else as a string)."""
    emitting.emit(key, emitting.parse_value(value))


def emit_event(text: str) -> None:
    """From inside a task: record the JSON object ``text`` as a timestamped event."""
    data: Any = emitting.parse_value(text)
    if not isinstance(data, dict):
        raise UsageError('--event wants a JSON object, e.g. --event \'{"stage": "merged"}\'')
    emitting.emit_event(data)
