"""Workflow hooks: shell commands ``herd run`` runs when a run starts and when it ends.

Pegasus workflow ``hooks`` (``shell`` entries with ``_on: start | success | error | end | all``)
are :class:`~herd.core.model.Hook` objects. ``herd run`` runs the ``start`` hooks before the first
task of a run that has tasks to run, and at its end the ``success`` or ``error`` hooks (a failed
or stopped run), then the ``end`` hooks. Each runs with ``/bin/sh -c`` in the working
directory, with the workflow's environment and ``PEGASUS_EVENT``, ``PEGASUS_STATUS`` (0 or 1),
``HERD_WORKFLOW`` and ``HERD_RUN_STATUS`` set, stdin closed, and its output appended to
``.herd/logs/<workflow>/__hooks__.log``. A hook's failure is logged and never changes the run's
result, as in Pegasus.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path

from herd.core.model import HookEvent, Workflow

logger = logging.getLogger(__name__)

LOG_NAME = "__hooks__.log"


def run_hooks(
    workflow: Workflow,
    event: HookEvent,
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_dir: Path,
    status: str = "",
) -> None:
    """Run the hooks of ``workflow`` for ``event``, one after the other."""
    chosen = [hook for hook in workflow.hooks if hook.on is event]
    if not chosen:
        return
    failed = "0" if status in ("", "succeeded") else "1"
    extra = {"PEGASUS_EVENT": event.value, "PEGASUS_STATUS": failed,
             "HERD_WORKFLOW": workflow.name, "HERD_RUN_STATUS": status}  # fmt: skip
    with open(log_dir / LOG_NAME, "ab") as log:
        for hook in chosen:
            log.write(f"== {event.value}: {hook.cmd}\n".encode())
            log.flush()
            done = subprocess.run(
                ["/bin/sh", "-c", hook.cmd],
                cwd=cwd,
                env={**env, **extra},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
            if done.returncode != 0:
                logger.warning(
                    "workflow hook on %s exited %d: %s (see %s)",
                    event.value, done.returncode, hook.cmd, log_dir / LOG_NAME,
                )  # fmt: skip
