"""The command line of a Pegasus job: its arguments, its hooks and its checkpoint signal.

- **arguments** are joined with spaces and split into words again, as ``Job.java`` and HTCondor
  do (:func:`split_arguments`).
- **job hooks** (``shell`` entries of a job or its transformation) run in a shell wrapper around
  the command (:func:`with_hooks`); workflow hooks become :class:`~herd.core.model.Hook` objects that
  ``herd run`` runs (:func:`workflow_hooks`).
- **checkpoints**: Pegasus' kickstart sends the job SIGTERM at ``pegasus.checkpoint.time``
  (minutes) so that it writes its checkpoint files, and kills it ``maxwalltime - checkpoint.time``
  later; DAGMan then retries it, and the retry starts from those files.
  :func:`with_checkpoint` does the same with coreutils ``timeout``: the attempt ends with status
  124 (a failure, so herd retries it while ``dagman.retry`` allows) and the checkpoint files stay
  in the working directory for the next attempt.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from herd.core.model import Hook, HookEvent
from herd.formats.common import describe, fail, list_of_maps

_HOOK_EVENTS = ("start", "error", "success", "end")
#: the exit status of ``timeout`` when the time ran out
CHECKPOINT_STATUS = 124
#: seconds between SIGTERM and SIGKILL when no maxwalltime says otherwise
CHECKPOINT_GRACE = 60.0


def arguments(raw: Any, job_id: str, source: str) -> list[str]:
    """The argv words of a job, split as Pegasus and HTCondor split them.

    Pegasus joins the ``arguments`` list with spaces (``Job.java``), quotes the line for HTCondor
    (``CondorQuoteParser``), and HTCondor splits it into words again: ``"-a preprocess"`` is two
    words, quotes group words and backslash escapes a character outside quotes.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        fail(f"expected a list, got {describe(raw)}", source, job_id, "arguments")
    words = []
    for i, arg in enumerate(raw):
        if isinstance(arg, Mapping) and isinstance(arg.get("lfn"), str):
            words.append(arg["lfn"])  # a File object written by an older Pegasus.api
        elif isinstance(arg, str | int | float) and not isinstance(arg, bool):
            words.append(str(arg))
        else:
            fail(
                f"expected a string, number or file, got {describe(arg)}",
                source,
                job_id,
                f"arguments[{i}]",
            )
    line = " ".join(words)
    try:
        return split_arguments(line)
    except ValueError as exc:
        fail(f"{exc} in {line!r}", source, job_id, "arguments", "close the quote or escape it")


def split_arguments(line: str) -> list[str]:
    """Split one argument line into words the way Pegasus hands it to HTCondor.

    Outside quotes whitespace separates words and ``\\`` escapes the next character; inside
    ``'…'`` or ``"…"`` every character is literal (no escapes), and quoted and unquoted parts of
    one word join (``a'b c'`` is ``ab c``). ``''`` is an empty word.

    >>> split_arguments("-l -a /")
    ['-l', '-a', '/']
    >>> split_arguments("-m 'hello world' x\\ y \"it's\"")
    ['-m', 'hello world', 'x y', "it's"]
    """
    words: list[str] = []
    word: list[str] = []
    started = False  # a word has begun (an empty quoted word counts)
    quote = ""
    chars = iter(line)
    for ch in chars:
        if quote:
            if ch == quote:
                quote = ""
            else:
                word.append(ch)
            continue
        if ch.isspace():
            if started:
                words.append("".join(word))
            word, started = [], False
            continue
        started = True
        if ch in "'\"":
            quote = ch
        elif ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ValueError("a backslash ends the arguments")
            word.append(escaped)
        else:
            word.append(ch)
    if quote:
        raise ValueError(f"unmatched {quote}")
    if started:
        words.append("".join(word))
    return words


def parse_hooks(raw: Any, source: str, task: str | None, where: str) -> tuple[tuple[str, str], ...]:
    if not raw:
        return ()
    if not isinstance(raw, Mapping):
        fail(f"expected a mapping, got {describe(raw)}", source, task, where)
    found = []
    for i, hook in enumerate(list_of_maps(raw.get("shell") or [], source, f"{where}.shell", task)):
        on, cmd = hook.get("_on"), hook.get("cmd")
        if on not in (*_HOOK_EVENTS, "all", "never") or not isinstance(cmd, str):
            fail(
                "a shell hook needs _on (start, error, success, end, all or never) and cmd",
                source,
                task,
                f"{where}.shell[{i}]",
            )
        if on != "never":
            found.append((str(on), cmd))
    return tuple(found)


def with_hooks(
    cmd: str | tuple[str, ...], hooks: tuple[tuple[str, str], ...], job_id: str, log: bool
) -> str:
    """Wrap the job so that its hooks run on its events, keeping its exit status."""
    body = shlex.join(cmd) if isinstance(cmd, tuple) else cmd
    sink = f">>{shlex.quote(job_id + '.hooks.log')} 2>&1" if log else "1>&2"

    def run(event: str) -> list[str]:
        return [
            f"( export PEGASUS_EVENT={event} PEGASUS_JOBID={shlex.quote(job_id)} "
            f'PEGASUS_STATUS="$herd_rc"; {hook} ) </dev/null {sink} || true'
            for on, hook in hooks
            if on in (event, "all")
        ]

    lines = ["herd_rc=0", *run("start"), f"( {body} )", "herd_rc=$?"]
    for test, event in (("-eq", "success"), ("-ne", "error")):
        if commands := run(event):
            lines += [f'if [ "$herd_rc" {test} 0 ]; then', *commands, "fi"]
    lines += [*run("end"), 'exit "$herd_rc"']
    return "\n".join(lines)


def workflow_hooks(raw: Any, source: str) -> tuple[Hook, ...]:
    """The workflow-level ``hooks``: ``all`` is every event."""
    events = {e.value: (e,) for e in HookEvent} | {"all": tuple(HookEvent)}
    return tuple(
        Hook(event, cmd)
        for on, cmd in parse_hooks(raw, source, None, "hooks")
        for event in events[on]
    )


def with_checkpoint(cmd: str | tuple[str, ...], seconds: float, grace: float | None) -> str:
    """Run ``cmd`` for at most ``seconds``, then SIGTERM it (and its process group), then SIGKILL
    it ``grace`` seconds later; say so on stderr when that happened."""
    body = shlex.join(cmd) if isinstance(cmd, tuple) else shlex.join(["/bin/sh", "-c", cmd])
    after = CHECKPOINT_GRACE if grace is None or grace <= 0 else grace
    note = (
        f"herd: checkpoint time ({seconds:g} s) reached: the job was sent SIGTERM to write its "
        "checkpoint files; its next attempt starts from them"
    )
    return "\n".join(
        [
            f"timeout -s TERM -k {after:g} {seconds:g} {body}",
            "herd_rc=$?",
            f'if [ "$herd_rc" -eq {CHECKPOINT_STATUS} ]; then echo {shlex.quote(note)} >&2; fi',
            'exit "$herd_rc"',
        ]
    )
