-- 000004_reruns: the REST API reruns a run (a new run of the same event, optionally reusing the
-- step results recorded before a chosen step) and replays an event. A function runs once per
-- event on its own (the first run), so the one-run-per-(function, event) guarantee now covers
-- first runs only; every rerun names the run it repeats. Append-only: add the next file instead.
ALTER TABLE runs ADD COLUMN rerun_of text REFERENCES runs (id);
ALTER TABLE runs DROP CONSTRAINT runs_function_id_event_id_key;
CREATE UNIQUE INDEX runs_first_run_idx ON runs (function_id, event_id) WHERE rerun_of IS NULL;

-- The order in which steps were first recorded (a sleep or a retry when it began, a step when it
-- ended): "the steps before step N" of a rerun. Times cannot say it: two steps often share a
-- millisecond. No CACHE, so that values follow the order of the inserts across connections.
ALTER TABLE steps ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
