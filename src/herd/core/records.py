"""``record``: a frozen dataclass to the type checker, a plain slotted dataclass at run time.

A frozen dataclass cannot assign its fields in ``__init__``: it sets each one through
``object.__setattr__``, ~1.4 k instructions a field on CPython 3.11 against ~0.2 k for a plain
slot (callgrind: 42 k against 5 k to make a record of 29 fields). herd makes a dozen records for
every task it runs (the launch, its exit, the scheduler's event and decision, the store's
changes), ~150 fields: a fifth of the run loop's work per task when they were frozen. The records
of that path are declared with :func:`record` instead: ``mypy --strict`` still treats them as
frozen (assigning a field is a type error), and equality, hashing (by the fields, as a frozen
dataclass hashes), ``repr``, ``dataclasses.replace``, ``fields`` and ``asdict`` are those of a
frozen dataclass; only an assignment at run time is not refused.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar, dataclass_transform

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field,))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass(frozen=True, slots=True)`` as the type checker sees it; see the module."""
    return dataclasses.dataclass(slots=True, unsafe_hash=True)(cls)
