import { STEP_UPSERT } from "./commit-step.js";

/**
 * THE end of a run, in one statement (atomic on its own, so no BEGIN/COMMIT round trips): ends
 * the run if the lease is still the caller's, closes its waits, hands its result to the
 * parent's `step.invoke` if that still waits (it may have timed out), and makes a suspended
 * parent runnable now. A running parent is not touched: its next suspension sees the step final
 * (pending keys) and wakes at once. LEAST keeps an earlier wake time (and replaces NULL, "never").
 *
 * What the parent's `step.invoke` sees: the child's output, or a final `StepError` naming the
 * child function (built here, where the child's function id is at hand).
 *
 * `recorded` writes the step results the pass had not committed yet (the steps that ended
 * after its last commit), only when the run ends: the last step of most runs costs no statement
 * of its own.
 *
 * $1 run id, $2 lease epoch, $3 status (completed/failed), $4 output (JSON text), $5 error
 * (JSON text), $6 now, $7 the StepError code; $8..$15 one element per uncommitted step: keys,
 * step ids, kinds, statuses, outputs (JSON text), errors (JSON text), attempts, and when each
 * began (epoch ms). Answers one row when the run ended (none when the lease was lost), with
 * the parent's id and function id when the parent was made runnable (the wake-up is queued
 * with both, so no read of the parent is needed to route it).
 */
export const FINISH_RUN = `
WITH ended AS (
  UPDATE runs SET
    status = $3,
    output = $4::jsonb,
    error = $5::jsonb,
    ended_at = $6,
    wake_at = NULL,
    lease_owner = NULL,
    lease_expires_at = NULL
  WHERE id = $1 AND lease_epoch = $2 AND status = 'running'
  RETURNING function_id, parent_run_id, parent_step_key
), closed AS (
  DELETE FROM waits WHERE run_id = $1 AND EXISTS (SELECT FROM ended)
), recorded AS (
  INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
  SELECT $1, s.step_key, s.step_id, s.kind::step_kind, s.status::step_status, s.output::jsonb, s.error::jsonb, s.attempt, to_timestamp(s.started_ms / 1000), $6
  FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int4[], $15::float8[])
    AS s(step_key, step_id, kind, status, output, error, attempt, started_ms)
  WHERE EXISTS (SELECT FROM ended)
  ${STEP_UPSERT}
), resolved AS (
  UPDATE steps SET
    status = $3::text::step_status,
    output = CASE WHEN $3 = 'completed' THEN coalesce($4::jsonb, 'null'::jsonb) END,
    error = CASE WHEN $3 = 'failed' THEN jsonb_build_object(
      'name', 'StepError',
      'code', $7::text,
      'message', 'invoked function ' || ended.function_id || ' failed: ' || coalesce($5::jsonb ->> 'message', 'unknown error'),
      'nonRetriable', true
    ) END,
    wake_at = NULL,
    ended_at = $6
  FROM ended
  WHERE steps.run_id = ended.parent_run_id AND steps.step_key = ended.parent_step_key AND steps.kind = 'invoke' AND steps.status = 'waiting'
  RETURNING steps.run_id
), woken AS (
  UPDATE runs SET wake_at = LEAST(runs.wake_at, $6)
  FROM resolved
  WHERE runs.id = resolved.run_id AND runs.status IN ('waiting', 'sleeping')
  RETURNING runs.id, runs.function_id
)
SELECT woken.id AS woken_parent_id, woken.function_id AS woken_parent_function_id FROM ended LEFT JOIN woken ON true`;

/**
 * {@link FINISH_RUN} for several runs at once (group commit), for runs without a parent: a
 * child's hand-over to its parent stays with the one-run statement, as does a run whose lease
 * was lost. Runs left out of the answer are retried through {@link FINISH_RUN}, which ends a
 * child or answers the lost lease.
 *
 * $1 run ids, $2 lease epochs, $3 statuses, $4 outputs (JSON text), $5 errors (JSON text),
 * $6 end times in epoch milliseconds; one element per run. $7..$15 the runs' uncommitted steps
 * (see {@link FINISH_RUN}), one element per step: run ids, keys, step ids, kinds, statuses,
 * outputs, errors, attempts, when each began; a step is written only when its run ends.
 * Answers the id of each run ended.
 */
export const FINISH_RUNS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::float8[])
    AS input(run_id, lease_epoch, status, output, error, at_ms)
), ended AS (
  UPDATE runs SET
    status = input.status,
    output = input.output::jsonb,
    error = input.error::jsonb,
    ended_at = to_timestamp(input.at_ms / 1000),
    wake_at = NULL,
    lease_owner = NULL,
    lease_expires_at = NULL
  FROM input
  WHERE runs.id = input.run_id AND runs.lease_epoch = input.lease_epoch AND runs.status = 'running' AND runs.parent_run_id IS NULL
  RETURNING runs.id
), closed AS (
  DELETE FROM waits WHERE run_id IN (SELECT id FROM ended)
), recorded AS (
  INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
  SELECT s.run_id, s.step_key, s.step_id, s.kind::step_kind, s.status::step_status, s.output::jsonb, s.error::jsonb, s.attempt,
    to_timestamp(s.started_ms / 1000), to_timestamp(input.at_ms / 1000)
  FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int4[], $15::float8[])
    AS s(run_id, step_key, step_id, kind, status, output, error, attempt, started_ms)
  JOIN ended ON ended.id = s.run_id
  JOIN input ON input.run_id = s.run_id
  ${STEP_UPSERT}
)
SELECT id FROM ended`;
