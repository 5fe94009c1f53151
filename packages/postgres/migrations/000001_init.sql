-- 000001_init: events, runs, steps, waits and cron ticks (the RunStore of @stepwise/engine).
-- Append-only: never edit a migration that has shipped; add the next numbered file instead.
-- Times are timestamptz written from the engine's Clock; no default uses now() for decisions.

-- pgvector is loaded here so that later migrations (RAG chunks, agent memory) can use `vector`.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE events (
  id text PRIMARY KEY,
  -- The sender's own id; deduplication goes through event_keys, so this is informational.
  key text,
  name text NOT NULL CHECK (name <> ''),
  data jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
  ts timestamptz NOT NULL,
  received_at timestamptz NOT NULL,
  -- NULL while open waits for this event's name may still need matching against it: set at
  -- ingest when no wait for the name exists, else once the engine has matched it. The
  -- reconciler matches events left NULL by a crash, so no accepted event misses a wait.
  waits_matched_at timestamptz
);
CREATE INDEX events_unmatched_idx ON events (received_at) WHERE waits_matched_at IS NULL;

-- One row per sender key while its 24 h window is open; an expired row is taken over by the
-- next event with that key (see ingest). Deferred so that a batch can claim keys before it
-- inserts the events they point to.
CREATE TABLE event_keys (
  key text PRIMARY KEY,
  event_id text NOT NULL REFERENCES events (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
  expires_at timestamptz NOT NULL
);

CREATE TABLE runs (
  id text PRIMARY KEY,
  function_id text NOT NULL,
  event_id text NOT NULL REFERENCES events (id),
  status text NOT NULL CHECK (status IN ('queued', 'running', 'sleeping', 'waiting', 'completed', 'failed', 'cancelled')),
  attempt integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
  lease_epoch bigint NOT NULL DEFAULT 0 CHECK (lease_epoch >= 0),
  lease_owner text,
  lease_expires_at timestamptz,
  wake_at timestamptz,
  output jsonb,
  error jsonb,
  parent_run_id text REFERENCES runs (id),
  parent_step_key text,
  created_at timestamptz NOT NULL,
  started_at timestamptz,
  ended_at timestamptz,
  -- One run per function and triggering event, whatever retries or duplicate deliveries happen.
  UNIQUE (function_id, event_id),
  CHECK ((parent_run_id IS NULL) = (parent_step_key IS NULL)),
  -- A running run has an owner and a lease end; nothing else may hold one.
  CHECK ((status = 'running') = (lease_owner IS NOT NULL)),
  CHECK (status <> 'running' OR lease_expires_at IS NOT NULL),
  -- Ended runs have an end time and no wake-up; queued runs always have a wake-up.
  CHECK ((status IN ('completed', 'failed', 'cancelled')) = (ended_at IS NOT NULL)),
  CHECK (status NOT IN ('completed', 'failed', 'cancelled') OR wake_at IS NULL),
  CHECK (status <> 'queued' OR wake_at IS NOT NULL)
);

-- The scheduler's and the reconciler's scan: runnable runs by wake time.
CREATE INDEX runs_due_idx ON runs (wake_at) WHERE status IN ('queued', 'sleeping', 'waiting');
-- Lease recovery scans only running runs.
CREATE INDEX runs_lease_idx ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_event_idx ON runs (event_id);
CREATE INDEX runs_created_idx ON runs (created_at DESC, id DESC);
CREATE INDEX runs_function_created_idx ON runs (function_id, created_at DESC, id DESC);
CREATE INDEX runs_parent_idx ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;

-- One row per step key: its final result (completed/failed), or an open sleep/wait/invoke
-- (waiting), or a failed attempt that will run again (retrying).
--
-- Every step commit is one INSERT here (the hot path), so this table is kept cheap to write,
-- deliberately (figures measured on PGlite, where a bare single-row INSERT costs ~100 µs):
-- - kind and status are enum types rather than CHECKs: the same guarantee at input time,
--   while a table's CHECK expressions are prepared again by every statement (~35 µs);
-- - no foreign key on run_id: every write to steps already locks its run row (commitStep's
--   lease check FOR SHARE, suspendRun's FOR UPDATE, claimRun's UPDATE), which is the check the
--   key's trigger would repeat (~15 µs). Deleting a run must delete its steps explicitly.
CREATE TYPE step_kind AS ENUM ('run', 'sleep', 'wait', 'invoke', 'send');
CREATE TYPE step_status AS ENUM ('completed', 'failed', 'waiting', 'retrying');

CREATE TABLE steps (
  run_id text NOT NULL,
  step_key text NOT NULL,
  step_id text NOT NULL,
  kind step_kind NOT NULL,
  status step_status NOT NULL,
  output jsonb,
  error jsonb,
  attempt integer NOT NULL DEFAULT 0,
  wake_at timestamptz,
  created_at timestamptz NOT NULL,
  ended_at timestamptz,
  -- One recorded result per step: the exactly-once guarantee of a step's result.
  PRIMARY KEY (run_id, step_key)
);

-- Open step.waitForEvent calls, found by event name when an event arrives.
CREATE TABLE waits (
  run_id text NOT NULL,
  step_key text NOT NULL,
  step_id text NOT NULL,
  event_name text NOT NULL,
  expression text,
  timeout_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  PRIMARY KEY (run_id, step_key),
  FOREIGN KEY (run_id, step_key) REFERENCES steps (run_id, step_key) ON DELETE CASCADE
);

CREATE INDEX waits_event_name_idx ON waits (event_name);

-- One row per (cron function, scheduled time): schedulers on many machines start a tick once.
CREATE TABLE cron_ticks (
  function_id text NOT NULL,
  scheduled_for timestamptz NOT NULL,
  run_id text REFERENCES runs (id) ON DELETE SET NULL,
  PRIMARY KEY (function_id, scheduled_for)
);
