"""The local executor with real processes: spawning, reaping, watchdog, sampling, signals.

Nothing here sleeps to wait: tests block in ``LocalExecutor.wait`` or on a pidfd, a FIFO or a
pipe, always with a bound so that a broken executor fails instead of hanging.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import itertools
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from herd.core.model import Kill
from herd.errors import HerdError
from herd.exec import spawn
from herd.exec.executor import (
    TOKEN_VAR,
    Event,
    Exited,
    Interrupted,
    Launch,
    LocalExecutor,
    Sampled,
    human_bytes,
    shell_argv,
)
from herd.exec.monitor import is_alive, own_children, read_stat, scan

PY = sys.executable
Make = Callable[..., Launch]


@pytest.fixture
def ex() -> Iterator[LocalExecutor]:
    with LocalExecutor(grace=1.0) as executor:
        yield executor


@pytest.fixture
def make(tmp_path: Path) -> Make:
    def make(cmd: str | tuple[str, ...], name: str = "t", attempt: int = 1, **kw: object) -> Launch:
        kw.setdefault("cwd", tmp_path)
        kw.setdefault("env", dict(os.environ))
        kw.setdefault("stdout", tmp_path / "logs" / f"{name}.out")
        kw.setdefault("stderr", tmp_path / "logs" / f"{name}.err")
        return Launch(key=(name, attempt), cmd=cmd, **kw)  # type: ignore[arg-type]

    return make


def until_exit(ex: LocalExecutor, name: str, within: float = 30.0) -> tuple[Exited, list[Event]]:
    """The Exited of task ``name`` (attempt 1) and every event seen up to it."""
    deadline = time.monotonic() + within
    seen: list[Event] = []
    while time.monotonic() < deadline:
        for event in ex.wait(deadline):
            seen.append(event)
            if isinstance(event, Exited) and event.key == (name, 1):
                return event, seen
    pytest.fail(f"task {name!r} did not exit within {within} s; events: {seen}")


def run(ex: LocalExecutor, launch: Launch, within: float = 30.0) -> Exited:
    ex.start(launch)
    return until_exit(ex, launch.key[0], within)[0]


def await_exit(pid: int, within: float = 10.0) -> None:
    """Block until ``pid`` is dead (a zombie or reaped), on a pidfd: no polling."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        ready, _, _ = select.select([fd], [], [], within)
        assert ready, f"pid {pid} still runs {within} s after its task was stopped"
    finally:
        os.close(fd)


def read_fifo(path: Path, within: float = 10.0) -> str:
    """What a task writes into the FIFO ``path``, waiting for it at most ``within`` seconds."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], within)
        assert ready, f"nothing written to {path} within {within} s"
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


# a shell snippet: start a daemon that leaves the task's session and writes "pid sid" to {out}
DAEMON = "setsid sh -c 'echo $$ $(cut -d\" \" -f6 /proc/$$/stat) > {out}; exec sleep 100' &"


# -- exit status and files -----------------------------------------------------------------------


def test_exit_code_is_reported(ex: LocalExecutor, make: Make) -> None:
    before = time.time()
    ev = run(ex, make("exit 3"))
    assert (ev.exit_code, ev.signal, ev.kill_reason, ev.ok) == (3, None, "", False)
    assert ev.pid > 0 and before <= ev.start <= ev.end <= time.time()
    assert ev.utime >= 0 and ev.stime >= 0 and ev.mean_cpu is not None
    assert ex.running == 0


def test_death_by_signal_is_reported(ex: LocalExecutor, make: Make) -> None:
    ev = run(ex, make("kill -USR1 $$"))
    assert (ev.exit_code, ev.signal, ev.kill_reason) == (None, signal.SIGUSR1, "")


def test_stdout_and_stderr_go_to_their_files(ex: LocalExecutor, make: Make, tmp_path: Path) -> None:
    out, err = tmp_path / "a" / "b" / "out.txt", tmp_path / "c" / "err.txt"
    err.parent.mkdir()
    err.write_text("old content that must go\n" * 10)
    assert run(ex, make("echo out; echo err >&2", stdout=out, stderr=err)).ok
    assert out.read_text() == "out\n"
    assert err.read_text() == "err\n"


def test_same_path_for_both_gives_one_file_in_order(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    assert run(ex, make("echo 1; echo 2 >&2; echo 3", stdout=log, stderr=log)).ok
    assert log.read_text() == "1\n2\n3\n"


def test_stdin_comes_from_a_file_or_dev_null(ex: LocalExecutor, make: Make, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("from the file\n")
    assert run(ex, make(("cat",), name="file", stdin=source)).ok
    assert (tmp_path / "logs" / "file.out").read_text() == "from the file\n"
    assert run(ex, make(("cat",), name="null")).ok
    assert not (tmp_path / "logs" / "null.out").exists()  # no output: no file created


def test_output_files_are_created_at_the_first_byte_and_complete(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    assert run(ex, make("true", name="quiet")).ok
    assert not (tmp_path / "logs" / "quiet.out").exists()
    older = tmp_path / "logs" / "loud.out"
    older.parent.mkdir(parents=True, exist_ok=True)
    older.write_text("an older, longer file at the same path\n" * 10)
    assert run(ex, make("echo new", name="loud")).ok
    assert older.read_text() == "new\n"  # truncated at the first byte
    # far more than a pipe buffer, on both streams, written after the pipe filled up
    big = "python3 -c \"import sys; [sys.stdout.write('x' * 1000 + chr(10)) for _ in range(5000)]; sys.stderr.write('done')\""
    assert run(ex, make(big, name="big")).ok
    assert (tmp_path / "logs" / "big.out").read_text() == ("x" * 1000 + "\n") * 5000
    assert (tmp_path / "logs" / "big.err").read_text() == "done"


def test_env_is_the_given_one_plus_the_task_token(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    env = {"PATH": os.environ["PATH"], "FOO": "bar baz"}
    assert run(ex, make(("env",), env=env)).ok
    lines = set((tmp_path / "logs" / "t.out").read_text().splitlines())
    [token] = [line for line in lines if line.startswith(TOKEN_VAR + "=")]
    assert re.fullmatch(rf"{TOKEN_VAR}={os.getpid()}:\d+", token)
    assert lines - {token} == {f"PATH={env['PATH']}", "FOO=bar baz"}


def test_an_inherited_token_is_extended(ex: LocalExecutor, make: Make, tmp_path: Path) -> None:
    env = {**os.environ, TOKEN_VAR: "7:1"}
    assert run(ex, make(f"echo ${TOKEN_VAR}", env=env)).ok
    out = (tmp_path / "logs" / "t.out").read_text()
    assert re.fullmatch(rf"7:1/{os.getpid()}:\d+\n", out)


def test_cwd_is_honoured(ex: LocalExecutor, make: Make, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    assert run(ex, make(("pwd",), cwd=tmp_path / "sub")).ok
    assert (tmp_path / "logs" / "t.out").read_text() == f"{tmp_path / 'sub'}\n"
    assert Path.cwd() != tmp_path / "sub"


@pytest.mark.parametrize("threads", ["alone", "with-a-thread", "no-addchdir"])
def test_both_ways_of_spawning_do_the_same(
    make: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: str
) -> None:
    """Alone, herd spawns with os.posix_spawn (entering the directory around it); while it has
    another thread, with the C library's posix_spawn through ctypes (GIL released, the child
    enters the directory), except where the C library lacks posix_spawn_file_actions_addchdir_np
    (glibc has it here)."""
    assert spawn._spawner() is not None
    if threads == "no-addchdir":
        monkeypatch.setattr(spawn, "_SPAWNER", [None])
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    if threads != "alone":
        other.start()
    (tmp_path / "sub").mkdir()
    with contextlib.ExitStack() as stack:
        stack.callback(lambda: other.join() if other.is_alive() else None)
        stack.callback(stop.set)
        ex = stack.enter_context(LocalExecutor(grace=1.0))
        if threads != "alone":
            assert threading.active_count() > 1
        assert run(ex, make(("pwd",), cwd=tmp_path / "sub")).ok
        assert (tmp_path / "logs" / "t.out").read_text() == f"{tmp_path / 'sub'}\n"
        cases: list[tuple[dict[str, object], str]] = [
            ({"cwd": tmp_path / "missing"}, f"cwd {tmp_path}/missing does not exist"),
            ({"cmd": ("herd-no-such-program",)}, "command 'herd-no-such-program' not found"),
            ({"env": {**os.environ, "BAD": "a\0b"}}, "invalid command or environment"),
            ({"env": {**os.environ, "A=B": "1"}}, "invalid command or environment"),
            ({"cmd": ("true", "a\0b")}, "invalid command or environment"),
        ]
        for kw, reason in cases:
            ev = run(ex, make(**({"cmd": "echo never", "name": "bad"} | kw)))
            assert ev.kill_reason.startswith(f"cannot start: {reason}"), ev.kill_reason


def test_a_string_is_shell_and_a_tuple_is_argv(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    env = {**os.environ, "FOO": "bar"}
    assert run(ex, make("echo $FOO   'a  b'", name="shell", env=env)).ok
    assert run(ex, make(("echo", "$FOO", "a  b"), name="argv", env=env)).ok
    assert (tmp_path / "logs" / "shell.out").read_text() == "bar a  b\n"
    assert (tmp_path / "logs" / "argv.out").read_text() == "$FOO a  b\n"


@pytest.mark.parametrize(
    ("cmd", "argv"),
    [
        ("sleep 0.1", ["sleep", "0.1"]),
        (
            "o2-sim -n 20 --seed=3 out/tf1,x:y@z%+",
            ["o2-sim", "-n", "20", "--seed=3", "out/tf1,x:y@z%+"],
        ),
        ("FOO=1 env", None),  # an assignment
        ("cd /tmp", None),  # builtins that act on the shell, or differ from their program
        ("echo -e x", None),
        ("exit 3", None),
        ("ls $HOME", None),  # expansion, quoting, globbing, operators, redirection
        ("ls 'a b'", None),
        ("ls *.txt", None),
        ("a && b", None),
        ("a > b", None),
        ("ls ~", None),
        ("a  b", None),  # not one space between words: the shell decides
    ],
)
def test_a_plain_command_runs_without_a_shell(cmd: str, argv: list[str] | None) -> None:
    assert shell_argv(cmd) == (argv or ["/bin/sh", "-c", cmd])


def test_a_plain_command_is_the_process_itself(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    pid = ex.start(make("sleep 30", name="plain"))
    cmdline = Path(f"/proc/{pid}/cmdline")
    deadline = time.monotonic() + 10
    while not cmdline.read_bytes() and time.monotonic() < deadline:
        pass  # the kernel fills it in just after the exec that posix_spawn waited for
    assert cmdline.read_bytes() == b"sleep\x0030\x00"
    ex.kill(("plain", 1))
    assert until_exit(ex, "plain")[0].signal == signal.SIGTERM


def test_a_plain_command_naming_a_script_without_shebang_runs_in_the_shell(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    script = tmp_path / "noshebang"
    script.write_text("echo ran as a script $((1 + 1))\n")
    script.chmod(0o755)
    assert run(ex, make("./noshebang", name="script")).ok  # as sh would: ENOEXEC, then sh runs it
    assert (tmp_path / "logs" / "script.out").read_text() == "ran as a script 2\n"


# -- cannot start --------------------------------------------------------------------------------


def _not_executable(tmp: Path) -> dict[str, object]:
    script = tmp / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    return {"cmd": (str(script),)}


def _not_a_program(tmp: Path) -> dict[str, object]:
    script = tmp / "data.bin"
    script.write_bytes(b"\x00\x01\x02garbage")
    script.chmod(0o755)
    return {"cmd": (str(script),)}


@pytest.mark.parametrize(
    ("setup", "code", "reason"),
    [
        (lambda t: {"cwd": t / "missing"}, 127, "cwd {tmp}/missing does not exist"),
        (
            lambda t: {"cmd": ("herd-no-such-program",)},
            127,
            "command 'herd-no-such-program' not found",
        ),
        (lambda t: {"cmd": ()}, 127, "the command is empty"),
        (lambda t: {"stdin": t / "nope.txt"}, 127, "stdin file {tmp}/nope.txt does not exist"),
        (_not_executable, 126, "command '{tmp}/script.sh' is not executable"),
        (_not_a_program, 126, "command '{tmp}/data.bin' is not a program"),
        (lambda t: {"cmd": ("true", "a\0b")}, 126, "invalid command or environment"),
        (lambda t: {"env": {**os.environ, "BAD": "a\0b"}}, 126, "invalid command or environment"),
        (lambda t: {"env": {**os.environ, "A=B": "1"}}, 126, "invalid command or environment"),
    ],
    ids=[
        "cwd",
        "not-found",
        "empty",
        "stdin",
        "not-executable",
        "not-a-program",
        "nul-in-argv",
        "nul-in-env",
        "equals-in-name",
    ],
)
def test_a_task_that_cannot_start_comes_back_as_exited(
    ex: LocalExecutor,
    make: Make,
    tmp_path: Path,
    setup: Callable[[Path], dict[str, object]],
    code: int,
    reason: str,
) -> None:
    kw: dict[str, object] = {"cmd": "echo never"} | setup(tmp_path)
    launch = make(name="bad", **kw)
    assert ex.start(launch) == 0
    ev, _ = until_exit(ex, "bad", within=5)
    expected = "cannot start: " + reason.format(tmp=tmp_path)
    assert ev.kill_reason.startswith(expected), ev.kill_reason
    assert (ev.exit_code, ev.signal, ev.pid, ev.peak_mem, ev.mean_cpu) == (
        code,
        None,
        0,
        None,
        None,
    )
    assert (tmp_path / "logs" / "bad.err").read_text() == f"herd: {ev.kill_reason}\n"
    assert run(ex, make("true", name="after")).ok, "the executor goes on after a failed start"


# -- reaping -------------------------------------------------------------------------------------


def test_a_burst_of_200_tasks_is_all_noticed(ex: LocalExecutor, make: Make) -> None:
    for i in range(200):
        ex.start(
            make("true" if i % 2 else ("true",), name="burst", attempt=i, stdout=None, stderr=None)
        )
    exits: list[Exited] = []
    deadline = time.monotonic() + 60
    while ex.running and time.monotonic() < deadline:
        exits += [e for e in ex.wait(deadline) if isinstance(e, Exited)]
    assert sorted(e.key for e in exits) == [("burst", i) for i in range(200)]
    assert all(e.exit_code == 0 for e in exits)
    assert ex.running == 0
    assert own_children() == [], "every child was reaped"


def test_wait_returns_at_the_deadline_or_at_once_when_idle(ex: LocalExecutor, make: Make) -> None:
    assert ex.wait() == []
    ex.start(make(("sleep", "100"), name="s"))
    began = time.monotonic()
    assert ex.wait(deadline=began + 0.05) == []
    assert time.monotonic() - began >= 0.05
    assert ex.kill(("s", 1))
    ev, _ = until_exit(ex, "s")
    assert (ev.kill_reason, ev.signal) == ("cancelled", signal.SIGTERM)
    assert not ex.kill(("s", 1)), "a finished task cannot be killed"


# -- watchdog ------------------------------------------------------------------------------------


def test_timeout_terminates_the_whole_tree(ex: LocalExecutor, make: Make) -> None:
    pid = ex.start(make("sleep 100 & sleep 100 & wait", timeout=1.0))
    members: list[int] = []
    deadline = time.monotonic() + 30
    while not members and time.monotonic() < deadline:
        for event in ex.wait(deadline):
            assert isinstance(event, Sampled), f"the task ended before its tree was seen: {event}"
            if event.processes == 3:
                members = [p.pid for p in scan().values() if p.pgid == pid]
    assert len(members) == 3
    ev, _ = until_exit(ex, "t")
    assert re.fullmatch(r"timeout [\d.]+ s > 1\.0 s limit", ev.kill_reason), ev.kill_reason
    assert ev.signal == signal.SIGTERM
    assert 1.0 <= ev.end - ev.start < 5.0
    for member in members:
        await_exit(member)


def test_a_task_ignoring_sigterm_is_killed_after_the_grace(ex: LocalExecutor, make: Make) -> None:
    ev = run(ex, make("trap '' TERM; sleep 100", timeout=0.3))
    assert ev.signal == signal.SIGKILL
    assert ev.kill_reason.startswith("timeout ")
    assert 1.3 - 0.05 <= ev.end - ev.start < 10.0, "SIGKILL came after the 1 s grace"


ALLOCATE = "import time; b = b'x' * 300_000_000; time.sleep(100)"


@pytest.mark.parametrize(
    ("limit", "ratio", "shown"),
    [
        (100_000_000, 1.0, r"100\.0 MB limit"),
        (400_000_000, 0.25, r"100\.0 MB limit \(0\.25 x 400\.0 MB\)"),
    ],
)
def test_memory_watchdog_kills_a_task_over_its_limit(
    ex: LocalExecutor, make: Make, limit: int, ratio: float, shown: str
) -> None:
    ev = run(ex, make((PY, "-c", ALLOCATE), mem_limit=limit, mem_ratio=ratio))
    assert ev.signal == signal.SIGKILL
    assert re.fullmatch(r"memory [\d.]+ MB > " + shown, ev.kill_reason), ev.kill_reason
    assert ev.end - ev.start < 30.0
    assert ev.peak_mem is not None and ev.peak_mem > 100_000_000


def test_peak_mem_reflects_a_known_allocation(ex: LocalExecutor, make: Make) -> None:
    hold = "import time; b = b'x' * 200_000_000; time.sleep(1.0)"
    ex.start(make((PY, "-c", hold), name="big", mem_limit=10**10))
    ev, seen = until_exit(ex, "big")
    assert ev.ok, ev
    assert ev.peak_mem is not None and 200_000_000 <= ev.peak_mem < 300_000_000
    assert any(isinstance(s, Sampled) and s.rss >= 200_000_000 for s in seen)


def test_peak_mem_is_unknown_for_a_task_too_short_to_measure(ex: LocalExecutor, make: Make) -> None:
    ev = run(ex, make(("true",)))
    # ru_maxrss of a child spawned by herd is at least herd's own peak: it says nothing here
    assert ev.max_rss > 0 and ev.peak_mem is None


# -- sampling ------------------------------------------------------------------------------------


# burns 1.5 s of CPU, logging "epoch cpu-seconds" every 20 ms: its own account of its speed
BURN = """
import time
last = 0.0
while (cpu := time.process_time()) < 1.5:
    if (now := time.time()) - last >= 0.02:
        print(now, cpu)
        last = now
print(time.time(), time.process_time())
"""


def test_samples_of_a_cpu_burner_show_the_cores_it_used(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    ex.start(make((PY, "-c", BURN), name="burn"))
    ev, seen = until_exit(ex, "burn")
    samples = [s for s in seen if isinstance(s, Sampled)]
    assert len(samples) >= 3  # at 0.2 s, 0.6 s, 1.4 s, ...
    assert all(s.key == ("burn", 1) and s.processes == 1 and s.rss > 1_000_000 for s in samples)
    lines = (tmp_path / "logs" / "burn.out").read_text().splitlines()
    log = [tuple(map(float, line.split())) for line in lines]
    times, cpus = [t for t, _ in log], [c for _, c in log]

    def cpu_at(t: float) -> float:  # the burner's CPU seconds at epoch t, interpolated
        k = min(max(bisect.bisect(times, t), 1), len(times) - 1)
        return cpus[k - 1] + (cpus[k] - cpus[k - 1]) * (t - times[k - 1]) / (
            times[k] - times[k - 1]
        )

    pairs = [(a, b) for a, b in itertools.pairwise(samples) if times[0] <= a.time]
    assert pairs, "two samples fell within the burn"
    for a, b in pairs:
        own = (cpu_at(b.time) - cpu_at(a.time)) / (b.time - a.time)
        assert b.cpu == pytest.approx(own, abs=0.2), (b, own)
    assert all(s.cpu <= 1.1 for s in samples), "one thread cannot use more than one core"
    assert ev.mean_cpu is not None
    assert ev.mean_cpu * (ev.end - ev.start) == pytest.approx(cpus[-1], abs=0.1)


def test_samples_cover_the_whole_tree(ex: LocalExecutor, make: Make) -> None:
    ex.start(make("sleep 100 & sleep 100 & wait"))
    [first] = ex.wait(time.monotonic() + 10)
    assert isinstance(first, Sampled) and first.key == ("t", 1) and first.processes == 3
    assert ex.kill(("t", 1), reason="stop it")
    ev, _ = until_exit(ex, "t")
    assert ev.kill_reason == "stop it"


# -- orphans and shutdown -----------------------------------------------------------------------


def test_a_daemon_is_killed_when_its_task_ends(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    daemon = tmp_path / "daemon"
    script = DAEMON.format(out=f"{daemon}.tmp && mv {daemon}.tmp {daemon}")
    script += f" while [ ! -e {daemon} ]; do sleep 0.01; done"
    assert run(ex, make(script)).ok
    pid, sid = map(int, daemon.read_text().split())
    assert sid == pid, "the daemon left the task's session, out of reach of killpg"
    await_exit(pid)


def test_a_daemon_of_a_running_task_lives_until_shutdown(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    ex.start(make(DAEMON.format(out=fifo) + " exec sleep 100", name="host"))
    pid, sid = map(int, read_fifo(fifo).split())
    assert sid == pid
    assert run(ex, make("true", name="other")).ok
    stat = read_stat(pid)
    assert stat is not None and stat.alive, "another task's end leaves the daemon alone"
    assert ex.running == 1

    stubborn = ex.start(make(f"trap '' TERM; echo ready > {fifo}; sleep 100", name="stubborn"))
    assert read_fifo(fifo) == "ready\n"
    began = time.monotonic()
    exits = ex.shutdown(grace=0.5)
    assert time.monotonic() - began < 10.0
    assert {(e.key, e.signal, e.kill_reason) for e in exits} == {
        (("host", 1), signal.SIGTERM, "shutdown"),
        (("stubborn", 1), signal.SIGKILL, "shutdown"),
    }
    assert ex.running == 0
    for p in (pid, stubborn):
        await_exit(p)
    assert not is_alive(pid)


def test_a_double_forked_daemon_and_its_children_die_with_the_task(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    done = tmp_path / "daemon"
    report = f"echo $$ $! > {done}.tmp && mv {done}.tmp {done}"
    script = f"(setsid sh -c 'sleep 100 & {report}; wait' &); "
    script += f"while [ ! -e {done} ]; do sleep 0.01; done"
    assert run(ex, make(script)).ok
    daemon, child = map(int, done.read_text().split())
    await_exit(daemon)
    await_exit(child)


def test_background_children_die_with_the_task(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    script = f"sleep 100 & echo $! > {pids}; (sleep 100 & echo $! >> {pids}); exit 0"
    assert run(ex, make(script)).ok
    for pid in map(int, pids.read_text().split()):
        await_exit(pid)


def test_shutdown_kills_marked_processes_and_spares_the_others(
    ex: LocalExecutor, tmp_path: Path
) -> None:
    marked = {**os.environ, TOKEN_VAR: f"{os.getpid()}:999999"}
    ready = b"ready\n"
    argv = ["/bin/sh", "-c", "echo ready; sleep 100"]  # no exec: the environment stays readable
    pipe = subprocess.PIPE
    with (
        subprocess.Popen(argv, env=marked, stdout=pipe, start_new_session=True) as left,
        subprocess.Popen(argv, stdout=pipe, start_new_session=True) as other,
    ):
        try:
            assert left.stdout is not None and other.stdout is not None
            assert left.stdout.readline() == ready and other.stdout.readline() == ready
            assert ex.shutdown() == []
            await_exit(left.pid)
            assert is_alive(other.pid), "a child of herd that no task started is not herd's"
        finally:
            for p in (left, other):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)


# -- signals to herd ----------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_become_events(ex: LocalExecutor, signum: int) -> None:
    os.kill(os.getpid(), signum)  # no KeyboardInterrupt, no death
    assert ex.wait(time.monotonic() + 5) == [Interrupted(signum)]


def test_ctrl_c_during_shutdown_skips_the_grace(
    ex: LocalExecutor, make: Make, tmp_path: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # ignores SIGTERM, and presses Ctrl-C on herd half a second into the shutdown
    script = f"trap '' TERM; echo ready > {fifo}; sleep 0.5; kill -INT {os.getpid()}; sleep 100"
    ex.start(make(script))
    assert read_fifo(fifo) == "ready\n"
    began = time.monotonic()
    [ev] = ex.shutdown(grace=60)
    assert time.monotonic() - began < 30
    assert (ev.signal, ev.kill_reason) == (signal.SIGKILL, "shutdown")
    assert ex.wait(time.monotonic() + 5) == [Interrupted(signal.SIGINT)]


def _subreaper() -> int:
    value = ctypes.c_int(-1)
    ctypes.CDLL(None).prctl(37, ctypes.byref(value), 0, 0, 0)
    return value.value


def test_close_restores_handlers_wakeup_fd_and_subreaper_flag() -> None:
    signals = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
    handlers = {s: signal.getsignal(s) for s in signals}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    reaper = _subreaper()
    with LocalExecutor() as ex:
        assert _subreaper() == 1
        assert all(signal.getsignal(s) is not handlers[s] for s in signals)
        with pytest.raises(HerdError, match="already open"):
            LocalExecutor()
        ex.start(Launch(("s", 1), ("sleep", "100"), Path.cwd(), dict(os.environ)))
    assert {s: signal.getsignal(s) for s in signals} == handlers
    assert signal.set_wakeup_fd(wakeup) == wakeup
    assert _subreaper() == reaper
    assert own_children() == [], "closing shut down the running task"
    with LocalExecutor():
        pass


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (999, 1000, 5_100_000_000, 4e12, 7e15)] == [
        "999 B",
        "1.0 kB",
        "5.1 GB",
        "4.0 TB",
        "7000.0 TB",
    ]


def test_how_an_attempt_was_ended_is_a_typed_fact(ex: LocalExecutor, make: Make) -> None:
    """Beside the words of ``kill_reason``, ``kill`` says which kind of end it was."""
    assert run(ex, make("exit 3", name="own")).kill is None
    assert run(ex, make("sleep 100", name="slow", timeout=0.2)).kill is Kill.TIMEOUT
    ex.start(make("sleep 100", name="stopped"))
    assert ex.kill(("stopped", 1))
    assert until_exit(ex, "stopped")[0].kill is Kill.INTERRUPTED
    big = run(ex, make((PY, "-c", ALLOCATE), name="big", mem_limit=50_000_000, mem_ratio=1.0))
    assert (big.kill, big.kill_reason.split()[0]) == (Kill.MEMORY, "memory")
