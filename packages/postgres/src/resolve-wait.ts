import type { RunStore, StoredEvent, WaitRecord } from "@stepwise/engine";
import type pg from "pg";
import { epochMs, timeParam, toStoredEvent } from "./map-rows.js";
import { withClient } from "./with-client.js";

/**
 * Open waits for an event name, each with its run's trigger event (for the match expression).
 * Waits of ended runs are left out (finishRun deletes them; this guards the window between).
 */
const FIND_WAITS = `
SELECT waits.run_id, waits.step_key, waits.step_id, waits.expression, waits.timeout_at,
  events.id AS trigger_id, events.key AS trigger_key, events.name AS trigger_name, events.data AS trigger_data, ${epochMs("events.ts", "trigger_ts")}
FROM waits
JOIN runs ON runs.id = waits.run_id
JOIN events ON events.id = runs.event_id
WHERE waits.event_name = $1 AND runs.status IN ('queued', 'running', 'sleeping', 'waiting')
ORDER BY waits.created_at, waits.run_id, waits.step_key`;

/**
 * Completes a wait with the event, closes it and makes its run runnable, in one statement.
 * Two events racing for one wait: the second finds the step no longer `waiting` (re-checked
 * after the first commits) and resolves nothing. A running run is not woken here; its next
 * suspension sees the step final through its pending keys. LEAST keeps an earlier wake time
 * (and replaces NULL, "never"). Answers the run's function id (one row) when the wait was
 * resolved, so that the wake-up is queued with it; no row when another event resolved it first.
 *
 * $1 run id, $2 step key, $3 output (the event as JSON text), $4 now.
 */
const RESOLVE_WAIT = `
WITH resolved AS (
  UPDATE steps SET status = 'completed', output = $3::jsonb, wake_at = NULL, ended_at = $4
  WHERE run_id = $1 AND step_key = $2 AND kind = 'wait' AND status = 'waiting'
  RETURNING run_id, step_key
),
closed AS (
  DELETE FROM waits USING resolved WHERE waits.run_id = resolved.run_id AND waits.step_key = resolved.step_key
),
woken AS (
  UPDATE runs SET wake_at = LEAST(runs.wake_at, $4)
  FROM resolved
  WHERE runs.id = resolved.run_id AND runs.status IN ('waiting', 'sleeping')
)
SELECT runs.function_id FROM resolved JOIN runs ON runs.id = resolved.run_id`;

interface WaitRow {
  run_id: string;
  step_key: string;
  step_id: string;
  expression: string | null;
  timeout_at: Date;
  trigger_id: string;
  trigger_key: string | null;
  trigger_name: string;
  trigger_data: Record<string, unknown>;
  trigger_ts: number;
}

/** {@link RunStore.findWaits}. @internal */
export function findWaits(pool: pg.Pool, eventName: string): Promise<WaitRecord[]> {
  return withClient(pool, async (client) => {
    const result = await client.query<WaitRow>({ name: "stepwise_find_waits", text: FIND_WAITS, values: [eventName] });
    return result.rows.map((row) => {
      const wait: WaitRecord = {
        runId: row.run_id,
        stepKey: row.step_key,
        stepId: row.step_id,
        eventName,
        timeoutAt: row.timeout_at.getTime(),
        triggerEvent: toStoredEvent({ id: row.trigger_id, key: row.trigger_key, name: row.trigger_name, data: row.trigger_data, ts: row.trigger_ts }),
      };
      if (row.expression !== null) wait.expression = row.expression;
      return wait;
    });
  });
}

/**
 * {@link RunStore.resolveWait}. The step's output is the event as a handler sees it
 * (`{ id, name, data, ts }`; the sender's key is not part of it).
 * @internal
 */
export function resolveWait(pool: pg.Pool, input: { runId: string; stepKey: string; event: StoredEvent; now: number }): Promise<string | null> {
  const { event } = input;
  const output = { id: event.id, name: event.name, data: event.data, ts: event.ts };
  return withClient(pool, async (client) => {
    const result = await client.query<{ function_id: string }>({
      name: "stepwise_resolve_wait",
      text: RESOLVE_WAIT,
      values: [input.runId, input.stepKey, JSON.stringify(output), timeParam(input.now)],
    });
    return result.rows[0]?.function_id ?? null;
  });
}
