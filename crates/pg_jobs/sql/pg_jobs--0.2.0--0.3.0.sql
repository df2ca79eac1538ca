-- pg_jobs 0.2.0 -> 0.3.0: a cheaper run history. Every run writes its
-- jobs.run row three times (queued, claimed, finished) and often a
-- jobs.run_result row; 0.3.0 takes out what each of those writes paid for
-- nothing (measured on a 20,000-run burst; see the README's benchmarks):
--  * the CHECK on jobs.run.status, which PostgreSQL re-reads and re-plans
--    for every statement that writes the row (only pg_jobs writes it);
--  * the foreign key from jobs.run_result to jobs.run, a query per stored
--    result (the history purge now deletes a run's rows with the run);
--  * index entries for rows that never need them: run_job_started covers
--    job runs only, run_finished_at finished runs only;
--  * the SET clause on jobs.submit, which kept PostgreSQL from inlining it
--    (its body is now schema-qualified instead).
-- Safe with workers live: the new library serves 0.2.0 and 0.3.0 alike.
-- The integration test `upgrade_from_0_1_0_matches_a_fresh_install` checks
-- that a database upgraded from 0.1.0 through 0.2.0 equals a fresh install.

\echo Use "ALTER EXTENSION pg_jobs UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE jobs.run DROP CONSTRAINT run_status_check;
ALTER TABLE jobs.run_result DROP CONSTRAINT run_result_run_id_fkey;

DROP INDEX jobs.run_job_started;
CREATE INDEX run_job_started ON jobs.run (job_id, started_at) WHERE job_id IS NOT NULL;
DROP INDEX jobs.run_finished_at;
CREATE INDEX run_finished_at ON jobs.run (finished_at) WHERE finished_at IS NOT NULL;

CREATE OR REPLACE FUNCTION jobs.submit(
    command text,
    database name DEFAULT pg_catalog.current_database(),
    run_as pg_catalog.regrole DEFAULT NULL,
    start_at timestamptz DEFAULT NULL,
    timeout interval DEFAULT NULL,
    max_attempts int DEFAULT 1,
    priority int DEFAULT 0)
RETURNS bigint LANGUAGE sql VOLATILE
AS $$ SELECT jobs._submit(command, database::pg_catalog.text, run_as::pg_catalog.oid, start_at,
                         (EXTRACT(EPOCH FROM timeout) OPERATOR(pg_catalog.*) 1000)::pg_catalog.int8,
                         max_attempts, priority) $$;
