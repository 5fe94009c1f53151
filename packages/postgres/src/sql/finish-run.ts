/**
 * Statements of `finishRun`, run in this order inside one transaction.
 */

/**
 * Ends the run if the lease is still the caller's, answering what the rest needs.
 *
 * $1 run id, $2 lease epoch, $3 status (completed/failed), $4 output (JSON text), $5 error
 * (JSON text), $6 now.
 */
export const FINISH_RUN = `
UPDATE runs SET
  status = $3,
  output = $4::jsonb,
  error = $5::jsonb,
  ended_at = $6,
  wake_at = NULL,
  lease_owner = NULL,
  lease_expires_at = NULL
WHERE id = $1 AND lease_epoch = $2 AND status = 'running'
RETURNING function_id, parent_run_id, parent_step_key`;

/**
 * A finished run's waits can no longer be resolved.
 *
 * $1 run id.
 */
export const FINISH_CLOSE_WAITS = "DELETE FROM waits WHERE run_id = $1";

/**
 * Hands a child's result to the parent's `step.invoke` if it still waits (it may have timed
 * out), and makes the parent runnable now if it is suspended. A running parent is not
 * touched: its next suspension sees the step final (pending keys) and wakes at once.
 * LEAST keeps an earlier wake time (and replaces NULL, "never").
 *
 * $1 parent run id, $2 parent step key, $3 status, $4 output (JSON text), $5 error (JSON
 * text), $6 now. Answers the parent's id when it was made runnable.
 */
export const FINISH_RESOLVE_PARENT = `
WITH resolved AS (
  UPDATE steps SET status = $3::step_status, output = $4::jsonb, error = $5::jsonb, wake_at = NULL, ended_at = $6
  WHERE run_id = $1 AND step_key = $2 AND kind = 'invoke' AND status = 'waiting'
  RETURNING run_id
)
UPDATE runs SET wake_at = LEAST(runs.wake_at, $6)
FROM resolved
WHERE runs.id = resolved.run_id AND runs.status IN ('waiting', 'sleeping')
RETURNING runs.id`;
