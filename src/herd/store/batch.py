"""A batch of changes made smaller before a store writes it: :func:`coalesce`."""

from __future__ import annotations

from collections.abc import Sequence

from herd.store.base import AttemptFinished, AttemptRecord, AttemptStarted, Change, TaskChanged


def coalesce(changes: Sequence[Change]) -> list[Change]:
    """The batch with the same effect in fewer writes: an :class:`AttemptFinished` whose
    :class:`AttemptStarted` is in the batch is folded into it (the attempt is inserted finished),
    and the :class:`TaskChanged` of one task become one, in the place of the last, with the values
    it keeps (``None`` fields) taken from the earlier ones. The result comes grouped by kind, each
    kind in batch order: the attempts started, then those finished, then the task changes, then
    the rest (samples, user data and events), so that a store writes each group with one
    statement for many rows. Only task changes modify task rows and only attempt changes attempt
    rows, so moving them so is safe: samples and user data, which refer to an attempt, come after
    every insertion of an attempt.
    """
    out: list[Change | None] = []
    started: dict[tuple[int, str, int], int] = {}  # attempt -> index of its AttemptStarted
    changed: dict[tuple[int, str], int] = {}  # task -> index of its last TaskChanged
    for change in changes:
        if isinstance(change, AttemptStarted):
            a = change.attempt
            started[(a.workflow_id, a.task, a.number)] = len(out)
        elif isinstance(change, AttemptFinished):
            at = started.get((change.workflow_id, change.task, change.number))
            if at is not None:
                begun = out[at]
                assert isinstance(begun, AttemptStarted)
                out[at] = AttemptStarted(_finished(begun.attempt, change))
                continue
        elif isinstance(change, TaskChanged):
            key = (change.workflow_id, change.task)
            at = changed.get(key)
            if at is not None:
                earlier = out[at]
                assert isinstance(earlier, TaskChanged)
                out[at] = None
                change = _merged(earlier, change)
            changed[key] = len(out)
        out.append(change)
    groups: tuple[list[Change], ...] = ([], [], [], [])
    for kept in out:
        if kept is not None:
            groups[_GROUP.get(type(kept), 3)].append(kept)
    return [change for group in groups for change in group]


#: the place of each kind of change in a coalesced batch (others: 3, after these)
_GROUP: dict[type, int] = {AttemptStarted: 0, AttemptFinished: 1, TaskChanged: 2}


def _finished(attempt: AttemptRecord, f: AttemptFinished) -> AttemptRecord:
    """``attempt`` with the outcome ``f`` gives it (stamps given at the end replace those of the
    start; none given keeps them, as :class:`AttemptFinished` says). Built field by field:
    ``dataclasses.replace`` walks every field, and is several times slower (a test checks that
    every field is here)."""
    a = attempt
    return AttemptRecord(
        workflow_id=a.workflow_id, run_id=a.run_id, task=a.task, number=a.number, host=a.host,
        user=a.user, pid=a.pid, start=a.start, cmd=a.cmd, env_digest=a.env_digest,
        fingerprint=a.fingerprint, reason=a.reason, end=f.end, state=f.state,
        exit_code=f.exit_code, signal=f.signal, kill_reason=f.kill_reason, kill=f.kill,
        utime=f.utime, stime=f.stime, max_rss=f.max_rss, peak_mem=f.peak_mem,
        mean_cpu=f.mean_cpu, cwd=a.cwd, stdout_path=a.stdout_path, stderr_path=a.stderr_path,
        inputs=f.inputs or a.inputs, outputs=f.outputs or a.outputs, resources=a.resources,
    )  # fmt: skip


def _merged(earlier: TaskChanged, later: TaskChanged) -> TaskChanged:
    """``later``, keeping what ``earlier`` set where ``later`` keeps the stored value (None);
    built field by field, as :func:`_finished`."""
    e, la = earlier, later
    return TaskChanged(
        workflow_id=la.workflow_id, task=la.task, state=la.state, time=la.time,
        attempts=e.attempts if la.attempts is None else la.attempts, reason=la.reason,
        exit_code=la.exit_code, cancelled_by=la.cancelled_by,
        fingerprint=e.fingerprint if la.fingerprint is None else la.fingerprint,
        cmd_digest=e.cmd_digest if la.cmd_digest is None else la.cmd_digest,
        env_digest=e.env_digest if la.env_digest is None else la.env_digest,
        inputs=e.inputs if la.inputs is None else la.inputs,
    )  # fmt: skip
