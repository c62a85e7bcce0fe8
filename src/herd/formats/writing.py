"""Write a workflow as a native spec: YAML or JSON, scripts as literal blocks."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herd.core.model import Workflow
from herd.errors import HerdError, SpecError

if TYPE_CHECKING:
    import yaml


def dumps(workflow: Workflow, fmt: str = "yaml") -> str:
    """``workflow`` as native ``yaml`` or ``json`` text."""
    from herd.formats.native import dump_data

    data = dump_data(workflow)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        lib, dumper = _pyyaml_dumper()
        text: str = lib.dump(
            data,
            Dumper=dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=None,
            width=1 << 30,
        )
        return text
    raise ValueError(f"unknown native flavour {fmt!r}: use 'yaml' or 'json'")


def dump(workflow: Workflow, path: str | os.PathLike[str]) -> None:
    """Write ``workflow`` as a native spec: JSON for ``.json``, YAML for ``.yaml``/``.yml``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".json", ".yaml", ".yml"):
        raise SpecError(
            "cannot tell the format from the extension",
            file=str(path),
            hint="use .yaml, .yml or .json",
        )
    text = dumps(workflow, "json" if suffix == ".json" else "yaml")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise HerdError(f"{path}: cannot write the workflow: {exc.strerror or exc}") from None


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Multi-line strings (scripts) as literal blocks, everything else as PyYAML would."""
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


@functools.cache
def _pyyaml_dumper() -> tuple[Any, Any]:
    """PyYAML (imported at the first YAML written) and herd's dumper: libyaml's when PyYAML was
    built with it (an order of magnitude faster), scripts as literal blocks."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    dumper: Any = type("_Dumper", (base,), {})
    dumper.add_representer(str, _represent_str)
    return yaml, dumper
