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
    -- Why a restore left it paused (0.4.0): its owner is missing here, or
    -- it is a one-off whose instant had passed. Cleared when resumed.
    disabled_reason text,
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
    concurrency_key text,
    -- The DETAIL of the error that failed it (0.4.0).
    detail         text
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
COMMENT ON COLUMN jobs.run.detail IS
  'DETAIL of the error that failed the run (what psql shows on the line after the message), if it had one.';
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
COMMENT ON COLUMN jobs.job.disabled_reason IS
  'Why a restore left the job paused (its owner is missing in this cluster, or a one-off''s instant had passed); cleared when it is resumed.';
-- Runs of named queues leave the queue's main index for one of their own,
-- led by the queue: a queue at its limit costs the dispatch of the others
-- nothing, and each (queue, role) lane's head is a top-N scan.
CREATE INDEX run_queue_named ON jobs.run (queue, owner, priority DESC, (COALESCE(not_before, scheduled_for, submitted_at)), id)
  WHERE status OPERATOR(pg_catalog.=) 'queued' AND queue IS NOT NULL;
-- Ends by queue (jobs.queue_status: runs in the last minute); only a
-- finished run has an entry (a run's row is updated a few times before).
CREATE INDEX run_queue_finished ON jobs.run (queue, finished_at) WHERE queue IS NOT NULL AND finished_at IS NOT NULL;

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

GRANT USAGE ON SCHEMA jobs TO PUBLIC;
REVOKE ALL ON jobs.job, jobs.run, jobs.run_result FROM PUBLIC;
GRANT SELECT ON jobs.job, jobs.run TO PUBLIC;
