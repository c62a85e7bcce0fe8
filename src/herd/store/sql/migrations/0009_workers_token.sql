-- Migration 0009: the token that registered each worker over HTTP (`herd serve`), which alone
-- (or an admin token) may drive it there; NULL for a worker registered without one (a database
-- worker, `herd worker --store`, or any worker registered before this migration).
ALTER TABLE workers ADD COLUMN token_id INTEGER REFERENCES tokens (id);
