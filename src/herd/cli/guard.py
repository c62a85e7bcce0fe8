"""The CLI's one top-level guard: every way a command can end becomes a message and an exit code.

=====================================  ====  ==================================================
what went wrong                        exit  message
=====================================  ====  ==================================================
:class:`~herd.errors.HerdError`        its   its own (file, task, field, what to do)
OSError on the working directory or     3    the path, the system's reason, what to check
its ``.herd/`` (the store, logs, lock)
OSError on a path the user named        2    the path, the system's reason, what to check
(a spec, ``-o OUT``)
a bad command line (argparse)           2    one line, and where to look (``--help``)
anything else (a bug in herd)          70    "please report" and, only under ``-v``, the
                                             traceback
=====================================  ====  ==================================================

Only this module and the parser print errors: the commands raise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from herd.errors import HerdError

logger = logging.getLogger(__name__)

#: exit codes (docs/cli.md)
EXIT_USAGE, EXIT_STORE, EXIT_INTERNAL, EXIT_INTERRUPTED = 2, 3, 70, 130


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (the usage is in ``--help``)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``, with every error turned into one line on stderr and its exit code."""
    try:
        return run(args)
    except HerdError as exc:
        return _fail(exc.message, exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()  # the reader went away (`herd list | head`): not an error
        return 0
    except OSError as exc:
        return _fail(*os_error(exc, args))
    except MemoryError:
        return _fail(
            "out of memory: give herd more memory, or lower --max-tasks and split the workflow",
            EXIT_STORE,
        )
    except RecursionError:
        return _fail(_bug("nested too deeply", args), EXIT_INTERNAL)
    except Exception as exc:
        return _fail(_bug(f"{type(exc).__name__}: {exc}", args), EXIT_INTERNAL)


def os_error(exc: OSError, args: argparse.Namespace) -> tuple[str, int]:
    """The message and exit code of an OSError: 3 on the working directory, 2 on a user path."""
    path = exc.filename if exc.filename is not None else exc.filename2
    reason = exc.strerror or str(exc)
    if path is None:
        return f"{reason}: check the disk and the working directory, then run again", EXIT_STORE
    path = os.fsdecode(path)
    workdir = Path(getattr(args, "workdir", None) or ".")
    if _same(path, workdir) or _within(path, workdir / ".herd"):
        return (
            f"{path}: {reason}: the working directory {workdir} (-C) and its .herd/ folder must "
            "be directories herd can write; fix them or choose another with -C",
            EXIT_STORE,
        )
    if any(_within(path, Path(p)) for p in _user_paths(args)):
        return f"{path}: {reason}: check the path you gave", EXIT_USAGE
    return f"{path}: {reason}: check that herd may read and write it", EXIT_STORE


def _same(path: str, other: Path) -> bool:
    return os.path.abspath(path) == os.path.abspath(other)


def _within(path: str, root: Path) -> bool:
    full, base = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return full == base or base in full.parents


def _user_paths(args: argparse.Namespace) -> Iterator[str]:
    """The paths on the command line besides the working directory (spec, outputs)."""
    for key, value in vars(args).items():
        if key != "workdir" and isinstance(value, str | Path) and str(value) not in ("", "-"):
            yield str(value)


def _bug(problem: str, args: argparse.Namespace) -> str:
    if getattr(args, "verbose", False):
        traceback.print_exc()
    else:
        logger.debug("internal error", exc_info=True)
    more = "" if getattr(args, "verbose", False) else "; run again with -v for the traceback"
    return (
        f"internal error: {problem}: this is a bug in herd, please report it with the command "
        f"line{more}"
    )


def _fail(message: str, code: int) -> int:
    print(f"herd: error: {message}", file=sys.stderr)
    return code


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's exit flush does not raise again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
