"""bulk.gc_paused: the collector paused in the block, a big build left frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from herd.core.bulk import FREEZE_AFTER, gc_paused


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # what a test froze goes back under the collector


def test_a_small_build_is_only_paused() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        kept = [(i,) for i in range(1000)]
    assert gc.isenabled() and gc.get_freeze_count() == 0 and len(kept) == 1000


def test_a_big_build_is_frozen_and_still_freed_by_reference_counting() -> None:
    with gc_paused():  # (twice the limit: objects from free lists are not counted)
        kept = [[i] for i in range(2 * FREEZE_AFTER)]
    assert gc.get_freeze_count() > FREEZE_AFTER  # out of the collector's sight
    assert gc.get_count()[0] < 1000  # the next young collection has nothing of it to walk
    probe = kept[0]
    del kept
    assert probe == [0]  # the list went, by reference counting; what is referenced stays


def test_nested_pauses_and_a_disabled_collector() -> None:
    gc.disable()
    try:
        with gc_paused():
            with gc_paused():
                pass
            assert not gc.isenabled()
        assert not gc.isenabled()  # restored as it was
    finally:
        gc.enable()
