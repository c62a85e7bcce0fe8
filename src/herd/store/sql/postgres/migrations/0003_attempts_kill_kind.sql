-- Migration 0003: attempts keep the kind of kill that ended them (core.model.Kill: memory,
-- timeout, cpu, interrupted, lost) beside the free text of kill_reason, so that reports read a
-- typed fact instead of the text's first word. Attempts recorded before stay NULL: reports read
-- their kind from the text as before (reports/analyze.py, legacy_kill_kind).
ALTER TABLE attempts ADD COLUMN kill_kind text;
