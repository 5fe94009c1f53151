import { RUN_COLUMNS } from "../map-rows.js";

/**
 * Claims a due run and settles its due suspensions, in one statement (so one transaction).
 *
 * $1 run id, $2 worker id, $3 now, $4 lease end.
 *
 * - `claimed`: only a queued/sleeping/waiting run whose `wake_at` has passed; the epoch bump
 *   is what fences off the previous owner's late commits.
 * - `due`: sleeps that ended complete with `null`; waits that timed out complete with `null`
 *   (what `step.waitForEvent` answers on timeout); invokes that timed out fail, for good,
 *   with INVOKE_TIMEOUT (`ErrorCode.InvokeTimeout`).
 * - `timed_out`: the timed-out waits stop matching events.
 * - The final SELECT answers the claimed run with its event (`event_` columns), which saves
 *   the worker a read. LEFT JOIN: a missing event (only if the schema was bypassed) must not
 *   hide a claim that did happen; the caller reports it. The statement's snapshot sees the
 *   event whenever it sees the run, since both are written by one ingest.
 *
 * Data-modifying CTEs run to completion whether or not the final SELECT reads them, and only
 * touch rows of a run that `claimed` returned. A concurrent `resolveWait` that completed a
 * wait first wins: the re-check of `status = 'waiting'` after its commit drops the row here.
 */
export const CLAIM_RUN = `
WITH claimed AS (
  UPDATE runs SET
    status = 'running',
    lease_epoch = lease_epoch + 1,
    lease_owner = $2,
    lease_expires_at = $4,
    started_at = coalesce(started_at, $3)
  WHERE id = $1 AND status IN ('queued', 'sleeping', 'waiting') AND wake_at <= $3
  RETURNING ${RUN_COLUMNS}
),
due AS (
  UPDATE steps SET
    status = CASE WHEN steps.kind = 'invoke' THEN 'failed'::step_status ELSE 'completed'::step_status END,
    output = CASE WHEN steps.kind = 'invoke' THEN NULL ELSE 'null'::jsonb END,
    error = CASE WHEN steps.kind = 'invoke' THEN jsonb_build_object(
      'name', 'StepwiseError',
      'code', 'INVOKE_TIMEOUT',
      'message', format('step.invoke("%s") timed out', steps.step_id),
      'nonRetriable', true
    ) END,
    -- wake_at stays: the planned time next to ended_at shows how late the wake-up was.
    ended_at = $3
  FROM claimed
  WHERE steps.run_id = claimed.id
    AND steps.status = 'waiting'
    AND steps.kind IN ('sleep', 'wait', 'invoke')
    AND steps.wake_at <= $3
  RETURNING steps.step_key, steps.kind
),
timed_out AS (
  DELETE FROM waits USING due
  WHERE waits.run_id = $1 AND waits.step_key = due.step_key AND due.kind = 'wait'
)
SELECT claimed.*, events.key AS event_key, events.name AS event_name, events.data AS event_data, events.ts AS event_ts
FROM claimed LEFT JOIN events ON events.id = claimed.event_id`;
