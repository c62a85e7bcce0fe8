-- Migration 0005: what workers report beyond the queue. A finish refused because its lease had
-- been taken back is kept (stale_reports: the worker's word, never the task's state), and the
-- whole output of an attempt whose worker ships logs (herd worker --ship-logs: no shared disk).
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
