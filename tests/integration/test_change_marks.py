"""The store's change mark and the live views that look at it first (``herd serve``'s event
stream, :meth:`herd.service.hub.Hub.changes`): a change made by any connection is seen, and an
idle store is seen as idle."""

from __future__ import annotations

from pathlib import Path

from herd.core.model import Task, TaskState, Workflow
from herd.service.hub import Hub, Watch
from herd.store import open_store
from herd.store.base import TaskChanged


def done(workflow_id: int, task: str) -> TaskChanged:
    return TaskChanged(workflow_id, task, TaskState.SUCCEEDED, 20.0, attempts=1, exit_code=0)


def test_the_mark_moves_when_another_connection_commits(store_url: str) -> None:
    watcher, writer = open_store(store_url), open_store(store_url)
    try:
        wid = writer.add_workflow(Workflow("w", (Task("a", "true"), Task("b", "true"))))
        before = watcher.change_mark()
        writer.write([done(wid, "a")])
        assert watcher.change_mark() != before
    finally:
        watcher.close()
        writer.close()


def test_an_sqlite_mark_stays_while_nothing_is_committed(tmp_path: Path) -> None:
    # (PostgreSQL's mark is the server's WAL position: other databases move it too)
    watcher, writer = open_store(tmp_path / "h.db"), open_store(tmp_path / "h.db")
    try:
        writer.add_workflow(Workflow("w", (Task("a", "true"),)))
        mark = watcher.change_mark()
        writer.workflows()
        assert watcher.change_mark() == mark
    finally:
        watcher.close()
        writer.close()


def test_changes_tell_what_another_connection_and_the_hub_changed(
    store_url: str, tmp_path: Path
) -> None:
    hub, writer = Hub(store_url, tmp_path), open_store(store_url)
    try:
        wid = writer.add_workflow(Workflow("w", (Task("a", "true"), Task("b", "true"))))
        watch = Watch()
        assert hub.changes(watch, {"w"}) == []  # the first look: what is there now
        assert hub.changes(watch, {"w"}) == []
        writer.write([done(wid, "a")])
        (change,) = hub.changes(watch, {"w"})
        assert [t.name for t in change.tasks] == ["a"]
        assert change.counts["succeeded"] == 1
        assert hub.changes(watch, {"w"}) == []
        hub.reset("w", ["a"])  # through the hub's own connections
        (change,) = hub.changes(watch, {"w"})
        assert [(t.name, t.state) for t in change.tasks] == [("a", TaskState.WAITING)]
    finally:
        writer.close()
        hub.close()


def test_a_workflow_first_listened_to_is_looked_at_while_the_store_is_idle(
    store_url: str, tmp_path: Path
) -> None:
    hub, writer = Hub(store_url, tmp_path), open_store(store_url)
    try:
        one = writer.add_workflow(Workflow("one", (Task("a", "true"),)))
        writer.add_workflow(Workflow("two", (Task("a", "true"),)))
        watch = Watch()
        hub.changes(watch, {"one"})
        hub.changes(watch, {"one", "two"})  # "two" wanted now: its first look happens
        assert set(watch.tasks) == {"one", "two"}
        writer.write([done(one, "a")])
        assert [c.workflow for c in hub.changes(watch, None)] == ["one"]
    finally:
        writer.close()
        hub.close()


def test_a_summary_is_looked_at_again_once_anything_committed(
    store_url: str, tmp_path: Path
) -> None:
    hub, writer = Hub(store_url, tmp_path), open_store(store_url)
    try:
        wid = writer.add_workflow(Workflow("w", (Task("a", "true"), Task("b", "true"))))
        assert hub.workflow("w").counts["waiting"] == 2
        writer.write([done(wid, "a")])
        assert hub.workflow("w").counts["succeeded"] == 1
        assert [s.counts["succeeded"] for s in hub.workflows()] == [1]
        hub.reset("w", ["a"])
        assert hub.workflow("w").counts["succeeded"] == 0
        assert [s.counts["succeeded"] for s in hub.workflows()] == [0]
        writer.add_workflow(Workflow("v", (Task("a", "true"),)))
        assert [s.workflow.name for s in hub.workflows()] == ["w", "v"]
    finally:
        writer.close()
        hub.close()
