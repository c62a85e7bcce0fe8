"""herd: a resource-aware, restartable workflow engine for scientific computing.

The public surface: build workflows with :class:`Workflow`, :class:`Task` and :class:`File`
(``herd.api``), load any spec herd reads with :func:`load`, run with ``Workflow.run`` or the
``herd`` command. The typed model the engine works on lives in ``herd.core.model``.
"""

from __future__ import annotations

from herd.api import File, Task, Workflow
from herd.core.model import Limits, Recovery, TaskState
from herd.errors import HerdError, LockedError, SpecError, StoreError, UsageError, ValidationError
from herd.formats import load
from herd.version import __version__ as __version__

__all__ = [
    "File",
    "HerdError",
    "Limits",
    "LockedError",
    "Recovery",
    "SpecError",
    "StoreError",
    "Task",
    "TaskState",
    "UsageError",
    "ValidationError",
    "Workflow",
    "load",
]
