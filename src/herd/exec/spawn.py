"""Starting a task's process: ``posix_spawn`` in its own session, the program found on ``PATH``, a
plain shell command run without ``/bin/sh``, and every failure to start explained.

A *plain* shell string (words of letters, digits and ``_./,:@%+=-``, the first not an assignment
nor a shell builtin or keyword: ``sleep 10``, ``o2-sim -n 20 --seed=3``) is split on spaces and run
directly, as GNU make does (:func:`shell_argv`): the shell would do exactly that, and skipping it
saves an exec per task. A command that cannot start raises :class:`CannotStart` with the exit code
a shell would give (127 not found, 126 cannot be run) and a message saying what to fix.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
from pathlib import Path


class CannotStart(Exception):
    def __init__(self, code: int, message: str, os_error: int = 0) -> None:
        super().__init__(message)
        #: the exit code to report, why, and the errno of the failed call (0: none)
        self.code, self.message, self.os_error = code, message, os_error


#: signals Python ignores in herd; a task must start with their default action
_DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)


def spawn_process(
    argv: list[str], cwd: Path, env: dict[str, str], stdin: int, stdout: int, stderr: int, home: int
) -> int:
    """Start ``argv`` in its own session with ``posix_spawn`` (a vfork-style clone: half the
    cost of ``subprocess.Popen`` in herd's process). ``posix_spawn`` has no working-directory
    argument before Python 3.13, so the executor, which only runs in the main thread, enters ``cwd``
    for the call and returns to ``home`` (a directory fd) right after."""
    program = _resolve(argv[0], env.get("PATH", os.defpath))
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    try:
        return os.posix_spawn(
            program,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, stdin, 0),
                (os.POSIX_SPAWN_DUP2, stdout, 1),
                (os.POSIX_SPAWN_DUP2, stderr, 2),
            ],
            setsid=True,
            setsigdef=_DEFAULT_SIGNALS,
        )
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    except ValueError as exc:  # an embedded NUL byte in the command or the environment
        raise CannotStart(126, f"invalid command or environment: {exc}") from None
    finally:
        os.fchdir(home)


SH = "/bin/sh"
#: a word the shell passes on unchanged: no quoting, expansion, globbing, redirection or operator
_PLAIN_WORD = re.compile(r"[\w./,:@%+=-]+", re.ASCII)


#: first words that must go to the shell: builtins that act on the shell or differ from the
#: program of the same name, keywords
_SHELL_WORDS = frozenset(
    {
        "!",
        ".",
        ":",
        "[",
        "alias",
        "bg",
        "break",
        "case",
        "cd",
        "command",
        "continue",
        "do",
        "done",
        "echo",
        "elif",
        "else",
        "esac",
        "eval",
        "exec",
        "exit",
        "export",
        "fc",
        "fg",
        "fi",
        "for",
        "getopts",
        "hash",
        "if",
        "in",
        "jobs",
        "kill",
        "local",
        "printf",
        "pwd",
        "read",
        "readonly",
        "return",
        "select",
        "set",
        "shift",
        "test",
        "then",
        "time",
        "times",
        "trap",
        "type",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "until",
        "wait",
        "while",
    }
)


def shell_argv(cmd: str) -> list[str]:
    """The argv that runs shell string ``cmd``: its words when it is a plain command (see the
    module docstring), else ``/bin/sh -c cmd``."""
    words = cmd.split(" ")
    if (
        all(_PLAIN_WORD.fullmatch(word) for word in words)
        and "=" not in words[0]
        and words[0] not in _SHELL_WORDS
    ):
        return words
    return [SH, "-c", cmd]


_PROGRAMS: dict[tuple[str, str], str] = {}


def _resolve(program: str, path: str) -> str:
    """``program`` looked up in the task's PATH, as a shell would (found ones are cached); unchanged
    when it has a slash or is not found, so that the spawn reports it."""
    if "/" in program:
        return program
    found = _PROGRAMS.get((program, path))
    if found is None:
        found = shutil.which(program, path=path)
        if found is None:
            return program
        _PROGRAMS[(program, path)] = found
    return found


def _explain(exc: OSError, program: str, cwd: Path) -> CannotStart:
    if exc.filename is not None and str(exc.filename) == str(cwd):
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            what = "does not exist" if exc.errno == errno.ENOENT else "is not a directory"
            return CannotStart(127, f"cwd {cwd} {what}")
        return CannotStart(126, f"cannot enter cwd {cwd}: {exc.strerror}")
    if exc.errno == errno.ENOENT:
        return CannotStart(127, f"command {program!r} not found (check the command and PATH)")
    if exc.errno == errno.EACCES:
        return CannotStart(126, f"command {program!r} is not executable (permission denied)")
    if exc.errno == errno.ENOEXEC:
        message = f"command {program!r} is not a program (exec format error)"
        return CannotStart(126, message, errno.ENOEXEC)
    return CannotStart(126, f"command {program!r}: {exc.strerror}")
