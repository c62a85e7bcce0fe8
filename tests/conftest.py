"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

#: real workflows to test against; never copied into the project (see ../shared/data/README.md)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``, or skip the test with the reason when it is not beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real workflow data not found at {SHARED_DATA} (clone herd beside ../shared)")
    return SHARED_DATA
