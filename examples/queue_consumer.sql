-- queue_consumer: pg_jobs daemons that work through an application's queue
-- table with FOR UPDATE SKIP LOCKED, so several consumers share the work
-- and each task is done exactly once.
--
--   psql -d app -f examples/queue_consumer.sql
--   INSERT INTO queue_demo.task (payload) SELECT 'task ' || g FROM generate_series(1, 1000) g;
--   SELECT done_by, count(*) FROM queue_demo.task GROUP BY done_by;
--
-- Each round takes up to `batch` undone tasks that no other consumer has
-- locked, does them, and commits; with nothing to do it sleeps briefly.

CREATE SCHEMA IF NOT EXISTS queue_demo;

CREATE TABLE IF NOT EXISTS queue_demo.task (
    id         bigserial PRIMARY KEY,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at    timestamptz,
    done_by    int
);
CREATE INDEX IF NOT EXISTS task_todo ON queue_demo.task (id) WHERE done_at IS NULL;

-- What "doing" a task leaves behind: one row per execution, so a task done
-- twice would show.
CREATE TABLE IF NOT EXISTS queue_demo.done_log (
    task_id bigint NOT NULL,
    done_by int NOT NULL,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE OR REPLACE PROCEDURE queue_demo.consume(batch int DEFAULT 10, idle interval DEFAULT '200 ms')
LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    LOOP
        WITH picked AS (
            SELECT id FROM queue_demo.task
             WHERE done_at IS NULL
             ORDER BY id
             LIMIT batch
               FOR UPDATE SKIP LOCKED
        ), done AS (
            UPDATE queue_demo.task t
               SET done_at = clock_timestamp(), done_by = pg_backend_pid()
              FROM picked
             WHERE t.id = picked.id
         RETURNING t.id
        )
        INSERT INTO queue_demo.done_log (task_id, done_by)
        SELECT id, pg_backend_pid() FROM done;
        GET DIAGNOSTICS n = ROW_COUNT;
        COMMIT;
        IF n = 0 THEN
            PERFORM pg_sleep(extract(epoch FROM idle));
        END IF;
    END LOOP;
END $$;

SELECT jobs.daemon('queue_consumer_1', 'CALL queue_demo.consume()');
SELECT jobs.daemon('queue_consumer_2', 'CALL queue_demo.consume()');
