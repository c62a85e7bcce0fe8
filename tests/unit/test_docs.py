"""Documentation that is checked against the code."""

from __future__ import annotations

from pathlib import Path

import herd
from herd.cli.clidoc import render

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_is_current() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    assert text == render(), "docs/cli.md is stale: run `python -m herd.cli.clidoc > docs/cli.md`"


def test_exported_members_are_complete() -> None:
    public = {n for n in dir(herd) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(herd, n)).__name__ == "module"}
    assert set(herd.__all__) == public - modules
