-- The schema of herd's SQLite store (.herd/herd.db). This file is the truth: a new database is
-- created from it, and migrations/NNNN_*.sql must bring any older database to exactly this schema
-- (tests/unit/test_migrations.py checks it). PRAGMA user_version holds the number of the last
-- migration applied.
--
-- The database is meant to be queried by people, e.g.
--     sqlite3 .herd/herd.db "SELECT state, count(*) FROM tasks WHERE is_current GROUP BY state"
-- Conventions: times are epoch seconds (REAL); sizes are bytes; states are the lower-case names of
-- herd.model.TaskState (waiting, ready, running, retrying, succeeded, failed, cancelled, skipped);
-- JSON columns hold text: a file-stamp map is {"path": [size, mtime_ns, "digest or empty"]}.

-- One row per workflow, found by name: adding a workflow of the same name again updates it.
CREATE TABLE workflows (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    source      TEXT,                   -- the spec file it was last added from; NULL when built in Python
    format      TEXT NOT NULL,          -- native, o2dpg, pegasus, wfformat, dampe or api
    created     REAL NOT NULL,          -- first added
    updated     REAL NOT NULL,          -- last added
    task_count  INTEGER NOT NULL,       -- tasks in the workflow as last added (rows of tasks with is_current = 1)
    tasks_digest TEXT NOT NULL DEFAULT ''  -- of the task descriptions as last added: equal, nothing to upsert
) STRICT;

-- The last known state of every task a workflow ever had. Tasks that left the workflow keep their
-- row (and history) with is_current = 0.
CREATE TABLE tasks (
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    is_current   INTEGER NOT NULL DEFAULT 1,    -- 1 when the task is in the workflow as last added
    state        TEXT NOT NULL,                 -- a TaskState value
    attempts     INTEGER NOT NULL DEFAULT 0,    -- attempts so far, over all runs
    reason       TEXT NOT NULL DEFAULT '',      -- why the last attempt ended so ('exit 1', 'killed: ...')
    exit_code    INTEGER,                       -- of the last attempt; NULL if none or killed by a signal
    updated      REAL NOT NULL,                 -- when the state last changed
    -- what the last *successful* attempt ran from ('' / {} when it never succeeded):
    fingerprint  TEXT NOT NULL DEFAULT '',
    cmd_digest   TEXT NOT NULL DEFAULT '',
    env_digest   TEXT NOT NULL DEFAULT '',
    inputs       TEXT NOT NULL DEFAULT '{}',    -- JSON file-stamp map of its inputs
    -- what the task is, as last added (for status and reports without the spec):
    cmd          TEXT NOT NULL,                 -- one shell line
    labels       TEXT NOT NULL DEFAULT '[]',    -- JSON array of strings
    resources    TEXT NOT NULL DEFAULT '{}',    -- JSON object {"cpu": 1.0, "mem": 2000.0, ...}
    timeframe    INTEGER,                       -- instance group (O2DPG timeframe, ...); NULL if none
    -- cancelled: the task whose final failure cancelled it (reason says it in words); NULL
    -- otherwise, and for tasks cancelled before schema 5 (reports/analyze.py, legacy_cancel_cause)
    cancelled_by TEXT,
    UNIQUE (workflow_id, name)
) STRICT;

-- One row per `herd run` (or other activation) of a workflow.
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    started      REAL NOT NULL,
    ended        REAL,                          -- NULL while running
    status       TEXT NOT NULL,                 -- running, succeeded, failed or interrupted
    host         TEXT NOT NULL,
    username     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    argv         TEXT NOT NULL DEFAULT '[]',    -- JSON array: the command line
    limits       TEXT NOT NULL DEFAULT '{}'     -- JSON object: resource limits of the run
) STRICT;

CREATE INDEX runs_by_workflow ON runs (workflow_id);

-- One row per execution of a task: the provenance record.
CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    workflow_id  INTEGER NOT NULL,
    task         TEXT NOT NULL,
    number       INTEGER NOT NULL,              -- 1, 2, ... over all runs of the task
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,                 -- running until it ends, then a finished TaskState
    reason       TEXT NOT NULL,                 -- why it ran ('new', 'command changed', ...)
    started      REAL NOT NULL,
    ended        REAL,                          -- NULL while running
    exit_code    INTEGER,
    signal       INTEGER,                       -- the signal that ended it, if any
    kill_reason  TEXT NOT NULL DEFAULT '',      -- why herd killed it ('timeout 60 s', 'interrupted: herd stopped')
    host         TEXT NOT NULL,
    username     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    cwd          TEXT NOT NULL DEFAULT '',
    cmd          TEXT NOT NULL,                 -- as executed
    env_digest   TEXT NOT NULL DEFAULT '',
    fingerprint  TEXT NOT NULL DEFAULT '',
    utime        REAL,                          -- seconds of user CPU (rusage, with children)
    stime        REAL,                          -- seconds of system CPU
    max_rss      INTEGER,                       -- bytes (rusage)
    peak_mem     INTEGER,                       -- bytes, whole process tree, from sampling
    mean_cpu     REAL,                          -- cores, whole process tree, from sampling
    stdout_path  TEXT NOT NULL DEFAULT '',
    stderr_path  TEXT NOT NULL DEFAULT '',
    inputs       TEXT NOT NULL DEFAULT '{}',    -- JSON file-stamp map
    outputs      TEXT NOT NULL DEFAULT '{}',    -- JSON file-stamp map
    resources    TEXT NOT NULL DEFAULT '{}',    -- JSON object: what it was given
    kill_kind    TEXT,                          -- a core.model.Kill value when ended from outside
                                                -- (NULL: ended by itself, or before migration 4)
    UNIQUE (workflow_id, task, number),
    FOREIGN KEY (workflow_id, task) REFERENCES tasks (workflow_id, name) ON DELETE CASCADE
) STRICT;

CREATE INDEX attempts_by_start ON attempts (workflow_id, started);
CREATE INDEX attempts_by_run ON attempts (run_id);
-- attempts still marked running: what begin_run closes after herd was killed
CREATE INDEX attempts_running ON attempts (workflow_id) WHERE state = 'running';

-- Monitoring time series of an attempt's whole process tree.
CREATE TABLE samples (
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    time        REAL NOT NULL,
    rss         INTEGER NOT NULL,               -- bytes
    cpu         REAL NOT NULL,                  -- cores in use since the previous sample
    processes   INTEGER NOT NULL
) STRICT;

CREATE INDEX samples_by_attempt ON samples (attempt_id, time);

-- Key/value results recorded by tasks (torc's user data), in recording order (rowid).
CREATE TABLE user_data (
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL                   -- JSON
) STRICT;

CREATE INDEX user_data_by_attempt ON user_data (attempt_id);

-- Timestamped structured events recorded by tasks (torc's events).
CREATE TABLE user_events (
    attempt_id  INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    time        REAL NOT NULL,
    data        TEXT NOT NULL                   -- JSON object
) STRICT;

CREATE INDEX user_events_by_attempt ON user_events (attempt_id, time);

-- The queue of a submitted workflow (`herd submit`): one row per task to run, claimed by workers
-- (`herd worker`). The task's state is mirrored in tasks.state in the same transactions.
CREATE TABLE queue (
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,  -- the submission
    state        TEXT NOT NULL,                 -- waiting, ready, running, succeeded, failed, cancelled
    seq          INTEGER NOT NULL,              -- claim order: lower first (priority, critical path)
    unmet        INTEGER NOT NULL,              -- needs not yet succeeded; 0 when ready
    not_before   REAL NOT NULL DEFAULT 0,       -- a retry is claimable from then (back-off)
    tries        INTEGER NOT NULL DEFAULT 0,    -- attempts of this submission (lost ones count)
    recoveries   INTEGER NOT NULL DEFAULT 0,    -- of which followed a watchdog kill
    number       INTEGER NOT NULL DEFAULT 0,    -- the attempt number of the last claim
    worker_id    INTEGER,                       -- the worker holding the lease, while running
    lease_until  REAL,                          -- the lease expires then unless renewed
    resources    TEXT NOT NULL,                 -- JSON object: the demand now (a recovery raises it)
    timeout      REAL,                          -- seconds, now (a recovery raises it)
    duration     REAL,                          -- expected seconds, when known
    children     TEXT NOT NULL DEFAULT '[]',    -- JSON array: queued tasks that need this one
    spec         TEXT NOT NULL,                 -- JSON: everything a worker needs to run it
    PRIMARY KEY (workflow_id, task)
) STRICT;

CREATE INDEX queue_ready ON queue (seq) WHERE state = 'ready';
CREATE INDEX queue_held ON queue (worker_id) WHERE state = 'running';
CREATE INDEX queue_leases ON queue (lease_until) WHERE state = 'running';
CREATE INDEX queue_open ON queue (run_id) WHERE state IN ('waiting', 'ready', 'running');

-- Named limits that hold across every worker of a workflow (tape_drive: 2; semaphore:NAME is 1).
CREATE TABLE pools (
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    capacity     REAL NOT NULL,
    used         REAL NOT NULL DEFAULT 0,       -- held by running queued tasks
    PRIMARY KEY (workflow_id, name)
) STRICT;

-- Workers that ever claimed from this store.
CREATE TABLE workers (
    id           INTEGER PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    username     TEXT NOT NULL,
    started      REAL NOT NULL,
    heartbeat    REAL NOT NULL,                 -- last renewal of its leases
    state        TEXT NOT NULL,                 -- active, draining, stopped or lost
    resources    TEXT NOT NULL DEFAULT '{}',    -- JSON object: what it offers
    lease        REAL NOT NULL,                 -- seconds its leases last; lost when silent longer
    token_id     INTEGER REFERENCES tokens (id) -- the token that registered it over HTTP, which
                                                -- alone (or an admin token) drives it; NULL: none
) STRICT;

-- The end of the output of failed attempts run by workers, so reports work from any host.
CREATE TABLE failure_logs (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    tail         TEXT NOT NULL
) STRICT;

-- A finish refused because its lease had been taken back (reaped or released) before it came:
-- the worker's word, kept for reports; the task's state is never changed by it.
CREATE TABLE stale_reports (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    worker_id    INTEGER NOT NULL,
    reported     REAL NOT NULL,                 -- when the refused report came (store's clock)
    state        TEXT NOT NULL,                 -- what the worker said: succeeded, failed, ready
    exit_code    INTEGER
) STRICT;

-- The whole output of attempts whose worker ships logs (herd worker --ship-logs: no shared disk).
CREATE TABLE shipped_logs (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    stdout       TEXT NOT NULL,
    stderr       TEXT NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0     -- 1: only the last bytes of a long output
) STRICT;

-- Campaigns (`herd campaign`): a template workflow instantiated per data run as runs arrive. Its
-- task instances live in the campaign's workflow (tasks, queue), named reco[run=123] or
-- calib[fill=8000]; the status of a run's task is derived from those tasks' states.
CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    workflow_id  INTEGER NOT NULL UNIQUE REFERENCES workflows (id) ON DELETE CASCADE,
    template     TEXT NOT NULL,                 -- JSON: the template (herd.core.templates)
    source       TEXT,                          -- the template file it was created from
    workdir      TEXT NOT NULL,                 -- absolute: where its tasks run
    created      REAL NOT NULL,
    closed       REAL                           -- when `herd campaign close` ended it; NULL: open
) STRICT;

-- The data runs of a campaign, as injected.
CREATE TABLE campaign_runs (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    run          INTEGER NOT NULL,
    fields       TEXT NOT NULL,                 -- JSON object: the run's fields but `run`
    added        REAL NOT NULL,
    PRIMARY KEY (campaign_id, run)
) STRICT;

-- The closed groups of a campaign's grouped tasks (group_by): their instances are queued.
CREATE TABLE campaign_groups (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,                 -- the grouped task of the template
    value        TEXT NOT NULL,                 -- JSON: the value of its group_by field
    runs         TEXT NOT NULL,                 -- JSON array: its runs, ascending; the first carries
    closed       REAL NOT NULL,
    PRIMARY KEY (campaign_id, task, value)
) STRICT;

-- Bearer tokens of `herd serve` (`herd token create`): only the SHA-256 digest of each secret
-- is kept.
CREATE TABLE tokens (
    id        INTEGER PRIMARY KEY,
    digest    TEXT NOT NULL,                    -- hex SHA-256 of the secret
    scope     TEXT NOT NULL,                    -- read, submit, worker or admin
    workflow  TEXT,                             -- the one workflow it acts on; NULL: every one
    note      TEXT NOT NULL DEFAULT '',         -- what it is for (herd token create --note)
    created   REAL NOT NULL,
    expires   REAL,                             -- NULL: never
    revoked   REAL                              -- when it was revoked; NULL: still valid
) STRICT;
