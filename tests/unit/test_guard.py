"""The CLI's top-level guard: every command, each kind of fault, its exit code and one line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from herd import cli
from herd.cli import COMMANDS
from herd.errors import LockedError, SpecError, StoreError

#: positional arguments each command needs besides the file
NEEDS = {
    "why": ["t"],
    "provenance": ["t"],
    "reset": ["t"],
    "convert": ["in.yaml", "out.json"],
    "slurm": ["status", "wf.yaml"],
    "token": ["list"],
    "campaign": ["list"],
}


def options(command: str) -> set[str]:
    """The destinations of a command's arguments (``file``, ``workdir``, ``output``, ...)."""
    top = cli.parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest for a in sub.choices[command]._actions}


def argv(command: str, workdir: Path) -> list[str]:
    known = options(command)
    words = [command, *NEEDS.get(command, [])]
    if "file" in known and command not in NEEDS:
        words.append("wf.yaml")
    if command == "export":
        words += ["-o", "out"]
    if "workdir" in known:
        words += ["-C", str(workdir)]
    return words


def user_path(command: str) -> str | None:
    """A path the command line names, besides the working directory."""
    if command == "convert":
        return "out.json"
    return "wf.yaml" if "file" in options(command) and command not in NEEDS else None


def raising(exc: BaseException) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        raise exc

    return handler


def run(
    command: str, exc: BaseException, workdir: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> int:
    monkeypatch.setitem(COMMANDS, command, replace(COMMANDS[command], run=raising(exc)))
    return cli.main([*flags, *argv(command, workdir)])


def faults(command: str, workdir: Path) -> list[tuple[str, BaseException, int, str]]:
    """(kind, the exception, exit code, a fragment of the message)."""
    out = [
        ("spec", SpecError("no tasks", file="wf.yaml"), 2, "wf.yaml: no tasks"),
        ("store", StoreError("database is locked"), 3, "database is locked"),
        ("lock", LockedError(), 3, "Another herd process"),
        (
            "working directory",
            NotADirectoryError(20, "Not a directory", str(workdir / ".herd")),
            3,
            "must be directories herd can write",
        ),
        ("elsewhere", PermissionError(13, "Permission denied", "/etc/x"), 3, "/etc/x"),
        ("bug", KeyError("oops"), 70, "please report"),
        ("interrupted", KeyboardInterrupt(), 130, "interrupted"),
    ]
    path = user_path(command)
    if path is not None:
        out.append(
            ("user path", FileNotFoundError(2, "No such file", path), 2, "check the path you gave")
        )
    return out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_turns_every_fault_into_one_line_and_its_code(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    workdir = tmp_path if "workdir" in options(command) else Path.cwd()  # (no -C: ".")
    for kind, exc, code, fragment in faults(command, workdir):
        assert run(command, exc, tmp_path, monkeypatch) == code, kind
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("herd: error: "), (kind, err)
        assert fragment in err and "Traceback" not in err, (kind, err)


def test_the_traceback_of_a_bug_is_shown_only_with_v(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("run", ZeroDivisionError("x"), tmp_path, monkeypatch, "-v") == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err and "please report" in err
    assert run("run", ZeroDivisionError("x"), tmp_path, monkeypatch) == 70
    err = capsys.readouterr().err
    assert "Traceback" not in err and "run again with -v" in err


def test_a_bad_command_line_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(["run", "wf.yaml", "--cpu-limit", "nan"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --cpu-limit: expected a finite number" in err


def test_limits_given_in_python_are_numbers_too() -> None:
    from herd.core.model import Workflow
    from herd.errors import UsageError
    from herd.exec.machine import run_limits

    # (an unbounded pool, inf, is how a batch launcher says "the cluster decides")
    for bad in (float("nan"), -1.0):
        with pytest.raises(UsageError, match="must be a number, 0 or more"):
            run_limits(Workflow("w", ()), cpu=bad)
