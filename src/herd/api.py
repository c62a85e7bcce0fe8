"""Build workflows in Python, in the spirit of ``Pegasus.api``.

::

    from herd.api import File, Task, Workflow

    raw, rec = File("raw.dat"), File("rec.root")
    wf = Workflow("demo", env={"X": "1"})
    sim = (
        Task("sim", "o2-sim")
        .add_args("-n", 10, "-o", raw)
        .add_outputs(raw)
        .set_resources(cpu=2, mem=2000)
        .add_labels("sim")
    )
    reco = Task("reco", "o2-reco").add_args("-i", raw, "-o", rec).add_inputs(raw).add_outputs(rec)
    wf.add_tasks(sim, reco)  # reco needs sim: it reads the file sim writes
    wf.write("wf.yaml")  # the native spec
    result = wf.run(workdir="run")  # or herd run wf.yaml

:class:`Task` and :class:`Workflow` are builders: every setter returns the object, so calls chain,
and nothing is checked against the rest of the workflow until :meth:`Workflow.build`, which
returns the :class:`herd.core.model.Workflow` and validates its graph (unknown needs, cycles, two tasks
writing one file). A :class:`File` stands for a path; it may be an argument, an input or an output.
Misuse raises :class:`~herd.errors.SpecError` (a :class:`~herd.errors.ValidationError` for a
duplicate task name) naming the task and the field.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from herd.core import model
from herd.errors import SpecError, UsageError, ValidationError

if TYPE_CHECKING:
    from herd.service.runs import RunResult

__all__ = ["File", "Task", "Workflow"]

#: what :meth:`Task.add_args` takes
Arg = str | int | float | os.PathLike[str]


class File:
    """A file a task reads or writes, by its path (relative to the task's cwd).

    >>> File("tf1/raw.dat")
    File('tf1/raw.dat')
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if isinstance(path, File):
            path = path.path
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise SpecError(f"a File needs a non-empty path, got {path!r}", field="path")
        self.path: str = os.fspath(path)

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"File({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, File) and other.path == self.path

    def __hash__(self) -> int:
        return hash(("File", self.path))


class Task:
    """One task: a program and its arguments (argv, no shell), or a ``shell`` script.

    >>> t = Task("sim", "o2-sim", timeout=3600, retries=2).add_args("-n", 10)
    >>> t.build().cmd, t.build().retries
    (('o2-sim', '-n', '10'), 2)
    >>> Task("hello", shell="echo hello > out.txt").add_outputs("out.txt").build().cmd
    'echo hello > out.txt'
    """

    def __init__(
        self,
        name: str,
        executable: str | None = None,
        *,
        shell: str | None = None,
        timeout: float | None = None,
        retries: int = 0,
        backoff: float = 1.0,
        priority: int = 0,
        semaphore: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        duration: float | None = None,
        timeframe: int | None = None,
    ) -> None:
        self._name = _text(name, None, "name")
        if (executable is None) == (shell is None):
            raise SpecError(
                "give either an executable or a shell script",
                task=self._name,
                field="executable",
                hint="Task('sim', 'o2-sim') or Task('sim', shell='o2-sim -n 10 > log')",
            )
        self._executable = _text(executable, self._name, "executable") if executable else None
        self._shell = _text(shell, self._name, "shell") if shell is not None else None
        self._args: list[str] = []
        self._needs: list[str] = []
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._temp: list[str] = []
        self._labels: list[str] = []
        self._resources: dict[str, float] = {}
        self._env: dict[str, str] = {}
        self._meta: dict[str, Any] = {}
        self._fields: dict[str, Any] = {}
        self._recovery: model.Recovery | None = None
        self.add_env(**(env or {}))
        self.set_retries(retries, backoff=backoff).set_priority(priority)
        self._set("timeout", _positive(timeout, self._name, "timeout"))
        self._set("semaphore", _text(semaphore, self._name, "semaphore") if semaphore else None)
        self._set("cwd", _path(cwd, self._name, "cwd") if cwd is not None else None)
        self._set("duration", _amount(duration, self._name, "duration"))
        self._set("timeframe", _integer(timeframe, self._name, "timeframe"))

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"Task({self._name!r})"

    # --- command and files ----------------------------------------------------------------

    def add_args(self, *args: Arg) -> Self:
        """Append arguments; numbers become strings, a :class:`File` its path.

        >>> Task("t", "ls").add_args("-l", File("data"), 2).build().cmd
        ('ls', '-l', 'data', '2')
        """
        if self._shell is not None:
            raise SpecError(
                "a shell task takes no arguments",
                task=self._name,
                field="args",
                hint="write them in the script, quoted with shlex.quote",
            )
        self._args += [_arg(arg, self._name, i) for i, arg in enumerate(args)]
        return self

    def add_inputs(self, *files: File | str | os.PathLike[str]) -> Self:
        """Files the task reads; a task writing one of them runs first."""
        self._inputs += [_path(f, self._name, "inputs") for f in files]
        return self

    def add_outputs(self, *files: File | str | os.PathLike[str], temp: bool = False) -> Self:
        """Files the task writes; ``temp=True``: herd may delete them once their readers are done."""
        paths = [_path(f, self._name, "outputs") for f in files]
        self._outputs += paths
        if temp:
            self._temp += paths
        return self

    def add_needs(self, *tasks: Task | str) -> Self:
        """Tasks that must succeed before this one (besides those inferred from files)."""
        self._needs += [_task_name(t, self._name, "needs") for t in tasks]
        return self

    def set_stdio(
        self,
        stdin: File | str | None = None,
        stdout: File | str | None = None,
        stderr: File | str | None = None,
    ) -> Self:
        """Redirect the task's standard streams to files (paths relative to its cwd)."""
        for key, value in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)):
            if value is not None:
                self._set(key, _path(value, self._name, key))
        return self

    def set_done_marker(self, path: File | str) -> Self:
        """A file whose existence means the task is done (O2DPG's ``<name>.log_done``)."""
        return self._set("done_marker", _path(path, self._name, "done_marker"))

    # --- resources and policy ---------------------------------------------------------------

    def set_resources(
        self,
        cpu: float | None = None,
        mem: float | None = None,
        gpu: float | None = None,
        **pools: float,
    ) -> Self:
        """Cores, memory in MB, GPUs and any user-named pool (``tape_drive=1``).

        >>> dict(Task("t", "x").set_resources(cpu=2, mem=500, tape_drive=1).build().resources)
        {'cpu': 2.0, 'mem': 500.0, 'tape_drive': 1.0}
        """
        for key, value in {"cpu": cpu, "mem": mem, "gpu": gpu, **pools}.items():
            if value is not None:
                if not key.isidentifier():
                    raise SpecError(
                        f"invalid resource name {key!r}", task=self._name, field="resources"
                    )
                self._resources[key] = _amount(value, self._name, f"resources.{key}") or 0.0
        return self

    def set_timeout(self, seconds: float | None) -> Self:
        """Kill the attempt after ``seconds`` (None: no limit)."""
        return self._set("timeout", _positive(seconds, self._name, "timeout"))

    def set_retries(self, retries: int, *, backoff: float | None = None) -> Self:
        """Run again up to ``retries`` times after a failure, waiting ``backoff`` s, then doubling."""
        count = _integer(retries, self._name, "retries")
        if count is None or count < 0:
            raise SpecError("must be 0 or more", task=self._name, field="retries")
        self._set("retries", count)
        if backoff is not None:
            self._set("backoff", _amount(backoff, self._name, "backoff"))
        return self

    def set_priority(self, priority: int) -> Self:
        """Higher runs first among ready tasks."""
        return self._set("priority", _integer(priority, self._name, "priority") or 0)

    def set_semaphore(self, name: str | None) -> Self:
        """Tasks sharing a semaphore never run at the same time."""
        return self._set("semaphore", _text(name, self._name, "semaphore") if name else None)

    def set_recovery(
        self, *, mem_factor: float = 1.5, time_factor: float = 1.5, attempts: int = 1
    ) -> Self:
        """After an out-of-memory or timeout kill, retry with more memory or time."""
        self._recovery = model.Recovery(mem_factor, time_factor, attempts)
        return self

    def set_cwd(self, cwd: str | os.PathLike[str] | None) -> Self:
        """The directory the task runs in, relative to the workflow's working directory."""
        return self._set("cwd", _path(cwd, self._name, "cwd") if cwd is not None else None)

    def set_duration(self, seconds: float | None) -> Self:
        """The expected runtime: the scheduler's critical-path order and ``herd simulate`` use it."""
        return self._set("duration", _amount(seconds, self._name, "duration"))

    # --- labels, environment, metadata ----------------------------------------------------

    def add_labels(self, *labels: str) -> Self:
        """Labels select tasks (``herd run --label sim``) and group them in reports."""
        self._labels += [_text(label, self._name, "labels") for label in labels]
        return self

    def add_env(self, **variables: str | int | float) -> Self:
        """Environment variables, layered over the workflow's."""
        for key, value in variables.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise SpecError(
                    f"expected a string or number, got {type(value).__name__}",
                    task=self._name,
                    field=f"env.{key}",
                    hint="pass str(value)",
                )
            self._env[key] = str(value)
        return self

    def add_meta(self, **values: Any) -> Self:
        """Free-form metadata kept with the task (JSON-serialisable values)."""
        self._meta.update(values)
        return self

    # --- building ---------------------------------------------------------------------------

    def build(self) -> model.Task:
        """The :class:`herd.core.model.Task` this builder describes."""
        from herd.formats.common import freeze

        cmd: str | tuple[str, ...]
        cmd = self._shell if self._shell is not None else (str(self._executable), *self._args)
        return model.Task(
            name=self._name,
            cmd=cmd,
            needs=tuple(dict.fromkeys(self._needs)),
            inputs=tuple(dict.fromkeys(self._inputs)),
            outputs=tuple(dict.fromkeys(self._outputs)),
            temp=tuple(dict.fromkeys(self._temp)),
            resources=model.frozen_map(self._resources),
            labels=tuple(dict.fromkeys(self._labels)),
            env=model.frozen_map(self._env),
            recovery=self._recovery,
            meta=freeze(self._meta) if self._meta else model.EMPTY,
            **self._fields,
        )

    def _set(self, key: str, value: Any) -> Self:
        self._fields[key] = value
        return self


class Workflow:
    """A named set of tasks; :meth:`build` makes the :class:`herd.core.model.Workflow`.

    >>> wf = Workflow("w").add_tasks(Task("a", "true"), Task("b", "true").add_needs("a"))
    >>> [t.needs for t in wf.build().tasks]
    [(), ('a',)]
    """

    def __init__(
        self,
        name: str,
        *,
        env: Mapping[str, str] | None = None,
        init: str | None = None,
        limits: Mapping[str, float] | None = None,
    ) -> None:
        self._name = _text(name, None, "name")
        self._tasks: dict[str, Task] = {}
        self._env: dict[str, str] = {}
        self._limits: dict[str, float] = {}
        self._init = _text(init, None, "init") if init is not None else None
        self.add_env(**(env or {}))
        self.set_limits(**(limits or {}))

    @property
    def name(self) -> str:
        return self._name

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tuple(self._tasks.values())

    def task(self, name: str) -> Task:
        """The task called ``name``."""
        try:
            return self._tasks[name]
        except KeyError:
            raise SpecError(
                "no such task in the workflow", task=name, hint="add it with add_tasks"
            ) from None

    def __contains__(self, task: object) -> bool:
        name = task.name if isinstance(task, Task) else task
        return isinstance(name, str) and name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks.values())

    def add_tasks(self, *tasks: Task | Iterable[Task]) -> Self:
        """Add tasks (or iterables of tasks); names must be unique."""
        for item in tasks:
            for task in [item] if isinstance(item, Task) else item:
                if not isinstance(task, Task):
                    raise SpecError(f"expected a Task, got {type(task).__name__}", field="tasks")
                if task.name in self._tasks:
                    raise ValidationError(
                        "duplicate task name",
                        task=task.name,
                        field="name",
                        hint="every task needs a unique name",
                    )
                self._tasks[task.name] = task
        return self

    def add_dependency(
        self,
        task: Task | str,
        *,
        parents: Iterable[Task | str] = (),
        children: Iterable[Task | str] = (),
    ) -> Self:
        """``task`` needs every parent; every child needs ``task`` (tasks already added)."""
        name = self._known(task, "needs")
        self.task(name).add_needs(*(self._known(p, "needs") for p in parents))
        for child in children:
            self.task(self._known(child, "needs")).add_needs(name)
        return self

    def add_env(self, **variables: str | int | float) -> Self:
        """Environment variables for every task (a task's own env wins)."""
        for key, value in variables.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise SpecError(
                    f"expected a string or number, got {type(value).__name__}", field=f"env.{key}"
                )
            self._env[key] = str(value)
        return self

    def set_limits(self, **limits: float) -> Self:
        """Resource capacities the workflow declares (``tape_drive=2``)."""
        for key, value in limits.items():
            self._limits[key] = _amount(value, None, f"limits.{key}") or 0.0
        return self

    def set_init(self, command: str | None) -> Self:
        """A shell command run once before any task, in every run."""
        self._init = _text(command, None, "init") if command is not None else None
        return self

    def build(self) -> model.Workflow:
        """The validated :class:`herd.core.model.Workflow` (graph errors raise ValidationError)."""
        from herd.core.graph import build as build_graph

        workflow = model.Workflow(
            name=self._name,
            tasks=tuple(task.build() for task in self._tasks.values()),
            env=model.frozen_map(self._env),
            init=self._init,
            format=model.SpecFormat.API,
            limits=model.frozen_map(self._limits),
        )
        build_graph(workflow)
        return workflow

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the native spec (YAML for ``.yaml``/``.yml``, JSON for ``.json``); return its path."""
        from herd.formats import dump

        dump(self.build(), path)
        return Path(path)

    def run(
        self, workdir: str | os.PathLike[str] = ".", *, reporter: Any = None, **options: Any
    ) -> RunResult:
        """Run the workflow (:func:`herd.service.runs.run`); ``options`` are :class:`herd.run.submit.RunOptions`.

        As ``herd run`` does, the limits default to this machine's cores, memory and GPUs over
        the workflow's own ``limits``; pass ``limits=herd.Limits({...})`` to choose them.
        """
        from dataclasses import fields

        from herd.service import runs
        from herd.service.runs import RunOptions

        known = {f.name for f in fields(RunOptions)} - {"workdir"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise UsageError(
                f"unknown run option '{unknown[0]}'; known: {', '.join(sorted(known))}"
            )
        if reporter is None:
            from herd.run.progress import reporter_for

            reporter = reporter_for(sys.stderr, quiet=True)
        workflow = self.build()
        options.setdefault("limits", runs.limits(workflow))
        return runs.run(workflow, RunOptions(workdir=Path(workdir), **options), reporter)

    def _known(self, task: Task | str, field: str) -> str:
        name = _task_name(task, None, field)
        if name not in self._tasks:
            raise SpecError(
                "not a task of this workflow",
                task=name,
                field=field,
                hint="add it with add_tasks before adding its dependencies",
            )
        return name


# --- checks ---------------------------------------------------------------------------------


def _text(value: Any, task: str | None, field: str) -> str:
    if isinstance(value, File):
        raise SpecError(
            f"expected a string, got {value!r}",
            task=task,
            field=field,
            hint="a File goes in add_args, add_inputs or add_outputs; use str(file) for its path",
        )
    if not isinstance(value, str) or not value:
        raise SpecError(f"expected a non-empty string, got {value!r}", task=task, field=field)
    return value


def _path(value: Any, task: str | None, field: str) -> str:
    if isinstance(value, File):
        return value.path
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    return _text(value, task, field)


def _arg(value: Any, task: str, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float | os.PathLike):
        raise SpecError(
            f"an argument must be a string, a number or a File, got {value!r}",
            task=task,
            field=f"args[{index}]",
        )
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def _task_name(value: Any, task: str | None, field: str) -> str:
    return value.name if isinstance(value, Task) else _text(value, task, field)


def _amount(value: Any, task: str | None, field: str) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise SpecError(f"expected a number of at least 0, got {value!r}", task=task, field=field)
    return float(value)


def _positive(value: Any, task: str | None, field: str) -> float | None:
    amount = _amount(value, task, field)
    if amount is not None and amount <= 0:
        raise SpecError("must be more than 0", task=task, field=field, hint="None for no limit")
    return amount


def _integer(value: Any, task: str | None, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"expected a whole number, got {value!r}", task=task, field=field)
    return value
