"""herd: a resource-aware, restartable workflow engine for scientific computing."""

from __future__ import annotations

from herd.errors import HerdError
from herd.model import Limits, Recovery, Task, TaskState, Workflow

__version__ = "0.1.0"

__all__ = [
    "HerdError",
    "Limits",
    "Recovery",
    "Task",
    "TaskState",
    "Workflow",
    "__version__",
]
