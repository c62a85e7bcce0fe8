-- Migration 0006: bearer tokens of `herd serve` (`herd token create`); only the SHA-256 digest
-- of each secret is kept.
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
