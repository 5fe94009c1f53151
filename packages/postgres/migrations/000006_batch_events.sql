-- `batchEvents`: one run for up to `maxSize` events of a function (and batch key). A run of a
-- batch lists its events, in arrival order, in `event_ids`; `event_id` stays its first event
-- (so the foreign key, `event`, and everything that reads one event keep working). A run is
-- open while `batch_key` is set: an ingest appends events to it under the key's advisory lock;
-- it closes (the key cleared) when it is full or a worker claims it, and the next event opens a
-- new one. One open batch per (function, key).
ALTER TABLE runs ADD COLUMN batch_key text, ADD COLUMN event_ids text[];
CREATE UNIQUE INDEX runs_open_batch_idx ON runs (function_id, batch_key) WHERE batch_key IS NOT NULL AND status = 'queued';
-- `GET /v1/events/:id/runs` finds a batch by any of its events.
CREATE INDEX runs_event_ids_idx ON runs USING gin (event_ids) WHERE event_ids IS NOT NULL;
