-- pg_jobs schema: run history. Created before the functions.
--
-- Every operator in a policy or view is schema-qualified (OPERATOR(pg_catalog.=))
-- so a hostile search_path cannot redirect it.

CREATE TABLE jobs.run (
    id            bigserial PRIMARY KEY,
    owner         pg_catalog.regrole NOT NULL,
    command       text NOT NULL,
    status        text NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'crashed')),
    submitted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    pid           int,
    sqlstate      text,
    message       text
);
COMMENT ON TABLE jobs.run IS
  'pg_jobs run history: one row per execution of a command. Written only by pg_jobs; each role sees its own runs.';
COMMENT ON COLUMN jobs.run.owner IS 'The role the command runs as (compared by OID).';
COMMENT ON COLUMN jobs.run.status IS
  'queued -> starting -> running -> succeeded | failed | crashed (its worker vanished: kill, crash, restart).';
COMMENT ON COLUMN jobs.run.pid IS 'Process id of the executor that ran it.';
COMMENT ON COLUMN jobs.run.sqlstate IS 'SQLSTATE of the error that failed the run.';

-- The scheduler looks for work here on every wake-up.
CREATE INDEX run_unfinished ON jobs.run (id) WHERE status IN ('queued', 'starting', 'running');

ALTER TABLE jobs.run ENABLE ROW LEVEL SECURITY;
CREATE POLICY run_owner ON jobs.run FOR SELECT
  USING (owner::pg_catalog.oid OPERATOR(pg_catalog.=)
         (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER));

GRANT USAGE ON SCHEMA jobs TO PUBLIC;
REVOKE ALL ON jobs.run FROM PUBLIC;
GRANT SELECT ON jobs.run TO PUBLIC;
