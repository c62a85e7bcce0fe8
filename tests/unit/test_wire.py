"""The worker protocol's JSON (herd.store.wire): what a worker sends is what the store takes."""

from __future__ import annotations

from dataclasses import fields

from herd.core.model import Kill, TaskState
from herd.store import wire
from herd.store.base import AttemptFinished, Sample
from herd.store.queued import Outcome


def test_a_finished_attempt_on_the_wire_has_every_field_of_the_store_s() -> None:
    assert set(wire.FinishedIn.__struct_fields__) == {f.name for f in fields(AttemptFinished)}


def test_an_outcome_travels_whole_its_file_stamps_as_objects() -> None:
    end = AttemptFinished(
        3,
        "sim",
        2,
        12.5,
        TaskState.FAILED,
        exit_code=1,
        kill_reason="memory",
        kill=Kill.MEMORY,
        max_rss=1 << 30,
        inputs={"in.root": (12, 1_700_000_000_123_456_789, "abc")},
        outputs={"out.root": (0, 1_700_000_001_000_000_000, "")},
    )
    sample = Sample(3, "sim", 2, 11.0, rss=1 << 20, cpu=1.5, processes=2)
    sent = Outcome(end, pid=42, started=10.0, then=TaskState.READY, changes=[sample])
    body = wire.encode(wire.FinishIn([wire.outcome_in(sent)]))
    assert b'"in.root":{"size":12,"mtime_ns":1700000000123456789,"digest":"abc"}' in body
    (got,) = wire.decode(body, wire.FinishIn, "a finish").outcomes
    assert wire.outcome(got) == sent
