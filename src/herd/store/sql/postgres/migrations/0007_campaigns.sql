-- Migration 0007: campaigns (herd campaign): templates instantiated per data run, their runs and
-- the closed groups of their grouped tasks.
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
