"""herd stats / analyze / plot over a real run: real processes, a real SQLite store.

One module-scoped run of a small workflow provides the store every test reads: tasks that fail
(``exit 3``), one that fails once and succeeds on its retry, one killed by its timeout, two
cancelled because a task they need failed, labels on most tasks. The workflow is written as a
native spec file and loaded from it, so the store knows its source (labels, rerun commands).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from herd.cli import main
from herd.core.model import Kill, Limits, Task, TaskState, Workflow
from herd.formats import dump, load
from herd.reports.analyze import Analysis, analyze, locate, rerun_command, tail
from herd.reports.analyze import render_text as render_analysis
from herd.reports.analyze import to_json as analysis_json
from herd.reports.plot import (
    Bar,
    chart_from_schedule,
    chart_from_store,
    pack_lanes,
    place,
    save,
)
from herd.reports.stats import Stats, stats, to_csv, to_json
from herd.reports.stats import render_text as render_stats
from herd.reports.status import from_json as status_from_json
from herd.run.local import RunOptions, run_workflow
from herd.run.progress import QuietReporter
from herd.service.state import existing_store
from herd.store import open_store
from herd.store.base import AttemptFinished, AttemptRecord, AttemptStarted, Store, TaskChanged
from herd.store.sqlite import SQLiteStore

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _workflow() -> Workflow:
    def task(name: str, cmd: str, **kw: object) -> Task:
        return Task(name, cmd, resources={"cpu": 1, "mem": 100}, **kw)  # type: ignore[arg-type]

    return Workflow(
        "reports",
        (
            task("prep", "echo prepared; echo prep-warning >&2", labels=("setup",)),
            task(
                "flaky",
                "test -f marker || { touch marker; echo first try fails >&2; exit 1; }",
                labels=("sim",),
                retries=1,
                backoff=0.1,
            ),
            task(
                "broken",
                'echo about to fail; echo \'{"key": "events", "value": 42}\' >> '
                '"$HERD_USER_DATA"; echo "fatal: detector geometry missing" >&2; exit 3',
                needs=("prep",),
                labels=("sim", "reco"),
            ),
            task("after_broken", "echo never", needs=("broken",), labels=("reco",)),
            task("after_after", "echo never", needs=("after_broken",), labels=("reco",)),
            task("slow", "sleep 5", timeout=0.5, labels=("sim",)),
            task("fine_1", "echo one", labels=("ana",)),
            task("fine_2", "echo two", needs=("prep",), labels=("ana",)),
            task("broken2", "exit 3", labels=("ana",)),
            task("nolabel", "echo plain"),
        ),
    )


@dataclass(frozen=True)
class Ran:
    workdir: Path
    spec: Path
    exit_code: int


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    workdir = tmp_path_factory.mktemp("reports")
    spec = workdir / "wf.yaml"
    dump(_workflow(), spec)
    options = RunOptions(workdir=workdir, limits=Limits({"cpu": 2, "mem": 4000}), keep_going=True)
    result = run_workflow(load(spec), options, QuietReporter(io.StringIO()))
    return Ran(workdir, spec, result.exit_code)


@pytest.fixture
def store(ran: Ran) -> Iterator[Store]:
    with existing_store(ran.workdir) as opened:
        assert opened is not None
        yield opened


def _wid(store: Store) -> int:
    rec = store.workflow("reports")
    assert rec is not None
    return rec.id


# --- stats -----------------------------------------------------------------------------------


def test_the_run_failed(ran: Ran) -> None:
    assert ran.exit_code == 1


def test_stats_counts_tasks_by_state_and_retries(store: Store) -> None:
    st = stats(store, _wid(store))
    assert (st.succeeded, st.failed, st.incomplete, st.cancelled, st.skipped) == (5, 3, 0, 2, 0)
    assert st.tasks == 10
    assert st.attempts == 9  # 8 tasks ran, flaky twice
    assert st.retries == 1
    assert st.runs == 1
    assert st.last_run_status == "failed"


def test_stats_times(store: Store) -> None:
    st = stats(store, _wid(store))
    assert st.wall is not None and st.last_run_wall is not None
    assert st.wall == pytest.approx(st.last_run_wall)  # one run
    assert st.task_wall >= 0.5  # slow ran until its 0.5 s timeout
    assert st.wall >= 0.5
    assert 0 < st.cpu_time < st.task_wall


def _rows(st: Stats) -> dict[str, tuple[int, int, int, int]]:
    return {r.label: (r.tasks, r.succeeded, r.failed, r.attempts) for r in st.labels}


def test_stats_per_label(store: Store) -> None:
    st = stats(store, _wid(store))
    assert st.labels_known
    assert _rows(st) == {
        "ana": (3, 2, 1, 3),
        "reco": (3, 0, 1, 1),  # broken, and its two cancelled dependents
        "setup": (1, 1, 0, 1),
        "sim": (3, 1, 2, 4),  # flaky ran twice
        "(none)": (1, 1, 0, 1),
    }
    sim = next(r for r in st.labels if r.label == "sim")
    assert sim.runtime is not None and sim.runtime.n == 4
    assert sim.runtime.max >= 0.5  # slow
    assert sim.runtime.min <= sim.runtime.mean <= sim.runtime.max
    assert sim.peak_mem is not None and sim.peak_mem.min > 0
    reco = next(r for r in st.labels if r.label == "reco")
    assert reco.runtime is not None and reco.runtime.n == 1


def test_stats_without_labels_puts_every_task_under_none(store: Store, ran: Ran) -> None:
    unlabelled = Workflow("reports", tuple(Task(t.name, t.cmd) for t in _workflow().tasks))
    st = stats(store, _wid(store), spec=unlabelled)
    assert _rows(st) == {"(none)": (10, 5, 3, 9)}


def test_stats_renderings(store: Store) -> None:
    st = stats(store, _wid(store))
    text = render_stats(st)
    assert "9 (1 retry)" in text
    assert text.splitlines()[3].split() == ["5", "3", "0", "2", "0", "10"]
    rows = list(csv.DictReader(io.StringIO(to_csv(st))))
    assert [r["label"] for r in rows] == ["ana", "reco", "setup", "sim", "(none)"]
    assert rows[3]["attempts"] == "4" and float(rows[3]["runtime_max"]) >= 0.5
    data = json.loads(json.dumps(to_json(st)))
    assert data["retries"] == 1 and data["labels"][0]["label"] == "ana"


def test_stats_counts_a_reset_task_as_incomplete(ran: Ran, tmp_path: Path) -> None:
    shutil.copytree(ran.workdir / ".herd", tmp_path / ".herd")
    copy = open_store(tmp_path / ".herd" / "herd.db")  # for writing: existing_store is read-only
    try:
        copy.reset(_wid(copy), ["fine_1"])
        st = stats(copy, _wid(copy))
    finally:
        copy.close()
    assert (st.succeeded, st.incomplete) == (4, 1)


# --- analyze ---------------------------------------------------------------------------------


def _failure_names(an: Analysis) -> list[str]:
    return [f.task for f in an.failures]


def test_analyze_lists_failed_tasks_with_their_logs(store: Store, ran: Ran) -> None:
    an = analyze(store, _wid(store))
    assert (an.failed, an.cancelled, an.succeeded) == (3, 2, 5)
    assert sorted(_failure_names(an)) == ["broken", "broken2", "slow"]
    broken = next(f for f in an.failures if f.task == "broken")
    (attempt,) = broken.attempts
    assert attempt.outcome == "exit 3" and attempt.exit_code == 3
    assert attempt.kill_reason == "" and attempt.signal is None
    assert attempt.stderr.lines[-1] == "fatal: detector geometry missing"
    assert attempt.stdout.lines == ("about to fail",)
    assert "exit 3" in attempt.cmd and attempt.cwd == str(ran.workdir)
    assert dict(attempt.user_data) == {"events": 42}
    assert (
        broken.rerun
        == f"herd run {ran.spec} --cpu-limit 2 --mem-limit 4000 --force '^broken$' -tt '^broken$'"
    )
    assert broken.cancelled == 2
    assert set(broken.cancelled_names) == {"after_broken", "after_after"}
    records = store.task_records(_wid(store))  # the runner stored the cause, a typed fact
    assert {records[t].cancelled_by for t in broken.cancelled_names} == {"broken"}


def test_analyze_reports_the_timeout_kill(store: Store) -> None:
    an = analyze(store, _wid(store))
    slow = next(f for f in an.failures if f.task == "slow")
    (attempt,) = slow.attempts
    assert attempt.outcome.startswith("killed: timeout")
    assert attempt.kill_reason.startswith("timeout")
    assert attempt.kill is Kill.TIMEOUT  # the kind the runner stored
    assert [a.kill for a in store.attempts(_wid(store), "slow")] == [Kill.TIMEOUT]
    assert attempt.signal in ("SIGTERM", "SIGKILL")
    assert slow.cancelled == 0


def test_analyze_says_when_a_log_is_empty(store: Store) -> None:
    an = analyze(store, _wid(store))
    (attempt,) = next(f for f in an.failures if f.task == "broken2").attempts
    assert attempt.stderr.problem == "empty" and attempt.stdout.problem == "empty"


def test_analyze_all_includes_retried_attempts(store: Store) -> None:
    an = analyze(store, _wid(store), all_attempts=True, lines=1)
    flaky = next(f for f in an.failures if f.task == "flaky")
    assert flaky.state is TaskState.SUCCEEDED
    assert [a.number for a in flaky.attempts] == [1]
    assert flaky.attempts[0].stderr.lines == ("first try fails",)
    assert "flaky" not in _failure_names(analyze(store, _wid(store)))


def test_analyze_text(store: Store, ran: Ran) -> None:
    text = render_analysis(analyze(store, _wid(store), lines=5))
    first, *rest = text.splitlines()
    assert first == "workflow reports: 3 failed, 2 cancelled, 5 succeeded"
    assert "=== broken (failed)" in rest
    assert "    | fatal: detector geometry missing" in rest
    assert any(line.startswith("cancelled because of it: 2: ") for line in rest)
    assert (
        f"rerun it: herd run {ran.spec} --cpu-limit 2 --mem-limit 4000 --force '^broken$' -tt '^broken$'"
        in rest
    )
    assert any(line.startswith("  stderr: ") and line.endswith("(empty)") for line in rest)


def test_analyze_json_is_serialisable(store: Store) -> None:
    data = json.loads(json.dumps(analysis_json(analyze(store, _wid(store)))))
    assert {f["task"] for f in data["failures"]} == {"broken", "broken2", "slow"}
    assert data["failures"][0]["state"] == "failed"
    slow = next(f for f in data["failures"] if f["task"] == "slow")
    assert slow["attempts"][0]["kill"] == "timeout"


def test_analyze_reads_the_stored_kill_kind_not_the_text(tmp_path: Path) -> None:
    """The kind decides, whatever the words say; only attempts recorded before the store kept it
    (no kind) are read from their words, and a lost attempt was not killed by herd."""
    ended = {  # task: (kind, kill reason)
        "oom": (Kill.MEMORY, "Slurm stopped job 7 beyond its --mem"),
        "late": (Kill.TIMEOUT, "ran 2.0 s > 1 s limit"),
        "old": (None, "timeout 0.6 s > 0.5 s limit"),  # recorded by a herd before schema 4
        "gone": (Kill.LOST, "worker 3 stopped renewing its lease"),
        "plain": (None, "declared output out.txt was not created"),
    }
    store = SQLiteStore(tmp_path / "herd.db")
    try:
        wid = store.add_workflow(Workflow("w", tuple(Task(t, "true") for t in ended)))
        run = store.begin_run(wid, started=1.0, host="h", user="u", pid=1, argv=[], limits={})
        for i, (task, (kill, why)) in enumerate(ended.items()):
            store.write(
                [
                    AttemptStarted(
                        AttemptRecord(
                            wid, run, task, 1, "h", "u", 1, 2.0 + i, "true", "", "", "new"
                        )
                    ),
                    AttemptFinished(
                        wid,
                        task,
                        1,
                        3.0 + i,
                        TaskState.FAILED,
                        exit_code=1,
                        kill_reason=why,
                        kill=kill,
                    ),
                    TaskChanged(wid, task, TaskState.FAILED, 3.0 + i, attempts=1, exit_code=1),
                ]
            )
        attempts = {f.task: f.attempts[0] for f in analyze(store, wid).failures}
    finally:
        store.close()
    kinds = {task: a.kill for task, a in attempts.items()}
    assert kinds == {
        "oom": Kill.MEMORY,
        "late": Kill.TIMEOUT,
        "old": Kill.TIMEOUT,
        "gone": Kill.LOST,
        "plain": None,
    }
    assert attempts["oom"].outcome == "killed: Slurm stopped job 7 beyond its --mem"
    assert attempts["late"].outcome == "killed: ran 2.0 s > 1 s limit"
    assert attempts["old"].outcome == "killed: timeout 0.6 s > 0.5 s limit"
    assert (attempts["gone"].outcome, attempts["gone"].kill_reason) == (
        "exit 1: worker 3 stopped renewing its lease",
        "",
    )
    assert attempts["plain"].outcome == "exit 1: declared output out.txt was not created"


def test_analyze_reads_the_stored_cancel_cause_not_the_text(tmp_path: Path) -> None:
    """The stored cause decides, whatever the words say; only tasks cancelled before the store
    kept it (no cause) are read from their words."""
    cancelled = {  # task: (cause, reason)
        "typed": ("a", "not run: a sub-workflow of 'x' failed"),
        "old": (None, "needs 'a', which failed"),  # recorded by a herd before schema 5
        "stopped": (None, "not started: the run is stopping"),
    }
    store = SQLiteStore(tmp_path / "herd.db")
    try:
        wid = store.add_workflow(Workflow("w", tuple(Task(t, "true") for t in ["a", *cancelled])))
        changes = [TaskChanged(wid, "a", TaskState.FAILED, 2.0, reason="exit 1", exit_code=1)]
        for task, (cause, why) in cancelled.items():
            changes.append(
                TaskChanged(wid, task, TaskState.CANCELLED, 2.0, reason=why, cancelled_by=cause)
            )
        store.write(changes)
        (failure,) = analyze(store, wid).failures
    finally:
        store.close()
    assert (failure.task, set(failure.cancelled_names)) == ("a", {"typed", "old"})


def test_tail_reads_the_last_lines_and_names_problems(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("".join(f"line {i}\n" for i in range(100_000)))
    assert tail(str(log), 3).lines == ("line 99997", "line 99998", "line 99999")
    # herd makes no file for no output
    assert tail(str(tmp_path / "gone.log"), 3).problem == "empty"
    assert tail("", 3).problem == "no log recorded"


def test_locate_finds_relative_logs_from_another_directory(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "out.log").parent.mkdir()
    (work / "out.log").touch()
    assert locate("sub/.herd/logs/wf/t.1.err", work) == str(work / ".herd/logs/wf/t.1.err")
    assert locate("out.log", work) == str(work / "out.log")
    assert locate("/abs/t.err", work) == "/abs/t.err"
    assert locate("", work) == ""


def test_rerun_command_quotes_names_and_paths() -> None:
    assert rerun_command("my wf.yaml", "sim.1") == (
        "herd run 'my wf.yaml' --force '^sim\\.1$' -tt '^sim\\.1$'"
    )
    assert rerun_command(None, "a").startswith("herd run FILE ")
    assert rerun_command("wf.yaml", "a", Path("/nowhere")) == (
        "herd run /nowhere/wf.yaml -C /nowhere --force '^a$' -tt '^a$'"
    )


# --- plot ------------------------------------------------------------------------------------


def test_chart_of_the_run(store: Store) -> None:
    chart = chart_from_store(store, _wid(store))
    assert len(chart.bars) == 9 and not chart.lanes
    assert sum(b.failed for b in chart.bars) == 4  # broken, broken2, slow, flaky's first try
    flaky = sorted((b for b in chart.bars if b.task == "flaky"), key=lambda b: b.attempt)
    assert [b.attempt for b in flaky] == [1, 2] and flaky[0].row == flaky[1].row
    assert flaky[0].end <= flaky[1].start
    assert {b.group for b in chart.bars} == {"setup", "sim", "ana", "(none)"}
    assert chart.limits == {"cpu": 2.0, "mem": 4000.0}
    assert chart.usage.cpu and min(chart.usage.cpu) >= 0 and max(chart.usage.cpu) > 0
    assert chart.usage.cpu[-1] == 0 and chart.usage.mem[-1] == 0  # everything ended
    assert chart.allocated is not None
    assert max(chart.allocated.cpu) == 2  # each task declares 1 core; the limit is 2
    assert max(chart.allocated.mem) <= 4000e6


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_plot_writes_each_format(store: Store, tmp_path: Path, suffix: str) -> None:
    out = save(chart_from_store(store, _wid(store)), tmp_path / f"run{suffix}")
    data = out.read_bytes()
    assert len(data) > 10_000
    if suffix == ".png":
        assert data.startswith(PNG_SIGNATURE)
    elif suffix == ".svg":
        assert data.startswith(b"<?xml") and b"<svg" in data
    else:
        text = data.decode()
        assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "<table>" in text
        assert "http://" not in text and "https://" not in text  # self-contained


def test_lanes_pack_attempts_without_overlap() -> None:
    bars = [Bar(f"t{i}", 1, float(i % 10), float(i % 10) + 2.5, "g", False) for i in range(100)]
    placed, rows, lanes = place(bars)
    assert lanes and len(rows) == 30  # 10 start at each second, each runs 2.5 s: 30 at once
    by_lane: dict[int, list[Bar]] = {}
    for b in placed:
        by_lane.setdefault(b.row, []).append(b)
    for members in by_lane.values():
        members.sort(key=lambda b: b.start)
        assert all(a.end <= b.start for a, b in itertools.pairwise(members))


def test_pack_lanes_reuses_the_lowest_free_lane() -> None:
    assert pack_lanes([(0, 2), (0, 1), (1, 3), (2, 4), (3, 5)]) == [0, 1, 1, 0, 1]


def test_chart_of_a_schedule_uses_declared_resources() -> None:
    data = {
        "workflow": "sim",
        "schedule": [
            {"task": "a_1", "start": 0, "end": 2, "resources": {"cpu": 2, "mem": 1000}},
            {"task": "a_2", "start": 1, "end": 3, "resources": {"cpu": 1}},
        ],
    }
    chart = chart_from_schedule(data)
    assert chart.usage.times == (0.0, 1.0, 2.0, 3.0)
    assert chart.usage.cpu == (2.0, 3.0, 1.0, 0.0)
    assert chart.usage.mem == (1e9, 1e9, 0.0, 0.0)
    assert {b.group for b in chart.bars} == {"a"} and chart.legend_title == "task"
    assert chart.allocated is None  # the usage is the allocation


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_stats(ran: Ran, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "-C", str(ran.workdir)]) == 0
    assert "cumulative CPU time" in capsys.readouterr().out
    assert main(["stats", "-C", str(ran.workdir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["retries"] == 1
    assert main(["stats", "-C", str(ran.workdir), "--csv", "-w", "reports"]) == 0
    assert capsys.readouterr().out.startswith("label,tasks,succeeded,failed,attempts,")


def test_cli_analyze_exits_0_despite_failures(ran: Ran, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "-C", str(ran.workdir), "--lines", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("workflow reports: 3 failed, 2 cancelled, 5 succeeded")
    assert "fatal: detector geometry missing" in out
    assert (
        f"herd run {ran.spec} -C {ran.workdir} --cpu-limit 2 --mem-limit 4000 --force '^broken$' -tt '^broken$'"
        in out
    )
    assert main(["analyze", "-C", str(ran.workdir), "--json", "--all"]) == 0
    assert len(json.loads(capsys.readouterr().out)["failures"]) == 4


def test_cli_status_json_names_what_cancelled_each_task(
    ran: Ran, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "-C", str(ran.workdir), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    tasks = {t["name"]: t for t in data["tasks"]}
    again = {t.name: t.cancelled_by for t in status_from_json(data).tasks}  # herd status --server
    assert again == {name: t["cancelled_by"] for name, t in tasks.items()}
    assert tasks["after_broken"]["cancelled_by"] == "broken"
    assert tasks["after_after"]["cancelled_by"] == "broken"
    assert {t["cancelled_by"] for t in tasks.values() if t["state"] != "cancelled"} == {None}


def test_cli_plot(ran: Ran, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run.png"
    assert main(["plot", "-C", str(ran.workdir), "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_cli_plot_of_a_simulated_schedule(ran: Ran, tmp_path: Path) -> None:
    sim, out = tmp_path / "sim.json", tmp_path / "sim.svg"
    args = ["simulate", str(ran.spec), "--cpu-limit", "2", "--mem-limit", "4000"]
    assert main([*args, "--duration", "1", "--schedule", str(sim)]) == 0
    assert main(["plot", str(ran.spec), "--schedule", str(sim), "-o", str(out)]) == 0
    assert b"<svg" in out.read_bytes()


def test_cli_reports_refuse_an_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in ("stats", "analyze", "plot"):
        assert main([command, "-C", str(tmp_path)]) == 2
        assert "has not run anything" in capsys.readouterr().err


def test_cli_plot_refuses_an_unknown_format(ran: Ran, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", "-C", str(ran.workdir), "-o", "run.pdf"]) == 2
    assert ".png, .svg or .html" in capsys.readouterr().err
