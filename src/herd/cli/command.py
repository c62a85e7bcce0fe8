"""One ``herd`` command as a record: its name, help, example, arguments and handler.

Each command module declares its commands with :func:`command`; ``herd.cli.COMMANDS`` lists them
all, in the order of ``herd --help``: the one registry the parser, the docs and the tests read.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

#: what runs a command: its parsed arguments in, the exit code out
Handler = Callable[[argparse.Namespace], int]
#: what puts a command's arguments on its parser
Setup = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True, slots=True)
class Command:
    """``herd NAME``: ``help`` is the first line of its --help, ``example`` its last."""

    name: str
    help: str
    example: str
    setup: Setup
    run: Handler

    @property
    def description(self) -> str:
        return f"{self.help}\n\nexample:\n  {self.example}"


def command(name: str, help: str, example: str, *, setup: Setup) -> Callable[[Handler], Command]:
    """Declare ``herd NAME`` with its arguments (``setup``) and the handler it decorates."""

    def declare(run: Handler) -> Command:
        return Command(name, help, example, setup, run)

    return declare
