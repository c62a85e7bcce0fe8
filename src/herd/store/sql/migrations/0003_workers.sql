-- Migration 0003: the queue of submitted workflows, the named pools that hold across workers, the
-- workers themselves, and the log tails of failed attempts (herd submit / herd worker).
CREATE TABLE queue (
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    run_id       INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    unmet        INTEGER NOT NULL,
    not_before   REAL NOT NULL DEFAULT 0,
    tries        INTEGER NOT NULL DEFAULT 0,
    recoveries   INTEGER NOT NULL DEFAULT 0,
    number       INTEGER NOT NULL DEFAULT 0,
    worker_id    INTEGER,
    lease_until  REAL,
    resources    TEXT NOT NULL,
    timeout      REAL,
    duration     REAL,
    children     TEXT NOT NULL DEFAULT '[]',
    spec         TEXT NOT NULL,
    PRIMARY KEY (workflow_id, task)
) STRICT;

CREATE INDEX queue_ready ON queue (seq) WHERE state = 'ready';
CREATE INDEX queue_held ON queue (worker_id) WHERE state = 'running';
CREATE INDEX queue_leases ON queue (lease_until) WHERE state = 'running';
CREATE INDEX queue_open ON queue (run_id) WHERE state IN ('waiting', 'ready', 'running');

CREATE TABLE pools (
    workflow_id  INTEGER NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    capacity     REAL NOT NULL,
    used         REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (workflow_id, name)
) STRICT;

CREATE TABLE workers (
    id           INTEGER PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    username     TEXT NOT NULL,
    started      REAL NOT NULL,
    heartbeat    REAL NOT NULL,
    state        TEXT NOT NULL,
    resources    TEXT NOT NULL DEFAULT '{}',
    lease        REAL NOT NULL
) STRICT;

CREATE TABLE failure_logs (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    tail         TEXT NOT NULL
) STRICT;
