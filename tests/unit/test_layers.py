"""The import rules of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import herd

SRC = Path(herd.__file__).parent

#: layer of each module (by dotted name below herd); a module may import only its layer or lower
LAYERS = {
    "errors": 0,
    "bulk": 0,
    "model": 0,
    "graph": 0,
    "scheduler": 0,
    "plan": 1,
    "store.base": 1,
    "executor": 2,
    "capture": 2,
    "monitor": 2,
    "store": 2,
    "workdir": 2,
    "formats": 2,
    "api": 3,
    "machine": 2,
    "convert": 2,
    "built": 2,
    "runner": 3,
    "simulate": 3,
    "progress": 3,
    "status": 3,
    "script": 3,
    "dagman": 3,
    "dot": 3,
    "why": 3,
    "provenance": 3,
    "clean": 3,
    "emit": 2,
    "reports": 3,
    "cli": 4,
    "clidoc": 4,
}
CORE_FORBIDDEN = {"os", "subprocess", "time", "socket", "sqlite3", "signal", "shutil", "psutil", "io", "pathlib"}


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise AssertionError(f"module herd.{module} has no layer: add it to LAYERS and docs/architecture.md")


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith("__init__") or name == "__main__":
            continue
        out.append((name, path))
    return out


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(("name", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(name: str, path: Path) -> None:
    mine = layer(name)
    for imported in imports(path):
        if imported.startswith("herd."):
            other = imported.removeprefix("herd.")
            assert layer(other) <= mine, f"herd.{name} (layer {mine}) imports herd.{other} (layer {layer(other)})"
        elif mine == 0:
            assert imported.split(".")[0] not in CORE_FORBIDDEN, f"core module herd.{name} imports {imported}"
