"""A real browser for the dashboard's tests: Debian's chromium driven by Playwright for Python.

Playwright cannot download browsers of its own here, so :func:`chromium` uses
``/usr/bin/chromium``, installed by ``scripts/chromium.sh`` when missing (as root; otherwise the
test fails saying what to run — it never skips). Headless, and ``--no-sandbox`` as root (the
sandbox refuses to run as root).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "chromium.sh"


def executable() -> str:
    """The browser's path, installing it first when it is missing."""
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        pytest.fail(f"no chromium for the dashboard tests ({SCRIPT}): {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium until the block ends."""
    path = executable()
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()
