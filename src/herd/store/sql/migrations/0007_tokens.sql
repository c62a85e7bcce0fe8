-- Migration 0007: bearer tokens of `herd serve` (`herd token create`); only the SHA-256 digest
-- of each secret is kept.
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
