"""Parameter sweeps: a native task with ``foreach`` becomes one task per parameter point.

This works on the raw task mappings of a native spec, before they are validated, so that every
instance is checked by the same code as a hand-written task::

    - name: sim_{tf}
      foreach: {tf: "1:3"}          # or a list; several parameters make a product (or a zip)
      cmd: sim --seed {tf}
      needs: ["gen_{tf}"]           # bound: instance tf=2 needs gen_2 (stream-aligned)
    - name: merge
      needs: ["sim_{tf}"]           # a template name, unbound here: all of sim_1, sim_2, sim_3

Placeholders ``{param}`` are replaced in the name, ``cmd`` (string or argv items), ``needs``,
``inputs``, ``outputs``, ``labels``, ``cwd``, env values, ``semaphore``, ``stdin``/``stdout``/
``stderr``, ``done_marker`` and ``timeframe``. ``${VAR}`` is left for the shell, ``{{`` and ``}}``
are literal braces. A placeholder naming no parameter of its task is an error. Each instance gets
``meta.params`` (the point) and labels ``param=value``.

A need that equals the name template of a swept task (its *family*) expands to the family's
instances whose parameters agree with the needing task's parameters of the same name: all of them
when the needing task binds none (gather), one when it binds all (stream-aligned), a slice when it
binds some. Tasks without ``foreach`` are never templated, except for such family needs.

Rendering uses ``str.format_map`` on a template compiled once per distinct string, so that a
50,000-point sweep expands in a small fraction of a second.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from herd.core.model import FrozenDict
from herd.formats.common import describe, did_you_mean, fail, freeze

#: fields whose string value (or, for lists, string items) are templated
SCALAR_FIELDS = ("cwd", "semaphore", "stdin", "stdout", "stderr", "done_marker", "timeframe")
LIST_FIELDS = ("inputs", "labels")
_LISTS = frozenset({*LIST_FIELDS, "outputs"})

_TOKEN = re.compile(r"\{\{|\}\}|\$\{|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")
_RANGE = re.compile(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*(?::\s*(-?\d+)\s*)?")
#: digits of a range bound: a range's length always fits a machine integer
_MAX_DIGITS = 15
_LITERAL = {"{{": "{{", "}}": "}}", "${": "${{", "{": "{{", "}": "}}"}


@dataclass(frozen=True, slots=True)
class Template:
    """A string compiled for ``str.format_map``; ``names`` are the parameters it uses."""

    fmt: str
    names: frozenset[str]
    #: the rendered text when ``names`` is empty (only escapes to undo, or nothing at all)
    constant: str | None

    def render(self, params: Mapping[str, str]) -> str:
        if self.constant is not None:
            return self.constant
        return self.fmt.format_map(params)


@functools.lru_cache(maxsize=1 << 16)
def compile_template(text: str) -> Template:
    """Compile ``text`` once; ``{name}`` placeholders, ``${`` kept, ``{{``/``}}`` literal."""
    parts: list[str] = []
    names: set[str] = set()
    end = 0
    for match in _TOKEN.finditer(text):
        parts.append(text[end : match.start()])
        name = match.group(1)
        if name is not None:
            parts.append("{" + name + "}")
            names.add(name)
        else:
            parts.append(_LITERAL[match.group(0)])
        end = match.end()
    parts.append(text[end:])
    fmt = "".join(parts)
    return Template(fmt, frozenset(names), fmt.format_map({}) if not names else None)


# -- parameter points ---------------------------------------------------------------------------


def parse_values(value: Any, file: str, task: str, param: str) -> list[Any]:
    """The values of one parameter: a list of scalars or an inclusive range ``start:stop[:step]``."""
    where = f"foreach.{param}"
    if type(value) is list:
        for item in value:
            if type(item) not in (str, int, float):
                fail(f"parameter values must be scalars, found {describe(item)}", file, task, where)
        values = value
    elif type(value) is str and (match := _RANGE.fullmatch(value)):
        values = list(_inclusive_range(match, file, task, where))
    else:
        hint = "write a list [1, 2] or a range '1:100' or '1:100:5'"
        if type(value) is int:
            hint += "; in YAML quote ranges: an unquoted 1:30 reads as the base-60 number 90"
        fail(f"expected a list or a range string, got {describe(value)}", file, task, where, hint)
    if not values:
        fail("the parameter has no values", file, task, where, "a sweep needs at least one point")
    return values


def _inclusive_range(match: re.Match[str], file: str, task: str, where: str) -> range:
    if max(len(g) for g in match.groups(default="")) > _MAX_DIGITS:
        fail(f"range bounds have at most {_MAX_DIGITS} digits", file, task, where)
    start, stop = int(match.group(1)), int(match.group(2))
    step = int(match.group(3)) if match.group(3) is not None else 1
    if step == 0:
        fail("the range step must not be 0", file, task, where)
    return range(start, stop + (1 if step > 0 else -1), step)


def sweep_points(raw: Mapping[str, Any], file: str, task: str) -> tuple[tuple[str, ...], list[Any]]:
    """The parameter names of a swept task and its points (tuples of values, in order)."""
    foreach = raw["foreach"]
    if type(foreach) is not dict or not foreach:
        fail(
            f"expected a mapping of parameter to values, got {describe(foreach)}",
            file,
            task,
            "foreach",
        )
    for param in foreach:
        if type(param) is not str or not param.isidentifier():
            fail(f"parameter name {param!r} is not an identifier", file, task, "foreach")
    names = tuple(foreach)
    columns = [parse_values(foreach[p], file, task, p) for p in names]
    mode = raw.get("mode", "product")
    if mode == "product":
        return names, list(itertools.product(*columns))
    if mode != "zip":
        fail(f"expected 'product' or 'zip', got {describe(mode)}", file, task, "mode")
    lengths = {p: len(c) for p, c in zip(names, columns, strict=True)}
    if len(set(lengths.values())) > 1:
        counts = ", ".join(f"{p}: {n}" for p, n in lengths.items())
        fail(
            f"zip needs parameters of equal length ({counts})",
            file,
            task,
            "mode",
            "use mode: product",
        )
    return names, list(zip(*columns, strict=True))


def check_size(tasks: Sequence[Any], file: str, limit: int) -> None:
    """Refuse, before expanding anything, a task list that would expand past ``limit`` tasks
    (``--max-tasks``): a sweep's size is known from its ranges' bounds and its lists' lengths."""
    total = 0
    for raw in tasks:
        count = _point_count(raw, file) if type(raw) is dict and "foreach" in raw else 1
        if count > limit:
            fail(
                f"this sweep expands to {count:,} tasks, more than the limit of {limit:,}",
                file,
                str(raw.get("name")),
                "foreach",
                "narrow its ranges, or raise the limit with --max-tasks N",
            )
        total += count
    if total > limit:
        fail(
            f"the workflow expands to {total:,} tasks, more than the limit of {limit:,}",
            file,
            None,
            "tasks",
            "split it, or raise the limit with --max-tasks N",
        )


def _point_count(raw: Mapping[str, Any], file: str) -> int:
    """The instances of a swept task (1 when its foreach is malformed: expanding it says why)."""
    foreach = raw["foreach"]
    if type(foreach) is not dict:
        return 1
    lengths = []
    for param, value in foreach.items():
        if type(value) is list:
            lengths.append(len(value))
        elif type(value) is str and (match := _RANGE.fullmatch(value)):
            lengths.append(
                len(_inclusive_range(match, file, str(raw.get("name")), f"foreach.{param}"))
            )
    if raw.get("mode") == "zip":
        return max(lengths, default=1)
    return math.prod(lengths)


# -- families of instances ----------------------------------------------------------------------


@dataclass(slots=True)
class Family:
    """Every instance made from one name template (possibly by several swept tasks)."""

    template: Template
    #: (string parameters, instance name) in declaration order
    instances: list[tuple[dict[str, str], str]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    _slices: dict[tuple[str, ...], dict[tuple[str, ...], list[str]]] = field(default_factory=dict)

    def matching(self, bound: tuple[str, ...], params: Mapping[str, str]) -> list[str]:
        """The instances whose parameters in ``bound`` equal ``params``."""
        if not bound:
            return [name for _, name in self.instances]
        index = self._slices.get(bound)
        if index is None:
            index = self._slices[bound] = {}
            for point, name in self.instances:
                index.setdefault(tuple(point[p] for p in bound), []).append(name)
        return index.get(tuple(params[p] for p in bound), [])


@dataclass(slots=True)
class _Swept:
    raw: dict[str, Any]
    params: tuple[str, ...]
    points: list[Any]
    strs: list[dict[str, str]]
    names: list[str]


def has_sweeps(tasks: Sequence[Any]) -> bool:
    """Whether a task is swept, in one C-level pass over the tasks (a million cost little)."""
    try:
        return any(map(dict.__contains__, tasks, itertools.repeat("foreach")))
    except TypeError:  # an entry that is not a mapping: the loader reports it
        return any(type(t) is dict and "foreach" in t for t in tasks)


def expand(tasks: Sequence[Any], file: str) -> list[Any]:
    """The raw task list with every swept task replaced by its instances, family needs resolved."""
    swept: dict[int, _Swept] = {}
    families: dict[str, Family] = {}
    for i, raw in enumerate(tasks):
        if type(raw) is dict and "foreach" in raw:
            swept[i] = _collect(raw, file, families)
    literal = {
        t.get("name")
        for t in tasks
        if type(t) is dict and "foreach" not in t and type(t.get("name")) is str
    }
    resolver = _Resolver(families, literal, file)
    out: list[Any] = []
    for i, raw in enumerate(tasks):
        if i in swept:
            out.extend(_instances(swept[i], resolver, file))
        elif type(raw) is dict and _templated_needs(raw):
            needs = resolver.plan(raw["needs"], str(raw.get("name")), ())({})
            out.append({**raw, "needs": needs})
        else:
            out.append(raw)
    return out


def _collect(raw: dict[str, Any], file: str, families: dict[str, Family]) -> _Swept:
    name = raw.get("name")
    if type(name) is not str or not name:
        fail(f"expected a string, got {describe(name)}", file, None, "name")
    params, points = sweep_points(raw, file, name)
    template = _checked(name, params, file, name, "name")
    strs = [dict(zip(params, map(str, point), strict=True)) for point in points]
    names = [template.render(s) for s in strs]
    family = families.get(name)
    if family is None:
        family = families[name] = Family(template)
    before = len(family.names)
    family.names.update(names)
    if len(family.names) != before + len(names):
        _duplicate(names, family, params, file, name)
    family.instances.extend(zip(strs, names, strict=True))
    base = {k: v for k, v in raw.items() if k != "foreach" and k != "mode"}
    return _Swept(base, params, points, strs, names)


def _duplicate(
    names: list[str], family: Family, params: Sequence[str], file: str, task: str
) -> None:
    seen = {n for _, n in family.instances}
    twice = ""
    for twice in names:
        if twice in seen:
            break
        seen.add(twice)
    example = "_".join(["name", *("{" + p + "}" for p in params)])
    hint = f"put every parameter in the name, e.g. {example}"
    fail(f"the sweep makes more than one task named '{twice}'", file, task, "name", hint)


def _checked(text: str, params: Sequence[str], file: str, task: str, where: str) -> Template:
    template = compile_template(text)
    unknown = template.names.difference(params)
    if unknown:
        name = sorted(unknown)[0]
        hint = f"parameters are {', '.join(params)}; write {{{{{name}}}}} for literal braces"
        fail(f"placeholder {{{name}}} names no parameter of this task", file, task, where, hint)
    return template


def _templated_needs(raw: dict[str, Any]) -> bool:
    needs = raw.get("needs")
    if type(needs) is list:
        return any(type(n) is str and "{" in n for n in needs)
    return type(needs) is str and "{" in needs


Render = Callable[[Mapping[str, str]], Any]


class _Resolver:
    """Plans the needs of a task once, then renders them for each of its instances."""

    def __init__(self, families: dict[str, Family], literal: set[Any], file: str) -> None:
        self.families, self.literal, self.file = families, literal, file

    def plan(self, needs: Any, task: str, params: Sequence[str]) -> Render:
        """A function from an instance's parameters to its list of needs."""
        needs = [needs] if type(needs) is str else needs
        if type(needs) is not list:
            return lambda strs: needs  # the task parser reports the type
        steps = [self._step(need, task, params) for need in needs]
        if all(isinstance(step, list) for step in steps):
            constant = [name for step in steps if isinstance(step, list) for name in step]
            return lambda strs: constant

        def render(strs: Mapping[str, str]) -> list[Any]:
            out: list[Any] = []
            for step in steps:
                out.extend(step if isinstance(step, list) else step(strs))
            return out

        return render

    def _step(self, need: Any, task: str, params: Sequence[str]) -> list[Any] | Render:
        if type(need) is not str:
            return [need]
        family = self.families.get(need)
        if family is not None:
            return self._family(family, need, task, params)
        if not params:
            if need not in self.literal and compile_template(need).names:
                hint = did_you_mean(need, self.families) or "no swept task has this name template"
                fail(f"'{need}' names no task and no sweep", self.file, task, "needs", hint)
            return [need]
        template = _checked(need, params, self.file, task, "needs")
        if template.constant is not None:
            return [template.constant]
        return lambda strs: [template.fmt.format_map(strs)]

    def _family(
        self, family: Family, need: str, task: str, params: Sequence[str]
    ) -> list[Any] | Render:
        bound = tuple(sorted(family.template.names.intersection(params)))
        if not bound:
            return family.matching((), {})  # gather: every instance
        file = self.file

        def missing(strs: Mapping[str, str]) -> NoReturn:
            point = ", ".join(f"{p}={strs[p]}" for p in bound)
            instance = ", ".join(f"{p}={v}" for p, v in strs.items())
            problem = (
                f"the instance {instance} needs '{need}' with {point}, but that sweep has none"
            )
            fail(problem, file, task, "needs", "check the ranges of both sweeps")

        if len(bound) == len(family.template.names):  # stream-aligned: exactly one instance
            fmt, names = family.template.fmt, family.names

            def aligned(strs: Mapping[str, str]) -> list[str]:
                name = fmt.format_map(strs)
                return [name] if name in names else missing(strs)

            return aligned
        return lambda strs: family.matching(bound, strs) or missing(strs)


# -- instances ----------------------------------------------------------------------------------


def _instances(sw: _Swept, resolver: _Resolver, file: str) -> Iterator[dict[str, Any]]:
    params, task = sw.params, sw.raw["name"]
    base, renders = _template_fields(sw.raw, params, file, task)
    if "needs" in base:
        renders.append(("needs", resolver.plan(base["needs"], task, params)))
    labels = base.get("labels", [])
    meta = base.get("meta", {})
    frozen = freeze(meta) if type(meta) is dict else None  # else the task parser reports it
    for point, strs, name in zip(sw.points, sw.strs, sw.names, strict=True):
        inst = dict(base)
        inst["name"] = name
        for key, render in renders:
            inst[key] = render(strs)
        if type(labels) is list:
            inst["labels"] = [*inst.get("labels", labels), *[p + "=" + strs[p] for p in params]]
        if frozen is not None:
            inst["meta"] = FrozenDict(
                {**frozen, "params": FrozenDict(zip(params, point, strict=True))}
            )
        yield inst


def _template_fields(
    raw: Mapping[str, Any], params: Sequence[str], file: str, task: str
) -> tuple[dict[str, Any], list[tuple[str, Render]]]:
    """The task with constant fields unescaped, and (field, render) for the templated ones."""
    base = dict(raw)
    renders: list[tuple[str, Render]] = []
    for key in (*SCALAR_FIELDS, *LIST_FIELDS, "cmd", "outputs", "env"):
        value = raw.get(key)
        if value is None:
            continue
        if type(value) is str and key in _LISTS:
            value = [value]  # a single string is a list of one
        render = _renderer(value, params, file, task, key)
        if type(render) is _Constant:
            base[key] = render.value
        else:
            renders.append((key, render))
    return base, renders


@dataclass(frozen=True, slots=True)
class _Constant:
    value: Any


def _renderer(value: Any, params: Sequence[str], file: str, task: str, key: str) -> Any:
    """A :class:`_Constant` when ``value`` uses no parameter, else a render function."""
    kind = type(value)
    if kind is str:
        template = _checked(value, params, file, task, key)
        if template.constant is not None:
            return _Constant(template.constant)
        return template.fmt.format_map
    if kind is list:
        parts = [_renderer(item, params, file, task, key) for item in value]
        if all(type(p) is _Constant for p in parts):
            return _Constant([p.value for p in parts])
        return lambda strs: [p.value if type(p) is _Constant else p(strs) for p in parts]
    if kind is dict and key == "outputs":
        return _path_renderer(value, params, file, task)
    if kind is dict and key == "env":
        return _env_renderer(value, params, file, task)
    return _Constant(value)  # a wrong type: the task parser reports it


def _path_renderer(item: dict[str, Any], params: Sequence[str], file: str, task: str) -> Any:
    path = item.get("path")
    if type(path) is not str:
        return _Constant(item)
    render = _renderer(path, params, file, task, "outputs")
    if type(render) is _Constant:
        return _Constant({**item, "path": render.value})
    return lambda strs: {**item, "path": render(strs)}


def _env_renderer(value: dict[str, Any], params: Sequence[str], file: str, task: str) -> Any:
    parts = {k: _renderer(v, params, file, task, f"env.{k}") for k, v in value.items()}
    if all(type(p) is _Constant for p in parts.values()):
        return _Constant({k: p.value for k, p in parts.items()})
    return lambda strs: {k: p.value if type(p) is _Constant else p(strs) for k, p in parts.items()}
