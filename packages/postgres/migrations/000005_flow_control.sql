-- 000005_flow_control: what flow control needs from a run, evaluated once from its event when it
-- is created: its concurrency key values, its throttle key and its priority (`flow`, NULL for
-- runs of functions without such controls, so the common insert writes nothing more). Every
-- process that queues the run again (a wake-up, the reconciler after a FLUSHALL) reads the keys
-- here instead of evaluating the function's expressions, which it may not even have.
-- Append-only: add the next numbered file instead of editing this.
ALTER TABLE runs ADD COLUMN flow jsonb;

-- `idempotency`: one run per (function, key) while the key's 24 h window is open. An expired row
-- is taken over by the next run with that key (as event_keys are), so the window needs no sweep
-- to reopen. The run id is informational (which run holds the key).
CREATE TABLE idempotency_keys (
  function_id text NOT NULL,
  key text NOT NULL,
  run_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (function_id, key)
);

-- `rateLimit` (and `singleton: skip`) record what they turn away: a run created `skipped`, ended
-- at once with the reason as its error, so that the API lists every skip. The status checks of
-- 000001 gain it (added NOT VALID, then validated: the scan takes no lock that blocks writes).
ALTER TABLE runs DROP CONSTRAINT runs_status_check, DROP CONSTRAINT runs_check3, DROP CONSTRAINT runs_check4;
ALTER TABLE runs
  ADD CONSTRAINT runs_status_check CHECK (status IN ('queued', 'running', 'sleeping', 'waiting', 'completed', 'failed', 'cancelled', 'skipped')) NOT VALID,
  ADD CONSTRAINT runs_ended_check CHECK ((status IN ('completed', 'failed', 'cancelled', 'skipped')) = (ended_at IS NOT NULL)) NOT VALID,
  ADD CONSTRAINT runs_ended_wake_check CHECK (status NOT IN ('completed', 'failed', 'cancelled', 'skipped') OR wake_at IS NULL) NOT VALID;
ALTER TABLE runs VALIDATE CONSTRAINT runs_status_check;
ALTER TABLE runs VALIDATE CONSTRAINT runs_ended_check;
ALTER TABLE runs VALIDATE CONSTRAINT runs_ended_wake_check;

-- Waits: the conditions of one `step.waitForAny` (`alternative`, one row each, closed together),
-- `cancelOn` entries (`kind` 'cancel', step key `cancel:<n>`, no step row: hence no foreign key
-- to steps; every path that ends a run deletes its waits by run id), and `match` stored as the
-- field path and the trigger's value there (canonical JSON), indexed: an event is matched by
-- looking its own field values up, so it reads the waits it matches, not every open wait of its
-- name. Waits without a `match` stay found by name (their CEL expression is evaluated per wait).
ALTER TABLE waits DROP CONSTRAINT waits_run_id_step_key_fkey;
ALTER TABLE waits DROP CONSTRAINT waits_pkey;
ALTER TABLE waits
  ADD COLUMN alternative integer NOT NULL DEFAULT 0,
  ADD COLUMN kind text NOT NULL DEFAULT 'step' CHECK (kind IN ('step', 'cancel')),
  ADD COLUMN match_path text,
  ADD COLUMN match_value text;
ALTER TABLE waits ADD PRIMARY KEY (run_id, step_key, alternative);
CREATE INDEX waits_match_idx ON waits (event_name, match_path, match_value) WHERE match_path IS NOT NULL;
CREATE INDEX waits_unkeyed_idx ON waits (event_name) WHERE match_path IS NULL;

-- `timeouts`: the run's deadline, when it has one: `start` from its creation while it has not
-- started, then `finish` from its first start (the run's flow carries `finishMs` for the claim
-- to set it). A claim never takes a run past its deadline; the engine cancels such runs.
ALTER TABLE runs ADD COLUMN timeout_at timestamptz;
CREATE INDEX runs_timeout_idx ON runs (timeout_at) WHERE timeout_at IS NOT NULL AND status IN ('queued', 'running', 'sleeping', 'waiting');

-- `singleton`: the run's key (NULL for other functions); open runs of a (function, key) are found
-- through this index while an ingest holds the key's advisory lock, so two ingests never both
-- see "none open".
ALTER TABLE runs ADD COLUMN singleton_key text;
CREATE INDEX runs_singleton_idx ON runs (function_id, singleton_key) WHERE singleton_key IS NOT NULL AND status IN ('queued', 'running', 'sleeping', 'waiting');

-- `debounce`: while a debounced run has not started, a new event of its (function, key) takes it
-- over (the run's event becomes the newest, its start moves to the end of the quiet period, capped
-- by `debounce_cap`, the first event's time plus `timeout`). One such pending run per key: the
-- partial unique index is the upsert's arbiter; a claim takes the run out of it.
ALTER TABLE runs ADD COLUMN debounce_key text, ADD COLUMN debounce_cap timestamptz;
CREATE UNIQUE INDEX runs_debounce_idx ON runs (function_id, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'queued' AND started_at IS NULL;
