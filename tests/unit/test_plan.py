"""Planning: fingerprints and the one reason each task runs for. Real files in tmp_path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herd.core.graph import build
from herd.core.model import Task, TaskState, Workflow, frozen_map
from herd.plan.commands import _expander
from herd.plan.files import Files
from herd.plan.planner import Plan, PlanRequest, Why, make_plan
from herd.store.base import TaskRecord


def chain(env: dict[str, str] | None = None, cmd_b: str = "b") -> Workflow:
    return Workflow(
        "p",
        (
            Task("a", "gen", inputs=("in.txt",), outputs=("a.out",)),
            Task("b", cmd_b, inputs=("a.out",), outputs=("b.out",)),
            Task("c", "ana $X", inputs=("b.out",), outputs=("c.out",)),
        ),
        env=frozen_map(env or {"X": "1"}),
    )


def plan(wf: Workflow, root: Path, records: dict[str, TaskRecord], **kw: object) -> Plan:
    g = build(wf)
    return make_plan(g, records, Files(root), PlanRequest(set(range(len(g))), **kw))  # type: ignore[arg-type]


def succeed_all(wf: Workflow, root: Path, p: Plan) -> dict[str, TaskRecord]:
    """What the store holds after every task of ``p`` ran and succeeded (outputs written)."""
    files = Files(root)
    out = {}
    for i, v in p.verdicts.items():
        task = wf.tasks[i]
        for o in task.outputs:
            (root / o).write_text(f"{task.name} output")
        inputs = {path: files.stamp(task, path) for path in task.inputs}
        out[task.name] = TaskRecord(
            task.name,
            TaskState.SUCCEEDED,
            attempts=1,
            fingerprint=v.fingerprint,
            cmd_digest=v.cmd_digest,
            env_digest=v.env_digest,
            inputs=frozen_map({k: s for k, s in inputs.items() if s}),
        )
    return out


def reasons(
    wf: Workflow, root: Path, records: dict[str, TaskRecord], **kw: object
) -> dict[str, str]:
    p = plan(wf, root, records, **kw)
    return {wf.tasks[i].name: v.reason for i, v in p.verdicts.items() if v.run}


def test_new_then_up_to_date(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    p = plan(wf, tmp_path, {})
    assert p.reasons(build(wf)) == {"a": "new", "b": "new", "c": "new"}
    records = succeed_all(wf, tmp_path, p)
    again = plan(wf, tmp_path, records)
    assert not again.todo
    assert {v.reason for v in again.verdicts.values()} == {"up to date"}


def test_input_edit_reruns_everything_downstream(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    (tmp_path / "in.txt").write_text("y")
    assert reasons(wf, tmp_path, records) == {
        "a": "input in.txt changed",
        "b": "upstream a reran",
        "c": "upstream b reran",
    }


def test_each_verdict_names_its_reason_and_cause_as_typed_facts(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    (tmp_path / "in.txt").write_text("y")
    verdicts = plan(wf, tmp_path, records).verdicts
    assert [(v.why, v.cause) for _, v in sorted(verdicts.items())] == [
        (Why.INPUT_CHANGED, -1),
        (Why.UPSTREAM, 0),
        (Why.UPSTREAM, 1),
    ]
    again = plan(wf, tmp_path, succeed_all(wf, tmp_path, plan(wf, tmp_path, records)))
    assert {v.why for v in again.verdicts.values()} == {Why.UP_TO_DATE}


def test_touch_without_change_reruns_nothing(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    st = os.stat(tmp_path / "in.txt")
    os.utime(tmp_path / "in.txt", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert reasons(wf, tmp_path, records) == {}


def test_checksum_compares_content_whatever_size_and_mtime_say(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    stat = (tmp_path / "in.txt").stat()
    (tmp_path / "in.txt").write_text("y")  # same size, and the old mtime put back
    os.utime(tmp_path / "in.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert reasons(wf, tmp_path, records) == {}
    g = build(wf)
    request = PlanRequest(set(range(len(g))))
    checked = make_plan(g, records, Files(tmp_path, checksum=True), request)
    assert checked.reasons(g) == {
        "a": "input in.txt changed",
        "b": "upstream a reran",
        "c": "upstream b reran",
    }


def test_command_and_env_changes(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    assert reasons(chain(cmd_b="b --new"), tmp_path, records) == {
        "b": "command changed",
        "c": "upstream b reran",
    }
    # X is expanded in c's command: the command changes, and so does the env
    assert reasons(chain(env={"X": "2"}), tmp_path, records)["c"] == "command changed"
    assert reasons(chain(env={"X": "1", "Y": "0"}), tmp_path, records) == {
        "a": "env changed",
        "b": "env changed",
        "c": "env changed",
    }


def test_output_missing_failed_interrupted_forced(tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    (tmp_path / "c.out").unlink()
    assert reasons(wf, tmp_path, records) == {"c": "output c.out missing"}
    (tmp_path / "c.out").write_text("back")
    records["b"] = TaskRecord("b", TaskState.FAILED, attempts=2)
    assert reasons(wf, tmp_path, records) == {"b": "failed before", "c": "upstream b reran"}
    records["b"] = TaskRecord("b", TaskState.WAITING, attempts=2)
    assert reasons(wf, tmp_path, records)["b"] == "interrupted"
    ok = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    assert reasons(wf, tmp_path, ok, force=("b",)) == {"b": "forced", "c": "upstream b reran"}
    assert reasons(wf, tmp_path, ok, rerun_from=("a",)) == {
        "a": "forced",
        "b": "forced",
        "c": "forced",
    }


def test_done_marker_counts_when_store_knows_nothing(tmp_path: Path) -> None:
    wf = Workflow(
        "m",
        (
            Task("sim", "x", cwd="tf1", done_marker="sim.log_done"),
            Task("reco", "y", needs=("sim",)),
        ),
    )
    (tmp_path / "tf1").mkdir()
    (tmp_path / "tf1" / "sim.log_done").touch()
    p = plan(wf, tmp_path, {})
    assert p.reasons(build(wf)) == {"reco": "new"}
    assert p.verdicts[0].reason == "done (marker file exists)"


def test_temp_output_regenerated_only_when_a_reader_runs(tmp_path: Path) -> None:
    wf = Workflow(
        "t",
        (
            Task("make", "m", outputs=("big.tmp",), temp=("big.tmp",)),
            Task("use", "u", inputs=("big.tmp",), outputs=("small.out",)),
        ),
    )
    records = succeed_all(wf, tmp_path, plan(wf, tmp_path, {}))
    (tmp_path / "big.tmp").unlink()  # cleaned after use
    assert reasons(wf, tmp_path, records) == {}
    (tmp_path / "small.out").unlink()
    assert reasons(wf, tmp_path, records) == {
        "make": "output big.tmp missing (temp, needed by use)",
        "use": "output small.out missing",
    }
    again = plan(wf, tmp_path, records)
    make = again.verdicts[0]  # run again: recorded with its digests, as on its first run
    assert (make.cmd_digest, make.env_digest) == (
        records["make"].cmd_digest,
        records["make"].env_digest,
    )
    assert make.fingerprint == records["make"].fingerprint


def test_fingerprints_of_the_tasks_that_run_whatever_else_runs(tmp_path: Path) -> None:
    """Only tasks that run get a fingerprint (a resumed run with nothing to do computes none),
    and a task's is the same whether its upstream runs with it or is skipped."""
    (tmp_path / "in.txt").write_text("x")
    wf = chain()
    first = plan(wf, tmp_path, {})
    assert all(v.fingerprint and v.cmd_digest for v in first.verdicts.values())
    assert len({v.fingerprint for v in first.verdicts.values()}) == 3
    records = succeed_all(wf, tmp_path, first)
    assert [v.fingerprint for v in plan(wf, tmp_path, records).verdicts.values()] == ["", "", ""]
    everything = plan(wf, tmp_path, records, force=(".*",))
    forced = plan(wf, tmp_path, records, force=("c",))
    assert forced.todo == {2}
    assert forced.verdicts[2].fingerprint == everything.verdicts[2].fingerprint
    assert forced.verdicts[0].fingerprint == forced.verdicts[1].fingerprint == ""
    other = chain(cmd_b="b2")  # b's command is part of c's fingerprint, though b does not run
    records["b"] = records["b"]._replace(
        cmd_digest=plan(other, tmp_path, {}).verdicts[1].cmd_digest
    )
    changed = plan(other, tmp_path, records, force=("c",))
    assert changed.todo == {2}
    assert changed.verdicts[2].fingerprint != everything.verdicts[2].fingerprint


def _tree(root: Path) -> list[str]:
    """Present, missing, linked and unreadable files in listed and unlisted folders; their keys."""
    (root / "many").mkdir()
    for i in range(0, 100, 2):
        (root / "many" / f"f{i}").write_text(str(i))
    (root / "many" / "dangling").symlink_to("nowhere")
    (root / "many" / "link").symlink_to("f0")
    (root / "many" / "sub").mkdir()
    (root / "few").mkdir()
    (root / "few" / "a").write_text("a")
    (root / "plain").write_text("x")
    (root / "full").mkdir()  # its first files all exist: not listed, so a later missing one...
    for i in range(40):
        (root / "full" / f"f{i}").write_text(str(i))
    keys = [f"many/f{i}" for i in range(100)] + ["few/a", "few/b", "gone/x", "plain/x", "plain"]
    keys += [f"full/f{i}" for i in range(40)] + ["full/missing"]  # ...is found missing by a stat
    return [*keys, "many/dangling", "many/link", "many/sub", str(root / "few" / "a"), "/no/such"]


def test_a_snapshot_sees_the_files_as_plain_lookups_do(tmp_path: Path) -> None:
    """Folders looked into often are listed once; stamps and existence agree with plain stats,
    for present and missing files, in listed, unlisted, missing and unreadable folders."""
    paths, task = _tree(tmp_path), Task("t", "true")
    plain, snapshot = Files(tmp_path), Files(tmp_path).snapshot()
    for _ in range(2):  # the second pass answers from the listings
        for path in paths:
            assert snapshot.stamp(task, path) == plain.stamp(task, path), path
            assert snapshot.exists(task, path) == plain.exists(task, path), path
    assert snapshot.stamp(task, "many/f1") is None and snapshot.stamp(task, "many/f2") is not None
    assert not snapshot.exists(task, "many/dangling") and snapshot.exists(task, "many/link")
    (tmp_path / "many" / "f2").write_text("changed")  # remembered: a snapshot of one pass
    assert snapshot.stamp(task, "many/f2") != plain.stamp(task, "many/f2")


@pytest.mark.parametrize("background", [False, True], ids=["in-process", "child process"])
def test_stat_all_answers_as_plain_stats_do(tmp_path: Path, background: bool) -> None:
    keys = _tree(tmp_path)
    snapshot = Files(tmp_path).snapshot()
    snapshot.BACKGROUND_AFTER = 0 if background else 10**9  # type: ignore[attr-defined]
    snapshot.stat_all(keys)
    assert (snapshot._pending is not None) == background  # type: ignore[attr-defined]
    plain, task = Files(tmp_path), Task("t", "true")
    assert [snapshot.stat_of(k) for k in keys] == [plain.stat_of(k) for k in keys]
    assert [snapshot.exists(task, k) for k in keys] == [plain.exists(task, k) for k in keys]
    assert snapshot._pending is None  # type: ignore[attr-defined]


def test_stat_all_falls_back_when_its_child_fails(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import herd.plan.files

    keys, parent = _tree(tmp_path), os.getpid()
    real = herd.plan.files._Snapshot._stats

    def fail_in_the_child(self, keys):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            raise MemoryError("the child dies")
        return real(self, keys)

    monkeypatch.setattr(herd.plan.files._Snapshot, "_stats", fail_in_the_child)
    snapshot = Files(tmp_path).snapshot()
    snapshot.BACKGROUND_AFTER = 0  # type: ignore[attr-defined]
    snapshot.stat_all(keys)
    plain = Files(tmp_path)
    assert [snapshot.stat_of(k) for k in keys] == [plain.stat_of(k) for k in keys]


def test_a_child_never_asked_is_stopped(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    snapshot = Files(tmp_path).snapshot()
    snapshot.BACKGROUND_AFTER = 0  # type: ignore[attr-defined]
    snapshot.stat_all(_tree(tmp_path))
    pid = snapshot._pending.pid  # type: ignore[attr-defined]
    assert Path(f"/proc/{pid}").exists()
    del snapshot  # planning failed before it needed the answers
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped: not even a zombie


def test_a_folder_too_large_to_list_is_stat_ed_file_by_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import herd.plan.files

    monkeypatch.setattr(herd.plan.files, "LISTING_LIMIT", 10)
    for i in range(20):
        (tmp_path / f"f{i}").write_text("x")
    task, snapshot = Task("t", "true"), Files(tmp_path).snapshot()
    for _ in range(2):
        for i in range(40):
            assert (snapshot.stamp(task, f"f{i}") is not None) == (i < 20)
    (tmp_path / "late").write_text("x")  # a listed folder would hide it; a stat finds it
    assert snapshot.stamp(task, "late") is not None


# --- variable expansion ---------------------------------------------------------------------

_WORDS = ("A", "AB", "B", "é")
_PIECES = (*_WORDS, "$", "{", "}", " ", "\\", *(f"${{{w}}}" for w in _WORDS))


def _reference_expansion(env: dict[str, str], cmd: str) -> str:
    """One left-to-right pass of the documented rule, with nothing clever."""
    names = sorted((n for n in env if re.fullmatch(r"\w+", n)), key=len, reverse=True)
    if not names:
        return cmd
    alternatives = "|".join(map(re.escape, names))
    pattern = re.compile(rf"\$(?:({alternatives})(?!\w)|\{{({alternatives})\}})")
    return pattern.sub(lambda m: env[m[1] or m[2]], cmd)


@settings(max_examples=1000, deadline=None)
@given(
    env=st.dictionaries(
        st.sampled_from(_WORDS), st.lists(st.sampled_from(_PIECES), max_size=4).map("".join)
    ),
    pieces=st.lists(st.sampled_from(_PIECES), max_size=12),
)
def test_expansion_matches_a_single_left_to_right_pass(
    env: dict[str, str], pieces: list[str]
) -> None:
    """The str.replace shortcut for ${NAME} forms gives what one regex pass gives, whatever the
    values hold ($, braces, names glued to what follows)."""
    cmd = "".join(pieces)
    assert _expander(env)(cmd) == _reference_expansion(env, cmd)


def test_expansion_examples() -> None:
    expand = _expander({"A": "x", "AB": "y", "SEED": "624"})
    assert expand("$A $AB ${A}${AB} $ABC $A_ ${ABC}") == "x y xy $ABC $A_ ${ABC}"
    assert expand("--seed $((${SEED} + 1))") == "--seed $((624 + 1))"
    assert expand("$${A}") == "$x"  # the value is not read as a name after the $
    assert _expander({"A": "B", "B": "v"})("$${A}") == "$B"
    # values that would make a new reference if expanded one name at a time
    assert _expander({"A": "{B}", "B": "v"})("$${A}") == "${B}"
    assert _expander({"A": "B}", "B": "v"})("${${A}") == "${B}"
