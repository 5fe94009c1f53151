import type { IngestInput, IngestResult } from "@stepwise/engine";
import type pg from "pg";
import { jsonParam, timeParam } from "./map-rows.js";

/**
 * Creates debounced runs, or hands their event to the pending run of the same (function, key):
 * it takes the newer event, and its start moves to the new time, capped by the cap set when it
 * was created. `runs_debounce_idx` (pending runs only: queued, never started) is the arbiter, so
 * a run a worker has claimed is no longer taken over and the next event starts a new one.
 * `inserted` tells a new run from a taken-over one.
 *
 * $1 run ids, $2 function ids, $3 event ids, $4 keys, $5 start times, $6 caps (NULL: none),
 * $7 flows (JSON text); one element per run, unique by (function, key); $8 now.
 */
const UPSERT_DEBOUNCED = `
INSERT INTO runs (id, function_id, event_id, status, attempt, lease_epoch, wake_at, created_at, flow, debounce_key, debounce_cap)
SELECT id, function_id, event_id, 'queued', 0, 0, LEAST(wake_at, coalesce(cap, wake_at)), $8, flow::jsonb, key, cap
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
  AS input (id, function_id, event_id, key, wake_at, cap, flow)
ON CONFLICT (function_id, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'queued' AND started_at IS NULL
DO UPDATE SET event_id = excluded.event_id, wake_at = LEAST(excluded.wake_at, coalesce(runs.debounce_cap, excluded.wake_at))
RETURNING id, function_id, event_id, ${"extract(epoch from wake_at) * 1000"} AS wake_at, (xmax = 0) AS inserted`;

/**
 * Writes the debounced runs of an ingest ({@link UPSERT_DEBOUNCED}); of a batch, the last event
 * per (function, key) stands, as it would have arriving last. Answers the runs as `IngestResult`
 * lists them: the pending run of each key, with when it starts. @internal
 */
export async function upsertDebounced(client: pg.PoolClient, runs: IngestInput["runs"], now: number): Promise<IngestResult["runs"]> {
  const last = new Map<string, IngestInput["runs"][number]>();
  for (const run of runs) if (run.debounce) last.set(JSON.stringify([run.functionId, run.debounce.key]), run);
  // Sorted, so that two batches lock shared pending runs in one order.
  const chosen = [...last.keys()].sort().map((key) => last.get(key) as IngestInput["runs"][number]);
  if (chosen.length === 0) return [];
  const result = await client.query<{ id: string; function_id: string; event_id: string; wake_at: number; inserted: boolean }>({
    name: "stepwise_upsert_debounced",
    text: UPSERT_DEBOUNCED,
    values: [
      chosen.map((run) => run.id),
      chosen.map((run) => run.functionId),
      chosen.map((run) => run.eventId),
      chosen.map((run) => run.debounce?.key ?? ""),
      chosen.map((run) => timeParam(run.debounce?.wakeAt)),
      chosen.map((run) => timeParam(run.debounce?.capAt)),
      chosen.map((run) => jsonParam(run.flow)),
      timeParam(now),
    ],
  });
  return result.rows.map((row) => ({
    id: row.id,
    functionId: row.function_id,
    eventId: row.event_id,
    debounce: { wakeAt: Math.round(Number(row.wake_at)), takenOver: !row.inserted },
  }));
}
