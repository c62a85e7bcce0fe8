"""docs/cli.md, generated from the parser itself so that it cannot drift from the code.

``python -m herd.cli.clidoc > docs/cli.md`` rewrites it; a test fails when it is out of date.
"""

from __future__ import annotations

import argparse
import os

from herd.cli import COMMANDS, parser

INTRO = """# herd command line

Generated from `herd --help` by `python -m herd.cli.clidoc > docs/cli.md` (a test keeps it current).

## Exit codes

| code | meaning |
| --- | --- |
| 0 | success (for `herd run`: every selected task succeeded or was up to date) |
| 1 | a task failed (its dependents were cancelled; see `herd analyze`) |
| 2 | invalid workflow file or command-line arguments, or a path you named (a spec, `-o OUT`) that cannot be read or written: the message names file, task, field or flag |
| 3 | the working directory or its state (`.herd/`: store, logs, lock) cannot be used — not a directory, read-only, full, or the store removed or replaced under a running herd — or another herd process holds the working directory |
| 70 | internal error in herd: a bug, please report it (`-v` shows the traceback) |
| 128+N | stopped by signal N: 129 for SIGHUP (the terminal went away), 130 for Ctrl-C (SIGINT), 143 for SIGTERM; every task's process tree was stopped and the state recorded |

Every error is one line on stderr, `herd: error: ...`, never a traceback (except with `-v` for
exit 70). Numbers in flags and spec fields are finite and, where a negative makes no sense, 0 or
more; names (tasks, workflows, labels) hold no control characters. A workflow may have at most
2,000,000 tasks, sweeps expanded (`--max-tasks N` raises it); YAML aliases may not expand a
document past ten times its size; values nest at most about 1,000 levels deep.

Every command takes `-h/--help`.
"""


def _help(p: argparse.ArgumentParser) -> str:
    os.environ["COLUMNS"] = "100"  # stable wrapping, whatever the terminal
    return p.format_help().rstrip()


def render() -> str:
    top = parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parts = [INTRO, "## herd", "", "```", _help(top), "```", ""]
    for name in COMMANDS:
        p = sub.choices[name]
        parts += [f"## herd {name}", "", "```", _help(p), "```", ""]
        for action in _actions(p):  # (herd campaign ACTION: each its own section)
            parts += [f"### herd {name} {action}", "", "```", _help(_actions(p)[action]), "```", ""]
    return "\n".join(parts)


def _actions(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    return {}


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
