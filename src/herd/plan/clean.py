"""Temporary and intermediate files: removing them during a run (``temp``) or on request.

A ``temp`` output is deleted as soon as every task of this run that reads it has succeeded
(O2DPG's ``--remove-files-early``, Pegasus's in-place clean-up). Workers do the same for a
submitted workflow: each reader carries the temp files it reads with their readers
(:meth:`TempFiles.readers`), and the worker whose finish leaves every reader succeeded removes
the file, on whatever host (:func:`remove_unneeded`); two finishing at once may both remove it. A temp file is kept when a task
that reads it failed (its rerun will want it) or lies outside this run's selection (a later run
may want it). A later run that needs a deleted temp file again runs its producer again
(``plan/planner.py``).

``herd clean`` removes, on request, the temp outputs still on disk and, with ``intermediate``,
every output that another task of the workflow reads. Those producers run again when a task that
reads their files has to run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from herd.core.graph import Graph, file_key
from herd.core.model import TaskState
from herd.plan.files import Files
from herd.store.queued import QueueStates


class TempFiles:
    """Counts, for each temp file, the readers in this run that have not succeeded yet."""

    def __init__(self, graph: Graph, todo: Collection[int], selected: Collection[int]) -> None:
        self.graph, self.todo = graph, todo
        temp = {file_key(t, p) for t in graph.tasks for p in t.temp}
        self.pending: dict[str, int] = {}
        keep: set[str] = set()
        for i, task in enumerate(graph.tasks) if temp else ():
            for path in task.inputs:
                key = file_key(task, path)
                if key not in temp:
                    continue
                if i not in selected:
                    keep.add(key)  # a reader outside this run may still need it
                elif i in todo:
                    self.pending[key] = self.pending.get(key, 0) + 1
        for key in keep:
            self.pending.pop(key, None)

    def __bool__(self) -> bool:
        return bool(self.pending)

    def readers(self) -> dict[str, list[int]]:
        """Each temp file this run removes, with the tasks of the run that read it (workers
        remove it once all of them succeeded: ``herd submit`` records them with each reader)."""
        out: dict[str, list[int]] = {key: [] for key in self.pending}
        for i in self.todo if self.pending else ():
            task = self.graph.tasks[i]
            for path in task.inputs:
                readers = out.get(file_key(task, path))
                if readers is not None and i not in readers:
                    readers.append(i)
        return out

    def release(self, i: int) -> list[str]:
        """Task ``i`` succeeded: the temp files (workflow-relative) that nobody needs any more."""
        done = []
        task = self.graph.tasks[i]
        for path in task.inputs:
            key = file_key(task, path)
            left = self.pending.get(key)
            if left is None:
                continue
            if left <= 1:
                del self.pending[key]
                done.append(key)
            else:
                self.pending[key] = left - 1
        return done


def remove_unneeded(
    store: object, workflow_id: int, temp_inputs: Mapping[str, Sequence[str]]
) -> list[Path]:
    """Remove the temp files (absolute paths, with the tasks that read them) whose readers have
    all succeeded in ``store``'s queue, once a finish committed: of two workers finishing the
    last readers at once, the later sees both (the server's HTTP client asks the server). A
    store that cannot tell removes nothing: `herd clean` does."""
    if not temp_inputs or not isinstance(store, QueueStates):
        return []
    readers = sorted({name for names in temp_inputs.values() for name in names})
    states = store.queue_states(workflow_id, readers)
    done = {name for name, state in states.items() if state is TaskState.SUCCEEDED}
    removed = []
    for path, readers_of in temp_inputs.items():
        if all(name in done for name in readers_of):
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()
                removed.append(Path(path))
    return removed


def removable(graph: Graph, *, intermediate: bool = False) -> list[tuple[str, str]]:
    """(task, path) of every temp output and, with ``intermediate``, every output another task reads."""
    read = {file_key(t, p) for t in graph.tasks for p in t.inputs} if intermediate else set()
    out = []
    for task in graph.tasks:
        temp = set(task.temp)
        for path in task.outputs:
            if path in temp or file_key(task, path) in read:
                out.append((task.name, path))
    return out


def clean(
    graph: Graph, files: Files, *, intermediate: bool = False, dry_run: bool = False
) -> list[Path]:
    """Delete what :func:`removable` lists and exists; return the paths (not deleted on a dry run)."""
    removed = []
    for name, path in removable(graph, intermediate=intermediate):
        full = files.path(graph.tasks[graph.index[name]], path)
        if full.is_file():
            if not dry_run:
                full.unlink()
            removed.append(full)
    return removed
