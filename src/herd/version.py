"""herd's version, importable from every layer without importing the package's public API."""

from __future__ import annotations

__version__ = "0.1.0"
