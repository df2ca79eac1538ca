-- pg_jobs 0.3.0 -> 0.4.0, the one upgrade script of the 0.4 wave: every
-- change of this wave's schema goes here, and the integration test
-- `upgrade_from_0_1_0_matches_a_fresh_install` checks that a database
-- upgraded through it equals a fresh install.
-- Safe with workers live: the new library serves 0.3.0 and 0.4.0 alike.

\echo Use "ALTER EXTENSION pg_jobs UPDATE TO '0.4.0'" to load this file. \quit

-- jobs._next_due read the clock while declared STABLE; it now takes the
-- instant as an argument (jobs.job_status passes now()). A one-off counts
-- as fired only by a run due at or after its instant, as the scheduler
-- counts it (a jobs.run_now before the instant does not cancel it).
CREATE FUNCTION jobs."_next_due"(
	"schedule" TEXT,
	"once_at" timestamp with time zone,
	"timezone" TEXT,
	"created_at" timestamp with time zone,
	"fired" bool,
	"now" timestamp with time zone
) RETURNS timestamp with time zone
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_next_due_at_wrapper';

CREATE OR REPLACE VIEW jobs.job_status WITH (security_invoker = true) AS
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
       ) AS consecutive_failures
  FROM jobs.job j
  LEFT JOIN LATERAL (
        SELECT r.status, r.started_at, r.finished_at FROM jobs.run r
         WHERE r.job_id OPERATOR(pg_catalog.=) j.id AND r.status OPERATOR(pg_catalog.<>) 'skipped'
         ORDER BY r.id DESC LIMIT 1) l ON true;

DROP FUNCTION jobs."_next_due"(text, timestamptz, text, timestamptz, bool);

-- Every function has a COMMENT; the internal jobs._* functions say which
-- public wrapper they serve (users call the wrappers).
COMMENT ON FUNCTION jobs.result(bigint) IS
  'The rows of a finished run''s last statement, as jsonb (capped by pg_jobs.max_result_bytes).';
COMMENT ON FUNCTION jobs._wait(bigint, bigint) IS
  'Internal: the body of jobs.wait (sleeps until the run is finished or the timeout passes).';
COMMENT ON FUNCTION jobs._schedule(text, text, text, text, oid, text, bigint, int, bigint, text, bool) IS
  'Internal: the body of jobs.schedule (validates and writes the job).';
COMMENT ON FUNCTION jobs._alter_job(text, text, text, text, oid, text, bigint, int, bigint, text, bool, bool) IS
  'Internal: the body of jobs.alter_job (changes the given settings of a job).';
COMMENT ON FUNCTION jobs._next_due(text, timestamptz, text, timestamptz, bool, timestamptz) IS
  'Internal: when a job is next due after the given instant, for jobs.job_status.';
COMMENT ON FUNCTION jobs._daemon(text, text, text, oid, text, bigint, bigint) IS
  'Internal: the body of jobs.daemon (validates and writes the daemon).';
COMMENT ON FUNCTION jobs._daemons() IS
  'Internal: what the schedulers publish about each daemon, for jobs.daemon_status.';
COMMENT ON FUNCTION jobs._workers() IS
  'Internal: the shared-memory registry of pg_jobs workers, for jobs.workers.';

-- COMMENTs that said less than the objects do.
COMMENT ON VIEW jobs.daemon_status IS
  'Each daemon you can see: pending, starting, running, waiting_restart, no_worker_slot, no_daemon_slot, stopping, stopped or not_on_this_node; pid, since, restarts, last exit, next restart.';
COMMENT ON FUNCTION jobs.cancel(bigint) IS
  'Cancel a run: a queued one never starts, a running one is interrupted. False if there was nothing to cancel (it had finished, or no executor holds it any more).';
COMMENT ON TABLE jobs.run IS
  'pg_jobs run history: one row per execution (each retry is its own row). Written only by pg_jobs; each role sees its own runs and those of the roles it acts for (jobs._acts_for), roles that monitor the cluster (pg_read_all_stats, pg_monitor) and superusers all (jobs._sees).';

-- Fair sharing (0.4.0): each role's queued runs form a lane, in the role's
-- own priority and due order; the scheduler shares executors across lanes
-- (see docs/security.md). The queue's index leads with the owner, so the
-- roles with queued runs are found by a skip scan and each lane's head by
-- a top-N scan. (Made at the end, with the named queues, whose runs it
-- leaves out.)

-- A job's runs not finished yet, by job (0.4.0): the overlap checks when a
-- job falls due and at dispatch probe it, instead of scanning the job's
-- whole history (run_job_started) or the whole queue (run_queue) for each
-- due job: with 500 every-second jobs and 20,000 queued runs, the pass had
-- become quadratic.
CREATE INDEX run_job_live ON jobs.run (job_id)
  WHERE job_id IS NOT NULL AND status OPERATOR(pg_catalog.=) ANY (ARRAY['queued', 'starting', 'running']);
-- Ownership recorded as PostgreSQL records it (issue 13, finding 9): each
-- role that owns jobs or daemons here gets an ownership anchor, a shell
-- type jobs."jobs of <role>" owned by it, so that DROP ROLE is refused while
-- it owns any, and REASSIGN OWNED / DROP OWNED move or remove its jobs and
-- daemons (the library's utility hook, from this version on). The anchors
-- of the roles that own jobs or daemons now are made at the end.
CREATE FUNCTION jobs."_sync_ownership"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_sync_ownership_wrapper';
COMMENT ON FUNCTION jobs._sync_ownership() IS
  'Internal: makes the ownership anchors in this database (one shell type per role that owns jobs or daemons here, so that DROP ROLE is refused while it does) match what each role owns. The 0.4.0 upgrade runs it; superusers only.';
REVOKE ALL ON FUNCTION jobs._sync_ownership() FROM PUBLIC;
SELECT jobs._sync_ownership();

-- One visibility rule, stated once (issue 14): row-level security, the
-- daemon_status view and the functions that find a job, run or daemon ask
-- jobs._acts_for, which the library decides per PostgreSQL major (from 16
-- on, a membership granted WITH INHERIT FALSE, SET FALSE shows nothing of
-- the role's work). In SQL text, pg_has_role(…, 'MEMBER') would survive a
-- pg_upgrade to 16+ unchanged and keep the 15 rule there.
CREATE FUNCTION jobs._acts_for(owner oid) RETURNS bool
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_acts_for_wrapper';
COMMENT ON FUNCTION jobs._acts_for(oid) IS
  'Internal: whether the current user acts on the jobs, runs, daemons and queues of the given owner (every function that finds one to change asks it).';
-- What a role sees is what it acts for, and everything for a role that
-- monitors the cluster (superuser, pg_read_all_stats, pg_monitor: those
-- that see every session in pg_stat_activity), which acts on none of it.
CREATE FUNCTION jobs._sees(owner oid) RETURNS bool
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_sees_wrapper';
COMMENT ON FUNCTION jobs._sees(oid) IS
  'Internal: whether the current user sees the jobs, runs, daemons and queues of the given owner: it acts for the owner, or monitors the cluster (row-level security and the status views ask it).';
ALTER POLICY job_owner ON jobs.job USING (jobs._sees(owner::pg_catalog.oid));
ALTER POLICY run_owner ON jobs.run USING (jobs._sees(owner::pg_catalog.oid));
ALTER POLICY daemon_owner ON jobs.daemon USING (jobs._sees(owner::pg_catalog.oid));
CREATE OR REPLACE VIEW jobs.daemon_status AS
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

-- The pg_cron layer (issue 15): jobs without a name, as pg_cron has them,
-- and the command tag of a success (cron.job_run_details.return_message).
ALTER TABLE jobs.job ALTER COLUMN name DROP NOT NULL;
COMMENT ON COLUMN jobs.job.name IS
  'The job''s name, unique per owner; NULL for a job made without one (cron.schedule(schedule, command)), which only the cron API addresses, by id.';
ALTER TABLE jobs.run ADD COLUMN command_tag text;
COMMENT ON COLUMN jobs.run.command_tag IS
  'Command tag of the last statement of a successful run, as psql reports it (INSERT 0 1, SELECT 1, CALL).';

-- From pg_cron in one transaction (issue 15).
CREATE FUNCTION jobs."import_pg_cron"() RETURNS TABLE (
	"cron_jobid" bigint,  /* i64 */
	"job_id" bigint,  /* Option < i64 > */
	"action" TEXT,  /* String */
	"reason" TEXT  /* Option < String > */
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'import_pg_cron_wrapper';
COMMENT ON FUNCTION jobs.import_pg_cron() IS
  'Move every job of pg_cron (installed in this database) to pg_jobs and set pg_cron''s copies inactive, in this transaction. One row per pg_cron job: imported, already imported, or skipped and why. Superusers only.';
REVOKE ALL ON FUNCTION jobs.import_pg_cron() FROM PUBLIC;

-- jobs._submit takes the options of 0.4.0 (unique_key, on_conflict,
-- depends_on, run_if) from a C function of its own: the library keeps the
-- old one for databases not yet updated, whose jobs.submit passes seven
-- arguments.
-- Unique keys (issue 16): jobs.submit(unique_key, on_conflict). At most one
-- queued run per owner and key, kept by the database (a partial unique
-- index), so concurrent and rolled-back submitters cannot queue two.
ALTER TABLE jobs.run ADD COLUMN unique_key text;
COMMENT ON COLUMN jobs.run.unique_key IS
  'The unique_key it was submitted with: while it is queued, no other queued run of its owner in its queue has that key.';
-- (Its unique index is made at the end: a key is unique per queue.)
-- jobs.submit gains unique_key and on_conflict here, and more below: its
-- final signature is made once, with the parameters.

-- Run a finished run again (issue 16).
CREATE FUNCTION jobs."retry"(
	"run_id" bigint /* Option < i64 > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'retry_wrapper';
COMMENT ON FUNCTION jobs.retry(bigint) IS
  'Run a finished run''s command again, as a new run with its settings (owner, database, job, timeout, attempts, priority). Returns the new run''s id.';

-- Dependencies (issue 16): jobs.submit(depends_on, run_if); a new status,
-- waiting.
ALTER TABLE jobs.run ADD COLUMN depends_on bigint[], ADD COLUMN run_if text;
COMMENT ON COLUMN jobs.run.status IS
  'queued -> starting -> running -> succeeded | failed | timed_out | cancelled | crashed (its worker vanished); skipped: due while the previous run was still going (overlap skip), or its dependencies decided against it; waiting: for the runs in depends_on to finish.';
COMMENT ON COLUMN jobs.run.depends_on IS
  'The runs it waits for (jobs.submit depends_on): when all have finished, it is queued if run_if holds, else skipped. A failed parent''s retry takes its place.';
COMMENT ON COLUMN jobs.run.run_if IS
  'What its depends_on runs must have done for it to run: succeeded (all), failed (any failed, timed out or crashed) or finished.';
CREATE INDEX run_waiting ON jobs.run (id) WHERE status OPERATOR(pg_catalog.=) 'waiting';
CREATE INDEX run_waiting_on ON jobs.run USING gin (depends_on) WHERE status OPERATOR(pg_catalog.=) 'waiting';

-- Parameters (issue 16): a command's $1 ... $n take their values from
-- args text[], given to jobs.submit, jobs.schedule and jobs.alter_job and
-- kept with the run and the job. Each wrapper and the function behind it
-- gain args as their last parameter: the signatures made above (jobs.submit)
-- or by 0.3.0 (jobs.schedule, jobs.alter_job) are dropped and the new ones
-- made (the library keeps 0.3.0's C symbols, for databases not updated
-- yet).
ALTER TABLE jobs.job ADD COLUMN args text[];
ALTER TABLE jobs.run ADD COLUMN args text[];
COMMENT ON COLUMN jobs.run.args IS
  'The values of the command''s parameters $1 ... $n, as text (NULL elements are SQL NULL); NULL when it has none.';
COMMENT ON COLUMN jobs.job.args IS
  'The values of the command''s parameters $1 ... $n, as text, given to each run; NULL when it has none.';

DROP FUNCTION jobs.submit(text, name, regrole, timestamptz, interval, int, int);
DROP FUNCTION jobs._submit(text, text, oid, timestamptz, bigint, int, int);
CREATE FUNCTION jobs."_submit"(
	"command" TEXT,
	"database" TEXT,
	"run_as" oid,
	"start_at" timestamp with time zone,
	"timeout_ms" bigint,
	"max_attempts" INT,
	"priority" INT,
	"unique_key" TEXT,
	"on_conflict" TEXT,
	"depends_on" bigint[],
	"run_if" TEXT,
	"args" TEXT[],
	"queue" TEXT,
	"concurrency_key" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_submit_run_wrapper';
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
COMMENT ON FUNCTION jobs._submit(text, text, oid, timestamptz, bigint, int, int, text, text, bigint[], text, text[], text, text) IS
  'Internal: the body of jobs.submit (validates, checks run_as and args, queues the run).';

DROP FUNCTION jobs.schedule(text, text, text, name, regrole, text, interval, int, interval, text, boolean);
DROP FUNCTION jobs._schedule(text, text, text, text, oid, text, bigint, int, bigint, text, bool);
CREATE FUNCTION jobs."_schedule"(
	"name" TEXT,
	"schedule" TEXT,
	"command" TEXT,
	"database" TEXT,
	"run_as" oid,
	"timezone" TEXT,
	"timeout_ms" bigint,
	"max_attempts" INT,
	"retry_backoff_ms" bigint,
	"overlap" TEXT,
	"catch_up" bool,
	"args" TEXT[],
	"after_job" TEXT,
	"run_if" TEXT,
	"queue" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_schedule_with_args_wrapper';
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
COMMENT ON FUNCTION jobs._schedule(text, text, text, text, oid, text, bigint, int, bigint, text, bool, text[], text, text, text) IS
  'Internal: the body of jobs.schedule (validates and writes the job).';

DROP FUNCTION jobs.alter_job(text, text, text, name, regrole, text, interval, int, interval, text, boolean, boolean);
DROP FUNCTION jobs._alter_job(text, text, text, text, oid, text, bigint, int, bigint, text, bool, bool);
CREATE FUNCTION jobs."_alter_job"(
	"name" TEXT,
	"schedule" TEXT,
	"command" TEXT,
	"database" TEXT,
	"run_as" oid,
	"timezone" TEXT,
	"timeout_ms" bigint,
	"max_attempts" INT,
	"retry_backoff_ms" bigint,
	"overlap" TEXT,
	"catch_up" bool,
	"enabled" bool,
	"args" TEXT[],
	"queue" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_alter_job_with_args_wrapper';
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
COMMENT ON FUNCTION jobs._alter_job(text, text, text, text, oid, text, bigint, int, bigint, text, bool, bool, text[], text) IS
  'Internal: the body of jobs.alter_job (changes the given settings of a job).';

-- Jobs that run after other jobs (issue 16): jobs.schedule(schedule =>
-- NULL, after_job, run_if). A followed job cannot be unscheduled first.
ALTER TABLE jobs.job ALTER COLUMN schedule DROP NOT NULL,
  ADD COLUMN after_job bigint REFERENCES jobs.job (id),
  ADD COLUMN run_if text,
  ADD CONSTRAINT job_schedule_or_after_job CHECK (schedule IS NOT NULL OR after_job IS NOT NULL);
CREATE INDEX job_after_job ON jobs.job (after_job) WHERE after_job IS NOT NULL;
COMMENT ON COLUMN jobs.job.after_job IS
  'The job this one runs after, instead of a schedule: each time a run of that job ends for good (no retry follows) as run_if says, a run of this one is queued.';
COMMENT ON COLUMN jobs.job.run_if IS
  'For a job that runs after another: what that job''s run must have done (succeeded, failed or finished).';

-- Named queues (issue 16): limits on the runs submitted to them (or fired
-- by jobs that name them), shared by every executor and scheduler.
CREATE TABLE jobs.queue (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name OPERATOR(pg_catalog.<>) ''),
    owner            pg_catalog.regrole NOT NULL,
    -- NULL: no limit.
    max_concurrency  int CHECK (max_concurrency OPERATOR(pg_catalog.>) 0),
    max_per_key      int CHECK (max_per_key OPERATOR(pg_catalog.>) 0),
    rate_limit       int CHECK (rate_limit OPERATOR(pg_catalog.>) 0),
    rate_period      interval NOT NULL DEFAULT '1 second',
    paused           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE jobs.queue IS
  'pg_jobs named queues of this database. Change them with jobs.create_queue, jobs.alter_queue, jobs.pause_queue, jobs.resume_queue, jobs.drop_queue; watch them in jobs.queue_status.';
COMMENT ON COLUMN jobs.queue.max_concurrency IS
  'Most executors running its runs at once (one that took several of its runs runs them one after the other); NULL: no limit.';
COMMENT ON COLUMN jobs.queue.max_per_key IS
  'Most executors running its runs of one concurrency_key at once; NULL: no limit.';
COMMENT ON COLUMN jobs.queue.rate_limit IS
  'Most runs started in any window of rate_period; NULL: no limit.';
ALTER TABLE jobs.queue ENABLE ROW LEVEL SECURITY;
CREATE POLICY queue_owner ON jobs.queue FOR SELECT
  USING (jobs._sees(owner::pg_catalog.oid));
REVOKE ALL ON jobs.queue FROM PUBLIC;
GRANT SELECT ON jobs.queue TO PUBLIC;
ALTER TABLE jobs.job ADD COLUMN queue text;
ALTER TABLE jobs.job ADD CONSTRAINT job_queue_fkey FOREIGN KEY (queue) REFERENCES jobs.queue (name);
ALTER TABLE jobs.run ADD COLUMN queue text, ADD COLUMN concurrency_key text;
COMMENT ON COLUMN jobs.run.queue IS
  'The named queue it runs in (jobs.submit queue, or its job''s); NULL: none.';
COMMENT ON COLUMN jobs.run.concurrency_key IS
  'Its key for its queue''s max_per_key (jobs.submit concurrency_key).';
COMMENT ON COLUMN jobs.job.queue IS
  'The named queue its runs go to; NULL: none.';
-- Runs of named queues leave the queue's main index for one of their own,
-- led by the queue: a queue at its limit costs the dispatch of the others
-- nothing, and each (queue, role) lane's head is a top-N scan.
CREATE INDEX run_queue_named ON jobs.run (queue, owner, priority DESC, (COALESCE(not_before, scheduled_for, submitted_at)), id)
  WHERE status OPERATOR(pg_catalog.=) 'queued' AND queue IS NOT NULL;
-- Ends by queue (jobs.queue_status: runs in the last minute); only a
-- finished run has an entry (a run's row is updated a few times before).
CREATE INDEX run_queue_finished ON jobs.run (queue, finished_at) WHERE queue IS NOT NULL AND finished_at IS NOT NULL;
DROP INDEX jobs.run_queue;
CREATE INDEX run_queue ON jobs.run (owner, priority DESC, (COALESCE(not_before, scheduled_for, submitted_at)), id)
  WHERE status OPERATOR(pg_catalog.=) 'queued' AND queue IS NULL;
CREATE UNIQUE INDEX run_unique_key ON jobs.run (owner, (COALESCE(queue, '')), unique_key)
  WHERE unique_key IS NOT NULL AND status OPERATOR(pg_catalog.=) 'queued';
CREATE FUNCTION jobs."_create_queue"(
	"name" TEXT,
	"max_concurrency" INT,
	"max_per_key" INT,
	"rate_limit" INT,
	"rate_period_us" bigint,
	"paused" bool
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_create_queue_wrapper';
CREATE FUNCTION jobs."_alter_queue"(
	"name" TEXT,
	"max_concurrency" INT,
	"max_per_key" INT,
	"rate_limit" INT,
	"rate_period_us" bigint,
	"paused" bool
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_alter_queue_wrapper';
CREATE FUNCTION jobs."pause_queue"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'pause_queue_wrapper';
CREATE FUNCTION jobs."resume_queue"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'resume_queue_wrapper';
CREATE FUNCTION jobs."drop_queue"(
	"name" TEXT,
	"force" bool DEFAULT false
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'drop_queue_wrapper';

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

-- The latest failures (pg_jobs top, issue 17), without walking every
-- success of a long history; failures are few, so the index is small.
CREATE INDEX run_failed ON jobs.run (finished_at)
  WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['failed', 'timed_out', 'crashed']);

-- Backups (issue 18).
ALTER TABLE jobs.job ADD COLUMN disabled_reason text;
COMMENT ON COLUMN jobs.job.disabled_reason IS
  'Why a restore left the job paused (its owner is missing in this cluster, or a one-off''s instant had passed); cleared when it is resumed.';
-- Backups (issue 18): what pg_dump carries. Extension tables are not
-- dumped unless marked (pg_extension_config_dump), and jobs.job, jobs.daemon
-- and jobs.queue name their owners by regrole, whose input fails for a role
-- the target cluster lacks — one missing role would fail the COPY of every
-- job. So the definitions are kept a second time, in a portable form that
-- is dumped: each row as jsonb without owner and database OID, its owner
-- by name (and by OID, with the cluster it is valid in). Triggers keep it in
-- step with the live tables; a restore (a COPY of definitions that have no
-- live row) makes the live rows at commit, owners resolved by name.
-- History (jobs.run, jobs.run_result) is not dumped: runs are the work of
-- the moment, and a restored copy starts each job at its next due time.
CREATE TABLE jobs.definition (
    kind        text NOT NULL CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['queue', 'job', 'daemon'])),
    id          bigint NOT NULL,
    owner       name NOT NULL,
    owner_oid   oid NOT NULL,
    cluster     text NOT NULL,
    definition  jsonb NOT NULL,
    PRIMARY KEY (kind, id)
);
COMMENT ON TABLE jobs.definition IS
  'The definitions of this database''s queues, jobs and daemons in the portable form pg_dump carries (owners by name); kept by pg_jobs, read by a restore.';
COMMENT ON COLUMN jobs.definition.owner IS
  'The owner''s role name, by which a restore into another cluster finds the role.';
COMMENT ON COLUMN jobs.definition.owner_oid IS
  'The owner''s OID, valid in the cluster named by cluster (a restore there follows renames by it).';
COMMENT ON COLUMN jobs.definition.cluster IS
  'The system identifier of the cluster the definition was written in.';
COMMENT ON COLUMN jobs.definition.definition IS
  'The live row as jsonb, without owner, database OID and (daemons) run-time state.';
REVOKE ALL ON jobs.definition FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jobs.definition', '');

CREATE FUNCTION jobs._cluster() RETURNS text
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_cluster_wrapper';
COMMENT ON FUNCTION jobs._cluster() IS
  'Internal: this cluster''s system identifier, recorded with each definition.';

-- Keeps jobs.definition in step with a live table (TG_ARGV[0]: its kind).
CREATE FUNCTION jobs._keep_definition() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    doc jsonb;
    role_name name;
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM jobs.definition d WHERE d.kind = TG_ARGV[0] AND d.id = OLD.id;
        RETURN NULL;
    END IF;
    doc := to_jsonb(NEW) - 'owner' - 'datid'
           - 'restarts' - 'last_exit' - 'last_exit_at' - 'last_sqlstate' - 'last_message';
    -- A job or daemon of its own database follows the database it is
    -- restored into; one aimed at another database keeps that name.
    IF doc ? 'database' THEN
        doc := doc || jsonb_build_object('home', doc ->> 'database' = current_database());
    END IF;
    SELECT r.rolname INTO role_name FROM pg_catalog.pg_roles r WHERE r.oid = NEW.owner::oid;
    -- One statement for a new row, a changed one, and a restored one being
    -- made live (its definition is there already).
    INSERT INTO jobs.definition AS d (kind, id, owner, owner_oid, cluster, definition)
    VALUES (TG_ARGV[0], NEW.id, COALESCE(role_name, ''), NEW.owner::oid, jobs._cluster(), doc)
    ON CONFLICT (kind, id) DO UPDATE
       SET owner = COALESCE(role_name, d.owner), owner_oid = EXCLUDED.owner_oid,
           cluster = EXCLUDED.cluster, definition = EXCLUDED.definition;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION jobs._keep_definition() IS
  'Internal: trigger that keeps jobs.definition in step with jobs.queue, jobs.job and jobs.daemon.';
CREATE TRIGGER keep_definition AFTER INSERT OR DELETE OR UPDATE ON jobs.queue
  FOR EACH ROW EXECUTE FUNCTION jobs._keep_definition('queue');
CREATE TRIGGER keep_definition AFTER INSERT OR DELETE OR UPDATE ON jobs.job
  FOR EACH ROW EXECUTE FUNCTION jobs._keep_definition('job');
-- Not on the daemon's run-time state (restarts, last exit), which the
-- scheduler writes as daemons come and go.
CREATE TRIGGER keep_definition AFTER INSERT OR DELETE
  OR UPDATE OF name, owner, command, database, run_on, restart_delay, max_restart_delay, enabled, created_at
  ON jobs.daemon FOR EACH ROW EXECUTE FUNCTION jobs._keep_definition('daemon');

-- A definition arriving for an id this database already has (a restore
-- into a database that has jobs of its own) is left out, with a warning,
-- rather than failing the whole restore.
CREATE FUNCTION jobs._definition_arrives() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM jobs.definition d WHERE d.kind = NEW.kind AND d.id = NEW.id) THEN
        RAISE WARNING 'pg_jobs: % % (%) was not restored: this database has one with that id',
            NEW.kind, NEW.id, NEW.definition ->> 'name';
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION jobs._definition_arrives() IS
  'Internal: trigger that leaves out a restored definition whose id this database already uses.';
-- Only for rows a restore brings (a COPY or INSERT of its own, not from
-- inside keep_definition): the check costs pg_jobs' own writes nothing.
CREATE TRIGGER definition_arrives BEFORE INSERT ON jobs.definition
  FOR EACH ROW WHEN (pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.=) 0)
  EXECUTE FUNCTION jobs._definition_arrives();

-- Whether the live row of a definition exists (it does when pg_jobs wrote
-- the definition; not when a restore brought it).
CREATE FUNCTION jobs._is_live(kind text, id bigint) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT CASE kind
         WHEN 'job' THEN EXISTS (SELECT FROM jobs.job j WHERE j.id = $2)
         WHEN 'daemon' THEN EXISTS (SELECT FROM jobs.daemon d WHERE d.id = $2)
         ELSE EXISTS (SELECT FROM jobs.queue q WHERE q.id = $2) END $$;
COMMENT ON FUNCTION jobs._is_live(text, bigint) IS
  'Internal: whether the queue, job or daemon of a definition exists in the live tables.';

-- The role a restored definition belongs to here: in the cluster it was
-- written in, its OID (which follows renames); elsewhere, the role of that
-- name. NULL: no such role here.
CREATE FUNCTION jobs._restored_owner(owner name, owner_oid oid, cluster text) RETURNS oid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
AS $$ SELECT COALESCE(
         (SELECT r.oid FROM pg_catalog.pg_roles r WHERE $3 = jobs._cluster() AND r.oid = $2),
         (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = $1)) $$;
COMMENT ON FUNCTION jobs._restored_owner(name, oid, text) IS
  'Internal: the role a restored definition belongs to here (by OID in its own cluster, else by name).';

-- The database a restored job or daemon runs in: this one, if it ran in
-- its own database; else the one it named.
CREATE FUNCTION jobs._restored_database(home boolean, named text) RETURNS text
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_restored_database_wrapper';
COMMENT ON FUNCTION jobs._restored_database(boolean, text) IS
  'Internal: the database a restored job or daemon runs in (this one if it ran in its own, else the one it named).';

-- What a restored definition becomes here (pg_jobs_core::restore): the
-- rules are the core's; this trigger only moves rows.
CREATE FUNCTION jobs._restore_decision(
    kind text, owner text, owner_found boolean, enabled boolean, schedule text, once_at timestamptz,
    catch_up boolean, now timestamptz)
RETURNS TABLE (enabled boolean, reason text, created_now boolean)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_restore_decision_wrapper';
COMMENT ON FUNCTION jobs._restore_decision(text, text, boolean, boolean, text, timestamptz, boolean, timestamptz) IS
  'Internal: what a restored queue, job or daemon becomes here (enabled, why it was left paused, whether its creation is the restore''s).';

-- At the commit of a restore: the live rows of every definition that has
-- none, queues first, then jobs (a job after the jobs it runs after), then
-- daemons. Once per transaction.
CREATE FUNCTION jobs._restore_definitions() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    k text;
BEGIN
    IF current_setting('pg_jobs_restore.done', true) = 'yes' THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('pg_jobs_restore.done', 'yes', true);

    INSERT INTO jobs.queue
    SELECT q.* FROM jobs.definition d
      CROSS JOIN LATERAL jobs._restored_owner(d.owner, d.owner_oid, d.cluster) o(role)
      CROSS JOIN LATERAL jobs._restore_decision('queue', d.owner, o.role IS NOT NULL,
            NOT (d.definition ->> 'paused')::boolean, NULL, NULL, false, now()) w
      CROSS JOIN LATERAL jsonb_populate_record(NULL::jobs.queue,
            d.definition || jsonb_build_object('owner', COALESCE(o.role, 0)::text, 'paused', NOT w.enabled)) q
     WHERE d.kind = 'queue' AND NOT jobs._is_live('queue', d.id)
     ORDER BY d.id;

    LOOP
        INSERT INTO jobs.job
        SELECT j.* FROM jobs.definition d
          CROSS JOIN LATERAL jobs._restored_owner(d.owner, d.owner_oid, d.cluster) o(role)
          CROSS JOIN LATERAL jobs._restored_database(COALESCE((d.definition ->> 'home')::boolean, false),
                                                      d.definition ->> 'database') t(database)
          CROSS JOIN LATERAL jobs._restore_decision('job', d.owner, o.role IS NOT NULL,
                (d.definition ->> 'enabled')::boolean, d.definition ->> 'schedule',
                (d.definition ->> 'once_at')::timestamptz, (d.definition ->> 'catch_up')::boolean, now()) w
          CROSS JOIN LATERAL jsonb_populate_record(NULL::jobs.job,
                d.definition || jsonb_build_object(
                    'owner', COALESCE(o.role, 0)::text,
                    'database', t.database,
                    'datid', (SELECT db.oid FROM pg_catalog.pg_database db WHERE db.datname = t.database)::text,
                    'enabled', w.enabled,
                    'created_at', CASE WHEN w.created_now THEN now()::text ELSE d.definition ->> 'created_at' END,
                    'disabled_reason', COALESCE(w.reason, d.definition ->> 'disabled_reason'))) j
         WHERE d.kind = 'job' AND NOT jobs._is_live('job', d.id)
           AND (d.definition ->> 'after_job' IS NULL OR jobs._is_live('job', (d.definition ->> 'after_job')::bigint))
           AND (d.definition ->> 'queue' IS NULL
                OR EXISTS (SELECT FROM jobs.queue q WHERE q.name = d.definition ->> 'queue'))
         ORDER BY d.id;
        GET DIAGNOSTICS n = ROW_COUNT;
        EXIT WHEN n = 0;
    END LOOP;

    INSERT INTO jobs.daemon
    SELECT m.* FROM jobs.definition d
      CROSS JOIN LATERAL jobs._restored_owner(d.owner, d.owner_oid, d.cluster) o(role)
      CROSS JOIN LATERAL jobs._restored_database(COALESCE((d.definition ->> 'home')::boolean, false),
                                                  d.definition ->> 'database') t(database)
      CROSS JOIN LATERAL jobs._restore_decision('daemon', d.owner, o.role IS NOT NULL,
            (d.definition ->> 'enabled')::boolean, NULL, NULL, false, now()) w
      CROSS JOIN LATERAL jsonb_populate_record(NULL::jobs.daemon,
            d.definition || jsonb_build_object(
                'owner', COALESCE(o.role, 0)::text,
                'database', t.database,
                'datid', (SELECT db.oid FROM pg_catalog.pg_database db WHERE db.datname = t.database)::text,
                'enabled', w.enabled,
                'restarts', 0)) m
     WHERE d.kind = 'daemon' AND NOT jobs._is_live('daemon', d.id)
     ORDER BY d.id;

    -- What still lacks what it depends on (a queue or a job not restored,
    -- or not yet: a restore row by row) stays, and is made when it comes.
    FOR k, n IN SELECT d.kind, d.id FROM jobs.definition d
                 WHERE NOT jobs._is_live(d.kind, d.id) ORDER BY 1, 2 LOOP
        RAISE WARNING 'pg_jobs: % % is not restored yet: a queue or job it depends on is missing', k, n;
    END LOOP;
    PERFORM setval('jobs.job_id_seq', GREATEST((SELECT max(id) FROM jobs.job), 1),
                   (SELECT max(id) FROM jobs.job) IS NOT NULL);
    PERFORM setval('jobs.daemon_id_seq', GREATEST((SELECT max(id) FROM jobs.daemon), 1),
                   (SELECT max(id) FROM jobs.daemon) IS NOT NULL);
    PERFORM setval('jobs.queue_id_seq', GREATEST((SELECT max(id) FROM jobs.queue), 1),
                   (SELECT max(id) FROM jobs.queue) IS NOT NULL);
    PERFORM jobs._sync_ownership();
    PERFORM jobs._definitions_restored();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION jobs._restore_definitions() IS
  'Internal: trigger that, at the commit of a restore, makes the live queues, jobs and daemons of restored definitions.';
CREATE CONSTRAINT TRIGGER restore_definitions AFTER INSERT ON jobs.definition
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (pg_catalog.pg_trigger_depth() OPERATOR(pg_catalog.=) 0 AND NOT jobs._is_live(NEW.kind, NEW.id))
  EXECUTE FUNCTION jobs._restore_definitions();

CREATE FUNCTION jobs._definitions_restored() RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', '_definitions_restored_wrapper';
COMMENT ON FUNCTION jobs._definitions_restored() IS
  'Internal: have this database''s scheduler load every job and daemon again when the restore commits.';

-- The definitions of what this database has already.
INSERT INTO jobs.definition (kind, id, owner, owner_oid, cluster, definition)
SELECT 'queue', q.id, COALESCE(r.rolname, ''), q.owner::oid, jobs._cluster(), to_jsonb(q) - 'owner'
  FROM jobs.queue q LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) q.owner::oid
UNION ALL
SELECT 'job', j.id, COALESCE(r.rolname, ''), j.owner::oid, jobs._cluster(),
       to_jsonb(j) - 'owner' - 'datid' || jsonb_build_object('home', j.database OPERATOR(pg_catalog.=) pg_catalog.current_database())
  FROM jobs.job j LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) j.owner::oid
UNION ALL
SELECT 'daemon', d.id, COALESCE(r.rolname, ''), d.owner::oid, jobs._cluster(),
       to_jsonb(d) - 'owner' - 'datid' - 'restarts' - 'last_exit' - 'last_exit_at' - 'last_sqlstate' - 'last_message'
         || jsonb_build_object('home', d.database OPERATOR(pg_catalog.=) pg_catalog.current_database())
  FROM jobs.daemon d LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) d.owner::oid;
CREATE OR REPLACE VIEW jobs.job_status WITH (security_invoker = true) AS
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

-- A failed run keeps its error's DETAIL (issue 21: the web dashboard's run page).
ALTER TABLE jobs.run ADD COLUMN detail text;
COMMENT ON COLUMN jobs.run.detail IS
  'DETAIL of the error that failed the run (what psql shows on the line after the message), if it had one.';
