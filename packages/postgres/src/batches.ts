import type { IngestInput, IngestResult } from "@stepwise/engine";
import type pg from "pg";
import { functionKeyId, lockFunctionKeys } from "./function-key-locks.js";
import { jsonParam, timeParam } from "./map-rows.js";

type Run = IngestInput["runs"][number];

/**
 * The open batches of (function, key) pairs, locked: a claim that closes one waits for this
 * ingest, and then returns the events it appended. $1 function ids, $2 keys.
 */
const OPEN_BATCHES = `
SELECT runs.id, runs.function_id, runs.batch_key, cardinality(runs.event_ids) AS size, extract(epoch from runs.wake_at) * 1000 AS wake_at
FROM unnest($1::text[], $2::text[]) AS input (function_id, key)
JOIN runs ON runs.function_id = input.function_id AND runs.batch_key = input.key
WHERE runs.batch_key IS NOT NULL AND runs.status = 'queued'
FOR UPDATE OF runs`;

/**
 * Appends events to open batches; a batch that is full closes (its key cleared) and is due now.
 * $1 run ids, $2 event ids to append (a JSON array per run), $3 whether each closes; $4 now.
 */
const APPEND_TO_BATCHES = `
UPDATE runs SET
  event_ids = runs.event_ids || ARRAY(SELECT jsonb_array_elements_text(input.ids::jsonb)),
  batch_key = CASE WHEN input.close THEN NULL ELSE runs.batch_key END,
  wake_at = CASE WHEN input.close THEN LEAST(runs.wake_at, $4) ELSE runs.wake_at END
FROM unnest($1::text[], $2::text[], $3::boolean[]) AS input (id, ids, close)
WHERE runs.id = input.id`;

/**
 * New batches: queued runs of their events (the first is `event_id`), open when `batch_key` is
 * set, else full already and due now. $1 run ids, $2 function ids, $3 event ids (a JSON array
 * per run), $4 start times, $5 keys (NULL: full), $6 flows (JSON text), $7 start deadlines; $8 now.
 */
const INSERT_BATCHES = `
INSERT INTO runs (id, function_id, event_id, event_ids, status, attempt, lease_epoch, wake_at, created_at, flow, timeout_at, batch_key)
SELECT id, function_id, ids::jsonb ->> 0, ARRAY(SELECT jsonb_array_elements_text(ids::jsonb)), 'queued', 0, 0, wake_at, $8, flow::jsonb, start_by, key
FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::timestamptz[])
  AS input (id, function_id, ids, wake_at, key, flow, start_by)`;

/** What {@link addToBatches} writes: events appended to open batches, and new batches. */
interface BatchPlan {
  appends: Array<{ runId: string; eventIds: string[]; close: boolean }>;
  creates: Array<{ first: Run; eventIds: string[]; open: boolean; wakeAt: number }>;
  answer: IngestResult["runs"];
}

/**
 * `batchEvents` for the runs of one ingest, inside its transaction: the events of each
 * (function, key), in order, fill the open batch, then new batches of `maxSize`; the last of
 * them stays open unless full. A batch's run is the run routed for its first event (its id,
 * flow and start deadline stand). Answers each batch touched once, with when it starts: its
 * timeout, or now once full.
 * @internal
 */
export async function addToBatches(client: pg.PoolClient, runs: Run[], now: number): Promise<IngestResult["runs"]> {
  // Under the key's lock, an ingest that finds no open batch of a key creates the only one, and
  // one that finds room fills it without a race.
  const locked = await lockFunctionKeys(client, runs, (run) => run.batch?.key, "batch\u001f");
  if (!locked) return [];
  const open = await client.query<{ id: string; function_id: string; batch_key: string; size: number; wake_at: number }>({
    name: "stepwise_open_batches",
    text: OPEN_BATCHES,
    values: [locked.functionIds, locked.keys],
  });
  const openByKey = new Map(open.rows.map((row) => [functionKeyId(row.function_id, row.batch_key), row]));
  const plan = planBatches(locked.ids, locked.groups, openByKey, now);
  if (plan.appends.length > 0) {
    await client.query({
      name: "stepwise_append_to_batches",
      text: APPEND_TO_BATCHES,
      values: [
        plan.appends.map((append) => append.runId),
        plan.appends.map((append) => JSON.stringify(append.eventIds)),
        plan.appends.map((append) => append.close),
        timeParam(now),
      ],
    });
  }
  if (plan.creates.length > 0) {
    await client.query({
      name: "stepwise_insert_batches",
      text: INSERT_BATCHES,
      values: [
        plan.creates.map((create) => create.first.id),
        plan.creates.map((create) => create.first.functionId),
        plan.creates.map((create) => JSON.stringify(create.eventIds)),
        plan.creates.map((create) => timeParam(create.wakeAt)),
        plan.creates.map((create) => (create.open ? (create.first.batch?.key ?? "") : null)),
        plan.creates.map((create) => jsonParam(create.first.flow)),
        plan.creates.map((create) => timeParam(create.first.startBy)),
        timeParam(now),
      ],
    });
  }
  return plan.answer;
}

/** Splits each key's events between its open batch (when it has room) and new batches. */
function planBatches(ids: string[], groups: Map<string, Run[]>, openByKey: Map<string, { id: string; size: number; wake_at: number }>, now: number): BatchPlan {
  const plan: BatchPlan = { appends: [], creates: [], answer: [] };
  for (const id of ids) {
    let pending = groups.get(id) ?? [];
    const first = pending[0];
    if (!first?.batch) continue;
    // The configuration now (a deploy may have lowered maxSize since the batch opened).
    const { maxSize } = first.batch;
    const batch = openByKey.get(id);
    if (batch) {
      const taken = pending.slice(0, Math.max(0, maxSize - batch.size));
      pending = pending.slice(taken.length);
      const close = batch.size + taken.length >= maxSize;
      plan.appends.push({ runId: batch.id, eventIds: taken.map((run) => run.eventId), close });
      const wakeAt = close ? Math.min(now, Math.round(Number(batch.wake_at))) : Math.round(Number(batch.wake_at));
      plan.answer.push({ id: batch.id, functionId: first.functionId, eventId: taken[0]?.eventId ?? first.eventId, batch: { wakeAt, created: false } });
    }
    for (let start = 0; start < pending.length; start += maxSize) {
      const chunk = pending.slice(start, start + maxSize);
      const head = chunk[0] as Run;
      const full = chunk.length === maxSize;
      const wakeAt = full ? now : (head.batch?.wakeAt ?? now);
      plan.creates.push({ first: head, eventIds: chunk.map((run) => run.eventId), open: !full, wakeAt });
      plan.answer.push({ id: head.id, functionId: head.functionId, eventId: head.eventId, batch: { wakeAt, created: true } });
    }
  }
  return plan;
}
