"""``herd.core.records.record``: frozen to the type checker, a plain slotted dataclass at run time."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Mapping

import pytest

from herd.core.events import Finished, Start
from herd.core.records import record
from herd.exec.base import Exited, Launch
from herd.store.base import AttemptFinished, AttemptRecord, AttemptStarted, TaskChanged


@record
class Made:
    name: str
    number: int
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Frozen:
    name: str
    number: int
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)


def test_a_record_behaves_as_the_frozen_dataclass_it_declares() -> None:
    made, frozen = Made("a", 1), Frozen("a", 1)
    assert made == Made("a", 1) and made != Made("a", 2)
    assert repr(made).removeprefix("Made") == repr(frozen).removeprefix("Frozen")
    assert dataclasses.replace(made, number=2) == Made("a", 2)
    assert (
        dataclasses.asdict(made)
        == dataclasses.asdict(frozen)
        == {"name": "a", "number": 1, "tags": {}}
    )
    assert [f.name for f in dataclasses.fields(made)] == ["name", "number", "tags"]
    assert pickle.loads(pickle.dumps(made)) == made
    assert not hasattr(made, "__dict__")  # slotted


def test_a_record_hashes_by_its_fields_as_a_frozen_dataclass_does() -> None:
    assert hash(Made("a", 1, tags=())) == hash(Made("a", 1, tags=()))  # type: ignore[arg-type]
    assert {Made("a", 1, tags=()), Made("a", 1, tags=())} == {Made("a", 1, tags=())}  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hash(Made("a", 1))  # a dict field: unhashable, as in the frozen dataclass
    with pytest.raises(TypeError):
        hash(Frozen("a", 1))


@pytest.mark.parametrize(
    "kind",
    [Finished, Start, Launch, Exited, AttemptRecord, AttemptStarted, AttemptFinished, TaskChanged],
)
def test_the_records_made_for_every_task_set_their_fields_as_plain_slots(kind: type) -> None:
    # a frozen dataclass sets each field through object.__setattr__: ~7 times the cost, and
    # these are made a dozen times per task a run starts (docs/performance.md)
    assert dataclasses.is_dataclass(kind)
    assert kind.__setattr__ is object.__setattr__
