import type { RunStore, StoredEvent, WaitRecord } from "@stepwise/engine";
import type pg from "pg";
import { epochMs, timeParam, toStoredEvent } from "./map-rows.js";
import { withClient } from "./with-client.js";

/** The columns of a wait with its run's trigger event, for both finds. */
const WAIT_COLUMNS = `waits.run_id, waits.step_key, waits.step_id, waits.kind, waits.alternative, waits.expression, waits.match_path, waits.match_value,
  waits.timeout_at, events.id AS trigger_id, events.key AS trigger_key, events.name AS trigger_name, events.data AS trigger_data, ${epochMs("events.ts", "trigger_ts")}`;

/**
 * Open waits an event may resolve, each with its run's trigger event (for the expression):
 * those without a `match` by name, and those with one by the event's own field values
 * (`waits_match_idx`: one index probe per value, so an event reads the keyed waits it
 * matches, however many are open). Waits of ended runs are left out (finishRun deletes them;
 * this guards the window between), and so are timed-out ones (the claim that settles them may
 * come later).
 *
 * $1 event name, $2 field paths, $3 their values (canonical JSON), $4 now. @internal
 */
export const FIND_WAITS = `
WITH found AS (
  SELECT * FROM waits WHERE event_name = $1 AND match_path IS NULL
  UNION ALL
  SELECT waits.* FROM unnest($2::text[], $3::text[]) AS input (path, value)
  JOIN waits ON waits.event_name = $1 AND waits.match_path = input.path AND waits.match_value = input.value
)
SELECT ${WAIT_COLUMNS.replaceAll("waits.", "found.")}
FROM found
JOIN runs ON runs.id = found.run_id
JOIN events ON events.id = runs.event_id
WHERE runs.status IN ('queued', 'running', 'sleeping', 'waiting') AND found.timeout_at > $4
ORDER BY found.created_at, found.run_id, found.step_key, found.alternative`;

/** Every open wait of an event name (no match values given): listings and tests. */
const FIND_ALL_WAITS = `
SELECT ${WAIT_COLUMNS}
FROM waits
JOIN runs ON runs.id = waits.run_id
JOIN events ON events.id = runs.event_id
WHERE waits.event_name = $1 AND runs.status IN ('queued', 'running', 'sleeping', 'waiting')
ORDER BY waits.created_at, waits.run_id, waits.step_key, waits.alternative`;

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
  kind: "step" | "cancel";
  alternative: number;
  expression: string | null;
  match_path: string | null;
  match_value: string | null;
  timeout_at: Date | number;
  trigger_id: string;
  trigger_key: string | null;
  trigger_name: string;
  trigger_data: Record<string, unknown>;
  trigger_ts: number;
}

/** {@link RunStore.findWaits}. @internal */
export function findWaits(pool: pg.Pool, eventName: string, options: Parameters<RunStore["findWaits"]>[1] = {}): Promise<WaitRecord[]> {
  return withClient(pool, async (client) => {
    const { matchValues } = options;
    const result = matchValues
      ? await client.query<WaitRow>({
          name: "stepwise_find_waits",
          text: FIND_WAITS,
          values: [eventName, matchValues.map(([path]) => path), matchValues.map(([, value]) => value), timeParam(options.now ?? 0)],
        })
      : await client.query<WaitRow>({ name: "stepwise_find_all_waits", text: FIND_ALL_WAITS, values: [eventName] });
    return result.rows.map((row) => {
      const wait: WaitRecord = {
        runId: row.run_id,
        stepKey: row.step_key,
        stepId: row.step_id,
        kind: row.kind,
        alternative: row.alternative,
        eventName,
        // `infinity` (a cancelOn without timeout) arrives as a number, or an invalid date.
        timeoutAt: row.timeout_at instanceof Date && !Number.isNaN(row.timeout_at.getTime()) ? row.timeout_at.getTime() : Number.POSITIVE_INFINITY,
        triggerEvent: toStoredEvent({ id: row.trigger_id, key: row.trigger_key, name: row.trigger_name, data: row.trigger_data, ts: row.trigger_ts }),
      };
      if (row.expression !== null) wait.expression = row.expression;
      if (row.match_path !== null) wait.matchPath = row.match_path;
      if (row.match_value !== null) wait.matchValue = row.match_value;
      return wait;
    });
  });
}

/** Statements of {@link settleConcurrentWrites}. */
const CURRENT_XMAX = "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xmax";
const SETTLED = "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 AS settled";

/**
 * {@link RunStore.settleConcurrentWrites}: waits until every transaction that had started
 * when it was called has ended (the oldest transaction still running is newer), polling.
 * @internal
 */
export async function settleConcurrentWrites(pool: pg.Pool, timeoutMs = 1000): Promise<void> {
  await withClient(pool, async (client) => {
    const xmax = (await client.query<{ xmax: string }>({ name: "stepwise_current_xmax", text: CURRENT_XMAX })).rows[0]?.xmax;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const settled = (await client.query<{ settled: boolean }>({ name: "stepwise_settled", text: SETTLED, values: [xmax] })).rows[0]?.settled;
      if (settled || Date.now() >= deadline) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
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
