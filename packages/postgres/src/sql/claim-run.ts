import { epochMs, RUN_COLUMNS } from "../map-rows.js";

/**
 * What a due suspension becomes when its run is claimed: a sleep or a wait completes with
 * `null`, an invoke fails for good with INVOKE_TIMEOUT. Shared by {@link CLAIM_RUN} and
 * {@link CLAIM_RUNS}.
 */
const SETTLE_DUE_STEP = `status = CASE WHEN steps.kind = 'invoke' THEN 'failed'::step_status ELSE 'completed'::step_status END,
    output = CASE WHEN steps.kind = 'invoke' THEN NULL ELSE 'null'::jsonb END,
    error = CASE WHEN steps.kind = 'invoke' THEN jsonb_build_object(
      'name', 'StepwiseError',
      'code', 'INVOKE_TIMEOUT',
      'message', format('step.invoke("%s") timed out', steps.step_id),
      'nonRetriable', true
    ) END`;

/**
 * The `timeouts.finish` deadline of a run starting at `now`: its flow's `finishMs` from now, or
 * NULL when the flow has none. Shared by the claims and the eager-start insert.
 */
export const FINISH_AT = (now: string, flow = "flow") => `${now} + (${flow}->>'finishMs')::float8 * interval '1 millisecond'`;

/** A run's deadline after a claim at `now`: the finish deadline at its first start; afterwards, unchanged. */
const FINISH_DEADLINE = (now: string) => `CASE WHEN started_at IS NOT NULL THEN timeout_at ELSE ${FINISH_AT(now)} END`;

/**
 * Claims a due run and settles its due suspensions, in one statement (so one transaction).
 *
 * $1 run id, $2 worker id, $3 now, $4 lease end.
 *
 * - `claimed`: only a queued/sleeping/waiting run whose `wake_at` has passed; the epoch bump
 *   is what fences off the previous owner's late commits. An open batch closes (its key is
 *   cleared): an event arriving after the claim opens the next batch. An ingest that appended
 *   to it first holds its row lock, so the claim waits for that commit and returns the longer
 *   `event_ids`.
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
    started_at = coalesce(started_at, $3),
    timeout_at = ${FINISH_DEADLINE("$3")},
    batch_key = NULL
  WHERE id = $1 AND status IN ('queued', 'sleeping', 'waiting') AND wake_at <= $3 AND (timeout_at IS NULL OR timeout_at > $3)
  RETURNING ${RUN_COLUMNS}
),
due AS (
  UPDATE steps SET
    ${SETTLE_DUE_STEP},
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
SELECT claimed.*, events.key AS event_key, events.name AS event_name, events.data AS event_data, ${epochMs("events.ts", "event_ts")}
FROM claimed LEFT JOIN events ON events.id = claimed.event_id`;

/**
 * {@link CLAIM_RUN} for several runs at once (group commit), each with its own worker, now and
 * lease end. Runs not due (or claimed by another worker first) are left out of the answer.
 *
 * $1 run ids, $2 worker ids, $3 nows and $4 lease ends in epoch milliseconds; one element per
 * run, sorted by run id so that two batches lock shared runs in the same order.
 */
export const CLAIM_RUNS = `
WITH input AS (
  SELECT run_id, worker_id, to_timestamp(now_ms / 1000) AS now, to_timestamp(lease_ms / 1000) AS lease_end
  FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[]) AS input(run_id, worker_id, now_ms, lease_ms)
),
claimed AS (
  UPDATE runs SET
    status = 'running',
    lease_epoch = lease_epoch + 1,
    lease_owner = input.worker_id,
    lease_expires_at = input.lease_end,
    started_at = coalesce(started_at, input.now),
    timeout_at = ${FINISH_DEADLINE("input.now")},
    batch_key = NULL
  FROM input
  WHERE runs.id = input.run_id AND runs.status IN ('queued', 'sleeping', 'waiting') AND runs.wake_at <= input.now
    AND (runs.timeout_at IS NULL OR runs.timeout_at > input.now)
  RETURNING ${RUN_COLUMNS}, input.now AS claimed_at
),
due AS (
  UPDATE steps SET
    ${SETTLE_DUE_STEP},
    ended_at = claimed.claimed_at
  FROM claimed
  WHERE steps.run_id = claimed.id
    AND steps.status = 'waiting'
    AND steps.kind IN ('sleep', 'wait', 'invoke')
    AND steps.wake_at <= claimed.claimed_at
  RETURNING steps.run_id, steps.step_key, steps.kind
),
timed_out AS (
  DELETE FROM waits USING due
  WHERE waits.run_id = due.run_id AND waits.step_key = due.step_key AND due.kind = 'wait'
)
SELECT claimed.*, events.key AS event_key, events.name AS event_name, events.data AS event_data, ${epochMs("events.ts", "event_ts")}
FROM claimed LEFT JOIN events ON events.id = claimed.event_id`;
