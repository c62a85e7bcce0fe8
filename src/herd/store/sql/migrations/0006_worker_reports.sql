-- Migration 0006: what workers report beyond the queue. A finish refused because its lease had
-- been taken back is kept (stale_reports: the worker's word, never the task's state), and the
-- whole output of an attempt whose worker ships logs (herd worker --ship-logs: no shared disk).
CREATE TABLE stale_reports (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    worker_id    INTEGER NOT NULL,
    reported     REAL NOT NULL,                 -- when the refused report came (store's clock)
    state        TEXT NOT NULL,                 -- what the worker said: succeeded, failed, ready
    exit_code    INTEGER
) STRICT;

CREATE TABLE shipped_logs (
    attempt_id   INTEGER PRIMARY KEY REFERENCES attempts (id) ON DELETE CASCADE,
    stdout       TEXT NOT NULL,
    stderr       TEXT NOT NULL,
    truncated    INTEGER NOT NULL DEFAULT 0     -- 1: only the last bytes of a long output
) STRICT;
