"""Building a million objects at once.

Loading a spec, reading a workflow's records and planning each allocate a million small objects
that live as long as the run. CPython's cyclic garbage collector, triggered by allocation counts,
would rescan the growing heap again and again meanwhile: pausing it for the duration halves those
times. The objects form no reference cycles, so nothing is left for the collector to find.

Pausing is not enough on its own: once the collector runs again, the objects built in the pause are
all in its youngest generation, and it walks them in every generation's collection as they age (an
eighth of a resumed run of a million tasks: docs/performance.md). So a pause that built
more than :data:`FREEZE_AFTER` objects ends with ``gc.freeze()``: everything alive is moved out of
the collector's sight. Frozen objects are still freed when their last reference goes (they hold no
cycles); what a freeze costs is that a reference cycle that is already garbage at that moment is
never collected — a small, bounded price, paid only by processes that build large workflows.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: a pause that ends with more than this many objects in the collector's youngest generation ends
#: with a freeze (a workflow of a few thousand tasks never freezes anything)
FREEZE_AFTER = 100_000


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (restored as it was after); a block that
    built many objects leaves them frozen (see the module's docstring)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # the youngest generation's count: objects made (less those freed) since the last
        # collection or freeze, this block's among them (a nested block may have frozen its own)
        if gc.get_count()[0] > FREEZE_AFTER:
            gc.freeze()
        if enabled:
            gc.enable()
