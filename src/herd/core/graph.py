"""The DAG of a workflow as integer arrays: validation, file-derived edges, selection, ranks.

A :class:`Graph` numbers tasks ``0..n-1`` in declaration order and keeps edges in CSR form
(``parent_ptr``/``parent_ids`` and ``child_ptr``/``child_ids``, ``array('l')``), so that a
million-task workflow costs a few arrays rather than a million Python lists. Everything here is
pure: no file is read, paths are compared as normalised strings.

Edges come from two places: a task's explicit ``needs``, and files — a task whose ``inputs`` name a
path another task lists in its ``outputs`` depends on that task (torc's implicit dependencies).
Paths are resolved against each task's ``cwd`` before comparing.

:func:`extend` appends tasks to a built graph (tasks joining a running workflow), keeping the old
ids and edges. :func:`build` raises :class:`~herd.errors.ValidationError` naming the file, the task and the field
for: a control character (newline, NUL, ...) in the workflow's name, a task's name or a label
(they end up in terminals, logs and scripts), a duplicate task name, a need naming no task, two tasks writing the same file, and a cycle
(whose path is printed: ``a -> b -> c -> a``). :func:`check_limits` rejects a task that could never
fit the run's limits.
"""

from __future__ import annotations

import heapq
import operator
import posixpath
import re
from array import array
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, chain, repeat

from herd.core.model import Limits, Task, Workflow
from herd.errors import ValidationError


@dataclass(frozen=True, slots=True, eq=False)
class Graph:
    """A validated workflow DAG with integer task ids (declaration order)."""

    workflow: Workflow
    index: dict[str, int]
    parent_ptr: array[int]
    parent_ids: array[int]
    child_ptr: array[int]
    child_ids: array[int]
    #: a topological order (parents before children; ties in declaration order)
    order: array[int]
    #: every task's inputs as :func:`file_key` gives them (the task's own ``inputs`` tuple when
    #: its paths are keys already): normalised once for the edges and the plan's stats
    input_keys: Sequence[tuple[str, ...]]
    #: every task's outputs as :func:`file_key` gives them, likewise
    output_keys: Sequence[tuple[str, ...]]

    @property
    def tasks(self) -> tuple[Task, ...]:
        return self.workflow.tasks

    def __len__(self) -> int:
        return len(self.workflow.tasks)

    def parents(self, i: int) -> array[int]:
        return self.parent_ids[self.parent_ptr[i] : self.parent_ptr[i + 1]]

    def children(self, i: int) -> array[int]:
        return self.child_ids[self.child_ptr[i] : self.child_ptr[i + 1]]

    def name(self, i: int) -> str:
        return self.workflow.tasks[i].name

    @property
    def edges(self) -> int:
        return len(self.parent_ids)


def build(workflow: Workflow) -> Graph:
    """Validate ``workflow`` and build its graph."""
    index = _index(workflow)
    _check_names(workflow, index)
    input_keys, output_keys = _file_keys(workflow, "inputs"), _file_keys(workflow, "outputs")
    src, dst = _edges(workflow, index, input_keys, output_keys)
    return _assembled(workflow, index, src, dst, input_keys, output_keys)


def extend(graph: Graph, tasks: Sequence[Task]) -> Graph:
    """``graph`` with ``tasks`` appended: the tasks added to a running workflow (a Pegasus
    sub-workflow). The graph's own tasks keep their ids and their parents; a new task depends on
    the tasks it ``needs`` and on the producers of its inputs, old or new. An old task reading a
    new task's output gains no edge: the caller orders them (the scheduler's task groups)."""
    old = graph.workflow
    workflow = replace(old, tasks=(*old.tasks, *tasks))
    index = _index(workflow)
    _check_names(workflow, index)
    start, n = len(old.tasks), len(workflow.tasks)
    added = Workflow(old.name, tuple(tasks))
    input_keys = [*graph.input_keys, *_file_keys(added, "inputs")]
    output_keys = [*graph.output_keys, *_file_keys(added, "outputs")]
    src, dst = array("l"), array("l")
    for i in range(start):
        parents = graph.parents(i)
        src.extend(parents)
        dst.extend(repeat(i, len(parents)))
    for i in range(start, n):
        task = workflow.tasks[i]
        if any(need not in index for need in task.needs):
            raise _unknown_need(workflow, task, index)
        src.extend(index[need] for need in task.needs)
        dst.extend(repeat(i, len(task.needs)))
    producer = _producers(workflow, output_keys).get
    for i in range(start, n):
        for j in map(producer, input_keys[i]):
            if j is not None and j != i:
                src.append(j)
                dst.append(i)
    return _assembled(workflow, index, src, dst, input_keys, output_keys)


def _assembled(
    workflow: Workflow,
    index: dict[str, int],
    src: array[int],
    dst: array[int],
    input_keys: Sequence[tuple[str, ...]],
    output_keys: Sequence[tuple[str, ...]],
) -> Graph:
    """The graph of the edges ``src[j] -> dst[j]``, in topological order, or the cycle."""
    n = len(workflow.tasks)
    parent_ptr, parent_ids, child_ptr, child_ids = _csr(n, src, dst)
    if all(map(operator.lt, src, dst)):
        # every task comes after the tasks it needs (the usual case): declaration order is the
        # order Kahn's algorithm would give, without its heap
        order = array("l", range(n))
    else:
        order = _toposort(n, parent_ptr, child_ptr, child_ids)
    if len(order) < n:
        cycle = _find_cycle(workflow, order, parent_ptr, parent_ids)
        raise ValidationError(
            "cycle: " + " -> ".join(cycle),
            file=workflow.source,
            task=cycle[0],
            field="needs",
            hint="a task cannot depend on itself through other tasks; remove one of these needs",
        )
    return Graph(
        workflow,
        index,
        parent_ptr,
        parent_ids,
        child_ptr,
        child_ids,
        order,
        input_keys,
        output_keys,
    )


def _index(workflow: Workflow) -> dict[str, int]:
    tasks = workflow.tasks
    index = dict(zip(map(operator.attrgetter("name"), tasks), range(len(tasks)), strict=True))
    if len(index) == len(tasks):
        return index
    index = {}  # a name repeats: find the first repeat, for the message
    for i, task in enumerate(tasks):
        if index.setdefault(task.name, i) != i:
            raise ValidationError(
                f"duplicate task name (also task #{index[task.name] + 1})",
                file=workflow.source,
                task=task.name,
                field="name",
                hint="every task needs a unique name",
            )
    return index


#: C0 and C1 control characters and DEL: never in a name
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BYTES = bytes(range(0x20)) + b"\x7f"
_LABELS = operator.attrgetter("labels")


def _has_control(text: str) -> bool:
    """Whether ``text`` holds a control character; ASCII text (the usual names) by one C-level
    translate of its bytes, four times faster than the regex over a million names."""
    if text.isascii():
        raw = text.encode("ascii")
        return len(raw.translate(None, _CONTROL_BYTES)) != len(raw)
    return _CONTROL.search(text) is not None


def _check_names(workflow: Workflow, index: dict[str, int]) -> None:
    """Refuse control characters in names and labels; one search over all of them at once (a
    million names: milliseconds), the culprit looked for only when there is one."""
    hint = "names and labels are one line of printable text: remove the control character"
    if _CONTROL.search(workflow.name):
        problem = f"the workflow name {workflow.name!r} holds a control character"
        raise ValidationError(problem, file=workflow.source, field="name", hint=hint)
    if _has_control("".join(index)):
        name = next(n for n in index if _CONTROL.search(n))
        problem = f"the task name {name!r} holds a control character"
        raise ValidationError(problem, file=workflow.source, task=name, field="name", hint=hint)
    if _has_control("".join(chain.from_iterable(map(_LABELS, workflow.tasks)))):
        task = next(t for t in workflow.tasks if _CONTROL.search("".join(t.labels)))
        label = next(x for x in task.labels if _CONTROL.search(x))
        problem = f"the label {label!r} holds a control character"
        raise ValidationError(
            problem, file=workflow.source, task=task.name, field="labels", hint=hint
        )


def file_key(task: Task, path: str) -> str:
    """The path a task's file refers to, relative to the workflow directory, normalised: what
    ``posixpath.normpath(posixpath.join(task.cwd, path))`` gives, made by hand (millions of calls
    when planning; O2DPG's tasks have the cwd ``./``)."""
    cwd = task.cwd
    if cwd and cwd not in _HERE and path[:1] != "/":
        path = f"{cwd}{path}" if cwd[-1] == "/" else f"{cwd}/{path}"
    if _normal(path):
        return path  # the common case: skip normpath
    return posixpath.normpath(path)


#: task folders that are the workflow directory itself: joining one changes no normalised path
_HERE = frozenset({".", "./"})


def _normal(path: str) -> bool:
    """True when ``posixpath.normpath`` would return ``path`` as it is: no empty, ``.`` or ``..``
    component, no trailing slash (a cheap, conservative test)."""
    return (
        bool(path) and path[0] != "." and path[-1] != "/" and "/." not in path and "//" not in path
    )


def _file_keys(workflow: Workflow, field: str) -> list[tuple[str, ...]]:
    """Every task's ``inputs`` or ``outputs`` as file keys."""
    keys: list[tuple[str, ...]] = []
    append, paths_of = keys.append, operator.attrgetter(field)
    for task in workflow.tasks:
        paths = paths_of(task)
        if not paths or (not task.cwd and all(map(_normal, paths))):
            append(paths)  # absolute or relative to the workflow directory, and normal
        else:
            append(tuple(file_key(task, path) for path in paths))
    return keys


def _edges(
    workflow: Workflow,
    index: dict[str, int],
    input_keys: Sequence[tuple[str, ...]],
    output_keys: Sequence[tuple[str, ...]],
) -> tuple[array[int], array[int]]:
    src, dst = array("l"), array("l")
    id_of = index.__getitem__
    for i, task in enumerate(workflow.tasks):
        needs = task.needs
        if needs:
            try:  # the ids of a task's needs in one C-level pass
                src.extend(map(id_of, needs))
            except KeyError:
                raise _unknown_need(workflow, task, index) from None
            dst.extend(repeat(i, len(needs)))
    producers = _producers(workflow, output_keys)
    if producers:
        _file_edges(producers, input_keys, src, dst)
    return src, dst


def _producers(workflow: Workflow, output_keys: Sequence[tuple[str, ...]]) -> dict[str, int]:
    producers: dict[str, int] = {}
    for i, keys in enumerate(output_keys):
        for key in keys:
            j = producers.setdefault(key, i)
            if j != i:
                task = workflow.tasks[i]
                raise ValidationError(
                    f"output '{task.outputs[keys.index(key)]}' is also written by task "
                    f"'{workflow.tasks[j].name}'",
                    file=workflow.source,
                    task=task.name,
                    field="outputs",
                    hint="two tasks writing one file make the result depend on timing; rename one",
                )
    return producers


def _file_edges(
    producers: dict[str, int],
    input_keys: Sequence[tuple[str, ...]],
    src: array[int],
    dst: array[int],
) -> None:
    producer = producers.get
    for i, keys in enumerate(input_keys):
        for key in keys:
            j = producer(key)
            if j is not None and j != i:
                src.append(j)
                dst.append(i)


def _unknown_need(workflow: Workflow, task: Task, index: dict[str, int]) -> ValidationError:
    import difflib

    need = next(need for need in task.needs if need not in index)
    close = difflib.get_close_matches(need, list(index)[:100_000], n=1)
    hint = f"did you mean '{close[0]}'?" if close else "check the spelling or add that task"
    return ValidationError(
        f"needs '{need}', which is not a task of this workflow",
        file=workflow.source,
        task=task.name,
        field="needs",
        hint=hint,
    )


def _csr(
    n: int, src: array[int], dst: array[int]
) -> tuple[array[int], array[int], array[int], array[int]]:
    """The edges ``src[j] -> dst[j]`` as parent and child CSR arrays, rows ascending, no duplicates.

    Three stable counting sorts, as in a radix sort: by destination (unless the edges come so
    already, as needs listed task by task do), then by source (destinations now ascend within each
    source's row), then, duplicates dropped, by destination again (sources ascend). Only flat
    arrays are made: no per-task list, which at a million tasks would cost more in
    garbage-collector passes than in sorting.
    """
    if not all(map(operator.le, dst, dst[1:])):
        _, dst, src = _sort_pairs(n, dst, src)
    child_ptr, src2, dst2 = _sort_pairs(n, src, dst)
    if _repeats(src2, dst2):
        src2, dst2 = _unique_pairs(src2, dst2)
        child_ptr = _row_ptr(n, src2)
    parent_ptr, _, parent_ids = _sort_pairs(n, dst2, src2)
    return parent_ptr, parent_ids, child_ptr, dst2


def _row_ptr(n: int, keys: array[int]) -> array[int]:
    """CSR row pointers: row ``i`` of data grouped by ``keys`` is ``[ptr[i], ptr[i + 1])``."""
    counts = array("l", [0]) * n
    for k in keys:
        counts[k] += 1
    return array("l", accumulate(counts, initial=0))


def _sort_pairs(
    n: int, keys: array[int], values: array[int]
) -> tuple[array[int], array[int], array[int]]:
    """Stable counting sort of the pairs ``(keys[j], values[j])`` by key: (row pointers, keys,
    values)."""
    ptr = _row_ptr(n, keys)
    free = array("l", ptr)  # the next free slot of every row
    out_keys, out_values = array("l", keys), array("l", values)  # same size; overwritten
    for k, v in zip(keys, values, strict=True):
        j = free[k]
        out_keys[j] = k
        out_values[j] = v
        free[k] = j + 1
    return ptr, out_keys, out_values


def _repeats(keys: array[int], values: array[int]) -> bool:
    """Whether sorted pairs hold a pair twice (one pass in C: maps of operator functions)."""
    same_key = map(operator.eq, keys, keys[1:])
    same_value = map(operator.eq, values, values[1:])
    return any(map(operator.and_, same_key, same_value))


def _unique_pairs(keys: array[int], values: array[int]) -> tuple[array[int], array[int]]:
    """Sorted pairs without repeats (a task naming a need twice, or by a need and a file)."""
    out_keys, out_values = array("l"), array("l")
    last = (-1, -1)
    for pair in zip(keys, values, strict=True):
        if pair != last:
            out_keys.append(pair[0])
            out_values.append(pair[1])
            last = pair
    return out_keys, out_values


def _toposort(
    n: int, parent_ptr: array[int], child_ptr: array[int], child_ids: array[int]
) -> array[int]:
    """Kahn's algorithm with a min-heap, so ties keep declaration order (deterministic)."""
    unmet = array("l", (parent_ptr[i + 1] - parent_ptr[i] for i in range(n)))
    heap = [i for i in range(n) if unmet[i] == 0]
    order = array("l")
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        i = pop(heap)
        order.append(i)
        for c in child_ids[child_ptr[i] : child_ptr[i + 1]]:
            unmet[c] -= 1
            if unmet[c] == 0:
                push(heap, c)
    return order


def _find_cycle(
    workflow: Workflow, order: array[int], parent_ptr: array[int], parent_ids: array[int]
) -> list[str]:
    """A cycle among the tasks Kahn's algorithm could not order, as names, closed."""
    left = set(range(len(workflow.tasks))) - set(order)
    start = min(left)
    path: list[int] = []
    seen: dict[int, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        # every remaining node has a remaining parent, so walking up always finds a cycle
        node = next(p for p in parent_ids[parent_ptr[node] : parent_ptr[node + 1]] if p in left)
    cycle = path[seen[node] :]
    cycle.reverse()  # walked child -> parent; print in dependency order
    first = cycle.index(min(cycle))  # start at the task declared first: stable and readable
    cycle = cycle[first:] + cycle[:first]
    names = [workflow.tasks[i].name for i in cycle]
    return [*names, names[0]]


# --- limits ---------------------------------------------------------------------------------


def check_limits(graph: Graph, limits: Limits) -> None:
    """Reject the first task that needs more of a resource than the run may ever give."""
    caps = {name: cap for name, cap in limits.resources.items() if cap != float("inf")}
    checked: set[int] = set()  # ids of resource mappings that fit: tasks share equal mappings
    for task in graph.tasks:
        if id(task.resources) in checked:
            continue
        for name, need in task.demand.items():
            cap = caps.get(name)
            if cap is None and need and name not in limits.resources:
                raise ValidationError(
                    f"uses resource '{name}', which has no limit",
                    file=graph.workflow.source,
                    task=task.name,
                    field=f"resources.{name}",
                    hint=f"declare `limits: {{{name}: N}}` in the spec or pass --limit {name}=N",
                )
            if cap is not None and need > cap + 1e-9:
                raise ValidationError(
                    f"needs {name} {_fmt(need)} but the limit is {_fmt(cap)}",
                    file=graph.workflow.source,
                    task=task.name,
                    field=f"resources.{name}",
                    hint=_limit_hint(name, need),
                )
        checked.add(id(task.resources))


def _limit_hint(name: str, need: float) -> str:
    flag = {"cpu": "--cpu-limit", "mem": "--mem-limit", "gpu": "--gpu-limit"}.get(name)
    raise_it = f"pass {flag} {_fmt(need)}" if flag else f"pass --limit {name}={_fmt(need)}"
    return f"{raise_it} or lower the task's request; herd never clamps a request silently"


def _fmt(x: float) -> str:
    return f"{x:g}"


# --- selection ------------------------------------------------------------------------------


def input_files(graph: Graph, selected: Collection[int]) -> list[str]:
    """The files (as :func:`file_key` gives them) that the selected tasks read, each once."""
    keys = graph.input_keys
    if len(selected) < len(keys):
        keys = [keys[i] for i in sorted(selected)]
    return list(dict.fromkeys(chain.from_iterable(keys)))


def ancestors(graph: Graph, roots: Iterable[int]) -> set[int]:
    """``roots`` and every task they need, directly or not."""
    return _closure(roots, graph.parent_ptr, graph.parent_ids)


def descendants(graph: Graph, roots: Iterable[int]) -> set[int]:
    """``roots`` and every task that needs them, directly or not."""
    return _closure(roots, graph.child_ptr, graph.child_ids)


def _closure(roots: Iterable[int], ptr: array[int], ids: array[int]) -> set[int]:
    seen = set(roots)
    stack = list(seen)
    while stack:
        i = stack.pop()
        for j in ids[ptr[i] : ptr[i + 1]]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


def match(graph: Graph, patterns: Sequence[str], labels: Sequence[str] = ()) -> set[int]:
    """Tasks whose name fully matches one of the regexes, or that carry one of the labels."""
    regexes = [_compile(p) for p in patterns]
    wanted = set(labels)
    return {
        i
        for i, task in enumerate(graph.tasks)
        if any(r.fullmatch(task.name) for r in regexes) or wanted.intersection(task.labels)
    }


def _compile(pattern: str) -> re.Pattern[str]:
    from herd.errors import UsageError

    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"'{pattern}' is not a valid regular expression: {exc}") from exc


def select(graph: Graph, targets: Sequence[str], labels: Sequence[str] = ()) -> set[int]:
    """The tasks to run for ``targets``/``labels`` (O2DPG ``-tt``/``--target-labels``): the
    matching tasks and everything they need. No targets and no labels selects every task."""
    if not targets and not labels:
        return set(range(len(graph)))
    return ancestors(graph, match(graph, targets, labels))


# --- ranks ----------------------------------------------------------------------------------


def upward_ranks(graph: Graph, durations: Sequence[float]) -> list[float]:
    """Length of the longest path from each task to the end, its own duration included.

    With real durations this is HEFT's upward rank (zero communication cost); with unit durations
    it counts the tasks on the longest remaining chain. Ordering ready tasks by it puts the
    critical path first.
    """
    rank = [0.0] * len(graph)
    child_ptr, child_ids = graph.child_ptr, graph.child_ids
    for i in reversed(graph.order):
        best = 0.0
        for c in child_ids[child_ptr[i] : child_ptr[i + 1]]:
            if rank[c] > best:
                best = rank[c]
        rank[i] = durations[i] + best
    return rank


def critical_path(graph: Graph, durations: Sequence[float]) -> float:
    """The longest chain of durations through the graph: no schedule can be shorter."""
    ranks = upward_ranks(graph, durations)
    return max(ranks, default=0.0)
