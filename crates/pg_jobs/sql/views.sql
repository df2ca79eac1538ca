-- Views over functions; created after everything else.

CREATE VIEW jobs.workers AS
SELECT w.kind,
       w.pid,
       d.datname AS database,
       w.roleid::pg_catalog.regrole AS role,
       CASE WHEN w.kind OPERATOR(pg_catalog.<>) 'daemon' THEN w.job_id END AS job_id,
       w.run_id,
       w.state,
       w.since,
       CASE WHEN w.kind OPERATOR(pg_catalog.=) 'daemon' THEN w.job_id END AS daemon_id
  FROM jobs._workers() w
  LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) w.datid;
COMMENT ON VIEW jobs.workers IS
  'Every live pg_jobs worker (launcher, schedulers, executors, daemons) from the shared-memory registry.';
GRANT SELECT ON jobs.workers TO PUBLIC;
-- Functions in a view run with the caller's rights: like pg_stat_activity,
-- the registry is for everyone to see (0.1.0 revoked this by mistake, which
-- kept non-superusers out of the view).
REVOKE ALL ON FUNCTION jobs._workers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jobs._workers() TO PUBLIC;

-- Async jobs: typed wrappers around jobs._submit and jobs._wait.

-- Inlined into the calling query (0.3.0: no SET clause, so PostgreSQL can;
-- a SET made every submit save and restore the search_path). Everything in
-- the body is schema-qualified, so the caller's search_path picks nothing.
CREATE FUNCTION jobs.submit(
    command text,
    database name DEFAULT pg_catalog.current_database(),
    run_as pg_catalog.regrole DEFAULT NULL,
    start_at timestamptz DEFAULT NULL,
    timeout interval DEFAULT NULL,
    max_attempts int DEFAULT 1,
    priority int DEFAULT 0,
    unique_key text DEFAULT NULL,
    on_conflict text DEFAULT 'skip',
    depends_on bigint[] DEFAULT NULL,
    run_if text DEFAULT 'succeeded',
    args text[] DEFAULT NULL,
    queue text DEFAULT NULL,
    concurrency_key text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT jobs._submit(command, database::pg_catalog.text, run_as::pg_catalog.oid, start_at,
                         (EXTRACT(EPOCH FROM timeout) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8,
                         max_attempts, priority, unique_key, on_conflict, depends_on, run_if, args,
                         queue, concurrency_key) $$;
COMMENT ON FUNCTION jobs.submit(text, name, regrole, timestamptz, interval, int, int, text, text, bigint[], text, text[], text, text) IS
  'Queue a command to run in the background (as the calling role by default) after the calling transaction commits; args are the values of its $1 ... $n; queue names the queue whose limits it runs under, concurrency_key its key for the queue''s max_per_key. Returns the run id (with a unique_key already queued: that run''s id).';

CREATE FUNCTION jobs.wait(run_id bigint, timeout interval DEFAULT NULL)
RETURNS jobs.run LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._wait(run_id, (EXTRACT(EPOCH FROM timeout) * 1000)::int8);
      SELECT r.* FROM jobs.run r WHERE r.id OPERATOR(pg_catalog.=) run_id $$;
COMMENT ON FUNCTION jobs.wait(bigint, interval) IS
  'Wait until a run is finished (or the timeout passes) and return its row.';
COMMENT ON FUNCTION jobs.cancel(bigint) IS
  'Cancel a run: a queued one never starts, a running one is interrupted. False if there was nothing to cancel (it had finished, or no executor holds it any more).';

-- Scheduled jobs: typed wrappers with defaults around the jobs._* functions,
-- which validate, check privileges and write. search_path is pinned.

CREATE FUNCTION jobs.schedule(
    name text, schedule text, command text,
    database name DEFAULT pg_catalog.current_database(),
    run_as pg_catalog.regrole DEFAULT NULL,
    timezone text DEFAULT NULL,
    timeout interval DEFAULT NULL,
    max_attempts int DEFAULT 1,
    retry_backoff interval DEFAULT '10 seconds',
    overlap text DEFAULT 'skip',
    catch_up boolean DEFAULT false,
    args text[] DEFAULT NULL,
    after_job text DEFAULT NULL,
    run_if text DEFAULT 'succeeded',
    queue text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._schedule(name, schedule, command, database::text, run_as::oid, timezone,
                           (EXTRACT(EPOCH FROM timeout) * 1000)::int8, max_attempts,
                           (EXTRACT(EPOCH FROM retry_backoff) * 1000)::int8, overlap, catch_up, args,
                           after_job, run_if, queue) $$;
COMMENT ON FUNCTION jobs.schedule(text, text, text, name, regrole, text, interval, int, interval, text, boolean, text[], text, text, text) IS
  'Create or update (same name, same owner) a scheduled job, or (schedule => NULL, after_job) one that runs each time a run of another job ends as run_if says; args are the values of its command''s $1 ... $n, given to each run; its runs go to queue. Returns the job id.';

CREATE FUNCTION jobs.alter_job(
    name text,
    schedule text DEFAULT NULL, command text DEFAULT NULL, database name DEFAULT NULL,
    run_as pg_catalog.regrole DEFAULT NULL, timezone text DEFAULT NULL, timeout interval DEFAULT NULL,
    max_attempts int DEFAULT NULL, retry_backoff interval DEFAULT NULL, overlap text DEFAULT NULL,
    catch_up boolean DEFAULT NULL, enabled boolean DEFAULT NULL, args text[] DEFAULT NULL,
    queue text DEFAULT NULL)
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._alter_job(name, schedule, command, database::text, run_as::oid, timezone,
                            (EXTRACT(EPOCH FROM timeout) * 1000)::int8, max_attempts,
                            (EXTRACT(EPOCH FROM retry_backoff) * 1000)::int8, overlap, catch_up, enabled, args,
                            queue) $$;
COMMENT ON FUNCTION jobs.alter_job(text, text, text, name, regrole, text, interval, int, interval, text, boolean, boolean, text[], text) IS
  'Change some settings of a job (NULL leaves a setting as it is; timeout => ''0'' removes the timeout; args => ''{}'' removes the values of the command''s parameters; queue => '''' takes it out of its queue).';

COMMENT ON FUNCTION jobs.unschedule(text) IS 'Remove a job; its run history stays.';
COMMENT ON FUNCTION jobs.pause(text) IS 'Stop scheduling a job; runs already going finish.';
COMMENT ON FUNCTION jobs.resume(text) IS 'Schedule a paused job again, from now.';
COMMENT ON FUNCTION jobs.run_now(text) IS 'Queue a run of a job now. Returns the run id.';
COMMENT ON FUNCTION jobs.next_runs(text, int, timestamptz, text) IS
  'Preview: the next times a schedule fires (validates it, too).';

CREATE VIEW jobs.job_status WITH (security_invoker = true) AS
SELECT j.id, j.name, j.owner, j.schedule, j.timezone, j.database, j.enabled,
       l.status AS last_status,
       l.started_at AS last_started_at,
       l.finished_at OPERATOR(pg_catalog.-) l.started_at AS last_duration,
       CASE WHEN j.enabled AND j.schedule IS NOT NULL THEN
         jobs._next_due(j.schedule, j.once_at, j.timezone, j.created_at,
                        EXISTS (SELECT 1 FROM jobs.run f WHERE f.job_id OPERATOR(pg_catalog.=) j.id
                                   AND f.scheduled_for OPERATOR(pg_catalog.>=) j.once_at),
                        pg_catalog.now())
       END AS next_due,
       (SELECT pg_catalog.count(*) FROM jobs.run f
         WHERE f.job_id OPERATOR(pg_catalog.=) j.id
           AND f.status OPERATOR(pg_catalog.=) ANY ('{failed,timed_out,crashed}')
           AND f.id OPERATOR(pg_catalog.>) COALESCE(
                 (SELECT pg_catalog.max(s.id) FROM jobs.run s
                   WHERE s.job_id OPERATOR(pg_catalog.=) j.id AND s.status OPERATOR(pg_catalog.=) 'succeeded'), 0)
       ) AS consecutive_failures,
       j.disabled_reason
  FROM jobs.job j
  LEFT JOIN LATERAL (
        SELECT r.status, r.started_at, r.finished_at FROM jobs.run r
         WHERE r.job_id OPERATOR(pg_catalog.=) j.id AND r.status OPERATOR(pg_catalog.<>) 'skipped'
         ORDER BY r.id DESC LIMIT 1) l ON true;
COMMENT ON VIEW jobs.job_status IS
  'Each job you can see: schedule, time zone, enabled, last run, next due time, consecutive failures, and why a restore left it paused.';
GRANT SELECT ON jobs.job_status TO PUBLIC;

-- Daemons: the typed wrapper around jobs._daemon, and their status.

CREATE FUNCTION jobs.daemon(
    name text,
    command text,
    database name DEFAULT pg_catalog.current_database(),
    run_as pg_catalog.regrole DEFAULT NULL,
    run_on text DEFAULT 'primary',
    restart_delay interval DEFAULT '5 seconds',
    max_restart_delay interval DEFAULT '5 minutes')
RETURNS bigint LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._daemon(name, command, database::text, run_as::oid, run_on,
                         (EXTRACT(EPOCH FROM restart_delay) * 1000)::int8,
                         (EXTRACT(EPOCH FROM max_restart_delay) * 1000)::int8) $$;
COMMENT ON FUNCTION jobs.daemon(text, text, name, regrole, text, interval, interval) IS
  'Declare (or redefine: same name, same owner) a daemon: a command kept running by its database''s scheduler. Returns its id.';
COMMENT ON FUNCTION jobs.stop_daemon(text) IS
  'Stop a daemon and keep it stopped (cancel, then terminate after 5 seconds).';
COMMENT ON FUNCTION jobs.start_daemon(text) IS 'Start a stopped daemon.';
COMMENT ON FUNCTION jobs.drop_daemon(text) IS 'Stop and remove a daemon.';

-- Reads jobs.daemon with the view owner's rights, so it filters as
-- row-level security does there: the daemons of roles the caller sees.
-- jobs._daemons() filters the shared-memory status the same way.
CREATE VIEW jobs.daemon_status AS
SELECT d.id, d.name, d.owner, d.database, d.run_on, d.enabled,
       COALESCE(s.state, CASE WHEN d.enabled THEN 'pending' ELSE 'stopped' END) AS state,
       s.pid,
       s.since,
       COALESCE(s.restarts, d.restarts) AS restarts,
       CASE WHEN s.last_exit IS NOT NULL THEN s.last_exit ELSE d.last_exit END AS last_exit,
       CASE WHEN s.last_exit IS NOT NULL THEN s.last_exit_at ELSE d.last_exit_at END AS last_exit_at,
       CASE WHEN s.last_exit IS NOT NULL THEN s.last_sqlstate ELSE d.last_sqlstate END AS last_sqlstate,
       CASE WHEN s.last_exit IS NOT NULL THEN s.last_message ELSE d.last_message END AS last_message,
       s.next_restart,
       d.command
  FROM jobs.daemon d
  LEFT JOIN jobs._daemons() s
         ON s.daemon_id OPERATOR(pg_catalog.=) d.id
        AND s.home_datid OPERATOR(pg_catalog.=) (SELECT db.oid FROM pg_catalog.pg_database db
                                                  WHERE db.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
 WHERE jobs._sees(d.owner::pg_catalog.oid);
COMMENT ON VIEW jobs.daemon_status IS
  'Each daemon you can see: pending, starting, running, waiting_restart, no_worker_slot, no_daemon_slot, stopping, stopped or not_on_this_node; pid, since, restarts, last exit, next restart.';
GRANT SELECT ON jobs.daemon_status TO PUBLIC;

-- Every function has a COMMENT; the internal jobs._* functions say which
-- public wrapper they serve (users call the wrappers).
COMMENT ON FUNCTION jobs.result(bigint) IS
  'The rows of a finished run''s last statement, as jsonb (capped by pg_jobs.max_result_bytes).';
COMMENT ON FUNCTION jobs._submit(text, text, oid, timestamptz, bigint, int, int, text, text, bigint[], text, text[], text, text) IS
  'Internal: the body of jobs.submit (validates, checks run_as and args, queues the run).';
COMMENT ON FUNCTION jobs._wait(bigint, bigint) IS
  'Internal: the body of jobs.wait (sleeps until the run is finished or the timeout passes).';
COMMENT ON FUNCTION jobs._schedule(text, text, text, text, oid, text, bigint, int, bigint, text, bool, text[], text, text, text) IS
  'Internal: the body of jobs.schedule (validates and writes the job).';
COMMENT ON FUNCTION jobs._alter_job(text, text, text, text, oid, text, bigint, int, bigint, text, bool, bool, text[], text) IS
  'Internal: the body of jobs.alter_job (changes the given settings of a job).';
COMMENT ON FUNCTION jobs._next_due(text, timestamptz, text, timestamptz, bool, timestamptz) IS
  'Internal: when a job is next due after the given instant, for jobs.job_status.';
COMMENT ON FUNCTION jobs._daemon(text, text, text, oid, text, bigint, bigint) IS
  'Internal: the body of jobs.daemon (validates and writes the daemon).';
COMMENT ON FUNCTION jobs._daemons() IS
  'Internal: what the schedulers publish about each daemon, for jobs.daemon_status.';
COMMENT ON FUNCTION jobs._workers() IS
  'Internal: the shared-memory registry of pg_jobs workers, for jobs.workers.';
COMMENT ON FUNCTION jobs._sync_ownership() IS
  'Internal: makes the ownership anchors in this database (one shell type per role that owns jobs or daemons here, so that DROP ROLE is refused while it does) match what each role owns. The 0.4.0 upgrade runs it; superusers only.';
-- Superusers only (it also checks): it writes pg_jobs' catalog as pg_jobs.
REVOKE ALL ON FUNCTION jobs._sync_ownership() FROM PUBLIC;

COMMENT ON FUNCTION jobs.import_pg_cron() IS
  'Move every job of pg_cron (installed in this database) to pg_jobs and set pg_cron''s copies inactive, in this transaction. One row per pg_cron job: imported, already imported, or skipped and why. Superusers only.';
REVOKE ALL ON FUNCTION jobs.import_pg_cron() FROM PUBLIC;

COMMENT ON FUNCTION jobs.retry(bigint) IS
  'Run a finished run''s command again, as a new run with its settings (owner, database, job, timeout, attempts, priority). Returns the new run''s id.';

-- Named queues: typed wrappers around the jobs._*_queue functions, and
-- their status. search_path is pinned.
CREATE FUNCTION jobs.create_queue(
    name text,
    max_concurrency int DEFAULT NULL,
    max_per_key int DEFAULT NULL,
    rate_limit int DEFAULT NULL,
    rate_period interval DEFAULT '1 second',
    paused boolean DEFAULT false)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._create_queue(name, max_concurrency, max_per_key, rate_limit,
                               (EXTRACT(EPOCH FROM rate_period) * 1000000)::int8, paused) $$;
COMMENT ON FUNCTION jobs.create_queue(text, int, int, int, interval, boolean) IS
  'Create a named queue of the calling role: at most max_concurrency of its runs at once, max_per_key of one concurrency_key, rate_limit started per rate_period (NULL or 0: no limit); paused starts nothing until jobs.resume_queue.';
CREATE FUNCTION jobs.alter_queue(
    name text,
    max_concurrency int DEFAULT NULL,
    max_per_key int DEFAULT NULL,
    rate_limit int DEFAULT NULL,
    rate_period interval DEFAULT NULL,
    paused boolean DEFAULT NULL)
RETURNS void LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$ SELECT jobs._alter_queue(name, max_concurrency, max_per_key, rate_limit,
                              (EXTRACT(EPOCH FROM rate_period) * 1000000)::int8, paused) $$;
COMMENT ON FUNCTION jobs.alter_queue(text, int, int, int, interval, boolean) IS
  'Change some settings of a queue (NULL leaves a setting as it is; 0 removes a limit). Takes effect for every run not started yet.';
COMMENT ON FUNCTION jobs._create_queue(text, int, int, int, bigint, bool) IS
  'Internal: the body of jobs.create_queue (validates and writes the queue).';
COMMENT ON FUNCTION jobs._alter_queue(text, int, int, int, bigint, bool) IS
  'Internal: the body of jobs.alter_queue (changes the given settings of a queue).';
COMMENT ON FUNCTION jobs.pause_queue(text) IS
  'Start none of a queue''s runs until jobs.resume_queue; runs already started go on.';
COMMENT ON FUNCTION jobs.resume_queue(text) IS
  'Start a paused queue''s runs again, at once, in their order.';
COMMENT ON FUNCTION jobs.drop_queue(text, boolean) IS
  'Remove a queue. Refused while jobs send runs to it, and while runs of it have not started unless force, which cancels them.';

CREATE VIEW jobs.queue_status AS
SELECT q.name, q.owner, q.paused, q.max_concurrency, q.max_per_key, q.rate_limit, q.rate_period,
       w.queued, a.running, w.oldest_queued_age, s.finished_last_minute
  FROM jobs.queue q
  CROSS JOIN LATERAL (
        SELECT pg_catalog.count(*) AS queued,
               pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.min(COALESCE(r.not_before, r.scheduled_for, r.submitted_at))
                 FILTER (WHERE COALESCE(r.not_before, r.scheduled_for, r.submitted_at) OPERATOR(pg_catalog.<=) pg_catalog.now())
                 AS oldest_queued_age
          FROM jobs.run r
         WHERE r.queue OPERATOR(pg_catalog.=) q.name AND r.status OPERATOR(pg_catalog.=) 'queued') w
  CROSS JOIN LATERAL (
        SELECT pg_catalog.count(*) AS running FROM jobs.run r
         WHERE r.queue OPERATOR(pg_catalog.=) q.name
           AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')) a
  CROSS JOIN LATERAL (
        SELECT pg_catalog.count(*) AS finished_last_minute FROM jobs.run r
         WHERE r.queue OPERATOR(pg_catalog.=) q.name AND r.finished_at IS NOT NULL
           AND r.finished_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) INTERVAL '1 minute')) s
 WHERE jobs._sees(q.owner::pg_catalog.oid);
COMMENT ON VIEW jobs.queue_status IS
  'Each queue you can see: paused, limits, runs queued (and how long the oldest due one has waited), starting or running, and finished in the last minute (all roles'' runs).';
GRANT SELECT ON jobs.queue_status TO PUBLIC;

-- Health (issue 17): one row per job and daemon, for alerting on failures
-- and on silence (a run that should have started and has not).
CREATE VIEW jobs.health WITH (security_invoker = true) AS
SELECT 'job'::text AS kind, j.id, j.name, j.owner, j.database, j.enabled,
       ls.finished_at AS last_success,
       pg_catalog.now() OPERATOR(pg_catalog.-) ls.finished_at AS since_success,
       st.consecutive_failures,
       CASE WHEN o.due OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
                   pg_catalog.make_interval(secs => pg_catalog.current_setting('pg_jobs.missed_after')::float8))
            THEN o.due END AS missed_since,
       COALESCE(o.due OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
                  pg_catalog.make_interval(secs => pg_catalog.current_setting('pg_jobs.missed_after')::float8)),
                false) AS missed
  FROM jobs.job j
  JOIN jobs.job_status st ON st.id OPERATOR(pg_catalog.=) j.id
  LEFT JOIN LATERAL (
        SELECT r.finished_at FROM jobs.run r
         WHERE r.job_id OPERATOR(pg_catalog.=) j.id AND r.status OPERATOR(pg_catalog.=) 'succeeded'
         ORDER BY r.id DESC LIMIT 1) ls ON true
  LEFT JOIN LATERAL (
        SELECT r.scheduled_for AS last FROM jobs.run r
         WHERE r.job_id OPERATOR(pg_catalog.=) j.id AND r.scheduled_for IS NOT NULL
         ORDER BY r.id DESC LIMIT 1) lf ON true
  -- The earliest instant a run of it should have started by and has not:
  -- a queued run's, or the first due instant after its last firing.
  CROSS JOIN LATERAL (
        SELECT LEAST(
                 (SELECT pg_catalog.min(COALESCE(q.not_before, q.scheduled_for, q.submitted_at)) FROM jobs.run q
                   WHERE q.job_id OPERATOR(pg_catalog.=) j.id AND q.status OPERATOR(pg_catalog.=) 'queued'),
                 CASE WHEN j.enabled AND j.schedule IS NOT NULL THEN
                   jobs._next_due(j.schedule, j.once_at, j.timezone, j.created_at,
                                  COALESCE(lf.last OPERATOR(pg_catalog.>=) j.once_at, false),
                                  COALESCE(lf.last, j.created_at))
                 END) AS due) o
UNION ALL
SELECT 'daemon'::text, ds.id, ds.name, ds.owner, ds.database, ds.enabled,
       CASE WHEN ds.state OPERATOR(pg_catalog.=) 'running' THEN ds.since END,
       CASE WHEN ds.state OPERATOR(pg_catalog.=) 'running' THEN pg_catalog.now() OPERATOR(pg_catalog.-) ds.since END,
       NULL::bigint,
       CASE WHEN w.down THEN w.since END,
       COALESCE(w.down, false)
  FROM jobs.daemon_status ds
  JOIN jobs.daemon d ON d.id OPERATOR(pg_catalog.=) ds.id
  -- Down for longer than pg_jobs.missed_after while it should be running here.
  CROSS JOIN LATERAL (
        SELECT COALESCE(ds.since, ds.last_exit_at, d.created_at) AS since,
               ds.enabled AND ds.state OPERATOR(pg_catalog.<>) ALL ('{running,stopped,stopping,not_on_this_node}')
               AND COALESCE(ds.since, ds.last_exit_at, d.created_at) OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-)
                     pg_catalog.make_interval(secs => pg_catalog.current_setting('pg_jobs.missed_after')::float8)) AS down) w;
COMMENT ON VIEW jobs.health IS
  'Each job and daemon you can see: last success and how long ago, consecutive failures, and whether a run that should have started more than pg_jobs.missed_after seconds ago has not (missed).';
GRANT SELECT ON jobs.health TO PUBLIC;

-- Metrics (issue 17): the server-lifetime counters of shared memory (for
-- roles that monitor the cluster) and gauges read from this database's
-- tables (the runs the caller sees) and the worker registry, one row per
-- Prometheus sample. Reads jobs.run with the view owner's rights, so it
-- filters as row-level security does there (jobs._sees).
CREATE FUNCTION jobs._monitors() RETURNS bool
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_monitors_wrapper';
COMMENT ON FUNCTION jobs._monitors() IS
  'Internal: whether the current user monitors the cluster (superuser, or the privileges of pg_read_all_stats), for jobs.metrics.';
CREATE FUNCTION jobs._metrics() RETURNS TABLE (
    metric text, type text, help text, datid oid, label text, label_value text, value float8)
VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_metrics_wrapper';
COMMENT ON FUNCTION jobs._metrics() IS
  'Internal: the counters pg_jobs keeps in shared memory since the server started, one row per sample, for jobs.metrics (none unless the caller monitors the cluster).';
CREATE VIEW jobs.metrics AS
SELECT m.metric, m.type,
       pg_catalog.jsonb_build_object('database', d.datname)
         OPERATOR(pg_catalog.||) CASE WHEN m.label IS NULL THEN '{}'::pg_catalog.jsonb
                                      ELSE pg_catalog.jsonb_build_object(m.label, m.label_value) END AS labels,
       m.value, m.help
  FROM jobs._metrics() m
  JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) m.datid
UNION ALL
SELECT g.metric, 'gauge',
       pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('database', pg_catalog.current_database(), 'queue', w.queue)),
       g.value, g.help
  FROM (SELECT NULL::text AS queue, pg_catalog.count(*) AS queued,
               pg_catalog.min(COALESCE(r.not_before, r.scheduled_for, r.submitted_at)) AS oldest
          FROM jobs.run r
         WHERE r.status OPERATOR(pg_catalog.=) 'queued' AND r.queue IS NULL AND jobs._sees(r.owner::pg_catalog.oid)
        UNION ALL
        SELECT q.name, n.queued, n.oldest
          FROM jobs.queue q
          CROSS JOIN LATERAL (
                SELECT pg_catalog.count(*) AS queued,
                       pg_catalog.min(COALESCE(r.not_before, r.scheduled_for, r.submitted_at)) AS oldest
                  FROM jobs.run r
                 WHERE r.status OPERATOR(pg_catalog.=) 'queued' AND r.queue OPERATOR(pg_catalog.=) q.name
                   AND jobs._sees(r.owner::pg_catalog.oid)) n
         WHERE jobs._sees(q.owner::pg_catalog.oid)) w
  CROSS JOIN LATERAL (VALUES
        ('pg_jobs_runs_queued', w.queued::float8,
         'Runs waiting for an executor (queued, due or not), in this database, by named queue.'),
        ('pg_jobs_oldest_queued_seconds',
         COALESCE(GREATEST(EXTRACT(EPOCH FROM pg_catalog.now() OPERATOR(pg_catalog.-) w.oldest), 0), 0)::float8,
         'How long the oldest due queued run has waited since it was due, in this database, by named queue.')
       ) AS g(metric, value, help)
UNION ALL
SELECT 'pg_jobs_runs_running', 'gauge', pg_catalog.jsonb_build_object('database', pg_catalog.current_database()),
       pg_catalog.count(*)::float8, 'Runs starting or running, in this database.'
  FROM jobs.run r
 WHERE r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}') AND jobs._sees(r.owner::pg_catalog.oid)
UNION ALL
SELECT 'pg_jobs_workers', 'gauge',
       pg_catalog.jsonb_strip_nulls(pg_catalog.jsonb_build_object('database', w.database, 'kind', w.kind, 'state', w.state)),
       pg_catalog.count(*)::float8, 'Live pg_jobs workers in the cluster, by database, kind and state.'
  FROM jobs.workers w
 GROUP BY w.database, w.kind, w.state;
COMMENT ON VIEW jobs.metrics IS
  'pg_jobs'' numbers as Prometheus samples (metric, type, labels, value, help): counters since the server started (runs by status, starts, executor pool hits and cold starts, scheduler passes, start lag and duration histograms) for roles that monitor the cluster; queued, oldest queued and running runs of this database as the caller sees them; workers by kind and state.';
GRANT SELECT ON jobs.metrics TO PUBLIC;
