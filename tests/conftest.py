"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of a database of this test session's own on a real PostgreSQL server (see
    tests/pgserver.py for where the server comes from); never skipped: fails saying how to
    provide a server when there is none."""
    from tests import pgserver

    try:
        with pgserver.server() as admin, pgserver.session_database(admin) as url:
            yield url
    except pgserver.NoServer as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def postgres_url(postgres_database: str) -> Iterator[str]:
    """A ``postgresql://`` URL whose ``search_path`` is a new, empty schema of this test's own."""
    from tests import pgserver

    with pgserver.fresh_schema(postgres_database) as url:
        yield url
