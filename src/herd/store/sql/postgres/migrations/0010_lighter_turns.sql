-- Migration 0010: fewer writes per task in a worker's turn.
-- A task's row is updated twice per attempt (running, then its outcome), and its only index (the
-- key) never changes: with room left on each page the new version stays on the page (a HOT
-- update) and the key's index is not written. Pages written from now on keep that room.
ALTER TABLE tasks SET (fillfactor = 70);
-- Expired leases are found through queue_held, which holds only the running rows (a few per
-- worker core): an index of their lease times was one more entry to write at every claim.
DROP INDEX queue_leases;
