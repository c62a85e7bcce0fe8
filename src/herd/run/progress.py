"""What ``herd run`` shows while it works.

:class:`LiveReporter` (on a terminal) redraws a small block a few times a second: tasks per state,
resources in use against the limits, elapsed time and an ETA, and the longest-running tasks;
failures scroll above the block. :class:`PlainReporter` (a pipe, a file, CI) prints one line per
finished task instead, and never uses escape codes. :class:`QuietReporter` prints only the summary.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from herd.core.model import Task, TaskState, Workflow
from herd.core.scheduler import Scheduler
from herd.run.local import RunResult

_SHOW = (
    TaskState.SUCCEEDED,
    TaskState.RUNNING,
    TaskState.READY,
    TaskState.WAITING,
    TaskState.RETRYING,
    TaskState.FAILED,
    TaskState.CANCELLED,
)


def _clock(seconds: float) -> str:
    s = int(seconds)
    return (
        f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60:02d}:{s % 60:02d}"
    )


def summary_line(result: RunResult) -> str:
    c = result.counts
    parts = [
        f"{c[s]} {s.value}"
        for s in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED)
        if c[s]
    ]
    if c[TaskState.SKIPPED]:
        parts.append(f"{c[TaskState.SKIPPED]} done before")
    return f"herd: run {result.status} in {_clock(result.elapsed)}: " + (
        ", ".join(parts) or "nothing to do"
    )


class PlainReporter:
    """One line per finished task; for pipes and log files."""

    def __init__(self, out: TextIO = sys.stdout, *, verbose: bool = True) -> None:
        self.out = out
        self.verbose = verbose
        self.total = 0
        self.done = 0

    def begin(self, workflow: Workflow, todo: int, skipped: int) -> None:
        self.total = todo
        self.out.write(
            f"herd: workflow '{workflow.name}': {todo} task(s) to run, {skipped} done before\n"
        )
        self.out.flush()

    def added(self, todo: int) -> None:
        self.total += todo

    def started(self, task: Task, attempt: int, reason: str) -> None:
        pass

    def finished(self, task: Task, state: TaskState, seconds: float, detail: str) -> None:
        if state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED):
            self.done += 1
        if not self.verbose and state is TaskState.SUCCEEDED:
            return
        width = len(str(self.total))
        line = f"[{self.done:>{width}}/{self.total}] {state.value:<9} {task.name}"
        if seconds:
            line += f" ({seconds:.1f} s)"
        if detail:
            line += f": {detail}"
        self.out.write(line + "\n")

    def refresh(self, scheduler: Scheduler, running: Sequence[str]) -> float | None:
        return None

    def end(self, result: RunResult) -> None:
        self.out.write(summary_line(result) + "\n")
        self.out.flush()


class QuietReporter(PlainReporter):
    """Only failures and the summary."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        super().__init__(out, verbose=False)

    def begin(self, workflow: Workflow, todo: int, skipped: int) -> None:
        self.total = todo


class LiveReporter:
    """A block redrawn in place on a terminal; failures scroll above it."""

    interval = 0.25

    def __init__(self, out: TextIO = sys.stderr) -> None:
        self.out = out
        self.lines = 0
        self.t0 = time.monotonic()
        self.starts: dict[str, float] = {}
        self.workflow = ""
        self.total = 0
        self.finished_count = 0

    def begin(self, workflow: Workflow, todo: int, skipped: int) -> None:
        self.workflow, self.total = workflow.name, todo
        self._log(f"herd: workflow '{workflow.name}': {todo} task(s) to run, {skipped} done before")

    def added(self, todo: int) -> None:
        self.total += todo

    def started(self, task: Task, attempt: int, reason: str) -> None:
        self.starts[task.name] = time.monotonic()

    def finished(self, task: Task, state: TaskState, seconds: float, detail: str) -> None:
        self.starts.pop(task.name, None)
        if state in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED):
            self.finished_count += 1
        if state is TaskState.FAILED or (state is TaskState.RETRYING and detail):
            self._log(f"{state.value:<9} {task.name}: {detail}")

    def refresh(self, scheduler: Scheduler, running: Sequence[str]) -> float | None:
        self._draw(self._block(scheduler))
        return time.monotonic() + self.interval

    def end(self, result: RunResult) -> None:
        self._draw([])
        self.out.write(summary_line(result) + "\n")
        self.out.flush()

    def _block(self, s: Scheduler) -> list[str]:
        elapsed = time.monotonic() - self.t0
        counts = "  ".join(f"{s.counts[st]} {st.value}" for st in _SHOW if s.counts[st])
        eta = ""
        if self.finished_count and self.total > self.finished_count:
            left = elapsed / self.finished_count * (self.total - self.finished_count)
            eta = f"  eta {_clock(left)}"
        lines = [
            f"herd {self.workflow}  {self.finished_count}/{self.total}  {counts}  elapsed {_clock(elapsed)}{eta}"
        ]
        caps = s.limits.resources
        used = {k: v for k, v in s.used().items() if v or caps[k]}  # no "gpu 0/0" without GPUs
        if used:
            lines.append("  " + "  ".join(f"{k} {used[k]:g}/{caps[k]:g}" for k in used))
        now = time.monotonic()
        longest = sorted(self.starts.items(), key=lambda kv: kv[1])[:5]
        for name, t in longest:
            lines.append(f"  running {name} ({now - t:.0f} s)")
        if len(self.starts) > 5:
            lines.append(f"  ... and {len(self.starts) - 5} more")
        return lines

    def _draw(self, lines: list[str]) -> None:
        clear = f"\x1b[{self.lines}F\x1b[J" if self.lines else ""
        self.out.write(clear + "".join(line[:200] + "\n" for line in lines))
        self.out.flush()
        self.lines = len(lines)

    def _log(self, text: str) -> None:
        clear = f"\x1b[{self.lines}F\x1b[J" if self.lines else ""
        self.out.write(clear + text + "\n")
        self.lines = 0
        self.out.flush()


def reporter_for(out: TextIO, *, quiet: bool = False) -> PlainReporter | LiveReporter:
    """A live display on a terminal, plain lines elsewhere."""
    if quiet:
        return QuietReporter(out)
    if out.isatty():
        return LiveReporter(out)
    return PlainReporter(out)
