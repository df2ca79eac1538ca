-- Views over functions; created after everything else.

CREATE VIEW jobs.workers AS
SELECT w.kind,
       w.pid,
       d.datname AS database,
       w.roleid::pg_catalog.regrole AS role,
       w.job_id,
       w.run_id,
       w.state,
       w.since
  FROM jobs._workers() w
  LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) w.datid;
COMMENT ON VIEW jobs.workers IS
  'Every live pg_jobs worker (launcher, schedulers, executors) from the shared-memory registry.';
GRANT SELECT ON jobs.workers TO PUBLIC;
-- The view runs the function with its owner's rights; nobody needs it directly.
REVOKE ALL ON FUNCTION jobs._workers() FROM PUBLIC;

COMMENT ON FUNCTION jobs.submit(text) IS
  'Queue a command to run in the background as the calling role, after the calling transaction commits. Returns the run id.';
