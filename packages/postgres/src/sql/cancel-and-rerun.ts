import { RUN_COLUMNS } from "../map-rows.js";

/**
 * Cancels a run and the runs it started through `step.invoke` (and theirs), in one statement:
 * each that has not ended becomes `cancelled` with the error, its waits close, and its lease
 * epoch moves on, so a worker still executing it can record nothing more (its next commit or
 * heartbeat finds the lease gone). When the run itself was invoked by a parent whose step
 * still waits, that step fails with a `StepError` and a suspended parent wakes now, as
 * `FINISH_RUN` does for a child that failed.
 *
 * $1 run id, $2 error (JSON text), $3 now, $4 the StepError code. Answers a row per run
 * cancelled (`kind` 'cancelled', with the run's columns as JSON in `run`) and one for the
 * parent woken (`kind` 'woken').
 */
export const CANCEL_RUN = `
WITH RECURSIVE tree AS (
  SELECT id FROM runs WHERE id = $1
  UNION
  SELECT runs.id FROM runs JOIN tree ON runs.parent_run_id = tree.id
), cancelled AS (
  UPDATE runs SET
    status = 'cancelled',
    error = $2::jsonb,
    ended_at = $3,
    wake_at = NULL,
    lease_owner = NULL,
    lease_expires_at = NULL,
    lease_epoch = lease_epoch + 1
  WHERE id IN (SELECT id FROM tree) AND status IN ('queued', 'running', 'sleeping', 'waiting')
  RETURNING ${RUN_COLUMNS}
), closed AS (
  DELETE FROM waits WHERE run_id IN (SELECT id FROM cancelled)
), resolved AS (
  UPDATE steps SET
    status = 'failed',
    output = NULL,
    error = jsonb_build_object(
      'name', 'StepError',
      'code', $4::text,
      'message', 'invoked function ' || cancelled.function_id || ' was cancelled: ' || coalesce($2::jsonb ->> 'message', 'no reason given'),
      'nonRetriable', true
    ),
    wake_at = NULL,
    ended_at = $3
  FROM cancelled
  WHERE cancelled.id = $1 AND steps.run_id = cancelled.parent_run_id AND steps.step_key = cancelled.parent_step_key
    AND steps.kind = 'invoke' AND steps.status = 'waiting'
  RETURNING steps.run_id
), woken AS (
  UPDATE runs SET wake_at = LEAST(runs.wake_at, $3)
  FROM resolved
  WHERE runs.id = resolved.run_id AND runs.status IN ('waiting', 'sleeping')
  RETURNING runs.id, runs.function_id
)
SELECT 'cancelled' AS kind, cancelled.id, cancelled.function_id, to_jsonb(cancelled) AS run FROM cancelled
UNION ALL
SELECT 'woken' AS kind, woken.id, woken.function_id, NULL FROM woken`;

/**
 * Creates runs of stored events outside ingest, in one statement: reruns (`rerun_of` names the
 * run repeated) and first runs (a replay that reaches a function the event never started; one
 * that exists already is left out by the first-run index). A rerun given a step key starts
 * with copies of the final results its original recorded before that step (by `seq`, the order
 * steps were first recorded), so its replay skips them and executes from that step on.
 *
 * $1 run ids, $2 function ids, $3 event ids, $4 ids of the runs repeated (NULL for a first
 * run), $5 step keys to reuse the results before (NULL: none), $7 flow (JSON text, NULL: none);
 * one element per run; $6 now.
 * Answers the runs created. A rerun of a batch gets the batch's events.
 *
 * A run that starts with copied steps starts at lease epoch 1: a claim that makes the epoch 1
 * skips loading steps (a new run has none), so this run's first claim must make it 2.
 */
export const CREATE_RUNS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::text[]) AS input(id, function_id, event_id, rerun_of, reuse_before, flow)
), created AS (
  INSERT INTO runs (id, function_id, event_id, event_ids, status, lease_epoch, wake_at, created_at, rerun_of, flow)
  SELECT id, function_id, event_id, (SELECT original.event_ids FROM runs original WHERE original.id = input.rerun_of),
    'queued', CASE WHEN reuse_before IS NULL THEN 0 ELSE 1 END, $6, $6, rerun_of, flow::jsonb FROM input
  ON CONFLICT (function_id, event_id) WHERE rerun_of IS NULL DO NOTHING
  RETURNING id, function_id, event_id
), copied AS (
  INSERT INTO steps (run_id, step_key, step_id, kind, status, output, error, attempt, created_at, ended_at)
  SELECT input.id, reused.step_key, reused.step_id, reused.kind, reused.status, reused.output, reused.error, reused.attempt, reused.created_at, reused.ended_at
  FROM input
  JOIN created ON created.id = input.id
  JOIN steps chosen ON chosen.run_id = input.rerun_of AND chosen.step_key = input.reuse_before
  JOIN steps reused ON reused.run_id = input.rerun_of AND reused.seq < chosen.seq AND reused.status IN ('completed', 'failed')
  ORDER BY input.id, reused.seq
)
SELECT id, function_id, event_id FROM created`;
