"""The dashboard's files ship in the wheel: every file under server/static is package data."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import herd

SRC = Path(herd.__file__).parent
STATIC = SRC / "server" / "static"


def test_every_static_file_is_package_data() -> None:
    project = tomllib.loads((SRC.parents[1] / "pyproject.toml").read_text())
    globs = project["tool"]["setuptools"]["package-data"]["herd"]
    files = [p.relative_to(SRC).as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert len(files) > 10
    missing = [f for f in files if not any(fnmatch.fnmatchcase(f, g) for g in globs)]
    assert not missing, f"add these to [tool.setuptools.package-data] in pyproject.toml: {missing}"


def test_the_page_loads_nothing_from_elsewhere() -> None:
    """No CDN: sites are often offline. Every script and style the page names is its own."""
    for path in [STATIC / "index.html", *STATIC.glob("js/**/*.js")]:
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
