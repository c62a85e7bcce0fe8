-- The named queries of the PostgreSQL store, loaded once by herd/store/queries.py; the same names
-- and parameters as the SQLite store's (src/herd/store/sql/queries.sql), in PostgreSQL's dialect.
-- Each query starts with a line `-- name --`; the lines up to the next name are its text.
-- Parameters are named (:workflow_id); queries that feed a record select its columns under the
-- names and in the order of the record's fields (tests check both).

-- workflow_by_name --
SELECT id, name, source, format, created, task_count AS tasks
FROM workflows
WHERE name = :name;

-- all_workflows --
SELECT id, name, source, format, created, task_count AS tasks
FROM workflows
ORDER BY id;

-- workflow_tasks_digest --
SELECT id, tasks_digest FROM workflows WHERE name = :name;

-- upsert_workflow --
INSERT INTO workflows (name, source, format, created, updated, task_count, tasks_digest)
VALUES (:name, :source, :format, :now, :now, :task_count, :tasks_digest)
ON CONFLICT (name) DO UPDATE SET
    source = excluded.source,
    format = excluded.format,
    updated = excluded.updated,
    task_count = excluded.task_count,
    tasks_digest = excluded.tasks_digest
RETURNING id;

-- copy_new_tasks --
-- the tasks of a workflow new to the store, straight into the table (binary: no text parsing)
COPY tasks (workflow_id, name, state, updated, cmd, labels, resources, timeframe)
FROM STDIN (FORMAT BINARY);

-- create_task_staging --
-- add_workflow COPYs the task descriptions of a known workflow here, then upserts them in one
-- statement
CREATE TEMPORARY TABLE IF NOT EXISTS task_staging (
    name text NOT NULL,
    cmd text NOT NULL,
    labels jsonb NOT NULL,
    resources jsonb NOT NULL,
    timeframe integer
) ON COMMIT DELETE ROWS;

-- copy_task_staging --
COPY task_staging (name, cmd, labels, resources, timeframe) FROM STDIN;

-- upsert_staged_tasks --
-- a new task starts waiting; a known one keeps state and history and gets the new description
INSERT INTO tasks (workflow_id, name, state, updated, cmd, labels, resources, timeframe)
SELECT :workflow_id, name, 'waiting', :now, cmd, labels, resources, timeframe FROM task_staging
ON CONFLICT (workflow_id, name) DO UPDATE SET
    is_current = true,
    cmd = excluded.cmd,
    labels = excluded.labels,
    resources = excluded.resources,
    timeframe = excluded.timeframe
WHERE NOT tasks.is_current
    OR tasks.cmd IS DISTINCT FROM excluded.cmd
    OR tasks.labels IS DISTINCT FROM excluded.labels
    OR tasks.resources IS DISTINCT FROM excluded.resources
    OR tasks.timeframe IS DISTINCT FROM excluded.timeframe;

-- retire_unstaged_tasks --
-- tasks that left the workflow: keep their rows and history, hide them from task_records
UPDATE tasks SET is_current = false
WHERE workflow_id = :workflow_id AND is_current
    AND NOT EXISTS (SELECT 1 FROM task_staging AS s WHERE s.name = tasks.name);

-- task_records --
SELECT name, state, attempts, fingerprint, cmd_digest, env_digest, inputs, reason, exit_code, updated,
    cancelled_by
FROM tasks
WHERE workflow_id = :workflow_id AND is_current;

-- change_task --
UPDATE tasks SET
    state = :state,
    updated = :time,
    attempts = coalesce(:attempts, attempts),
    reason = :reason,
    exit_code = :exit_code,
    cancelled_by = :cancelled_by,
    fingerprint = coalesce(:fingerprint, fingerprint),
    cmd_digest = coalesce(:cmd_digest, cmd_digest),
    env_digest = coalesce(:env_digest, env_digest),
    inputs = coalesce(:inputs, inputs)
WHERE workflow_id = :workflow_id AND name = :task;

-- reset_task --
-- forget the last success: empty digests make the planner run the task again
UPDATE tasks SET
    state = 'waiting',
    updated = :time,
    reason = 'reset',
    cancelled_by = NULL,
    fingerprint = '',
    cmd_digest = '',
    env_digest = '',
    inputs = '{}'
WHERE workflow_id = :workflow_id AND name = :task;

-- last_run_status --
SELECT status FROM runs WHERE workflow_id = :workflow_id ORDER BY id DESC LIMIT 1;

-- requeue_interrupted_tasks --
-- herd stopped without ending its run: tasks it left in flight wait again
UPDATE tasks SET state = 'waiting', reason = :reason, updated = :time
WHERE workflow_id = :workflow_id
    AND (state IN ('ready', 'running', 'retrying')
        OR name IN (SELECT task FROM attempts WHERE workflow_id = :workflow_id AND state = 'running'));

-- interrupt_attempts --
UPDATE attempts SET state = 'cancelled', ended = :time, kill_reason = :reason,
    kill_kind = 'interrupted'
WHERE workflow_id = :workflow_id AND state = 'running';

-- interrupt_runs --
UPDATE runs SET status = 'interrupted', ended = :time
WHERE workflow_id = :workflow_id AND status = 'running';

-- insert_run --
INSERT INTO runs (workflow_id, started, status, host, username, pid, argv, limits)
VALUES (:workflow_id, :started, 'running', :host, :user, :pid, :argv, :limits)
RETURNING id;

-- end_run --
UPDATE runs SET ended = :ended, status = :status WHERE id = :run_id;

-- runs_of_workflow --
SELECT id, workflow_id, started, ended, status, host, username AS "user", pid, argv, limits
FROM runs
WHERE workflow_id = :workflow_id
ORDER BY id;

-- insert_attempt --
INSERT INTO attempts (
    workflow_id, task, number, run_id, state, reason, started, ended, exit_code, signal,
    kill_reason, host, username, pid, cwd, cmd, env_digest, fingerprint, utime, stime, max_rss,
    peak_mem, mean_cpu, stdout_path, stderr_path, inputs, outputs, resources,
    kill_kind
) VALUES (
    :workflow_id, :task, :number, :run_id, :state, :reason, :start, :end, :exit_code, :signal,
    :kill_reason, :host, :user, :pid, :cwd, :cmd, :env_digest, :fingerprint, :utime, :stime,
    :max_rss, :peak_mem, :mean_cpu, :stdout_path, :stderr_path, :inputs, :outputs, :resources,
    :kill
);

-- finish_attempt --
-- file stamps given at the end replace those recorded at the start; NULL keeps them
UPDATE attempts SET
    ended = :end,
    state = :state,
    exit_code = :exit_code,
    signal = :signal,
    kill_reason = :kill_reason,
    kill_kind = :kill,
    utime = :utime,
    stime = :stime,
    max_rss = :max_rss,
    peak_mem = :peak_mem,
    mean_cpu = :mean_cpu,
    inputs = coalesce(:inputs, inputs),
    outputs = coalesce(:outputs, outputs)
WHERE workflow_id = :workflow_id AND task = :task AND number = :number;

-- durations --
-- the mean wall time of each task's successful attempts (what the scheduler expects next time)
SELECT task, avg(ended - started)
FROM attempts
WHERE workflow_id = :workflow_id AND state = 'succeeded' AND ended IS NOT NULL
GROUP BY task;

-- attempts_of_workflow --
SELECT workflow_id, run_id, task, number, host, username AS "user", pid, started AS start, cmd,
    env_digest, fingerprint, reason, ended AS "end", state, exit_code, signal, kill_reason,
    kill_kind AS kill, utime, stime, max_rss, peak_mem, mean_cpu, cwd, stdout_path, stderr_path,
    inputs, outputs, resources
FROM attempts
WHERE workflow_id = :workflow_id
ORDER BY started, id;

-- attempts_of_task --
SELECT workflow_id, run_id, task, number, host, username AS "user", pid, started AS start, cmd,
    env_digest, fingerprint, reason, ended AS "end", state, exit_code, signal, kill_reason,
    kill_kind AS kill, utime, stime, max_rss, peak_mem, mean_cpu, cwd, stdout_path, stderr_path,
    inputs, outputs, resources
FROM attempts
WHERE workflow_id = :workflow_id AND task = :task
ORDER BY started, id;

-- insert_sample --
-- attempt_id is NOT NULL: a sample of an unknown attempt fails the batch
INSERT INTO samples (attempt_id, time, rss, cpu, processes)
VALUES (
    (SELECT id FROM attempts WHERE workflow_id = :workflow_id AND task = :task AND number = :number),
    :time, :rss, :cpu, :processes
);

-- samples_of_attempt --
SELECT a.workflow_id, a.task, a.number, s.time, s.rss, s.cpu, s.processes
FROM samples AS s JOIN attempts AS a ON a.id = s.attempt_id
WHERE a.workflow_id = :workflow_id AND a.task = :task AND a.number = :number
ORDER BY s.time, s.id;

-- insert_user_data --
INSERT INTO user_data (attempt_id, key, value)
VALUES (
    (SELECT id FROM attempts WHERE workflow_id = :workflow_id AND task = :task AND number = :number),
    :key, :value
);

-- user_data_of_workflow --
SELECT a.workflow_id, a.task, a.number, d.key, d.value
FROM user_data AS d JOIN attempts AS a ON a.id = d.attempt_id
WHERE a.workflow_id = :workflow_id
ORDER BY d.id;

-- user_data_of_task --
SELECT a.workflow_id, a.task, a.number, d.key, d.value
FROM user_data AS d JOIN attempts AS a ON a.id = d.attempt_id
WHERE a.workflow_id = :workflow_id AND a.task = :task
ORDER BY d.id;

-- insert_user_event --
INSERT INTO user_events (attempt_id, time, data)
VALUES (
    (SELECT id FROM attempts WHERE workflow_id = :workflow_id AND task = :task AND number = :number),
    :time, :data
);

-- user_events_of_workflow --
SELECT a.workflow_id, a.task, a.number, e.time, e.data
FROM user_events AS e JOIN attempts AS a ON a.id = e.attempt_id
WHERE a.workflow_id = :workflow_id
ORDER BY e.time, e.id;

-- user_events_of_task --
SELECT a.workflow_id, a.task, a.number, e.time, e.data
FROM user_events AS e JOIN attempts AS a ON a.id = e.attempt_id
WHERE a.workflow_id = :workflow_id AND a.task = :task
ORDER BY e.time, e.id;

-- forget_workflow --
-- tasks, runs, attempts, samples, user data and events go with it (ON DELETE CASCADE)
DELETE FROM workflows WHERE id = :workflow_id;

-- === the queue of submitted workflows (herd submit / herd worker) ============================

-- plan_by_index --
-- for the rest of a queue transaction: every statement reaches its rows through an index, one
-- row at a time. A batch statement joins a JSON list (which the planner takes for 100 rows) to
-- queue, tasks or attempts; left to its statistics (stale between ANALYZEs, or absent), it
-- hashed the whole table for each batch: the cost of a claim grew with the queue. No JIT: the
-- cost of a plan that must scan a table now reads as huge, and compiling it took 40 ms
SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true),
    set_config('enable_mergejoin', 'off', true), set_config('jit', 'off', true),
    set_config('plan_cache_mode', 'force_generic_plan', true);

-- queue_running --
SELECT task FROM queue WHERE workflow_id = :workflow_id AND state = 'running';

-- drop_queue --
-- a new submission replaces the queue; running tasks keep their lease (their finish counts)
DELETE FROM queue WHERE workflow_id = :workflow_id AND state <> 'running';

-- enqueue --
INSERT INTO queue (workflow_id, task, run_id, state, seq, unmet, resources, timeout, duration,
    children, spec)
VALUES (:workflow_id, :task, :run_id, :state, :seq, :unmet, :resources, :timeout, :duration,
    :children, :spec)
ON CONFLICT (workflow_id, task) DO UPDATE SET
    run_id = excluded.run_id,
    seq = excluded.seq,
    children = excluded.children,
    spec = excluded.spec;

-- set_pool --
INSERT INTO pools (workflow_id, name, capacity) VALUES (:workflow_id, :name, :capacity)
ON CONFLICT (workflow_id, name) DO UPDATE SET capacity = excluded.capacity;

-- mark_task --
UPDATE tasks SET state = :state, updated = :time, reason = :reason, cancelled_by = :cancelled_by
WHERE workflow_id = :workflow_id AND name = :task;

-- insert_worker --
INSERT INTO workers (host, pid, username, started, heartbeat, state, resources, lease,
    token_id)
VALUES (:host, :pid, :user, :now, :now, 'active', :resources, :lease, :token_id)
RETURNING id;

-- worker_by_id --
SELECT host, username, pid, state FROM workers WHERE id = :worker_id;

-- all_workers --
SELECT w.id, w.host, w.pid, w.username AS "user", w.started, w.heartbeat, w.state, w.resources,
    (SELECT count(*) FROM queue AS q WHERE q.worker_id = w.id AND q.state = 'running') AS held,
    w.lease, w.token_id
FROM workers AS w
ORDER BY w.id;

-- set_worker_state --
UPDATE workers SET state = :state, heartbeat = :now WHERE id = :worker_id;

-- claim_candidates --
-- ready tasks in claim order, with the attempt count of their task (the next number follows it).
-- The window of queue rows is chosen (and locked) first, then joined: joined in one query, a
-- fresh queue (no statistics yet) got a nested loop over every task for each ready row
WITH head AS (
    SELECT q.workflow_id, q.task, q.run_id, q.tries, q.recoveries, q.resources, q.timeout,
        q.duration, q.spec, q.seq
    FROM queue AS q
    WHERE q.state = 'ready' AND q.not_before <= :now
        AND (:all_workflows
            OR q.workflow_id IN (SELECT jsonb_array_elements_text(CAST(:workflows AS jsonb))::bigint))
    ORDER BY q.seq
    LIMIT :scan
    -- rows another worker is claiming are skipped, not waited for
    FOR UPDATE OF q SKIP LOCKED
)
SELECT h.workflow_id, h.task, h.run_id, h.tries, h.recoveries, h.resources, h.timeout,
    h.duration, h.spec,
    (SELECT t.attempts FROM tasks AS t WHERE t.workflow_id = h.workflow_id AND t.name = h.task),
    (SELECT w.name FROM workflows AS w WHERE w.id = h.workflow_id)
FROM head AS h
ORDER BY h.seq;

-- pools_of_workflow --
-- locked until the claim commits: two workers never both take the last unit of a pool
SELECT name, capacity - used FROM pools WHERE workflow_id = :workflow_id ORDER BY name FOR UPDATE;

-- take_task --
UPDATE queue SET state = 'running', tries = tries + 1, number = :number, worker_id = :worker_id,
    lease_until = :lease_until
WHERE workflow_id = :workflow_id AND task = :task AND state = 'ready';

-- use_pool --
UPDATE pools SET used = used + :amount WHERE workflow_id = :workflow_id AND name = :name;

-- leases_of --
-- the queue rows of a batch's tasks (:keys, a JSON list of [workflow_id, task] in key order),
-- each found by its key and locked in that order: a finish and a reap of the same attempt
-- happen one after the other, and two transactions never wait for each other crosswise
SELECT q.workflow_id, q.task, q.state, q.worker_id, q.number, q.tries, q.recoveries, q.run_id,
    q.children, q.resources, q.timeout,
    -- of the spec, what a finish or a take-back uses (not the whole of it, to decode)
    q.spec ->> 'semaphore', q.spec ->> 'retries', q.spec ->> 'fingerprint',
    q.spec ->> 'cmd_digest', q.spec ->> 'env_digest'
FROM jsonb_array_elements(CAST(:keys AS jsonb)) WITH ORDINALITY AS k (key, i)
CROSS JOIN LATERAL (
    SELECT * FROM queue
    WHERE workflow_id = (k.key ->> 0)::bigint AND task = k.key ->> 1
    FOR UPDATE
) AS q
ORDER BY k.i;

-- attempt_ended --
-- a claimed attempt ends: its outcome, and the start and pid of its process (the row held the
-- claim's time and the worker's pid until then); file stamps as in finish_attempt
UPDATE attempts SET
    started = :started,
    pid = :pid,
    ended = :end,
    state = :state,
    exit_code = :exit_code,
    signal = :signal,
    kill_reason = :kill_reason,
    kill_kind = :kill,
    utime = :utime,
    stime = :stime,
    max_rss = :max_rss,
    peak_mem = :peak_mem,
    mean_cpu = :mean_cpu,
    inputs = coalesce(:inputs, inputs),
    outputs = coalesce(:outputs, outputs)
WHERE workflow_id = :workflow_id AND task = :task AND number = :number;

-- queue_ended --
UPDATE queue SET state = :state, worker_id = NULL, lease_until = NULL
WHERE workflow_id = :workflow_id AND task = :task;

-- queue_again --
UPDATE queue SET state = 'ready', worker_id = NULL, lease_until = NULL, not_before = :not_before,
    resources = :resources, timeout = :timeout, recoveries = recoveries + :recovered,
    tries = tries - :uncounted
WHERE workflow_id = :workflow_id AND task = :task;

-- unlock_child --
UPDATE queue SET unmet = unmet - 1, state = CASE WHEN unmet = 1 THEN 'ready' ELSE state END
WHERE workflow_id = :workflow_id AND task = :task AND state = 'waiting';

-- mark_ready --
-- the task's row in tasks follows its queue row, once its last unmet need succeeded
UPDATE tasks SET state = 'ready', updated = :time, reason = '', cancelled_by = NULL
WHERE workflow_id = :workflow_id AND name = :task AND state = 'waiting'
    AND EXISTS (SELECT 1 FROM queue AS q
        WHERE q.workflow_id = :workflow_id AND q.task = :task AND q.state = 'ready');

-- cancel_child --
UPDATE queue SET state = 'cancelled'
WHERE workflow_id = :workflow_id AND task = :task AND state = 'waiting'
RETURNING children;

-- end_open_run --
UPDATE runs SET ended = :ended, status = :status WHERE id = :run_id AND status = 'running';

-- end_run_when_done --
-- a submission's run ends once none of its tasks is waiting, ready or running: failed when one
-- of them did not succeed
UPDATE runs SET ended = :ended,
    status = CASE
        WHEN EXISTS (SELECT 1 FROM queue WHERE run_id = :run_id AND state <> 'succeeded')
        THEN 'failed' ELSE 'succeeded' END
WHERE id = :run_id AND status = 'running'
    AND NOT EXISTS (SELECT 1 FROM queue
        WHERE run_id = :run_id AND state IN ('waiting', 'ready', 'running'));

-- insert_failure_log --
INSERT INTO failure_logs (attempt_id, tail)
VALUES (
    (SELECT id FROM attempts WHERE workflow_id = :workflow_id AND task = :task AND number = :number),
    :tail
)
ON CONFLICT (attempt_id) DO UPDATE SET tail = excluded.tail;

-- failure_log --
SELECT f.tail FROM failure_logs AS f JOIN attempts AS a ON a.id = f.attempt_id
WHERE a.workflow_id = :workflow_id AND a.task = :task AND a.number = :number;

-- renew_leases --
UPDATE queue SET lease_until = :lease_until WHERE worker_id = :worker_id AND state = 'running';

-- worker_seen --
UPDATE workers SET heartbeat = :now, state = CASE WHEN state = 'lost' THEN 'active' ELSE state END
WHERE id = :worker_id;

-- held_by --
SELECT workflow_id, task, number FROM queue WHERE worker_id = :worker_id AND state = 'running';

-- expired_leases --
SELECT workflow_id, task, number, worker_id FROM queue
WHERE state = 'running' AND lease_until < :now
FOR UPDATE SKIP LOCKED;

-- lose_workers --
UPDATE workers SET state = 'lost'
WHERE state IN ('active', 'draining') AND heartbeat + lease < :now;

-- queue_states --
SELECT task, state FROM queue
WHERE workflow_id = :workflow_id
    AND task IN (SELECT jsonb_array_elements_text(CAST(:tasks AS jsonb)));

-- queue_counts --
SELECT state, count(*) FROM queue
WHERE :all_workflows
    OR workflow_id IN (SELECT jsonb_array_elements_text(CAST(:workflows AS jsonb))::bigint)
GROUP BY state;

-- attempt_report --
-- what a finish recorded of an attempt: a retried report finds its own (same pid and start)
SELECT ended, pid, started, kill_kind FROM attempts
WHERE workflow_id = :workflow_id AND task = :task AND number = :number;

-- insert_stale_report --
INSERT INTO stale_reports (attempt_id, worker_id, reported, state, exit_code)
SELECT id, :worker_id, :reported, :state, :exit_code FROM attempts
WHERE workflow_id = :workflow_id AND task = :task AND number = :number
ON CONFLICT (attempt_id) DO NOTHING;

-- stale_reports --
SELECT a.workflow_id, a.task, a.number, s.worker_id, s.reported, s.state, s.exit_code
FROM stale_reports AS s JOIN attempts AS a ON a.id = s.attempt_id
WHERE a.workflow_id = :workflow_id
ORDER BY s.reported, a.id;

-- insert_shipped_log --
INSERT INTO shipped_logs (attempt_id, stdout, stderr, truncated)
VALUES (
    (SELECT id FROM attempts WHERE workflow_id = :workflow_id AND task = :task AND number = :number),
    :stdout, :stderr, :truncated
)
ON CONFLICT (attempt_id) DO UPDATE
SET stdout = excluded.stdout, stderr = excluded.stderr, truncated = excluded.truncated;

-- shipped_log --
SELECT s.stdout, s.stderr, s.truncated FROM shipped_logs AS s JOIN attempts AS a ON a.id = s.attempt_id
WHERE a.workflow_id = :workflow_id AND a.task = :task AND a.number = :number;

-- insert_token --
INSERT INTO tokens (digest, scope, workflow, note, created, expires)
VALUES (:digest, :scope, :workflow, :note, :now, :expires)
RETURNING id;

-- token_by_id --
SELECT id, digest, scope, workflow, note, created, expires, revoked FROM tokens WHERE id = :token_id;

-- all_tokens --
SELECT id, digest, scope, workflow, note, created, expires, revoked FROM tokens ORDER BY id;

-- revoke_token --
UPDATE tokens SET revoked = :now WHERE id = :token_id AND revoked IS NULL;

-- task_labels --
-- the labels of the tasks that have some (reports and the HTTP API filter by them)
SELECT name, labels FROM tasks WHERE workflow_id = :workflow_id AND is_current AND labels <> '[]'::jsonb;

-- task_counts --
-- a workflow's current tasks by state (what a status poll shows), without reading their records
SELECT state, count(*) FROM tasks WHERE workflow_id = :workflow_id AND is_current GROUP BY state;

-- change_mark --
-- moves when another connection commits (herd.store.watched): what the event stream looks at
SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint;

-- queue_open_of_workflow --
-- what a cancel stops: the workflow's queued tasks still to run or running
SELECT task, state, run_id FROM queue
WHERE workflow_id = :workflow_id AND state IN ('waiting', 'ready', 'running');

-- === campaigns (herd campaign) ================================================================

-- campaign_by_name --
SELECT c.id, c.name, c.workflow_id, c.template, c.source, c.workdir, c.created, c.closed,
    (SELECT count(*) FROM campaign_runs AS r WHERE r.campaign_id = c.id) AS runs
FROM campaigns AS c
WHERE c.name = :name;

-- campaign_by_id --
SELECT c.id, c.name, c.workflow_id, c.template, c.source, c.workdir, c.created, c.closed,
    (SELECT count(*) FROM campaign_runs AS r WHERE r.campaign_id = c.id) AS runs
FROM campaigns AS c
WHERE c.id = :campaign_id;

-- all_campaigns --
SELECT c.id, c.name, c.workflow_id, c.template, c.source, c.workdir, c.created, c.closed,
    (SELECT count(*) FROM campaign_runs AS r WHERE r.campaign_id = c.id) AS runs
FROM campaigns AS c
ORDER BY c.id;

-- insert_campaign_workflow --
INSERT INTO workflows (name, source, format, created, updated, task_count, tasks_digest)
VALUES (:name, :source, 'campaign', :now, :now, 0, '')
RETURNING id;

-- insert_campaign --
INSERT INTO campaigns (name, workflow_id, template, source, workdir, created)
VALUES (:name, :workflow_id, :template, :source, :workdir, :now)
RETURNING id;

-- lock_campaign --
-- injections into one campaign happen one after the other
SELECT closed FROM campaigns WHERE id = :campaign_id FOR UPDATE;

-- close_campaign --
UPDATE campaigns SET closed = :now WHERE id = :campaign_id AND closed IS NULL;

-- campaign_runs --
SELECT run, fields FROM campaign_runs WHERE campaign_id = :campaign_id ORDER BY run;

-- insert_campaign_run --
INSERT INTO campaign_runs (campaign_id, run, fields, added)
VALUES (:campaign_id, :run, :fields, :now)
ON CONFLICT (campaign_id, run) DO NOTHING;

-- campaign_groups --
SELECT task, value, runs FROM campaign_groups WHERE campaign_id = :campaign_id
ORDER BY closed, task, value;

-- insert_campaign_group --
INSERT INTO campaign_groups (campaign_id, task, value, runs, closed)
VALUES (:campaign_id, :task, :value, :runs, :now);

-- campaign_task --
-- an instance joins the campaign's workflow: waiting, until the queue says otherwise
INSERT INTO tasks (workflow_id, name, state, updated, cmd, resources)
VALUES (:workflow_id, :name, 'waiting', :now, :cmd, :resources)
ON CONFLICT (workflow_id, name) DO UPDATE SET
    is_current = true, cmd = excluded.cmd, resources = excluded.resources;

-- count_campaign_tasks --
UPDATE workflows SET updated = :now,
    task_count = (SELECT count(*) FROM tasks WHERE workflow_id = :workflow_id AND is_current)
WHERE id = :workflow_id;

-- next_seq --
SELECT coalesce(max(seq) + 1, 0) FROM queue WHERE workflow_id = :workflow_id;

-- queue_row --
-- locked: a finish reading its children waits for this transaction, or is waited for
SELECT state, children, spec FROM queue WHERE workflow_id = :workflow_id AND task = :task
FOR UPDATE;

-- set_children --
UPDATE queue SET children = :children WHERE workflow_id = :workflow_id AND task = :task;

-- requeue_task --
UPDATE queue SET state = :state, unmet = :unmet, run_id = :run_id, tries = 0, recoveries = 0,
    not_before = 0, worker_id = NULL, lease_until = NULL, resources = :resources,
    timeout = :timeout
WHERE workflow_id = :workflow_id AND task = :task AND state != 'running';

-- open_campaigns --
SELECT count(*) FROM campaigns
WHERE closed IS NULL
    AND (:all_workflows
        OR workflow_id IN (SELECT jsonb_array_elements_text(CAST(:workflows AS jsonb))::bigint));

-- === the queue's statements for many rows at once (PostgreSQL's own) ===========================
-- One statement for a batch's rows (:rows, a JSON list of objects keyed by the parameters of the
-- one-row query of the same meaning, named in postgres_statements.MANY): one execution on the
-- server rather than one per row. Their rows are locked already (leases_of, claim_candidates).
-- The list is read as json, not jsonb: read once into rows, it need not be built into jsonb
-- first (jsonb_in was a tenth of the server's time in a worker's turn)

-- take_tasks --
UPDATE queue AS q SET state = 'running', tries = q.tries + 1, number = r.number,
    worker_id = r.worker_id, lease_until = r.lease_until
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text,
    number integer, worker_id bigint, lease_until double precision)
WHERE q.workflow_id = r.workflow_id AND q.task = r.task AND q.state = 'ready';

-- attempts_ended --
UPDATE attempts AS a SET
    started = r.started,
    pid = r.pid,
    ended = r."end",
    state = r.state,
    exit_code = r.exit_code,
    signal = r.signal,
    kill_reason = r.kill_reason,
    kill_kind = r.kill,
    utime = r.utime,
    stime = r.stime,
    max_rss = r.max_rss,
    peak_mem = r.peak_mem,
    mean_cpu = r.mean_cpu,
    inputs = coalesce(CAST(r.inputs AS jsonb), a.inputs),
    outputs = coalesce(CAST(r.outputs AS jsonb), a.outputs)
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text,
    number integer, started double precision, pid integer, "end" double precision, state text,
    exit_code integer, signal integer, kill_reason text, kill text, utime double precision,
    stime double precision, max_rss bigint, peak_mem bigint, mean_cpu double precision,
    inputs text, outputs text)
WHERE a.workflow_id = r.workflow_id AND a.task = r.task AND a.number = r.number;

-- queues_ended --
UPDATE queue AS q SET state = r.state, worker_id = NULL, lease_until = NULL
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text, state text)
WHERE q.workflow_id = r.workflow_id AND q.task = r.task;

-- insert_attempts --
INSERT INTO attempts (
    workflow_id, task, number, run_id, state, reason, started, ended, exit_code, signal,
    kill_reason, host, username, pid, cwd, cmd, env_digest, fingerprint, utime, stime, max_rss,
    peak_mem, mean_cpu, stdout_path, stderr_path, inputs, outputs, resources, kill_kind
)
SELECT r.workflow_id, r.task, r.number, r.run_id, r.state, r.reason, r.start, r."end",
    r.exit_code, r.signal, r.kill_reason, r.host, r."user", r.pid, r.cwd, r.cmd, r.env_digest,
    r.fingerprint, r.utime, r.stime, r.max_rss, r.peak_mem, r.mean_cpu, r.stdout_path,
    r.stderr_path, CAST(r.inputs AS jsonb), CAST(r.outputs AS jsonb), CAST(r.resources AS jsonb),
    r.kill
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text,
    number integer, run_id bigint, state text, reason text, start double precision,
    "end" double precision, exit_code integer, signal integer, kill_reason text, host text,
    "user" text, pid integer, cwd text, cmd text, env_digest text, fingerprint text,
    utime double precision, stime double precision, max_rss bigint, peak_mem bigint,
    mean_cpu double precision, stdout_path text, stderr_path text, inputs text, outputs text,
    resources text, kill text);

-- finish_attempts --
UPDATE attempts AS a SET
    ended = r."end",
    state = r.state,
    exit_code = r.exit_code,
    signal = r.signal,
    kill_reason = r.kill_reason,
    kill_kind = r.kill,
    utime = r.utime,
    stime = r.stime,
    max_rss = r.max_rss,
    peak_mem = r.peak_mem,
    mean_cpu = r.mean_cpu,
    inputs = coalesce(CAST(r.inputs AS jsonb), a.inputs),
    outputs = coalesce(CAST(r.outputs AS jsonb), a.outputs)
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text,
    number integer, "end" double precision, state text, exit_code integer, signal integer,
    kill_reason text, kill text, utime double precision, stime double precision, max_rss bigint,
    peak_mem bigint, mean_cpu double precision, inputs text, outputs text)
WHERE a.workflow_id = r.workflow_id AND a.task = r.task AND a.number = r.number;

-- change_tasks --
UPDATE tasks AS t SET
    state = r.state,
    updated = r.time,
    attempts = coalesce(r.attempts, t.attempts),
    reason = r.reason,
    exit_code = r.exit_code,
    cancelled_by = r.cancelled_by,
    fingerprint = coalesce(r.fingerprint, t.fingerprint),
    cmd_digest = coalesce(r.cmd_digest, t.cmd_digest),
    env_digest = coalesce(r.env_digest, t.env_digest),
    inputs = coalesce(CAST(r.inputs AS jsonb), t.inputs)
FROM json_to_recordset(CAST(:rows AS json)) AS r (workflow_id bigint, task text, state text,
    time double precision, attempts integer, reason text, exit_code integer, cancelled_by text,
    fingerprint text, cmd_digest text, env_digest text, inputs text)
WHERE t.workflow_id = r.workflow_id AND t.name = r.task;
