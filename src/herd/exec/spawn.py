"""Starting a task's process: ``posix_spawn`` in its own session, the program found on ``PATH``, a
plain shell command run without ``/bin/sh``, and every failure to start explained.

A *plain* shell string (words of letters, digits and ``_./,:@%+=-``, the first not an assignment
nor a shell builtin or keyword: ``sleep 10``, ``o2-sim -n 20 --seed=3``) is split on spaces and run
directly, as GNU make does (:func:`shell_argv`): the shell would do exactly that, and skipping it
saves an exec per task. A command that cannot start raises :class:`CannotStart` with the exit code
a shell would give (127 not found, 126 cannot be run) and a message saying what to fix.

``os.posix_spawn`` holds the GIL until the child has exec'd (the parent of a vfork-style clone
sleeps until then, long on a loaded machine), which stalls every other thread of herd, such as the
one creating done markers on a slow file system (:mod:`herd.exec.markers`), or those of a program
that runs herd through its API. So while herd has another thread, and where
the C library has ``posix_spawn_file_actions_addchdir_np`` (glibc 2.29+, musl 1.1.24+), herd calls
the C library's ``posix_spawn`` through ``ctypes`` (:class:`_Spawner`), which releases the GIL, the
child entering the task's directory itself. Building its argument arrays in Python costs more than
``os.posix_spawn`` does in C, so a herd with one thread uses ``os.posix_spawn``, entering the
directory around the call.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import signal
import sys
import threading
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
    """Start ``argv`` in ``cwd``, in its own session, with ``posix_spawn`` (a vfork-style clone:
    half the cost of ``subprocess.Popen`` in herd's process); its pid. ``home``: a directory fd
    the process returns to when it had to enter ``cwd`` itself (see the module docstring)."""
    program = _resolve(argv[0], env.get("PATH", os.defpath))
    spawner = _spawner() if threading.active_count() > 1 else None
    if spawner is not None:
        err = spawner.spawn(program, argv, cwd, env, (stdin, stdout, stderr))
        if err:
            raise _failed(err, program, argv[0], cwd, home)
        return spawner.pid.value
    return _os_spawn(program, argv, cwd, env, (stdin, stdout, stderr), home)


def _os_spawn(
    program: str,
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    fds: tuple[int, int, int],
    home: int,
) -> int:
    """``os.posix_spawn``, which has no working-directory argument before Python 3.13: the
    executor, which only runs in the main thread, enters ``cwd`` for the call and returns to
    ``home`` (a directory fd) right after."""
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    try:
        return os.posix_spawn(
            program,
            argv,
            env,
            file_actions=[(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)],
            setsid=True,
            setsigdef=_DEFAULT_SIGNALS,
        )
    except OSError as exc:
        raise _explain(exc, argv[0], cwd) from None
    except ValueError as exc:  # an embedded NUL byte in the command or the environment
        raise CannotStart(126, f"invalid command or environment: {exc}") from None
    finally:
        os.fchdir(home)


def _failed(err: int, program: str, name: str, cwd: Path, home: int) -> CannotStart:
    """Why ``_Spawner.spawn`` failed with ``err``: the directory when the process cannot enter it
    either (the child's ``chdir`` and a missing program both say ENOENT), else the program."""
    if err < 0:
        return CannotStart(
            126, "invalid command or environment: embedded null byte or '=' in a name"
        )
    try:
        os.chdir(cwd)
    except OSError as exc:
        return _explain(exc, name, cwd)
    finally:
        os.fchdir(home)
    return _explain(OSError(err, os.strerror(err), program), name, cwd)


#: glibc's and musl's posix_spawn flags (spawn.h); the opaque structures get generous buffers
_SETSIGDEF, _SETSID = 0x04, 0x80
_OPAQUE = 1024
_ENCODING, _ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class _Spawner:
    """The C library's ``posix_spawn`` through ctypes, which releases the GIL during the call; the
    child enters its directory with ``posix_spawn_file_actions_addchdir_np``. One attribute set
    (new session, :data:`_DEFAULT_SIGNALS` to their default action) serves every spawn."""

    def __init__(self, libc: ctypes.CDLL, held: ctypes.PyDLL) -> None:
        self._libc = libc
        # the short calls keep the GIL: releasing it would hand it to the waiting thread (the
        # markers') and wait to get it back, five times a spawn
        self._init, self._destroy = (
            held.posix_spawn_file_actions_init,
            held.posix_spawn_file_actions_destroy,
        )
        self._dup2 = held.posix_spawn_file_actions_adddup2
        self._chdir = held.posix_spawn_file_actions_addchdir_np
        self._spawn = libc.posix_spawn  # releases it
        self._attr = ctypes.create_string_buffer(_OPAQUE)
        sigset = ctypes.create_string_buffer(_OPAQUE)
        if libc.posix_spawnattr_init(self._attr) or libc.sigemptyset(sigset):
            raise OSError("posix_spawnattr_init failed")
        for signum in _DEFAULT_SIGNALS:
            libc.sigaddset(sigset, int(signum))
        libc.posix_spawnattr_setsigdefault(self._attr, sigset)
        if libc.posix_spawnattr_setflags(self._attr, ctypes.c_short(_SETSIGDEF | _SETSID)):
            raise OSError("posix_spawnattr_setflags failed")
        self._actions = ctypes.create_string_buffer(_OPAQUE)
        #: the pid of the last process started (spawns happen in one thread: the executor's)
        self.pid = ctypes.c_int(0)

    def spawn(
        self, program: str, argv: list[str], cwd: Path, env: dict[str, str], fds: tuple[int, ...]
    ) -> int:
        """Start ``program``; 0, or the errno of the failure (-1: an invalid argv or env)."""
        args = _strings(argv)
        environ = _strings([f"{k}={v}" for k, v in env.items()])
        if args is None or environ is None or not _names_ok(env):
            return -1
        actions = self._actions
        if self._init(actions):
            return errno.ENOMEM
        try:
            for target, fd in enumerate(fds):
                if self._dup2(actions, fd, target):
                    return errno.EBADF
            if self._chdir(actions, os.fsencode(cwd)):
                return errno.ENOMEM
            path = program.encode(_ENCODING, _ERRORS)
            return int(
                self._spawn(ctypes.byref(self.pid), path, actions, self._attr, args, environ)
            )
        finally:
            self._destroy(actions)


def _names_ok(env: dict[str, str]) -> bool:
    """Every environment name non-empty, without ``=`` after its first character (as Python's
    ``os.posix_spawn`` wants them); the loop only runs when some name has a ``=``."""
    if "" in env:
        return False
    return "=" not in "".join(env) or all("=" not in k[1:] for k in env)


def _strings(items: list[str]) -> ctypes.Array[ctypes.c_char_p] | None:
    """A NULL-terminated ``char *[]`` of ``items``; None when one holds a NUL byte."""
    if not items:
        return (ctypes.c_char_p * 1)(None)
    text = "\0".join(items)
    if text.count("\0") != len(items) - 1:
        return None
    encoded = text.encode(_ENCODING, _ERRORS).split(b"\0")
    return (ctypes.c_char_p * (len(encoded) + 1))(*encoded, None)


_SPAWNER: list[_Spawner | None] = []


def _spawner() -> _Spawner | None:
    """The ctypes spawner, made at the first call; None where the C library lacks what it needs."""
    if not _SPAWNER:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            linux = sys.platform == "linux"
            _SPAWNER.append(_Spawner(libc, ctypes.PyDLL(None)) if linux else None)
        except (OSError, AttributeError):
            _SPAWNER.append(None)
    return _SPAWNER[0]


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
