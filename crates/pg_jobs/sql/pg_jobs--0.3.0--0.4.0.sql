-- pg_jobs 0.3.0 -> 0.4.0, the one upgrade script of the 0.4 wave: every
-- change of this wave's schema goes here, and the integration test
-- `upgrade_from_0_1_0_matches_a_fresh_install` checks that a database
-- upgraded through it equals a fresh install.
-- Safe with workers live: the new library serves 0.3.0 and 0.4.0 alike.

\echo Use "ALTER EXTENSION pg_jobs UPDATE TO '0.4.0'" to load this file. \quit

-- jobs._next_due read the clock while declared STABLE; it now takes the
-- instant as an argument (jobs.job_status passes now()).
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
AS 'MODULE_PATHNAME', '_next_due_wrapper';

CREATE OR REPLACE VIEW jobs.job_status WITH (security_invoker = true) AS
SELECT j.id, j.name, j.owner, j.schedule, j.timezone, j.database, j.enabled,
       l.status AS last_status,
       l.started_at AS last_started_at,
       l.finished_at OPERATOR(pg_catalog.-) l.started_at AS last_duration,
       CASE WHEN j.enabled THEN
         jobs._next_due(j.schedule, j.once_at, j.timezone, j.created_at,
                        EXISTS (SELECT 1 FROM jobs.run f WHERE f.job_id OPERATOR(pg_catalog.=) j.id),
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
