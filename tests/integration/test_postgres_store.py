"""What the PostgreSQL store does beyond the Store contract: schema and migrations, its queries,
errors at the boundary, reconnecting, a million tasks. On a real server (tests/pgserver.py)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import psycopg
import pytest

from herd.core.model import Task, TaskState, Workflow
from herd.errors import NoStateError, StoreError
from herd.reports.analyze import analyze, cancel_cause
from herd.store import open_store
from herd.store.base import AttemptFinished, Outcome, QueuedTask, TaskChanged
from herd.store.postgres import PostgresStore, migrate, redact
from herd.store.postgres_statements import MANY, MANY_CHANGES
from herd.store.queries import POSTGRES, SQLITE, Dialect, Query
from tests.integration.helpers import LEGACY_CANCELLED


@pytest.fixture
def conn(postgres_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        yield conn


Conn = psycopg.Connection[tuple[object, ...]]


def schema_of(conn: Conn) -> dict[str, object]:
    """Everything that makes up the schema in the connection's search_path, independent of how
    it was written: columns, constraints and indexes, by table."""
    columns = conn.execute(
        "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, column_name"
    ).fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    ).fetchall()
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY 1, 2"
    ).fetchall()
    options = conn.execute(
        "SELECT relname, reloptions FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND reloptions IS NOT NULL ORDER BY 1"
    ).fetchall()
    version = conn.execute("SELECT version FROM herd_schema").fetchall()
    return {
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "options": options,
        "version": version,
    }


def test_migrations_give_the_schema(conn: Conn) -> None:
    migrate(conn, "test")  # an empty schema gets schema.sql
    fresh = schema_of(conn)
    schema = _schema(conn)
    conn.execute(f"DROP SCHEMA {schema} CASCADE")
    conn.execute(f"CREATE SCHEMA {schema}")
    migrate(conn, "test", _only(POSTGRES, 1))  # the first release, then every later migration
    migrate(conn, "test")
    assert schema_of(conn) == fresh
    assert fresh["version"] == [(POSTGRES.version,)]


def _schema(conn: Conn) -> str:
    row = conn.execute("SHOW search_path").fetchone()
    assert row is not None
    return str(row[0])


def _only(dialect: Dialect, version: int) -> Dialect:
    """The dialect as a herd that knew migrations up to ``version`` had it (its schema.sql was
    then the sum of those migrations)."""
    migrations = dialect.migrations[:version]
    return Dialect(dialect.name, "\n".join(m.sql for m in migrations), {}, migrations)


def test_cancel_causes_of_a_store_from_before_the_column_are_read_from_the_reason(
    postgres_url: str, conn: Conn
) -> None:
    (column,) = [m.version for m in POSTGRES.migrations if m.name == "tasks_cancelled_by"]
    migrate(conn, "test", _only(POSTGRES, column - 1))
    row = conn.execute(
        "INSERT INTO workflows (name, format, created, updated, task_count)"
        " VALUES ('w', 'native', 1.0, 1.0, 4) RETURNING id"
    ).fetchone()
    assert row is not None
    wid = int(str(row[0]))
    for name, state, reason in LEGACY_CANCELLED:
        conn.execute(
            "INSERT INTO tasks (workflow_id, name, state, reason, updated, cmd)"
            " VALUES (%s, %s, %s, %s, 1.0, 'true')",
            (wid, name, state, reason),
        )
    store = PostgresStore(postgres_url)  # migrates: the column is NULL
    try:
        records = store.task_records(wid)
        assert {r.cancelled_by for r in records.values()} == {None}
        causes = {n: cancel_cause(r) for n, r in records.items()}
        assert causes == {"a": None, "b": "a", "c": "a", "d": None}
        (failure,) = analyze(store, wid).failures
        assert (failure.task, failure.cancelled_names) == ("a", ("b", "c"))
    finally:
        store.close()


def test_a_new_workflows_labels_and_resources_are_stored_as_json_values(
    postgres_url: str, conn: Conn
) -> None:
    """The binary COPY of a new workflow's tasks stores the JSON text as the array or object it
    spells, not as a JSON string (which SQL on the column, and every reader, would get wrong)."""
    task = Task("a", "true", labels=("qc", "tf1"), resources={"cpu": 2.0, "mem": 100.0})
    store = PostgresStore(postgres_url)
    try:
        wid = store.add_workflow(Workflow("w", (task,)))
        assert store.task_labels(wid) == {"a": ("qc", "tf1")}
    finally:
        store.close()
    row = conn.execute(
        "SELECT jsonb_typeof(labels), labels ? 'qc', jsonb_typeof(resources), resources->>'cpu'"
        " FROM tasks WHERE workflow_id = %s AND name = 'a'",
        (wid,),
    ).fetchone()
    assert row == ("array", True, "object", "2.0")


def test_labels_stored_as_json_strings_by_earlier_herds_are_repaired(
    postgres_url: str, conn: Conn
) -> None:
    (repair,) = [m.version for m in POSTGRES.migrations if m.name == "task_json_arrays"]
    migrate(conn, "test", _only(POSTGRES, repair - 1))
    row = conn.execute(
        "INSERT INTO workflows (name, format, created, updated, task_count)"
        " VALUES ('w', 'native', 1.0, 1.0, 2) RETURNING id"
    ).fetchone()
    assert row is not None
    wid = int(str(row[0]))
    for name, labels, resources in (
        ("old", '"[\\"qc\\"]"', '"{\\"cpu\\": 1.0}"'),  # what the binary COPY wrote
        ("new", '["qc"]', '{"cpu": 1.0}'),
    ):
        conn.execute(
            "INSERT INTO tasks (workflow_id, name, state, updated, cmd, labels, resources)"
            " VALUES (%s, %s, 'waiting', 1.0, 'true', %s::jsonb, %s::jsonb)",
            (wid, name, labels, resources),
        )
    PostgresStore(postgres_url).close()  # migrates
    rows = conn.execute(
        "SELECT name, labels::text, resources::text FROM tasks WHERE workflow_id = %s ORDER BY 1",
        (wid,),
    ).fetchall()
    assert rows == [("new", '["qc"]', '{"cpu": 1.0}'), ("old", '["qc"]', '{"cpu": 1.0}')]


def test_newer_schema_is_refused(postgres_url: str, conn: Conn) -> None:
    PostgresStore(postgres_url).close()
    conn.execute("UPDATE herd_schema SET version = version + 1")
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"newer herd .*upgrade herd"):
            PostgresStore(postgres_url, readonly=readonly)


def test_tables_not_from_herd_are_refused(postgres_url: str, conn: Conn) -> None:
    conn.execute("CREATE TABLE workflows (id int)")
    with pytest.raises(StoreError, match=r"not herd's .*search_path"):
        PostgresStore(postgres_url)


def test_read_only_store_needs_a_schema_and_writes_nothing(postgres_url: str) -> None:
    with pytest.raises(StoreError, match="no herd state yet"):
        PostgresStore(postgres_url, readonly=True)
    PostgresStore(postgres_url).close()
    store = PostgresStore(postgres_url, readonly=True)
    try:
        assert store.workflows() == []
        with pytest.raises(StoreError, match="read-only"):
            store.add_workflow(Workflow("w", (Task("a", "true"),)))
    finally:
        store.close()


def test_open_store_opens_a_url_as_postgresql(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert isinstance(store, PostgresStore)
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "advice"),
    [
        ("postgresql://postgres@127.0.0.1:1/x", "check the host and port"),
        ("postgresql://postgres@127.0.0.1:notaport/x", "write the URL as"),
        ("postgresql://no_such_role_here@127.0.0.1:5432/postgres", "user name"),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_here", "create the database"),
        ("postgresql://postgres@127.0.0.1:5432/postgres?bogus=1", "write the URL as"),
    ],
    ids=["unreachable", "bad port", "unknown role", "unknown database", "bad parameter"],
)
def test_connection_errors_say_what_to_do(url: str, advice: str) -> None:
    with pytest.raises(StoreError, match=advice) as caught:
        PostgresStore(url, connect_timeout=2)
    assert "\n" not in caught.value.message


def test_messages_hide_the_password() -> None:
    assert redact("postgresql://alice:s3cret@db:5432/herd") == "postgresql://alice:***@db:5432/herd"
    with pytest.raises(StoreError) as caught:
        PostgresStore("postgresql://alice:s3cret@127.0.0.1:1/herd", connect_timeout=1)
    assert "s3cret" not in caught.value.message


def test_a_lost_connection_is_reopened(postgres_url: str, conn: Conn) -> None:
    store = PostgresStore(postgres_url)
    try:
        wid = store.add_workflow(Workflow("w", (Task("a", "true"),)))
        # an administrator (or a server restart) ends the store's session
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'herd' AND pid <> pg_backend_pid() "
            "AND datname = current_database()"
        )
        store.write([TaskChanged(wid, "a", TaskState.FAILED, 1.0, reason="exit 1")])
        assert store.task_records(wid)["a"].state is TaskState.FAILED
    finally:
        store.close()


# --- the queries ------------------------------------------------------------------------------

#: the queue's statements for many rows at once (PostgreSQL's own)
_MANY = {*MANY.values(), *(many for _, many in MANY_CHANGES.values())}
#: queries of one dialect only: PostgreSQL stages a workflow's tasks in a temporary table
_OWN = {
    "postgres": {
        "copy_new_tasks",
        "create_task_staging",
        "copy_task_staging",
        "upsert_staged_tasks",
        "retire_unstaged_tasks",
        "plan_by_index",
        *_MANY,
    },
    "sqlite": {"count_tasks", "current_task_names", "retire_task", "upsert_task"},
}


def test_both_dialects_have_the_same_queries_and_parameters() -> None:
    pg = {n: q for n, q in POSTGRES.queries.items() if n not in _OWN["postgres"]}
    lite = {n: q for n, q in SQLITE.queries.items() if n not in _OWN["sqlite"]}
    assert pg.keys() == lite.keys()
    for name, query in pg.items():
        assert set(query.params) == set(lite[name].params), name


def test_a_statement_for_many_rows_reads_every_parameter_of_its_one_row_query() -> None:
    pairs = [*((one, many) for one, many in MANY.items()), *MANY_CHANGES.values()]
    assert {many for _, many in pairs} == _MANY
    for one, many in pairs:
        sql = POSTGRES.queries[many].sql
        columns = sql[sql.index("json_to_recordset") :]
        for param in POSTGRES.queries[one].params:
            assert re.search(rf'\b"?{param}"? [a-z]', columns), (many, param)


def test_format_style_binds_each_use_and_keeps_literal_percents() -> None:
    query = Query.parse("q", "SELECT :a, '5%', :b % 2, :a -- 100%", "format")
    assert query.sql == "SELECT %s, '5%%', %s %% 2, %s -- 100%%"
    assert query.params == ("a", "b", "a")
    assert query.args({"a": 1, "b": 2}) == (1, 2, 1)


def test_every_query_is_valid_against_the_schema(postgres_url: str, conn: Conn) -> None:
    PostgresStore(postgres_url).close()  # the schema
    conn.execute(POSTGRES.queries["create_task_staging"].sql)
    for name, query in POSTGRES.queries.items():
        if name in ("create_task_staging", "copy_task_staging", "copy_new_tasks"):
            continue
        numbered = _numbered(query.sql)
        result = conn.pgconn.prepare(name.encode(), numbered.encode())
        message = result.error_message.decode()
        assert result.status == psycopg.pq.ExecStatus.COMMAND_OK, f"{name}: {message}"


def _numbered(sql: str) -> str:
    """psycopg's ``%s`` placeholders as the server's ``$1, $2, ...``."""
    count = iter(range(1, 1000))
    return re.sub(r"%(s|%)", lambda m: f"${next(count)}" if m[1] == "s" else "%", sql)


def test_an_empty_database_is_not_given_a_schema_without_create(
    postgres_url: str, conn: Conn
) -> None:
    with pytest.raises(NoStateError, match="no herd state yet"):
        open_store(postgres_url, create=False)
    assert conn.execute("SELECT to_regclass('herd_schema')").fetchone() == (None,)
    PostgresStore(postgres_url).close()
    open_store(postgres_url, create=False).close()  # once made, it opens


def test_openers_at_once_see_no_schema_or_all_of_it(postgres_url: str) -> None:
    """Hosts starting together: every writer opens (one creates the schema, in one transaction
    under an advisory lock), and a reader meanwhile finds either no herd state or every table."""
    start = threading.Barrier(12)
    problems: list[str] = []
    seen: list[str] = []

    def write() -> None:
        start.wait()
        try:
            PostgresStore(postgres_url).close()
        except StoreError as exc:
            problems.append(f"writer: {exc}")

    def read() -> None:
        start.wait()
        for _ in range(40):
            try:
                store = PostgresStore(postgres_url, readonly=True)
            except NoStateError:
                seen.append("nothing")
                continue
            except StoreError as exc:
                problems.append(f"reader: {exc}")
                return
            try:
                store.workflows(), store.workers(), store.queue_counts()
                seen.append("all")
            except StoreError as exc:
                problems.append(f"reader: {exc}")
            finally:
                store.close()

    threads = [threading.Thread(target=write) for _ in range(8)]
    threads += [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert problems == []
    assert "all" in seen


def test_a_workers_turn_reads_no_table_whole(postgres_url: str, conn: Conn) -> None:
    """Claims and finishes find their rows through indexes, whatever the planner's statistics
    (a fresh queue has none for attempts and tasks): a turn's cost does not grow with the
    queue. Counted after enough turns that the server plans the statements once for all."""
    store = PostgresStore(postgres_url)
    try:
        wid = _submitted(store, "turns", 400)
        me = store.register_worker(host="h", pid=1, user="u", resources={}, now=1.0, lease=60)
        free = {"cpu": 8.0}
        claimed = store.claim(me, free, now=2.0, lease=60)

        def turns(count: int) -> None:
            nonlocal claimed
            for _ in range(count):
                outcomes = [
                    Outcome(
                        AttemptFinished(wid, c.task.name, c.number, 3.0, TaskState.SUCCEEDED),
                        pid=2,
                        started=2.5,
                        then=TaskState.SUCCEEDED,
                    )
                    for c in claimed
                ]
                _, claimed = store.finish_and_claim(me, outcomes, free, now=3.0, lease=60)

        turns(12)
        before = _table_scans(store, conn)
        worker_reads = _worker_reads(store, conn)
        turns(12)
        assert claimed, "the queue ran dry: count fewer turns"
        assert _table_scans(store, conn) == before
        assert _worker_reads(store, conn) == worker_reads  # who the worker is was read once
    finally:
        store.close()


def test_a_submission_leaves_the_planner_statistics_of_the_task_states(
    postgres_url: str, conn: Conn
) -> None:
    """After a submission the planner knows how many tasks a workflow has and in which states
    (a status poll counts them: without statistics it planned for a few rows and sorted them
    all, 2.5 ms instead of 1 ms for 5,000 tasks); the specs' columns are not sampled."""
    store = PostgresStore(postgres_url)
    try:
        _submitted(store, "w", 300)
    finally:
        store.close()
    sampled = conn.execute(
        "SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'tasks'"
    ).fetchall()
    assert {name for (name,) in sampled} == {"workflow_id", "is_current", "state"}
    (rows,) = conn.execute(
        "SELECT reltuples FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relname = 'tasks'"
    ).fetchone() or (None,)
    assert rows == 300


def test_task_rows_leave_room_for_updates_in_place(conn: Conn) -> None:
    """A claim and a finish each update a task's row, and its only index (the key) never
    changes: with room left on its page the new version can stay there (a HOT update, no index
    entry written; migration 0010). How many do depends on what other sessions keep visible, so
    the room is what is checked (bench/workers.py: 44 % of the updates HOT before, 76 % after)."""
    migrate(conn, "test")
    row = conn.execute(
        "SELECT reloptions FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
        "AND relname = 'tasks'"
    ).fetchone()
    assert row == (["fillfactor=70"],)


def _worker_reads(store: PostgresStore, conn: Conn) -> int:
    """How often table workers was read, once the store's server process reported it."""
    store._conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
        "WHERE schemaname = current_schema() AND relname = 'workers'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _submitted(store: PostgresStore, name: str, n: int) -> int:
    """The id of workflow ``name`` of ``n`` independent ``true`` tasks, submitted to the queue."""
    wid = store.add_workflow(Workflow(name, tuple(Task(f"t{i}", "true") for i in range(n))))
    tasks = [QueuedTask(f"t{i}", "true", "/tmp", {}, {"cpu": 1.0}, i) for i in range(n)]
    store.submit(wid, tasks, pools={}, now=1.0, host="h", user="u", pid=1, argv=[])
    return wid


def _table_scans(store: PostgresStore, conn: Conn) -> list[tuple[object, ...]]:
    """How often each of the queue's tables was read whole, once the store's server process
    reported its counts."""
    store._conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return conn.execute(
        "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = current_schema() "
        "AND relname IN ('queue', 'tasks', 'attempts', 'pools', 'runs') ORDER BY relname"
    ).fetchall()
