"""Spec formats: read any workflow file herd knows, telling the format from the content.

The rooms of reading and writing a spec (each format's own loader lives in its module: ``native``,
``o2dpg``, ``pegasus``, ``wfformat``, ``dampe``):

- :mod:`~herd.formats.loading`: :func:`load` a file or :func:`load_text`, dispatched to the loader
  of its format (:data:`LOADERS`, imported lazily), within the task limit.
- :mod:`~herd.formats.detection`: :func:`detect_data` names the format of a parsed document
  (:data:`FORMATS`, the rules in its docstring).
- :mod:`~herd.formats.decoding`: :func:`read_text` and :func:`parse`: bytes (gzip or not) to JSON,
  YAML or XML :class:`Document`, refusing what would not load in bounded time and memory.
- :mod:`~herd.formats.writing`: :func:`dump` / :func:`dumps` a workflow as a native spec.

Anything herd cannot read — a missing or unreadable file, invalid JSON/YAML/XML (with line and
column), a document of no known format — is a :class:`~herd.errors.SpecError` naming the file.
"""

from __future__ import annotations

from herd.core.bulk import gc_paused
from herd.formats.decoding import Document, parse, read_text
from herd.formats.detection import FORMATS, detect, detect_data
from herd.formats.loading import LOADERS, Setup, load, load_document, load_text, loader
from herd.formats.writing import dump, dumps

__all__ = [
    "FORMATS",
    "LOADERS",
    "Document",
    "Setup",
    "detect",
    "detect_data",
    "dump",
    "dumps",
    "gc_paused",
    "load",
    "load_document",
    "load_text",
    "loader",
    "parse",
    "read_text",
]
