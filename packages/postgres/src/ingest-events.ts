import { EVENT_DEDUPE_WINDOW_MS } from "@stepwise/core";
import type { IngestInput, IngestResult } from "@stepwise/engine";
import type pg from "pg";
import { timeParam } from "./map-rows.js";

// Each statement takes whole columns as arrays (unnest), so a batch of 5,000 events costs
// three or four statements, not thousands.

/**
 * Claims the sender keys whose window is free: a new key, or one whose 24 h window ended.
 * Keys still inside their window are left alone and come back as not claimed.
 */
const CLAIM_EVENT_KEYS = `
INSERT INTO event_keys (key, event_id, expires_at)
SELECT key, event_id, $3 FROM unnest($1::text[], $2::text[]) AS input (key, event_id)
ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at
  WHERE event_keys.expires_at < $4
RETURNING key`;

const ORIGINAL_EVENT_IDS = "SELECT key, event_id FROM event_keys WHERE key = ANY($1::text[])";

/** An event whose id is already stored is a duplicate too (ids are deterministic on retries). */
const INSERT_EVENTS = `
INSERT INTO events (id, key, name, data, ts, received_at, waits_matched_at)
SELECT id, key, name, data::jsonb, ts, $6::timestamptz, CASE WHEN EXISTS (SELECT 1 FROM waits WHERE waits.event_name = input.name) THEN NULL ELSE $6::timestamptz END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS input (id, key, name, data, ts)
ON CONFLICT (id) DO NOTHING
RETURNING id, waits_matched_at IS NULL AS match_waits`;

const INSERT_RUNS = `
INSERT INTO runs (id, function_id, event_id, status, attempt, lease_epoch, wake_at, parent_run_id, parent_step_key, created_at)
SELECT id, function_id, event_id, 'queued', 0, 0, $6, parent_run_id, parent_step_key, $6
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS input (id, function_id, event_id, parent_run_id, parent_step_key)
ON CONFLICT (function_id, event_id) DO NOTHING
RETURNING id`;

/**
 * Stores events and their runs on `client`, inside the caller's transaction: `ingest`,
 * `suspendRun` (invokes), `finishRun` (follow-ups) and `recordCronTick` all come here.
 * @internal
 */
export async function ingestEvents(client: pg.PoolClient, input: IngestInput): Promise<IngestResult> {
  const { events, runs, now } = input;
  const answer: IngestResult["events"] = events.map((event) => ({ id: event.id, duplicate: false }));

  // Within the batch, the first event with a key stands for all later ones.
  const firstByKey = new Map<string, number>();
  const laterByKey: Array<{ index: number; first: number }> = [];
  events.forEach((event, index) => {
    if (event.key === undefined) return;
    const first = firstByKey.get(event.key);
    if (first === undefined) firstByKey.set(event.key, index);
    else laterByKey.push({ index, first });
  });

  if (firstByKey.size > 0) {
    // Sorted, so that concurrent batches lock their keys in one order and cannot deadlock.
    const keys = [...firstByKey.keys()].sort();
    const eventIds = keys.map((key) => events[firstByKey.get(key)!]!.id);
    const claimed = await client.query<{ key: string }>({
      name: "stepwise_claim_event_keys",
      text: CLAIM_EVENT_KEYS,
      values: [keys, eventIds, timeParam(now + EVENT_DEDUPE_WINDOW_MS), timeParam(now)],
    });
    const claimedKeys = new Set(claimed.rows.map((row) => row.key));
    const taken = keys.filter((key) => !claimedKeys.has(key));
    if (taken.length > 0) {
      // A separate statement: its fresh snapshot sees keys that a concurrent ingest committed
      // while the insert above waited on them.
      const originals = await client.query<{ key: string; event_id: string }>({
        name: "stepwise_original_event_ids",
        text: ORIGINAL_EVENT_IDS,
        values: [taken],
      });
      for (const row of originals.rows) {
        const index = firstByKey.get(row.key);
        if (index !== undefined) answer[index] = { id: row.event_id, duplicate: true };
      }
    }
    for (const { index, first } of laterByKey) answer[index] = { id: answer[first]?.id ?? "", duplicate: true };
  }

  const fresh = events.filter((_, index) => !answer[index]?.duplicate);
  if (fresh.length > 0) {
    const inserted = await client.query<{ id: string; match_waits: boolean }>({
      name: "stepwise_insert_events",
      text: INSERT_EVENTS,
      values: [
        fresh.map((event) => event.id),
        fresh.map((event) => event.key ?? null),
        fresh.map((event) => event.name),
        fresh.map((event) => JSON.stringify(event.data ?? {})),
        fresh.map((event) => timeParam(event.ts)),
        timeParam(now),
      ],
    });
    const insertedIds = new Map(inserted.rows.map((row) => [row.id, row.match_waits]));
    events.forEach((event, index) => {
      const entry = answer[index];
      if (!entry || entry.duplicate) return;
      const matchWaits = insertedIds.get(event.id);
      // Taken once: a second event with the same id in one batch is a duplicate of the first.
      if (matchWaits === undefined) {
        answer[index] = { id: event.id, duplicate: true };
        return;
      }
      insertedIds.delete(event.id);
      if (matchWaits) entry.matchWaits = true;
    });
  }

  // Runs of duplicate events are not created: the original event already started its own.
  const duplicateIds = new Set(events.filter((_, index) => answer[index]?.duplicate).map((event) => event.id));
  const wanted = runs.filter((run) => !duplicateIds.has(run.eventId));
  if (wanted.length === 0) return { events: answer, runs: [] };
  const created = await client.query<{ id: string }>({
    name: "stepwise_insert_runs",
    text: INSERT_RUNS,
    values: [
      wanted.map((run) => run.id),
      wanted.map((run) => run.functionId),
      wanted.map((run) => run.eventId),
      wanted.map((run) => run.parentRunId ?? null),
      wanted.map((run) => run.parentStepKey ?? null),
      timeParam(now),
    ],
  });
  const createdIds = new Set(created.rows.map((row) => row.id));
  return {
    events: answer,
    runs: wanted.filter((run) => createdIds.has(run.id)).map((run) => ({ id: run.id, functionId: run.functionId, eventId: run.eventId })),
  };
}
