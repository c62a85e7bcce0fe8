-- Migration 0002: the queue of submitted workflows, the named pools that hold across workers, the
-- workers themselves, and the log tails of failed attempts (herd submit / herd worker).

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
CREATE INDEX queue_held ON queue (worker_id) WHERE state = 'running';
CREATE INDEX queue_leases ON queue (lease_until) WHERE state = 'running';
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
    lease        double precision NOT NULL
);

-- The end of the output of failed attempts run by workers, so reports work from any host.
CREATE TABLE failure_logs (
    attempt_id   bigint PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    tail         text NOT NULL
);
