"""Errors herd raises. Every message says what happened, where, and what to do next.

::

    HerdError                   base; the CLI turns it into a message and an exit code
    ├── SpecError               a workflow file is malformed (exit 2)
    │   └── ValidationError     the DAG is wrong: cycle, unknown need, duplicate name,
    │                           a task that can never fit the limits (exit 2)
    ├── UsageError              a command-line argument is wrong (exit 2)
    │   ├── NotFoundError       a workflow, task, attempt or token named does not exist (exit 2)
    │   └── ForbiddenError      the token may not do this: another token's worker (exit 2)
    ├── StoreError              the state store failed (exit 3)
    │   ├── NoStateError        a read-only command found no herd state at the store (exit 3)
    │   └── LockedError         another herd process holds this working directory (exit 3)
    ├── TransitionError         a task moved between states illegally: a bug in herd (exit 70)
    └── ExecutionError          herd could not start a task's process (exit 1)
        └── BatchError          the batch system refused a job or does not answer (exit 1)

Each class's docstring is its default message.
"""

from __future__ import annotations


class HerdError(Exception):
    """herd failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class SpecError(HerdError):
    """The workflow file is not valid: fix the field named and run again."""

    exit_code = 2

    def __init__(
        self,
        problem: str | None = None,
        *,
        file: str | None = None,
        task: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file, self.task, self.field, self.hint = file, task, field, hint
        self.problem = problem or (type(self).__doc__ or "").strip()
        where = []
        if file:
            where.append(file)
        if task:
            where.append(f"task {_quoted(task)}")
        if field:
            where.append(f"field {_quoted(field)}")
        text = ": ".join([*where, self.problem])
        if hint:
            text += f" ({hint})"
        super().__init__(text)


def _quoted(text: str) -> str:
    """``'text'``, escaped like a Python string when it holds a newline or another control
    character: a message is one line, and a name must not write to the terminal."""
    return f"'{text}'" if text.isprintable() else repr(text)


class ValidationError(SpecError):
    """The workflow is not a valid DAG."""


class UsageError(HerdError):
    """A command-line argument is not valid: see `herd COMMAND --help`."""

    exit_code = 2


class NotFoundError(UsageError):
    """No such workflow, task or attempt in the store: see `herd status`."""


class ForbiddenError(UsageError):
    """The token may not do this: use the token the thing was made with, or an admin token."""


class StoreError(HerdError):
    """The state store failed: check that .herd/ is writable and not on a full disk."""

    exit_code = 3


class NoStateError(StoreError):
    """There is no herd state in this store yet: run `herd run FILE` (or `herd submit`) first."""


class LockedError(StoreError):
    """Another herd process is running in this working directory: wait for it or stop it."""


class TransitionError(HerdError):
    """A task moved between states that are not connected: this is a bug in herd, please report it."""

    exit_code = 70

    def __init__(self, task: str, old: object, new: object) -> None:
        super().__init__(
            f"task '{task}' cannot go from {old} to {new}: this is a bug in herd, please report it"
        )


class ExecutionError(HerdError):
    """herd could not start a task."""


class BatchError(ExecutionError):
    """The batch system refused a job or does not answer: check that it is up (`sinfo`) and the
    partition and account herd was given."""
