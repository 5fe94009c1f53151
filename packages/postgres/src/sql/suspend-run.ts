/**
 * Statements of `suspendRun`, run in this order inside one transaction.
 */

/**
 * Locks the run for the whole suspension and answers its epoch and status; the caller
 * rolls back unless the epoch is its own and the run is `running`.
 *
 * $1 run id.
 */
export const SUSPEND_LOCK_RUN = "SELECT lease_epoch, status FROM runs WHERE id = $1 FOR UPDATE";

/**
 * Writes the open steps (sleep/wait/invoke `waiting`, or `retrying` with the failed attempt
 * and its error). An existing open row is replaced; a final row (completed/failed) stands,
 * whatever this pass believed.
 *
 * $1 run id, $2 keys, $3 ids, $4 kinds, $5 statuses, $6 attempts, $7 errors (JSON text),
 * $8 wake times, $9 now.
 */
export const SUSPEND_UPSERT_STEPS = `
INSERT INTO steps (run_id, step_key, step_id, kind, status, attempt, error, wake_at, created_at)
SELECT $1, key, id, kind::step_kind, status::step_status, attempt, error::jsonb, wake_at, $9
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::timestamptz[])
  AS input (key, id, kind, status, attempt, error, wake_at)
ON CONFLICT (run_id, step_key) DO UPDATE SET
  step_id = excluded.step_id,
  kind = excluded.kind,
  status = excluded.status,
  attempt = excluded.attempt,
  error = excluded.error,
  wake_at = excluded.wake_at
WHERE steps.status IN ('waiting', 'retrying')`;

/**
 * Opens the waits, only for steps that are (still) waiting: a wait resolved before this
 * suspension was written must not be reopened.
 *
 * $1 run id, $2 keys, $3 ids, $4 event names, $5 expressions, $6 timeouts, $7 now, $8 condition
 * indexes (alternatives), $9 match paths, $10 match values.
 */
export const SUSPEND_INSERT_WAITS = `
INSERT INTO waits (run_id, step_key, step_id, event_name, expression, timeout_at, created_at, alternative, match_path, match_value)
SELECT $1, input.key, input.id, input.event_name, input.expression, input.timeout_at, $7, input.alternative, input.match_path, input.match_value
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $8::integer[], $9::text[], $10::text[])
  AS input (key, id, event_name, expression, timeout_at, alternative, match_path, match_value)
JOIN steps ON steps.run_id = $1 AND steps.step_key = input.key AND steps.status = 'waiting'
ON CONFLICT (run_id, step_key, alternative) DO NOTHING`;

/**
 * Decides when and how the run sleeps, from all its steps as they now stand, and releases
 * the lease (the epoch stays: the next claim bumps it).
 *
 * - wake at `now` when a step this pass was waiting on ($2: pending keys and the keys just
 *   written) is already final (an event or a child's result arrived meanwhile), or when
 *   nothing is open at all (a suspension with nothing to wait for must not sleep forever);
 * - else at the earliest open wake time, or never (NULL) when every open step waits
 *   without a timeout (an invoke with none);
 * - `waiting` while a wait or invoke is open (something outside can wake it), else `sleeping`.
 *
 * $1 run id, $2 keys to check, $3 now.
 */
export const SUSPEND_SET_WAKE = `
WITH open AS (
  SELECT
    coalesce(bool_or(status IN ('completed', 'failed') AND step_key = ANY($2::text[])), false) AS resolved,
    coalesce(bool_or(status IN ('waiting', 'retrying')), false) AS any_open,
    min(wake_at) FILTER (WHERE status IN ('waiting', 'retrying')) AS next_wake,
    coalesce(bool_or(status = 'waiting' AND kind IN ('wait', 'invoke')), false) AS waiting
  FROM steps WHERE run_id = $1
)
UPDATE runs SET
  status = CASE WHEN open.waiting THEN 'waiting' ELSE 'sleeping' END,
  wake_at = CASE WHEN open.resolved OR NOT open.any_open THEN $3::timestamptz ELSE open.next_wake END,
  lease_owner = NULL,
  lease_expires_at = NULL
FROM open
WHERE runs.id = $1
RETURNING runs.wake_at`;
