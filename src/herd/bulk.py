"""Building a million objects at once.

Loading a spec, recording a workflow and reading it back each allocate a million small objects and
free none of them. CPython's cyclic garbage collector, triggered by allocation counts, would rescan
the growing heap again and again meanwhile: pausing it for the duration halves those times. The
objects form no reference cycles, so nothing is left for the collector to find afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored as it was after)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
