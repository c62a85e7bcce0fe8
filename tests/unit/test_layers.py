"""The import rules of docs/architecture.md, checked on the source, package by package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import herd

SRC = Path(herd.__file__).parent
ROOT = SRC.parents[1]

#: the rank of each package (or top-level module) below herd: a module may import its own package
#: and packages of a lower rank, never a package of its own rank or above
RANKS = {
    "errors": 0,
    "version": 0,
    "core": 1,
    "store": 2,
    "exec": 2,
    "formats": 3,
    "plan": 3,
    "run": 4,
    "reports": 4,
    "launch": 5,
    "api": 6,
    "cli": 7,
}
#: what the pure core (and the modules it may import) must not import: disk, clock, processes, network
PURE = {"errors", "version", "core"}
IMPURE = {"os", "subprocess", "time", "socket", "sqlite3", "signal", "shutil", "psutil", "io", "pathlib"}
#: modules that may sit at the top level of src/herd besides the packages
TOP_LEVEL_AT_MOST = 8


def room(module: str) -> str:
    """The package (or top-level module) a dotted name below herd lives in."""
    first = module.split(".")[0]
    assert first in RANKS, f"herd.{first} has no rank: add it to RANKS and to docs/architecture.md"
    return first


def modules() -> list[tuple[str, Path]]:
    """Every module below herd by dotted name (a package's ``__init__`` by the package's name)."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not parts or parts[-1] == "__main__":
            continue  # herd/__init__.py is the public surface: it re-exports from every layer
        out.append((".".join(parts), path))
    return out


def imports(name: str, path: Path) -> set[str]:
    """The absolute names a module imports, relative imports resolved against its package."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ["herd", *package[: len(package) - node.level + 1]]
                found.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module == "herd":  # `from herd import x` names herd.x, or the public API
                found.update(f"herd.{a.name}" if (SRC / a.name).exists() else "herd" for a in node.names)
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(name: str, path: Path) -> None:
    mine = room(name)
    for imported in imports(name, path):
        if imported == "herd":
            pytest.fail(f"herd.{name} imports the package herd itself: import the module that holds it")
        if imported.startswith("herd."):
            other = room(imported.removeprefix("herd."))
            if other != mine:
                assert RANKS[other] < RANKS[mine], (
                    f"herd.{name} ({mine}, rank {RANKS[mine]}) imports {imported} ({other}, rank {RANKS[other]})"
                )
        elif mine in PURE:
            assert imported.split(".")[0] not in IMPURE, f"pure module herd.{name} imports {imported}"


def test_top_level_holds_few_modules() -> None:
    top = sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__")
    assert len(top) <= TOP_LEVEL_AT_MOST, f"src/herd holds {len(top)} modules ({top}): move some into packages"



def test_architecture_names_every_room() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for name in RANKS:
        kind = "/" if (SRC / name).is_dir() else ".py"
        assert f"{name}{kind}" in text, f"docs/architecture.md does not name {name}{kind}"
