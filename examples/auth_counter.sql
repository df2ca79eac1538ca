-- auth_counter: a pg_jobs daemon that samples pg_stat_activity every second
-- into a table of client sessions per database and role.
--
--   psql -d app -f examples/auth_counter.sql
--   SELECT * FROM auth_counter.latest;
--
-- The daemon is a procedure that never returns: each round samples,
-- commits (the samples are visible at once, and pg_jobs applies a reloaded
-- configuration), then sleeps. If it fails, pg_jobs restarts it with
-- backoff; jobs.stop_daemon('auth_counter') cancels it.

CREATE SCHEMA IF NOT EXISTS auth_counter;

CREATE TABLE IF NOT EXISTS auth_counter.sessions (
    sampled_at timestamptz NOT NULL,
    database   name NOT NULL,
    role       name NOT NULL,
    sessions   int NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_sampled_at ON auth_counter.sessions (sampled_at);

CREATE OR REPLACE PROCEDURE auth_counter.run(every interval DEFAULT '1 second', keep interval DEFAULT '1 day')
LANGUAGE plpgsql AS $$
DECLARE
    sample_time timestamptz;
BEGIN
    LOOP
        sample_time := clock_timestamp();
        INSERT INTO auth_counter.sessions (sampled_at, database, role, sessions)
        SELECT sample_time, datname, usename, count(*)
          FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND datname IS NOT NULL AND usename IS NOT NULL
         GROUP BY datname, usename;
        DELETE FROM auth_counter.sessions WHERE sampled_at < clock_timestamp() - keep;
        COMMIT;
        PERFORM pg_sleep(extract(epoch FROM every));
    END LOOP;
END $$;

-- The most recent sample.
CREATE OR REPLACE VIEW auth_counter.latest AS
SELECT database, role, sessions, sampled_at
  FROM auth_counter.sessions
 WHERE sampled_at = (SELECT max(sampled_at) FROM auth_counter.sessions)
 ORDER BY database, role;

SELECT jobs.daemon('auth_counter', 'CALL auth_counter.run()');
