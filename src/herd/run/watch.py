"""``herd campaign watch``: run a command every few seconds and inject the runs it prints.

The ECAL automation's periodic *submit / check / resubmit* cycle (Jenkins there): each round
runs ``--source`` through ``/bin/sh`` in its own session, reads one JSON object per line from
its output and hands the runs to ``inject`` (runs the campaign already has are no-ops there).
A source that fails, hangs past its timeout or prints garbage is a warning and the next round
comes as usual; a store error is a warning too (the store may be back next round). SIGTERM or
SIGINT ends the watch cleanly: the source running is stopped, nothing half-injected (an
injection is one transaction).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType

from herd.core.campaign import Run
from herd.errors import SpecError, StoreError
from herd.formats.campaign import parse_runs

#: what a source's output must fit in, per line (a runaway source is cut)
_TAIL = 300


@dataclass(slots=True)
class Batch:
    """The runs of one round; ``added`` is set by the injection."""

    runs: list[Run]
    added: int = 0
    problems: list[str] = field(default_factory=list)


def watch_source(
    source: str,
    every: float,
    cwd: str,
    inject: Callable[[Batch], None],
    report: Callable[[str], None],
    *,
    rounds: int | None = None,
    timeout: float | None = None,
) -> int:
    """Rounds until a signal (or ``rounds``); the number of runs added."""
    stop = threading.Event()
    limit = timeout if timeout is not None else max(60.0, every)
    added = done = 0
    with _stopped_by_signals(stop) as running:
        while not stop.is_set() and (rounds is None or done < rounds):
            started = time.monotonic()
            batch = _round(source, cwd, limit, report, running, stop)
            if batch is not None and batch.runs and not stop.is_set():
                try:
                    inject(batch)
                except StoreError as exc:
                    report(f"warning: could not inject this round's runs: {exc}")
                added += batch.added
            done += 1
            if rounds is None or done < rounds:
                stop.wait(max(0.0, every - (time.monotonic() - started)))
    return added


def _round(
    source: str,
    cwd: str,
    limit: float,
    report: Callable[[str], None],
    running: list[subprocess.Popen[str]],
    stop: threading.Event,
) -> Batch | None:
    try:
        proc = subprocess.Popen(
            source,
            shell=True,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        report(f"warning: could not start the source: {exc.strerror or exc}")
        return None
    running.append(proc)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        report(f"warning: the source ran longer than {limit:g} s and was stopped; next round")
        return None
    finally:
        running.remove(proc)
    if stop.is_set():
        return None
    if proc.returncode != 0:
        last = (err.strip().splitlines() or [""])[-1][:_TAIL]
        report(f"warning: the source failed (exit {proc.returncode}): {last}; next round")
        return None
    return _parse(out, report)


def _parse(out: str, report: Callable[[str], None]) -> Batch:
    """The runs of the lines that parse; a warning (with its line number) for each other."""
    runs: list[Run] = []
    problems = []
    for number, line in enumerate(out.splitlines(), start=1):
        try:
            runs += parse_runs(line, "source")
        except SpecError as exc:
            problem = exc.problem.replace("line 1: ", "", 1)
            problems.append(f"warning: source output line {number}: {problem}"[:_TAIL])
    for p in problems:
        report(p)
    return Batch(runs, problems=problems)


def _kill(proc: subprocess.Popen[str]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[list[subprocess.Popen[str]]]:
    """SIGTERM and SIGINT set ``stop`` and kill the source running (yielded list)."""
    running: list[subprocess.Popen[str]] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()
        for proc in running:
            _kill(proc)

    before = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield running
    finally:
        for s, h in before.items():
            signal.signal(s, h)
