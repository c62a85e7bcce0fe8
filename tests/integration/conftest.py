"""Fixtures of the integration tests that run on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herd.store import open_store
from herd.store.base import Store


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test runs on an SQLite file and on PostgreSQL (a fresh database each)."""
    if request.param == "sqlite":
        return str(tmp_path / "shared.db")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def shared(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.close()
