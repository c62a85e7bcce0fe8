-- Migration 0004: a cancelled task keeps the name of the task whose final failure cancelled it
-- (core.events.Cancel.cause) beside the words of its reason ("needs 'x', which failed"), so that
-- reports read a typed fact instead of parsing the text. Tasks cancelled before stay NULL: reports
-- read their cause from the text as before (reports/analyze.py, legacy_cancel_cause).
ALTER TABLE tasks ADD COLUMN cancelled_by text;
