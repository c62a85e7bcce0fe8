-- The schema of herd's PostgreSQL store (`--store postgresql://...`). This file is the truth: an
-- empty database (or schema, see search_path in docs/operations.md) is created from it, and
-- migrations/NNNN_*.sql must bring any older one to exactly this schema
-- (tests/integration/test_postgres_store.py checks it). Table herd_schema holds the number of the
-- last migration applied.
--
-- The tables are those of the SQLite store (src/herd/store/sql/schema.sql, where every column is
-- described), in PostgreSQL's types: times are epoch seconds (double precision), sizes bytes
-- (bigint), states the lower-case names of herd.model.TaskState, and JSON columns jsonb, so that
-- people can query them:
--     SELECT state, count(*) FROM tasks WHERE is_current GROUP BY state;
--     SELECT task, outputs -> 'out.txt' FROM attempts WHERE state = 'succeeded';

CREATE TABLE herd_schema (
    version     integer NOT NULL            -- the number of the last migration applied
);

CREATE TABLE workflows (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    source       text,
    format       text NOT NULL,
    created      double precision NOT NULL,
    updated      double precision NOT NULL,
    task_count   bigint NOT NULL,
    tasks_digest text NOT NULL DEFAULT ''
);

CREATE TABLE tasks (
    workflow_id  bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name         text NOT NULL,
    is_current   boolean NOT NULL DEFAULT true,
    state        text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    reason       text NOT NULL DEFAULT '',
    exit_code    integer,
    updated      double precision NOT NULL,
    fingerprint  text NOT NULL DEFAULT '',
    cmd_digest   text NOT NULL DEFAULT '',
    env_digest   text NOT NULL DEFAULT '',
    inputs       jsonb NOT NULL DEFAULT '{}',
    cmd          text NOT NULL,
    labels       jsonb NOT NULL DEFAULT '[]',
    resources    jsonb NOT NULL DEFAULT '{}',
    timeframe    integer,
    cancelled_by text,
    PRIMARY KEY (workflow_id, name)
) WITH (fillfactor = 70);  -- room for HOT updates: a claim and a finish update each row (0010)

CREATE TABLE runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id  bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    started      double precision NOT NULL,
    ended        double precision,
    status       text NOT NULL,
    host         text NOT NULL,
    username     text NOT NULL,
    pid          integer NOT NULL,
    argv         jsonb NOT NULL DEFAULT '[]',
    limits       jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX runs_by_workflow ON runs (workflow_id);

CREATE TABLE attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id  bigint NOT NULL,
    task         text NOT NULL,
    number       integer NOT NULL,
    run_id       bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    state        text NOT NULL,
    reason       text NOT NULL,
    started      double precision NOT NULL,
    ended        double precision,
    exit_code    integer,
    signal       integer,
    kill_reason  text NOT NULL DEFAULT '',
    host         text NOT NULL,
    username     text NOT NULL,
    pid          integer NOT NULL,
    cwd          text NOT NULL DEFAULT '',
    cmd          text NOT NULL,
    env_digest   text NOT NULL DEFAULT '',
    fingerprint  text NOT NULL DEFAULT '',
    utime        double precision,
    stime        double precision,
    max_rss      bigint,
    peak_mem     bigint,
    mean_cpu     double precision,
    stdout_path  text NOT NULL DEFAULT '',
    stderr_path  text NOT NULL DEFAULT '',
    inputs       jsonb NOT NULL DEFAULT '{}',
    outputs      jsonb NOT NULL DEFAULT '{}',
    resources    jsonb NOT NULL DEFAULT '{}',
    kill_kind    text,  -- a core.model.Kill value when ended from outside (NULL: by itself)
    UNIQUE (workflow_id, task, number),
    FOREIGN KEY (workflow_id, task) REFERENCES tasks (workflow_id, name) ON DELETE CASCADE
);

-- (no index on (workflow_id, started): a statement naming an attempt's key must find it by the
-- key's index, whatever the planner's statistics say; migration 0009)
CREATE INDEX attempts_by_run ON attempts (run_id);
-- attempts still marked running: what begin_run closes after herd was killed
CREATE INDEX attempts_running ON attempts (workflow_id) WHERE state = 'running';

-- id keeps the recording order (SQLite's rowid)
CREATE TABLE samples (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id  bigint NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    time        double precision NOT NULL,
    rss         bigint NOT NULL,
    cpu         double precision NOT NULL,
    processes   integer NOT NULL
);

CREATE INDEX samples_by_attempt ON samples (attempt_id, time);

CREATE TABLE user_data (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id  bigint NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    key         text NOT NULL,
    value       jsonb NOT NULL
);

CREATE INDEX user_data_by_attempt ON user_data (attempt_id);

CREATE TABLE user_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempt_id  bigint NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    time        double precision NOT NULL,
    data        jsonb NOT NULL
);

CREATE INDEX user_events_by_attempt ON user_events (attempt_id, time);

-- The queue of a submitted workflow (`herd submit`): one row per task to run, claimed by workers
-- (`herd worker`); columns as in the SQLite schema. A claim locks the ready rows it takes
-- (FOR UPDATE SKIP LOCKED), so workers never wait for each other's candidates.
CREATE TABLE queue (
    workflow_id  bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    task         text NOT NULL,
    run_id       bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    state        text NOT NULL,
    seq          bigint NOT NULL,
    unmet        integer NOT NULL,
    not_before   double precision NOT NULL DEFAULT 0,
    tries        integer NOT NULL DEFAULT 0,
    recoveries   integer NOT NULL DEFAULT 0,
    number       integer NOT NULL DEFAULT 0,
    worker_id    bigint,
    lease_until  double precision,
    resources    jsonb NOT NULL,
    timeout      double precision,
    duration     double precision,
    children     jsonb NOT NULL DEFAULT '[]',
    spec         jsonb NOT NULL,
    PRIMARY KEY (workflow_id, task)
);

CREATE INDEX queue_ready ON queue (seq) WHERE state = 'ready';
-- the running rows (a few per worker core): a worker's leases, and the expired ones of all
-- (no index of lease times: one more entry to write at every claim; migration 0010)
CREATE INDEX queue_held ON queue (worker_id) WHERE state = 'running';
CREATE INDEX queue_open ON queue (run_id) WHERE state IN ('waiting', 'ready', 'running');

-- Named limits that hold across every worker of a workflow (tape_drive: 2; semaphore:NAME is 1).
CREATE TABLE pools (
    workflow_id  bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name         text NOT NULL,
    capacity     double precision NOT NULL,
    used         double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, name)
);

-- Workers that ever claimed from this store.
CREATE TABLE workers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    username     text NOT NULL,
    started      double precision NOT NULL,
    heartbeat    double precision NOT NULL,
    state        text NOT NULL,
    resources    jsonb NOT NULL DEFAULT '{}',
    lease        double precision NOT NULL,
    token_id     bigint                         -- references tokens (below)
);

-- The end of the output of failed attempts run by workers, so reports work from any host.
CREATE TABLE failure_logs (
    attempt_id   bigint PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    tail         text NOT NULL
);

-- Finishes refused because their lease had been taken back; the whole output shipped by workers.
CREATE TABLE stale_reports (
    attempt_id   bigint PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    worker_id    bigint NOT NULL,
    reported     double precision NOT NULL,
    state        text NOT NULL,
    exit_code    integer
);

CREATE TABLE shipped_logs (
    attempt_id   bigint PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    stdout       text NOT NULL,
    stderr       text NOT NULL,
    truncated    boolean NOT NULL DEFAULT false
);

-- Campaigns (`herd campaign`): a template instantiated per data run as runs arrive.
CREATE TABLE campaigns (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    workflow_id  bigint NOT NULL UNIQUE REFERENCES workflows (id) ON DELETE CASCADE,
    template     jsonb NOT NULL,
    source       text,
    workdir      text NOT NULL,
    created      double precision NOT NULL,
    closed       double precision
);

CREATE TABLE campaign_runs (
    campaign_id  bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    run          bigint NOT NULL,
    fields       jsonb NOT NULL,
    added        double precision NOT NULL,
    PRIMARY KEY (campaign_id, run)
);

CREATE TABLE campaign_groups (
    campaign_id  bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    task         text NOT NULL,
    value        text NOT NULL,
    runs         jsonb NOT NULL,
    closed       double precision NOT NULL,
    PRIMARY KEY (campaign_id, task, value)
);

-- Bearer tokens of `herd serve` (`herd token create`): only the SHA-256 digest of each secret
-- is kept.
CREATE TABLE tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest       text NOT NULL,
    scope        text NOT NULL,
    workflow     text,
    note         text NOT NULL DEFAULT '',
    created      double precision NOT NULL,
    expires      double precision,
    revoked      double precision
);

-- The token that registered a worker over HTTP, which alone (or an admin token) drives it; NULL:
-- none (a database worker).
ALTER TABLE workers ADD FOREIGN KEY (token_id) REFERENCES tokens (id);
