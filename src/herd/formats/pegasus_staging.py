"""Pegasus data movement as herd tasks: stage-in, stageable executables, stage-out, registration.

``pegasus-plan`` adds transfer and registration jobs to the executable workflow; herd adds tasks
that do the same on this machine, with :mod:`herd.exec.stage` as their command. Being tasks, they are
planned, stamped, retried, recorded (provenance, logs) and reported by ``herd analyze`` like any
other, and cost nothing to the tasks that need no staging.

- ``stage_in_<lfn>`` fetches an input's replica (site ``local`` preferred) to its lfn in the
  working directory, checking the catalog's sha256. A replica on disk is the task's input, so
  editing it stages it again and reruns what reads it.
- ``stage_exe_<name>`` fetches a ``stageable`` transformation to ``./<name>`` (executable);
  every job using it reads that file, so it is fetched once per run, not once per job.
- ``stage_out_<job>`` copies the job's ``stageOut`` outputs to the output site's storage
  directory (site ``local``: its ``localStorage`` or ``sharedStorage`` directory in the site
  catalog, else ``wf-output`` in the working directory, as Pegasus 5's default local site) and
  records its ``registerReplica`` outputs in the output replica catalog
  (``pegasus.catalog.replica.output.file``, else ``<workflow>.replicas.yml`` in the working
  directory).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from herd.core.model import Task, frozen_map

#: the output site herd stages to (pegasus-plan's default without --output-sites)
OUTPUT_SITE = "local"
#: Pegasus 5's storage directory for a local site the catalog does not describe
DEFAULT_STORAGE = "wf-output"
_STORAGE_TYPES = ("localStorage", "sharedStorage")
_CPU_FREE = frozen_map({"cpu": 0.0})  # waiting on disk or network, not computing


@dataclass(frozen=True)
class Replica:
    pfn: str
    sha256: str | None = None


def _stage(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "herd.exec.stage", *args)


def _checksum(raw: Any) -> str | None:
    if isinstance(raw, Mapping) and isinstance(raw.get("sha256"), str):
        return str(raw["sha256"])
    return None


def replica(item: Mapping[str, Any], pfn: str) -> Replica:
    """The replica of one catalog entry, with its sha256 when given."""
    return Replica(pfn, _checksum(item.get("checksum")))


def stage_in_tasks(wanted: Mapping[str, Replica]) -> list[Task]:
    return [
        Task(
            name=f"stage_in_{_id(lfn)}",
            cmd=_stage("in", r.pfn, lfn, *(("--sha256", r.sha256) if r.sha256 else ())),
            inputs=_source(r.pfn),
            outputs=(lfn,),
            labels=("stage-in",),
            resources=_CPU_FREE,
            meta=frozen_map({"pegasus_stage": "in", "pfn": r.pfn}),
        )
        for lfn, r in wanted.items()
    ]


def _id(text: str) -> str:
    """A task name part from a file or job name: letters, digits, ``.``, ``_``, ``-`` (the
    characters every format herd writes keeps, WfFormat's ids included)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def executable_name(name: str) -> str:
    """Where a stageable transformation is placed: ``./<name>`` in the working directory."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def stage_exe_task(name: str, pfn: str, sha256: str | None) -> Task:
    target = executable_name(name)
    checksum = ("--sha256", sha256) if sha256 else ()
    return Task(
        name=f"stage_exe_{_id(name)}",
        cmd=_stage("in", pfn, target, "--executable", *checksum),
        inputs=_source(pfn),
        outputs=(target,),
        labels=("stage-in",),
        resources=_CPU_FREE,
        meta=frozen_map({"pegasus_stage": "executable", "pfn": pfn}),
    )


def stage_out_task(
    job: str, copy: Iterable[str], register: Iterable[str], storage: str, catalog: str
) -> Task:
    copy, register = list(dict.fromkeys(copy)), list(dict.fromkeys(register))
    args = ["out", "--storage", storage, "--site", OUTPUT_SITE, "--catalog", catalog]
    for flag, lfns in (("--copy", copy), ("--register", register)):
        for lfn in lfns:
            args += [flag, lfn]
    return Task(
        name=f"stage_out_{_id(job)}",
        cmd=_stage(*args),
        needs=(job,),
        inputs=tuple(dict.fromkeys([*copy, *register])),
        outputs=tuple(os.path.join(storage, lfn) for lfn in copy),
        labels=("stage-out",),
        resources=_CPU_FREE,
        meta=frozen_map({"pegasus_stage": "out", "job": job}),
    )


def storage_directory(sites: Any) -> str:
    """The storage directory of the output site in a (merged) site catalog."""
    entries = sites.get("sites") if isinstance(sites, Mapping) else None
    for site in entries or ():
        if not isinstance(site, Mapping) or site.get("name") != OUTPUT_SITE:
            continue
        for kind in _STORAGE_TYPES:
            for directory in site.get("directories") or ():
                if isinstance(directory, Mapping) and directory.get("type") == kind:
                    return _directory_path(directory)
    return DEFAULT_STORAGE


def _directory_path(directory: Mapping[str, Any]) -> str:
    for server in directory.get("fileServers") or ():
        url = server.get("url") if isinstance(server, Mapping) else None
        if isinstance(url, str) and url.startswith("file://"):
            return url.removeprefix("file://")
    path = directory.get("path")
    return str(path) if path else DEFAULT_STORAGE


def _source(pfn: str) -> tuple[str, ...]:
    """A replica on this machine is an input of its stage task (stamped: edits restage it)."""
    if pfn.startswith("file://"):
        return (pfn.removeprefix("file://"),)
    return () if "://" in pfn else (pfn,)
