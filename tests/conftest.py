"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: real workflows to test against; never copied into the project (see ../shared/data/README.md)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


#: test files whose tests stay in one process when pytest runs in several (scripts/test.sh: -n):
#: the Slurm tests share the cluster's four nodes; each of the others shares one ``herd serve``
#: (a module-scoped fixture) among its tests, some of which read what an earlier one wrote
ONE_PROCESS = {
    "tests/integration/test_slurm.py": "slurm",
    "tests/integration/test_slurm_workers.py": "slurm",
    "tests/integration/test_server.py": "server",
    "tests/integration/test_server_writes.py": "server_writes",
    "tests/integration/test_server_auth.py": "server_auth",
    "tests/integration/test_campaign_server.py": "campaign_server",
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's ``load`` distribution, except that the tests of :data:`ONE_PROCESS`'s files
    go to one process per group (xdist's own ``loadgroup`` marks nothing under pytest 9)."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Grouped(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return ONE_PROCESS.get(nodeid.split("::", 1)[0], nodeid)

    return Grouped(config, log)


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


@pytest.fixture(scope="session")
def slurm() -> str:
    """SLURM_CONF of a running single-node Slurm cluster: the one scripts/test.sh started, or one
    started here by scripts/slurm.sh (which installs Slurm when missing, as root). Fails, never
    skips, when no cluster can be had: the Slurm tests run for real in CI."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[1] / "scripts" / "slurm.sh"
    done = subprocess.run(["bash", str(script), "up"], capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or "SLURM_CONF=" not in done.stdout:
        pytest.fail(f"no Slurm cluster for the Slurm tests ({script} up): {done.stderr.strip()}")
    conf = done.stdout.strip().rsplit("SLURM_CONF=", 1)[1]
    os.environ["SLURM_CONF"] = conf
    return conf
