"""Pegasus profiles: checked, merged layer by layer, and what herd ignores reported.

:class:`Report` gathers the loader's warnings so that one problem on 2,000 jobs is one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from herd.formats.common import as_float, as_int, describe, env_value, fail

Profiles = dict[str, dict[str, Any]]

#: profile keys herd maps onto the task (dagman keys upper-cased); every other key is reported
_MAPPED = {
    "pegasus": frozenset(
        {
            "cores",
            "memory",
            "runtime",
            "job.runtime",
            "gpus",
            "maxwalltime",
            "checkpoint.time",
            "clusters.size",
        }
    ),
    "dagman": frozenset({"RETRY", "PRIORITY"}),
    "condor": frozenset({"request_cpus", "request_memory", "request_gpus", "priority"}),
}
#: memory units Pegasus.api accepts, in MB
_MEMORY_UNITS = {
    "": 1.0, "M": 1.0, "MB": 1.0, "MIB": 1.0, "K": 1 / 1024, "KB": 1 / 1024,
    "G": 1024.0, "GB": 1024.0, "GIB": 1024.0, "T": 1024.0**2, "TB": 1024.0**2,
}  # fmt: skip


# --- warnings -------------------------------------------------------------------------------


@dataclass
class Report:
    """Warnings, aggregated so that one problem on 2,000 jobs is one line."""

    source: str
    found: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def warn(self, where: str, field: str, message: str) -> None:
        self.found.setdefault((field, message), []).append(where)

    def lines(self) -> list[str]:
        return [
            f"{self.source}: {_who(places)}: field '{field}': {message}"
            for (field, message), places in self.found.items()
        ]


def _who(places: list[str]) -> str:
    unique = list(dict.fromkeys(places))
    if len(unique) == 1:
        return unique[0]
    shown = ", ".join(p.removeprefix("job ") for p in unique[:3])
    more = f" and {len(unique) - 3} more" if len(unique) > 3 else ""
    return f"jobs {shown}{more}" if unique[0].startswith("job ") else f"{shown}{more}"


# --- profiles -------------------------------------------------------------------------------


def parse_profiles(raw: Any, source: str, task: str | None, where: str, report: Report) -> Profiles:
    """One profile block, validated, with what herd ignores reported."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        fail(f"expected a mapping of profile namespaces, got {describe(raw)}", source, task, where)
    place = f"job '{task}'" if task else where.rsplit(".profiles", 1)[0]
    found: Profiles = {}
    for namespace, values in raw.items():
        if str(namespace).startswith("x-"):
            continue
        if not isinstance(values, Mapping):
            fail(
                f"expected a mapping, got {describe(values)}", source, task, f"profiles.{namespace}"
            )
        kept = _namespace(str(namespace), values, source, task, place, report)
        if kept:
            found[str(namespace)] = kept
    return found


def _namespace(
    namespace: str,
    values: Mapping[str, Any],
    source: str,
    task: str | None,
    place: str,
    report: Report,
) -> dict[str, Any]:
    if namespace == "env":
        return {str(k): env_value(v, source, task, f"profiles.env.{k}") for k, v in values.items()}
    known = _MAPPED.get(namespace, frozenset())
    kept: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).upper() if namespace == "dagman" else str(key)
        if name.startswith("x-"):
            continue
        if name in known:
            kept[name] = _profile_value(namespace, name, value, source, task)
        else:
            report.warn(place, f"profiles.{namespace}.{key}", _ignored(namespace))
    return kept


def _ignored(namespace: str) -> str:
    if namespace in ("selector", "hints"):
        return "site selection ignored: herd runs every job on this machine"
    if namespace in ("condor", "globus"):
        return f"{namespace} profile ignored: herd does not submit to HTCondor or a grid"
    return "ignored: herd has no equivalent"


def _profile_value(namespace: str, key: str, value: Any, source: str, task: str | None) -> float:
    where = f"profiles.{namespace}.{key}"
    if key in ("memory", "request_memory"):
        return _megabytes(value, source, task, where)
    if key in ("RETRY",):
        return as_int(value, source, task, where)
    if key == "clusters.size":  # horizontal clustering: herd run --executor slurm groups jobs
        return as_int(value, source, task, where, 1)
    if key in ("PRIORITY", "priority"):
        return as_int(value, source, task, where, None)
    return as_float(value, source, task, where)


def _megabytes(value: Any, source: str, task: str | None, where: str) -> float:
    if isinstance(value, str):
        match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", value)
        unit = match.group(2).upper() if match else None
        if match and unit in _MEMORY_UNITS:
            return as_float(match.group(1), source, task, where) * _MEMORY_UNITS[unit]
    return as_float(value, source, task, where)


def merge(layers: Iterable[Profiles]) -> Profiles:
    merged: Profiles = {}
    for layer in layers:
        for namespace, values in layer.items():
            merged.setdefault(namespace, {}).update(values)
    return merged


def get_field(raw: Any, key: str, source: str, where: str) -> Any:
    if not isinstance(raw, Mapping):
        fail(f"expected a mapping, got {describe(raw)}", source, None, where)
    return raw.get(key)
