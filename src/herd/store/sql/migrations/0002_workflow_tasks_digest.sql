-- Migration 0002: workflows remember a digest of their tasks as last added, so that adding an
-- unchanged workflow again (every `herd run`) skips upserting every task row.
ALTER TABLE workflows ADD COLUMN tasks_digest TEXT NOT NULL DEFAULT '';
