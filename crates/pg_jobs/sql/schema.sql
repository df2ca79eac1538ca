-- pg_jobs schema: job definitions and run history. Created before the functions.
--
-- Every operator in a policy or view is schema-qualified (OPERATOR(pg_catalog.=))
-- so a hostile search_path cannot redirect it. Nobody but pg_jobs writes these
-- tables: users read their own rows (row-level security) and change them only
-- through the jobs.* functions.

CREATE TABLE jobs.job (
    id             bigserial PRIMARY KEY,
    -- NULL for a job made without a name (cron.schedule(schedule, command),
    -- as pg_cron allows, 0.4.0): addressed by id through the cron API only.
    name           text CHECK (name OPERATOR(pg_catalog.<>) ''),
    owner          pg_catalog.regrole NOT NULL,
    -- NULL for a job that runs after another job instead (0.4.0).
    schedule       text,
    -- For a one-off schedule: the instant it runs.
    once_at        timestamptz,
    command        text NOT NULL,
    database       name NOT NULL,
    timezone       text NOT NULL,
    timeout        interval,
    max_attempts   int NOT NULL DEFAULT 1 CHECK (max_attempts OPERATOR(pg_catalog.>=) 1),
    retry_backoff  interval NOT NULL DEFAULT '10 seconds',
    overlap        text NOT NULL DEFAULT 'skip' CHECK (overlap OPERATOR(pg_catalog.=) ANY (ARRAY['skip', 'queue', 'allow'])),
    catch_up       boolean NOT NULL DEFAULT false,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- The target database's OID (0.2.0): what runs are dispatched by.
    datid          oid,
    -- The values of the command's $1 ... $n, given to each run (0.4.0).
    args           text[],
    -- Instead of a schedule: run each time a run of this job ends for good
    -- as run_if says (0.4.0). A followed job cannot be unscheduled first.
    after_job      bigint REFERENCES jobs.job (id),
    run_if         text,
    -- The named queue its runs go to (0.4.0).
    queue          text,
    UNIQUE (owner, name),
    CONSTRAINT job_schedule_or_after_job CHECK (schedule IS NOT NULL OR after_job IS NOT NULL)
);
CREATE INDEX job_after_job ON jobs.job (after_job) WHERE after_job IS NOT NULL;
COMMENT ON TABLE jobs.job IS
  'pg_jobs scheduled jobs. Change them with jobs.schedule, jobs.alter_job, jobs.unschedule, jobs.pause, jobs.resume.';

CREATE TABLE jobs.run (
    id             bigserial PRIMARY KEY,
    job_id         bigint,
    owner          pg_catalog.regrole NOT NULL,
    command        text NOT NULL,
    database       name NOT NULL DEFAULT pg_catalog.current_database(),
    -- One of the values COMMENT ON COLUMN lists, written only by pg_jobs
    -- (pg_jobs_core::run_state). No CHECK constraint: PostgreSQL re-reads
    -- and re-plans a CHECK expression for every statement that writes the
    -- row, twice per run (0.3.0; measured: 8 % of an executor's CPU).
    status         text NOT NULL DEFAULT 'queued',
    -- Higher starts first among runs that are due.
    priority       int NOT NULL DEFAULT 0,
    attempt        int NOT NULL DEFAULT 1,
    max_attempts   int NOT NULL DEFAULT 1,
    timeout        interval,
    retry_backoff  interval NOT NULL DEFAULT '10 seconds',
    -- The instant a schedule made it due (null for submitted runs).
    scheduled_for  timestamptz,
    -- Not to start before this (retries wait out their backoff).
    not_before     timestamptz,
    submitted_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at     timestamptz,
    finished_at    timestamptz,
    pid            int,
    sqlstate       text,
    message        text,
    -- The last statement returned more than pg_jobs.max_result_bytes: jobs.result has the first rows.
    result_truncated boolean NOT NULL DEFAULT false,
    -- The target database's OID (0.2.0): what the run is dispatched by.
    datid          oid,
    -- The command tag of a success's last statement (0.4.0).
    command_tag    text,
    -- jobs.submit's unique_key (0.4.0): at most one queued run per owner and key.
    unique_key     text,
    -- jobs.submit's depends_on and run_if (0.4.0): a waiting run's parents
    -- (a failed parent's retry takes its place) and what they must do.
    depends_on     bigint[],
    run_if         text,
    -- The values of the command's $1 ... $n (0.4.0).
    args           text[],
    -- Its named queue and its key for the queue's max_per_key (0.4.0).
    queue          text,
    concurrency_key text
);
COMMENT ON TABLE jobs.run IS
  'pg_jobs run history: one row per execution (each retry is its own row). Written only by pg_jobs; each role sees its own runs and those of the roles it acts for (jobs._acts_for), roles that monitor the cluster (pg_read_all_stats, pg_monitor) and superusers all (jobs._sees).';
COMMENT ON COLUMN jobs.run.owner IS 'The role the command runs as (compared by OID).';
COMMENT ON COLUMN jobs.run.status IS
  'queued -> starting -> running -> succeeded | failed | timed_out | cancelled | crashed (its worker vanished); skipped: due while the previous run was still going (overlap skip), or its dependencies decided against it; waiting: for the runs in depends_on to finish.';
COMMENT ON COLUMN jobs.run.depends_on IS
  'The runs it waits for (jobs.submit depends_on): when all have finished, it is queued if run_if holds, else skipped. A failed parent''s retry takes its place.';
COMMENT ON COLUMN jobs.run.run_if IS
  'What its depends_on runs must have done for it to run: succeeded (all), failed (any failed, timed out or crashed) or finished.';
COMMENT ON COLUMN jobs.run.database IS 'The database the command runs in (its name when the run was queued).';
COMMENT ON COLUMN jobs.run.datid IS 'OID of the database the command runs in: a renamed database keeps its runs.';
COMMENT ON COLUMN jobs.job.datid IS 'OID of the database the job runs in: a renamed database keeps its jobs.';
COMMENT ON COLUMN jobs.run.pid IS 'Process id of the executor that ran it.';
COMMENT ON COLUMN jobs.run.sqlstate IS 'SQLSTATE of the error that failed the run.';
COMMENT ON COLUMN jobs.run.unique_key IS
  'The unique_key it was submitted with: while it is queued, no other queued run of its owner in its queue has that key.';
COMMENT ON COLUMN jobs.run.command_tag IS
  'Command tag of the last statement of a successful run, as psql reports it (INSERT 0 1, SELECT 1, CALL).';
COMMENT ON COLUMN jobs.job.name IS
  'The job''s name, unique per owner; NULL for a job made without one (cron.schedule(schedule, command)), which only the cron API addresses, by id.';
COMMENT ON COLUMN jobs.run.args IS
  'The values of the command''s parameters $1 ... $n, as text (NULL elements are SQL NULL); NULL when it has none.';
COMMENT ON COLUMN jobs.job.after_job IS
  'The job this one runs after, instead of a schedule: each time a run of that job ends for good (no retry follows) as run_if says, a run of this one is queued.';
COMMENT ON COLUMN jobs.job.run_if IS
  'For a job that runs after another: what that job''s run must have done (succeeded, failed or finished).';
COMMENT ON COLUMN jobs.job.args IS
  'The values of the command''s parameters $1 ... $n, as text, given to each run; NULL when it has none.';

-- The rows of a run's last statement, for jobs.result (owner and superusers only).
CREATE TABLE jobs.run_result (
    -- No foreign key (0.3.0): its check is a query per stored result; the
    -- history purge deletes a run's rows with the run.
    run_id  bigint PRIMARY KEY,
    rows    jsonb[] NOT NULL
);
COMMENT ON TABLE jobs.run_result IS 'Rows returned by the last statement of a run; read them with jobs.result(run_id).';

-- What the scheduler reads on every wake-up, each in its own small index so
-- a long queue costs it a top-N index scan, not a sort:
-- runs in flight (crash detection),
CREATE INDEX run_active ON jobs.run (id) WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['starting', 'running']);
-- the queue: each role's lane in dispatch order (and the roles with queued
-- runs, by skip scan), for runs without a named queue (see run_queue_named),
CREATE INDEX run_queue ON jobs.run (owner, priority DESC, (COALESCE(not_before, scheduled_for, submitted_at)), id)
  WHERE status OPERATOR(pg_catalog.=) 'queued' AND queue IS NULL;
-- a job's runs not finished yet (its overlap check when it falls due and
-- at dispatch: a probe, however long the queue or the job's history),
CREATE INDEX run_job_live ON jobs.run (job_id)
  WHERE job_id IS NOT NULL AND status OPERATOR(pg_catalog.=) ANY (ARRAY['queued', 'starting', 'running']);
-- the unique keys of queued runs (jobs.submit's unique_key: the database
-- itself keeps concurrent and rolled-back submitters from queueing two),
CREATE UNIQUE INDEX run_unique_key ON jobs.run (owner, (COALESCE(queue, '')), unique_key)
  WHERE unique_key IS NOT NULL AND status OPERATOR(pg_catalog.=) 'queued';
-- the runs waiting for others (a probe when nothing waits), and which of
-- them wait for given runs (when those end, or are retried),
CREATE INDEX run_waiting ON jobs.run (id) WHERE status OPERATOR(pg_catalog.=) 'waiting';
CREATE INDEX run_waiting_on ON jobs.run USING gin (depends_on) WHERE status OPERATOR(pg_catalog.=) 'waiting';
-- and the next retry or start_at due.
CREATE INDEX run_not_before ON jobs.run (not_before) WHERE status OPERATOR(pg_catalog.=) 'queued' AND not_before IS NOT NULL;
-- The history by job (overlap checks, per-job bounds) and by age (purge):
-- partial (0.3.0), so a submitted run, or one not finished yet, adds no
-- entries to them — each entry is written again by every row update.
CREATE INDEX run_job_started ON jobs.run (job_id, started_at) WHERE job_id IS NOT NULL;
CREATE INDEX run_finished_at ON jobs.run (finished_at) WHERE finished_at IS NOT NULL;
-- The latest failures (pg_jobs top, issue 17), without walking every
-- success of a long history; failures are few, so the index is small.
CREATE INDEX run_failed ON jobs.run (finished_at)
  WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['failed', 'timed_out', 'crashed']);

-- Who sees and acts on what a role owns (0.4.0): its own work and that of
-- roles it acts for (any membership up to PostgreSQL 15; from 16 on, one
-- that inherits the role's privileges or may SET ROLE to it); superusers
-- all. A C function, so the library of the running major decides, also
-- after pg_upgrade (docs/security.md).
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

ALTER TABLE jobs.job ENABLE ROW LEVEL SECURITY;
-- A role sees the jobs and runs of the roles it acts for (its own, and its
-- groups'), as with ownership elsewhere in PostgreSQL; superusers all.
CREATE POLICY job_owner ON jobs.job FOR SELECT
  USING (jobs._sees(owner::pg_catalog.oid));
ALTER TABLE jobs.run ENABLE ROW LEVEL SECURITY;
CREATE POLICY run_owner ON jobs.run FOR SELECT
  USING (jobs._sees(owner::pg_catalog.oid));

-- Daemons (0.2.0): long-running commands their database's scheduler keeps running.
CREATE TABLE jobs.daemon (
    id                bigserial PRIMARY KEY,
    name              text NOT NULL CHECK (name OPERATOR(pg_catalog.<>) ''),
    owner             pg_catalog.regrole NOT NULL,
    command           text NOT NULL,
    database          name NOT NULL,
    run_on            text NOT NULL DEFAULT 'primary' CHECK (run_on OPERATOR(pg_catalog.=) ANY (ARRAY['primary', 'standby', 'any'])),
    restart_delay     interval NOT NULL DEFAULT '5 seconds',
    max_restart_delay interval NOT NULL DEFAULT '5 minutes',
    -- false after jobs.stop_daemon.
    enabled           boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Written by the scheduler on a primary: restarts so far and how the last process ended.
    restarts          bigint NOT NULL DEFAULT 0,
    last_exit         text CHECK (last_exit OPERATOR(pg_catalog.=) ANY (ARRAY['clean', 'error', 'crash'])),
    last_exit_at      timestamptz,
    last_sqlstate     text,
    last_message      text,
    -- The target database's OID: what the daemon is started by.
    datid             oid,
    UNIQUE (owner, name)
);
COMMENT ON TABLE jobs.daemon IS
  'pg_jobs daemons. Change them with jobs.daemon, jobs.stop_daemon, jobs.start_daemon, jobs.drop_daemon; watch them in jobs.daemon_status.';
ALTER TABLE jobs.daemon ENABLE ROW LEVEL SECURITY;
CREATE POLICY daemon_owner ON jobs.daemon FOR SELECT
  USING (jobs._sees(owner::pg_catalog.oid));
REVOKE ALL ON jobs.daemon FROM PUBLIC;
GRANT SELECT ON jobs.daemon TO PUBLIC;

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
ALTER TABLE jobs.job ADD CONSTRAINT job_queue_fkey FOREIGN KEY (queue) REFERENCES jobs.queue (name);
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

GRANT USAGE ON SCHEMA jobs TO PUBLIC;
REVOKE ALL ON jobs.job, jobs.run, jobs.run_result FROM PUBLIC;
GRANT SELECT ON jobs.job, jobs.run TO PUBLIC;
