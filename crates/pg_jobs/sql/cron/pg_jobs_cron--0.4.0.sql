-- pg_jobs_cron 0.4.0: pg_cron 1.6's SQL interface in schema cron, over
-- pg_jobs' own jobs (jobs.job) and runs (jobs.run). The functions are C
-- functions of the pg_jobs library (src/cron/); docs/pg_cron.md is the
-- reference, with what differs from pg_cron.

\echo Use "CREATE EXTENSION pg_jobs_cron" to load this file. \quit

-- pg_cron's own schema (pg_cron installed here, or left behind) would be
-- taken over silently or fail half-way: say what to do instead.
DO $$
BEGIN
  -- Its views read what pg_jobs 0.4.0 records (a success's command tag).
  IF pg_catalog.to_regprocedure('jobs._acts_for(oid)') IS NULL THEN
    RAISE EXCEPTION 'pg_jobs_cron needs pg_jobs 0.4.0 or later in this database'
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'ALTER EXTENSION pg_jobs UPDATE;';
  END IF;
  IF pg_catalog.to_regnamespace('cron') IS NOT NULL THEN
    RAISE EXCEPTION 'schema "cron" already exists'
      USING ERRCODE = 'duplicate_object',
            DETAIL = 'pg_jobs_cron creates schema cron itself; pg_cron (or an earlier schema of that name) has one here.',
            HINT = 'To move from pg_cron: SELECT * FROM jobs.import_pg_cron(); then DROP EXTENSION pg_cron; then CREATE EXTENSION pg_jobs_cron (docs/pg_cron.md).';
  END IF;
END
$$;

CREATE SCHEMA cron;
COMMENT ON SCHEMA cron IS 'pg_cron''s interface over pg_jobs (extension pg_jobs_cron).';
-- As pg_cron: no USAGE for PUBLIC; a superuser grants it to the roles that
-- may use cron.* (GRANT USAGE ON SCHEMA cron TO ...).

CREATE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_schedule_wrapper';
COMMENT ON FUNCTION cron.schedule(text, text) IS
  'Schedule a job without a name, as you, in this database; pg_cron''s schedule grammar. Returns its id.';

CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_schedule_named_wrapper';
COMMENT ON FUNCTION cron.schedule(text, text, text) IS
  'Schedule your job of that name in this database, or give it this schedule and command (its active flag is kept). Returns its id.';

CREATE FUNCTION cron.schedule_in_database(job_name text, schedule text, command text, database text,
                                          username text DEFAULT NULL, active boolean DEFAULT true)
  RETURNS bigint
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_schedule_in_database_wrapper';
COMMENT ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) IS
  'Schedule a job of that name to run in another database (as another user: superusers only). Not executable by PUBLIC until granted, as in pg_cron.';
REVOKE ALL ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean) FROM PUBLIC;

CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_unschedule_wrapper';
COMMENT ON FUNCTION cron.unschedule(bigint) IS
  'Remove your job with this id (superusers: any job). Its run history stays.';

CREATE FUNCTION cron.unschedule(job_name text) RETURNS boolean
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_unschedule_named_wrapper';
COMMENT ON FUNCTION cron.unschedule(text) IS
  'Remove your job of this name. Its run history stays.';

CREATE FUNCTION cron.alter_job(job_id bigint, schedule text DEFAULT NULL, command text DEFAULT NULL,
                               database text DEFAULT NULL, username text DEFAULT NULL,
                               active boolean DEFAULT NULL)
  RETURNS void
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_alter_job_wrapper';
COMMENT ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) IS
  'Change the given settings of your job (NULL: unchanged; username: superusers only). Not executable by PUBLIC until granted, as in pg_cron.';
REVOKE ALL ON FUNCTION cron.alter_job(bigint, text, text, text, text, boolean) FROM PUBLIC;

-- pg_cron's rule for both views: a user sees the rows of its own jobs
-- (owner = current_user exactly, not groups); superusers all.
CREATE FUNCTION cron._mine(owner oid) RETURNS boolean
  LANGUAGE sql STABLE PARALLEL SAFE
  SET search_path = pg_catalog, pg_temp
  AS $$ SELECT r.oid OPERATOR(pg_catalog.=) owner OR r.rolsuper
          FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER $$;
COMMENT ON FUNCTION cron._mine(oid) IS
  'Internal: whether the current user sees rows of this owner in cron.job and cron.job_run_details (its own; superusers all).';

CREATE VIEW cron.job AS
SELECT j.id AS jobid, j.schedule, j.command,
       'localhost'::text AS nodename,
       pg_catalog.current_setting('port')::int4 AS nodeport,
       j.database::text AS database,
       r.rolname::text AS username,
       j.enabled AS active,
       j.name AS jobname
  FROM jobs.job j
  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) j.owner::pg_catalog.oid
 WHERE cron._mine(r.oid);
COMMENT ON VIEW cron.job IS
  'pg_cron''s job table over pg_jobs'' jobs: your jobs (superusers: all). Superusers may UPDATE (schedule, command, database, username, active) and DELETE rows.';
GRANT SELECT ON cron.job TO PUBLIC;

CREATE FUNCTION cron._job_changed() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
BEGIN
  IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
    PERFORM cron.unschedule(OLD.jobid);
    RETURN OLD;
  END IF;
  IF NEW.jobid IS DISTINCT FROM OLD.jobid OR NEW.jobname IS DISTINCT FROM OLD.jobname
     OR NEW.nodename IS DISTINCT FROM OLD.nodename OR NEW.nodeport IS DISTINCT FROM OLD.nodeport THEN
    RAISE EXCEPTION 'cannot change jobid, jobname, nodename or nodeport of a job'
      USING ERRCODE = 'feature_not_supported',
            HINT = 'Unschedule the job and schedule it again under the new name; pg_jobs runs jobs on this server only.';
  END IF;
  IF ROW(NEW.schedule, NEW.command, NEW.database, NEW.username, NEW.active)
     IS DISTINCT FROM ROW(OLD.schedule, OLD.command, OLD.database, OLD.username, OLD.active) THEN
    PERFORM cron.alter_job(OLD.jobid,
      CASE WHEN NEW.schedule IS DISTINCT FROM OLD.schedule THEN NEW.schedule END,
      CASE WHEN NEW.command IS DISTINCT FROM OLD.command THEN NEW.command END,
      CASE WHEN NEW.database IS DISTINCT FROM OLD.database THEN NEW.database END,
      CASE WHEN NEW.username IS DISTINCT FROM OLD.username THEN NEW.username END,
      CASE WHEN NEW.active IS DISTINCT FROM OLD.active THEN NEW.active END);
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION cron._job_changed() IS
  'Internal: an UPDATE or DELETE of cron.job (superusers; pg_cron grants neither to others) as cron.alter_job or cron.unschedule.';
CREATE TRIGGER job_changed INSTEAD OF UPDATE OR DELETE ON cron.job
  FOR EACH ROW EXECUTE FUNCTION cron._job_changed();

CREATE VIEW cron.job_run_details AS
SELECT r.job_id AS jobid, r.id AS runid, r.pid AS job_pid,
       r.database::text AS database, o.rolname::text AS username, r.command,
       CASE WHEN r.status OPERATOR(pg_catalog.=) ANY (ARRAY['starting', 'running', 'succeeded'])
            THEN r.status ELSE 'failed' END AS status,
       CASE WHEN r.status OPERATOR(pg_catalog.=) 'succeeded' THEN r.command_tag
            WHEN r.status OPERATOR(pg_catalog.=) ANY (ARRAY['starting', 'running']) THEN NULL
            ELSE r.message END AS return_message,
       r.started_at AS start_time, r.finished_at AS end_time
  FROM jobs.run r
  JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) r.owner::pg_catalog.oid
 WHERE r.job_id IS NOT NULL
   AND r.status OPERATOR(pg_catalog.<>) ALL (ARRAY['queued', 'skipped', 'waiting'])
   AND cron._mine(o.oid);
COMMENT ON VIEW cron.job_run_details IS
  'pg_cron''s run log over pg_jobs'' run history: the runs of your jobs that started (superusers: all). status: starting, running, succeeded, failed; return_message: the command tag or the error. DELETE removes your finished runs.';
GRANT SELECT, DELETE ON cron.job_run_details TO PUBLIC;

CREATE FUNCTION cron._delete_run(runid bigint) RETURNS boolean
  LANGUAGE c VOLATILE AS 'MODULE_PATHNAME', 'cron_delete_run_wrapper';
COMMENT ON FUNCTION cron._delete_run(bigint) IS
  'Internal: deletes a finished run of yours (superusers: any) with its kept rows, for DELETE FROM cron.job_run_details.';

CREATE FUNCTION cron._run_deleted() RETURNS trigger
  LANGUAGE plpgsql
  SET search_path = pg_catalog, pg_temp
  AS $$
BEGIN
  -- A run not finished yet stays (and is not counted).
  IF cron._delete_run(OLD.runid) THEN
    RETURN OLD;
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION cron._run_deleted() IS
  'Internal: a DELETE from cron.job_run_details as cron._delete_run.';
CREATE TRIGGER run_deleted INSTEAD OF DELETE ON cron.job_run_details
  FOR EACH ROW EXECUTE FUNCTION cron._run_deleted();
