"""Campaign input: the template file (YAML or JSON, :func:`load_template`) and runs, as JSON
lines (:func:`parse_runs`: one object per line, ``run`` plus any fields) or as ``--field k=v``
(:func:`run_of`). Errors name the file, line and field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from herd.core.campaign import Run, Scalar, Template
from herd.core.templates import parse
from herd.errors import SpecError
from herd.formats.decoding import parse as parse_document
from herd.formats.decoding import read_text

__all__ = ["load_template", "parse_runs", "run_of"]


def load_template(path: str) -> Template:
    """The :class:`~herd.core.campaign.Template` in the file at ``path``."""
    doc = parse_document(read_text(path), path)
    if doc.data is None:
        raise SpecError("a campaign template is YAML or JSON", file=path)
    return parse(doc.data, path)


def parse_runs(text: str, source: str) -> list[Run]:
    """The runs of a JSON-lines text (blank lines and ``#`` comments skipped); a malformed
    line is a :class:`SpecError` with its number, and nothing is returned."""
    runs = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SpecError(
                f"line {number}: not JSON ({exc.msg} at column {exc.colno})",
                file=source,
                hint='one JSON object per line, e.g. {"run": 123, "fill": 8000}',
            ) from None
        try:
            runs.append(_run(data))
        except SpecError as exc:
            where = f"line {number}: " + (f"field '{exc.field}': " if exc.field else "")
            raise SpecError(where + exc.problem, file=source) from None
    return runs


def _run(data: Any) -> Run:
    if not isinstance(data, dict):
        raise SpecError("give a JSON object with a 'run' number")
    number = data.get("run")
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise SpecError("give the run number as a whole number of 0 or more", field="run")
    fields = {str(k): v for k, v in data.items() if k != "run"}
    return Run(number, fields)


def run_of(run: str, fields: Sequence[str]) -> Run:
    """A run from ``--run N --field k=v ...`` (a value that reads as a JSON number or boolean
    is one; anything else is a string)."""
    if not run.isdigit():
        raise SpecError("give the run number as a whole number of 0 or more", field="--run")
    values: dict[str, Scalar] = {}
    for item in fields:
        key, eq, text = item.partition("=")
        if not eq or not key:
            raise SpecError(f"'{item}': write NAME=VALUE", field="--field")
        values[key] = _scalar(text)
    return Run(int(run), values)


def _scalar(text: str) -> Scalar:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, int | float | bool) and value is not None else text
