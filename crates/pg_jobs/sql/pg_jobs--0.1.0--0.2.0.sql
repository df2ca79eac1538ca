-- pg_jobs 0.1.0 -> 0.2.0: daemons.
--
-- Adds jobs.daemon (definitions), the functions jobs.daemon, stop_daemon,
-- start_daemon, drop_daemon and _daemons, the view jobs.daemon_status, and a
-- daemon_id column at the end of jobs.workers; makes cancel, result, pause,
-- resume, run_now and unschedule reject NULL arguments instead of returning
-- NULL; adds datid (the target database's OID, which runs are now dispatched
-- by, so a renamed database keeps its jobs) to jobs.job and jobs.run, filled
-- in for jobs and unfinished runs. Nothing of 0.1.0 is dropped. The integration test
-- `upgrade_from_0_1_0_matches_a_fresh_install` checks that an upgraded
-- database's catalog equals a fresh 0.2.0 install's.

\echo Use "ALTER EXTENSION pg_jobs UPDATE TO '0.2.0'" to load this file. \quit

-- Target databases by OID. Finished runs keep only the name: they will not
-- run again (a retry of one falls back to the name, as 0.1.0 did).
ALTER TABLE jobs.job ADD COLUMN datid oid;
ALTER TABLE jobs.run ADD COLUMN datid oid;
UPDATE jobs.job j SET datid = d.oid FROM pg_catalog.pg_database d
 WHERE d.datname OPERATOR(pg_catalog.=) j.database;
UPDATE jobs.run r SET datid = d.oid FROM pg_catalog.pg_database d
 WHERE d.datname OPERATOR(pg_catalog.=) r.database
   AND r.status OPERATOR(pg_catalog.=) ANY ('{queued,starting,running}');
COMMENT ON COLUMN jobs.run.database IS 'The database the command runs in (its name when the run was queued).';
COMMENT ON COLUMN jobs.run.datid IS 'OID of the database the command runs in: a renamed database keeps its runs.';
COMMENT ON COLUMN jobs.job.datid IS 'OID of the database the job runs in: a renamed database keeps its jobs.';

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
  USING (pg_catalog.pg_has_role(owner::pg_catalog.oid, 'MEMBER'));
REVOKE ALL ON jobs.daemon FROM PUBLIC;
GRANT SELECT ON jobs.daemon TO PUBLIC;

CREATE FUNCTION jobs."_daemon"(
	"name" TEXT, /* Option < & str > */
	"command" TEXT, /* Option < & str > */
	"database" TEXT, /* Option < & str > */
	"run_as" oid, /* Option < pg_sys :: Oid > */
	"run_on" TEXT, /* Option < & str > */
	"restart_delay_ms" bigint, /* Option < i64 > */
	"max_restart_delay_ms" bigint /* Option < i64 > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_daemon_wrapper';

CREATE FUNCTION jobs."_daemons"() RETURNS TABLE (
	"home_datid" oid,  /* pg_sys :: Oid */
	"daemon_id" bigint,  /* i64 */
	"state" TEXT,  /* String */
	"pid" INT,  /* Option < i32 > */
	"since" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"restarts" bigint,  /* i64 */
	"last_exit" TEXT,  /* Option < String > */
	"last_exit_at" timestamp with time zone,  /* Option < TimestampWithTimeZone > */
	"last_sqlstate" TEXT,  /* Option < String > */
	"last_message" TEXT,  /* Option < String > */
	"next_restart" timestamp with time zone  /* Option < TimestampWithTimeZone > */
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', '_daemons_wrapper';

CREATE FUNCTION jobs."drop_daemon"(
	"name" TEXT /* Option < & str > */
) RETURNS bool /* bool */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'drop_daemon_wrapper';

CREATE FUNCTION jobs."start_daemon"(
	"name" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'start_daemon_wrapper';

CREATE FUNCTION jobs."stop_daemon"(
	"name" TEXT /* Option < & str > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'stop_daemon_wrapper';

-- No longer STRICT: a NULL argument is an error naming it (22004), not a silent NULL.
CREATE OR REPLACE FUNCTION jobs."cancel"(
	"run_id" bigint
) RETURNS bool
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'cancel_wrapper';

CREATE OR REPLACE FUNCTION jobs."pause"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'pause_wrapper';

CREATE OR REPLACE FUNCTION jobs."result"(
	"run_id" bigint
) RETURNS SETOF jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'result_wrapper';

CREATE OR REPLACE FUNCTION jobs."resume"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'resume_wrapper';

CREATE OR REPLACE FUNCTION jobs."run_now"(
	"name" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'run_now_wrapper';

CREATE OR REPLACE FUNCTION jobs."unschedule"(
	"name" TEXT
) RETURNS bool
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'unschedule_wrapper';

-- Functions in a view run with the caller's rights: 0.1.0's REVOKE kept
-- non-superusers out of jobs.workers. Like pg_stat_activity, it is for all.
GRANT EXECUTE ON FUNCTION jobs._workers() TO PUBLIC;

CREATE OR REPLACE VIEW jobs.workers AS
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
-- row-level security does there: the daemons of roles the caller is a
-- member of. jobs._daemons() filters the shared-memory status the same way.
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
 WHERE pg_catalog.pg_has_role(d.owner::pg_catalog.oid, 'MEMBER');
COMMENT ON VIEW jobs.daemon_status IS
  'Each daemon you can see: running, starting, waiting_restart, stopping, stopped or not_on_this_node; pid, since, restarts, last exit, next restart.';
GRANT SELECT ON jobs.daemon_status TO PUBLIC;
