"""Where the PostgreSQL tests get their server (tests/pgserver.py): ``HERD_TEST_POSTGRES``, else
127.0.0.1:5432, else a throwaway cluster of their own; never a silent skip."""

from __future__ import annotations

import pytest

from tests import pgserver

DEAD = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1


def test_herd_test_postgres_names_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERD_TEST_POSTGRES", pgserver.LOCAL)
    with pgserver.server() as url:
        assert url == pgserver.LOCAL


def test_a_named_server_that_does_not_answer_fails_saying_how_to_provide_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERD_TEST_POSTGRES", DEAD)
    expected = r"does not answer.*HERD_TEST_POSTGRES=postgresql"
    with pytest.raises(pgserver.NoServer, match=expected), pgserver.server():
        pass


def test_without_a_server_a_throwaway_cluster_is_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HERD_TEST_POSTGRES", raising=False)
    monkeypatch.setattr(pgserver, "LOCAL", DEAD)
    with pgserver.server() as url:
        assert url != DEAD and pgserver.answers(url)
        with pgserver.session_database(url) as database:
            assert pgserver.answers(database)
    assert not pgserver.answers(url)  # stopped and removed afterwards
