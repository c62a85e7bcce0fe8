-- Migration 0009: attempts are found by their key (workflow_id, task, number) alone. With
-- attempts_by_start (workflow_id, started) beside the key's index, the planner took either for
-- a statement naming the key when its statistics were stale, and a worker's plan for it stayed
-- cached: every claim and finish then read all of the workflow's attempts. Reports that list a
-- workflow's attempts in order of start sort them.
DROP INDEX attempts_by_start;
