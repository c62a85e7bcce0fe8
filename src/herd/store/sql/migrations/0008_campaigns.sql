-- Migration 0008: campaigns (herd campaign): templates instantiated per data run, their runs and
-- the closed groups of their grouped tasks.
CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    workflow_id  INTEGER NOT NULL UNIQUE REFERENCES workflows (id) ON DELETE CASCADE,
    template     TEXT NOT NULL,
    source       TEXT,
    workdir      TEXT NOT NULL,
    created      REAL NOT NULL,
    closed       REAL
) STRICT;

CREATE TABLE campaign_runs (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    run          INTEGER NOT NULL,
    fields       TEXT NOT NULL,
    added        REAL NOT NULL,
    PRIMARY KEY (campaign_id, run)
) STRICT;

CREATE TABLE campaign_groups (
    campaign_id  INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    task         TEXT NOT NULL,
    value        TEXT NOT NULL,
    runs         TEXT NOT NULL,
    closed       REAL NOT NULL,
    PRIMARY KEY (campaign_id, task, value)
) STRICT;
