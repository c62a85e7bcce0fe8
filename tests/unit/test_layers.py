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
    "service": 6,
    "api": 7,
    "server": 8,
    "cli": 9,
}
#: what the pure core (and the modules it may import) must not import: disk, clock, processes, network
PURE = {"errors", "version", "core"}
IMPURE = {
    "os",
    "subprocess",
    "time",
    "socket",
    "sqlite3",
    "signal",
    "shutil",
    "psutil",
    "io",
    "pathlib",
}
#: front ends enter through the service layer: besides their own package, what they may import
#: (the display of a run, the views' typed results and renderers, the typed model, the errors)
FRONT_ENDS = {"cli", "api", "server"}
FRONT_END_MAY_IMPORT = (
    "herd.service",
    "herd.reports",
    "herd.run.progress",
    "herd.core.model",
    "herd.errors",
    "herd.version",
)
#: what the Python API needs of the core and the formats to build a workflow (not to run it)
BUILDER_ALSO = {"api": ("herd.core.graph", "herd.formats"), "cli": ("herd.server",)}
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
            module = node.module or ""
            if node.level:
                base = ["herd", *package[: len(package) - node.level + 1]]
                module = ".".join(base + ([module] if module else []))
            found.update(_named(module, a.name) for a in node.names)
    return found


def _named(module: str, name: str) -> str:
    """What ``from module import name`` imports: the submodule ``module.name`` when there is one,
    else ``module`` (``from herd import x`` of a name that is no module: the public API, herd)."""
    if module == "herd" or module.startswith("herd."):
        folder = SRC.joinpath(*module.split(".")[1:])
        if (folder / f"{name}.py").exists() or (folder / name).is_dir():
            return f"{module}.{name}"
    return module


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(name: str, path: Path) -> None:
    mine = room(name)
    for imported in imports(name, path):
        if imported == "herd":
            pytest.fail(
                f"herd.{name} imports the package herd itself: import the module that holds it"
            )
        if imported.startswith("herd."):
            other = room(imported.removeprefix("herd."))
            if other != mine:
                assert RANKS[other] < RANKS[mine], (
                    f"herd.{name} ({mine}, rank {RANKS[mine]}) imports {imported} ({other}, rank {RANKS[other]})"
                )
        elif mine in PURE:
            assert imported.split(".")[0] not in IMPURE, (
                f"pure module herd.{name} imports {imported}"
            )


def test_top_level_holds_few_modules() -> None:
    top = sorted(p.stem for p in SRC.glob("*.py") if p.stem != "__init__")
    assert len(top) <= TOP_LEVEL_AT_MOST, (
        f"src/herd holds {len(top)} modules ({top}): move some into packages"
    )


def test_architecture_names_every_room() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    for name in RANKS:
        kind = "/" if (SRC / name).is_dir() else ".py"
        assert f"{name}{kind}" in text, f"docs/architecture.md does not name {name}{kind}"


@pytest.mark.parametrize(
    ("name", "path"),
    [(m, p) for m, p in modules() if room(m) in FRONT_ENDS],
    ids=[m for m, _ in modules() if room(m) in FRONT_ENDS],
)
def test_front_ends_go_through_the_service(name: str, path: Path) -> None:
    """No front end touches the store, the graph, the planner or a driver itself."""
    mine = room(name)
    allowed = (f"herd.{mine}", *FRONT_END_MAY_IMPORT, *BUILDER_ALSO.get(mine, ()))
    for imported in imports(name, path):
        if imported.startswith("herd."):
            assert any(imported == a or imported.startswith(a + ".") for a in allowed), (
                f"front end herd.{name} imports {imported}: call herd.service instead"
            )


#: a module past this many lines does several jobs: split it (docs/architecture.md)
MODULE_LINES_AT_MOST = 600


def test_no_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MODULE_LINES_AT_MOST
    }
    assert not long, f"modules over {MODULE_LINES_AT_MOST} lines, split them by job: {long}"
