"""The SQL of the stores, read once from the ``.sql`` files of each dialect: SQLite's in
``herd/store/sql/``, PostgreSQL's in ``herd/store/sql/postgres/``. Each folder holds

``schema.sql``          the schema a new database is created with (the truth)
``queries.sql``         named queries: a line ``-- name --`` starts each one; parameters are
                        named (``:workflow_id``) for reading, and bound by position for speed
                        (see :class:`Query`)
``migrations/``         ``NNNN_description.sql``, applied in order to bring an older database to
                        ``schema.sql``; the database records the number of the last one applied
                        (SQLite: ``PRAGMA user_version``; PostgreSQL: table ``herd_schema``)

The module holds no connection: it only reads and parses text (procrastinate's ``sql/queries.sql``
is the model).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Literal

_QUERY_NAME = re.compile(r"^-- ([a-z][a-z0-9_]*) --$", re.MULTILINE)
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
#: a string literal, a quoted name or a comment (kept as they are), or a named parameter
_TOKEN = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|(?<![:\w]):([A-Za-z_]\w*)""")
#: the same, or a ``%`` outside them (psycopg reads every ``%`` as a placeholder's start)
_TOKEN_OR_PERCENT = re.compile(_TOKEN.pattern + "|%")


#: how a dialect's driver takes positional parameters: SQLite's ``?1`` (a parameter used twice is
#: bound once) or psycopg's ``%s`` (one value per use, and a literal ``%`` doubled)
Style = Literal["numbered", "format"]


@dataclass(frozen=True, slots=True)
class Query:
    """A named query, its ``:name`` parameters turned into positional ones (see :data:`Style`).

    Drivers bind a tuple faster than they look names up in a dict (a million-row ``executemany``
    is a second quicker in SQLite), so :attr:`sql` takes the values of :attr:`params` in that
    order: build the tuple with :meth:`args`, or directly where speed matters.
    """

    name: str
    sql: str
    params: tuple[str, ...]
    #: the attributes of :attr:`params` of an object, as a tuple (:meth:`args_of`)
    _getter: Callable[[object], tuple[Any, ...]] = field(init=False, repr=False, compare=False)

    #: where each parameter goes in :attr:`params` (twice when the query uses it twice)
    _positions: dict[str, tuple[int, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_getter", _tuple_getter(self.params))
        positions: dict[str, tuple[int, ...]] = {}
        for index, param in enumerate(self.params):
            positions[param] = (*positions.get(param, ()), index)
        object.__setattr__(self, "_positions", positions)

    @classmethod
    def parse(cls, name: str, text: str, style: Style = "numbered") -> Query:
        params: list[str] = []

        def numbered(match: re.Match[str]) -> str:
            param = match[1]
            if param is None:
                return match[0]
            if param not in params:
                params.append(param)
            return f"?{params.index(param) + 1}"

        def formatted(match: re.Match[str]) -> str:
            param = match[1]
            if param is None:
                return match[0].replace("%", "%%")
            params.append(param)
            return "%s"

        if style == "numbered":
            return cls(name, _TOKEN.sub(numbered, text), tuple(params))
        return cls(name, _TOKEN_OR_PERCENT.sub(formatted, text), tuple(params))

    def args(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values of :attr:`params`, in order, from ``values`` (extra keys are ignored)."""
        return tuple(values[param] for param in self.params)

    def args_of(self, obj: object, **override: Any) -> tuple[Any, ...]:
        """The values of :attr:`params` from the attributes of ``obj`` (which has them all), some
        replaced by ``override``."""
        values = self._getter(obj)
        if not override:
            return values
        replaced = list(values)
        positions = self._positions
        for param, value in override.items():
            for index in positions.get(param, ()):
                replaced[index] = value
        return tuple(replaced)


def _tuple_getter(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    """``operator.attrgetter(*names)``, always returning a tuple (one name gives the value alone)."""
    if len(names) != 1:
        return operator.attrgetter(*names) if names else _no_values
    one = operator.attrgetter(names[0])
    return lambda obj: (one(obj),)


def _no_values(obj: object) -> tuple[Any, ...]:
    return ()


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered step of the schema: applying it sets the database's version to ``version``."""

    version: int
    name: str
    sql: str


def sql_dir() -> Traversable:
    """The folder of the store's ``.sql`` files, inside the installed package."""
    return resources.files("herd.store") / "sql"


def parse_queries(
    text: str, *, source: str = "queries.sql", style: Style = "numbered"
) -> dict[str, Query]:
    """Split ``text`` into ``{name: query}`` at each ``-- name --`` line."""
    parts = _QUERY_NAME.split(text)
    queries: dict[str, Query] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{source}: query '{name}' is defined twice; rename one")
        queries[name] = Query.parse(name, body.strip(), style)
    return queries


def parse_migrations(files: dict[str, str]) -> tuple[Migration, ...]:
    """Order ``{file name: sql}`` into migrations numbered 1, 2, ... with no gap."""
    migrations = []
    for file_name, sql in files.items():
        match = _MIGRATION_NAME.match(file_name)
        if match is None:
            raise ValueError(f"migrations/{file_name}: name it NNNN_description.sql")
        migrations.append(Migration(int(match[1]), match[2], sql))
    migrations.sort(key=lambda m: m.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(
                f"migrations: expected number {expected:04d}, found {migration.version:04d}"
                f"_{migration.name}.sql; number migrations 0001, 0002, ... without gaps"
            )
    return tuple(migrations)


def _read_migrations(folder: Traversable) -> tuple[Migration, ...]:
    files = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    }
    return parse_migrations(files)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL of one kind of database: its schema, named queries and migrations."""

    name: str
    schema: str
    queries: Mapping[str, Query]
    migrations: tuple[Migration, ...]

    @property
    def version(self) -> int:
        """The schema version a database has once every migration is applied."""
        return self.migrations[-1].version


def _read_dialect(name: str, folder: Traversable, style: Style) -> Dialect:
    return Dialect(
        name,
        (folder / "schema.sql").read_text(encoding="utf-8"),
        parse_queries((folder / "queries.sql").read_text(encoding="utf-8"), style=style),
        _read_migrations(folder / "migrations"),
    )


SQLITE = _read_dialect("sqlite", sql_dir(), "numbered")
POSTGRES = _read_dialect("postgres", sql_dir() / "postgres", "format")
SCHEMA: str = SQLITE.schema
QUERIES: Mapping[str, Query] = SQLITE.queries
MIGRATIONS: tuple[Migration, ...] = SQLITE.migrations
#: the schema version an SQLite database has once every migration is applied
SCHEMA_VERSION: int = SQLITE.version
