"""Coercion helpers shared by the spec loaders.

Every helper takes the raw value (as JSON, YAML or XML gave it) plus where it came from — the file,
the task (or ``None`` for workflow-level fields) and the field — and either returns the typed value
or raises :class:`~herd.errors.SpecError` naming all three and what to write instead.

Rules common to every format:

- numbers may be written as strings (``"2"``, ``" 1.5 "``) and are coerced; booleans are never
  numbers; NaN and infinities are refused;
- environment values may be strings, integers or floats (made strings); booleans and nulls are
  refused, because ``yes``/``true``/``True`` would reach the shell in an unpredictable spelling;
- resource names are identifiers, amounts are finite and not negative.

:func:`cached_mapping` and :func:`cached_names` share identical resource, env and label values
between tasks, so that a million tasks asking for ``{cpu: 1, mem: 100}`` hold one mapping, and
parse each distinct value once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn, TypeVar

from herd.core.model import EMPTY, FrozenDict
from herd.errors import SpecError

T = TypeVar("T")

_KINDS: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    tuple: "a list",
    dict: "a mapping",
    type(None): "nothing (null)",
}


def describe(value: object) -> str:
    """How a value reads in a message: ``a string ('x')``, ``a list``, ``nothing (null)``."""
    kind = _KINDS.get(type(value), type(value).__name__)
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = repr(value)
        return f"{kind} ({text[:40]}{'...' if len(text) > 40 else ''})"
    return kind


def fail(
    problem: str, file: str | None, task: str | None, field: str | None, hint: str | None = None
) -> NoReturn:
    """Raise the :class:`SpecError` every loader raises."""
    raise SpecError(problem, file=file, task=task, field=field, hint=hint)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'retries'?`` when ``word`` is a likely typo of one of ``choices``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def check_keys(
    raw: Mapping[str, Any],
    allowed: frozenset[str],
    file: str | None,
    task: str | None,
    prefix: str = "",
) -> None:
    """Refuse keys outside ``allowed``, suggesting the closest known one."""
    if raw.keys() <= allowed:
        return
    unknown = sorted(str(k) for k in raw.keys() - allowed)[0]
    hint = did_you_mean(unknown, allowed) or "known fields: " + ", ".join(sorted(allowed))
    fail("unknown field", file, task, prefix + unknown, hint)


def as_str(value: Any, file: str | None, task: str | None, field: str) -> str:
    """A non-empty string."""
    if type(value) is str and value:
        return value
    if value == "":
        fail("must not be empty", file, task, field)
    fail(f"expected a string, got {describe(value)}", file, task, field, _quote_hint(value))


def _quote_hint(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        key = next(iter(value))
        return f"in YAML, quote placeholders: '{{{key}}}'"
    if isinstance(value, bool | int | float):
        return "quote it to make it a string"
    return None


def as_float(
    value: Any, file: str | None, task: str | None, field: str, minimum: float | None = 0.0
) -> float:
    """A finite float (from a number or a numeric string), at least ``minimum`` when given."""
    kind = type(value)
    if kind is int or kind is float:
        number = float(value)
    elif kind is str:
        try:
            number = float(value.strip())
        except ValueError:
            fail(f"expected a number, got {describe(value)}", file, task, field)
    else:
        fail(f"expected a number, got {describe(value)}", file, task, field, _quote_hint(value))
    if not math.isfinite(number):
        fail(f"expected a finite number, got {describe(value)}", file, task, field)
    if minimum is not None and number < minimum:
        fail(f"must be at least {minimum:g}, got {value!r}", file, task, field)
    return number


def as_int(
    value: Any, file: str | None, task: str | None, field: str, minimum: int | None = 0
) -> int:
    """An integer (from an int, an integral float or a numeric string), at least ``minimum``."""
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and value.isdigit():
        number = int(value)
    else:
        real = as_float(value, file, task, field, None)
        if not real.is_integer():
            fail(f"expected a whole number, got {value!r}", file, task, field)
        number = int(real)
    if minimum is not None and number < minimum:
        fail(f"must be at least {minimum}, got {value!r}", file, task, field)
    return number


def as_names(value: Any, file: str | None, task: str | None, field: str) -> tuple[str, ...]:
    """A list of non-empty strings (a single string is a list of one)."""
    if type(value) is list:
        items = tuple(value)
        for item in items:
            if type(item) is not str or not item:
                fail(f"expected a list of strings, found {describe(item)}", file, task, field)
        return items
    if type(value) is str and value:
        return (value,)
    fail(f"expected a list of strings, got {describe(value)}", file, task, field)


def env_value(value: Any, file: str | None, task: str | None, field: str) -> str:
    """An environment value: strings stay, integers and floats become strings."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is int or kind is float:
        return str(value)
    hint = "quote it: 'true'" if kind is bool else "write a string, a number or remove it"
    fail(f"expected a string or number, got {describe(value)}", file, task, field, hint)


def as_env(value: Any, file: str | None, task: str | None, field: str) -> Mapping[str, str]:
    """A mapping of variable name to value (values coerced by :func:`env_value`)."""
    if type(value) is not dict:
        fail(f"expected a mapping of variables, got {describe(value)}", file, task, field)
    env: dict[str, str] = {}
    for key, item in value.items():
        if type(key) is not str or not key or "=" in key or "\0" in key:
            fail(f"invalid variable name {key!r}", file, task, field)
        env[key] = env_value(item, file, task, f"{field}.{key}")
    return FrozenDict(env) if env else EMPTY


def as_amounts(value: Any, file: str | None, task: str | None, field: str) -> Mapping[str, float]:
    """A mapping of resource name (an identifier) to a non-negative amount."""
    if type(value) is not dict:
        fail(
            f"expected a mapping like {{cpu: 1, mem: 500}}, got {describe(value)}",
            file,
            task,
            field,
        )
    amounts: dict[str, float] = {}
    for key, item in value.items():
        if type(key) is not str or not key.isidentifier():
            hint = "resource names are identifiers: letters, digits and _"
            fail(f"invalid resource name {key!r}", file, task, field, hint)
        amounts[key] = as_float(item, file, task, f"{field}.{key}")
    return FrozenDict(amounts) if amounts else EMPTY


def freeze(value: Any) -> Any:
    """A read-only deep copy for task and workflow ``meta``: mappings frozen, lists as tuples."""
    kind = type(value)
    if kind is dict or kind is FrozenDict:
        return FrozenDict({str(k): freeze(v) for k, v in value.items()})
    if kind is list or kind is tuple:
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The inverse of :func:`freeze`: plain dicts and lists, ready for JSON or YAML."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


Parser = Callable[[Any, str, "str | None", str], T]


def cached_mapping(parse: Parser[T]) -> Parser[T]:
    """``parse`` for mappings, run once per distinct mapping; equal mappings share the result.

    A mapping holding a boolean never takes a cached result: ``True == 1`` in Python, so
    ``{cpu: true}`` would otherwise pass as the cached ``{cpu: 1}`` instead of being refused.
    """
    cache: dict[tuple[Any, ...], T] = {}

    def parse_cached(value: Any, file: str, task: str | None, field: str) -> T:
        if type(value) is not dict:
            return parse(value, file, task, field)
        key = tuple(value.items())
        try:
            result = cache[key]
        except KeyError:
            result = cache[key] = parse(value, file, task, field)
            return result
        except TypeError:  # unhashable values: the parser explains
            return parse(value, file, task, field)
        for item in value.values():  # a loop: faster than bool in map(type, ...) for a few items
            if type(item) is bool:
                return parse(value, file, task, field)
        return result

    return parse_cached


def cached_names() -> Parser[tuple[str, ...]]:
    """:func:`as_names` run once per distinct list; equal lists share one tuple (labels)."""
    cache: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def parse_cached(value: Any, file: str, task: str | None, field: str) -> tuple[str, ...]:
        if type(value) is not list:
            return as_names(value, file, task, field)
        key = tuple(value)
        try:
            return cache[key]
        except KeyError:
            result = cache[key] = as_names(value, file, task, field)
            return result
        except TypeError:
            return as_names(value, file, task, field)

    return parse_cached


def list_of_maps(
    raw: Any, source: str, where: str, task: str | None = None
) -> list[Mapping[str, Any]]:
    """``raw`` checked to be a list of mappings (None: an empty list)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        fail(f"expected a list, got {describe(raw)}", source, task, where)
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            fail(f"expected a mapping, got {describe(item)}", source, task, f"{where}[{i}]")
    return raw
