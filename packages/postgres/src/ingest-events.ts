import { EVENT_DEDUPE_WINDOW_MS, IDEMPOTENCY_WINDOW_MS } from "@stepwise/core";
import type { IngestInput, IngestResult } from "@stepwise/engine";
import type pg from "pg";
import { addToBatches } from "./batches.js";
import { upsertDebounced } from "./debounce.js";
import { jsonParam, timeParam } from "./map-rows.js";
import { applySingletons } from "./singletons.js";
import { FINISH_AT } from "./sql/claim-run.js";

// Each statement takes whole columns as arrays (unnest), so a batch of 5,000 events costs
// one statement when no event carries a key, and three or four otherwise, not thousands.

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

/**
 * Claims the idempotency keys of new runs whose window is free (a new key, or one whose 24 h
 * ended), as {@link CLAIM_EVENT_KEYS} does for events. Answers the runs that got their key.
 *
 * $1 function ids, $2 keys, $3 run ids (one element per run, unique by function and key, sorted);
 * $4 expiry of new claims, $5 now.
 */
const CLAIM_IDEMPOTENCY_KEYS = `
INSERT INTO idempotency_keys (function_id, key, run_id, expires_at)
SELECT function_id, key, run_id, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS input (function_id, key, run_id)
ON CONFLICT (function_id, key) DO UPDATE SET run_id = excluded.run_id, expires_at = excluded.expires_at
  WHERE idempotency_keys.expires_at <= $5
RETURNING run_id`;

/** An event whose id is already stored is a duplicate too (ids are deterministic on retries). */
const INSERT_EVENTS = `
INSERT INTO events (id, key, name, data, ts, received_at, waits_matched_at)
SELECT id, key, name, data::jsonb, ts, $6::timestamptz, CASE WHEN EXISTS (SELECT 1 FROM waits WHERE waits.event_name = input.name) THEN NULL ELSE $6::timestamptz END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS input (id, key, name, data, ts)
ON CONFLICT (id) DO NOTHING
RETURNING id, waits_matched_at IS NULL AS match_waits`;

/**
 * The columns of a new run from the run columns (see {@link runColumns}) and the time: queued,
 * already claimed (epoch 1) by the worker named in `lease_owner` (eager start), or skipped by
 * flow control (ended at once, `skipped` its error).
 */
const NEW_RUN_VALUES = (now: string) => `id, function_id, event_id,
  CASE WHEN skipped IS NOT NULL THEN 'skipped' WHEN lease_owner IS NULL THEN 'queued' ELSE 'running' END, 0, CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END,
  lease_owner, lease_expires_at, CASE WHEN skipped IS NULL THEN ${now} END, parent_run_id, parent_step_key, ${now},
  CASE WHEN lease_owner IS NULL THEN NULL ELSE ${now} END, flow::jsonb, CASE WHEN skipped IS NOT NULL THEN ${now} END, skipped::jsonb,
  CASE WHEN skipped IS NOT NULL THEN NULL
    WHEN lease_owner IS NOT NULL THEN ${FINISH_AT(now, "flow::jsonb")}
    ELSE start_by END, singleton_key`;

const RUN_INSERT_COLUMNS =
  "id, function_id, event_id, status, attempt, lease_epoch, lease_owner, lease_expires_at, wake_at, parent_run_id, parent_step_key, created_at, started_at, flow, ended_at, error, timeout_at, singleton_key";

const INSERT_RUNS = `
INSERT INTO runs (${RUN_INSERT_COLUMNS})
SELECT ${NEW_RUN_VALUES("$9::timestamptz")}
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $10::text[], $11::timestamptz[], $12::text[])
  AS input (id, function_id, event_id, parent_run_id, parent_step_key, lease_owner, lease_expires_at, flow, skipped, start_by, singleton_key)
ON CONFLICT (function_id, event_id) WHERE rerun_of IS NULL DO NOTHING
RETURNING id`;

/**
 * Events and their runs in one statement, for batches without sender keys (the common case):
 * no key to claim first, so nothing has to happen between the two inserts. It is atomic on
 * its own, so `ingest` runs it without BEGIN/COMMIT. Same rules as the statements above:
 * an event whose id is stored already is left out, and only runs of events this statement
 * inserted are created (plus, as there, runs of events outside the batch, which the port does
 * not expect). The runs' foreign key is checked at the end of the statement, when the events
 * are in. Answers one row per inserted event (`kind` 'event', with `match_waits`) and per
 * created run (`kind` 'run').
 *
 * $1–$4 event ids, names, data (JSON text), ts; $5–$12 the run columns ({@link runColumns});
 * $13 now; $14 the skipped errors ({@link skippedColumn}); $15 the start deadlines; $16 the
 * singleton keys.
 */
const INSERT_EVENTS_AND_RUNS = `
WITH inserted AS (
  INSERT INTO events (id, key, name, data, ts, received_at, waits_matched_at)
  SELECT id, NULL, name, data::jsonb, ts, $13::timestamptz, CASE WHEN EXISTS (SELECT 1 FROM waits WHERE waits.event_name = input.name) THEN NULL ELSE $13::timestamptz END
  FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS input (id, name, data, ts)
  ON CONFLICT (id) DO NOTHING
  RETURNING id, waits_matched_at IS NULL AS match_waits
),
created AS (
  INSERT INTO runs (${RUN_INSERT_COLUMNS})
  SELECT ${NEW_RUN_VALUES("$13::timestamptz")}
  FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::text[], $14::text[], $15::timestamptz[], $16::text[])
    AS input (id, function_id, event_id, parent_run_id, parent_step_key, lease_owner, lease_expires_at, flow, skipped, start_by, singleton_key)
  WHERE input.event_id IN (SELECT id FROM inserted) OR input.event_id <> ALL ($1::text[])
  ON CONFLICT (function_id, event_id) WHERE rerun_of IS NULL DO NOTHING
  RETURNING id
)
SELECT 'event' AS kind, id, match_waits FROM inserted
UNION ALL
SELECT 'run', id, NULL FROM created`;

/** Whether {@link ingestEvents} stores `input` in one statement, so needs no transaction of its own. @internal */
export function ingestsInOneStatement(input: IngestInput): boolean {
  return (
    input.events.every((event) => event.key === undefined) &&
    input.runs.every(
      (run) =>
        run.idempotencyKey === undefined && run.waits === undefined && run.singleton === undefined && run.debounce === undefined && run.batch === undefined,
    )
  );
}

/**
 * Opens the waits new runs carry (`cancelOn`), for the runs this ingest created.
 *
 * $1 run ids, $2 step keys, $3 step ids, $4 kinds, $5 event names, $6 expressions, $7 timeouts
 * (text: `infinity` never expires), $8 match paths, $9 match values (one element per wait); $10
 * now, $11 the ids of the runs created.
 */
const INSERT_RUN_WAITS = `
INSERT INTO waits (run_id, step_key, step_id, kind, event_name, expression, timeout_at, created_at, match_path, match_value)
SELECT run_id, step_key, step_id, kind, event_name, expression, timeout_at::timestamptz, $10, match_path, match_value
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
  AS input (run_id, step_key, step_id, kind, event_name, expression, timeout_at, match_path, match_value)
WHERE run_id = ANY ($11::text[])
ON CONFLICT (run_id, step_key, alternative) DO NOTHING`;

/**
 * Stores events and their runs on `client`, inside the caller's transaction: `ingest`,
 * `suspendRun` (invokes), `finishRun` (follow-ups) and `recordCronTick` all come here. When
 * {@link ingestsInOneStatement}, it takes one statement, and `ingest` runs it without a
 * transaction.
 * @internal
 */
export async function ingestEvents(client: pg.PoolClient, input: IngestInput): Promise<IngestResult> {
  if (ingestsInOneStatement(input)) return ingestWithoutKeys(client, input);
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
  const keyed = await claimIdempotencyKeys(
    client,
    runs.filter((run) => !duplicateIds.has(run.eventId)),
    now,
  );
  const { runs: undebounced, cancelled } = await applySingletons(client, keyed, now);
  const debounced = await upsertDebounced(
    client,
    undebounced.filter((run) => run.debounce !== undefined),
    now,
  );
  const batched = await addToBatches(client, undebounced, now);
  const pending = [...debounced, ...batched];
  const wanted = undebounced.filter((run) => run.debounce === undefined && run.batch === undefined);
  if (wanted.length === 0) return { events: answer, runs: pending, ...(cancelled && { cancelled }) };
  const created = await client.query<{ id: string }>({
    name: "stepwise_insert_runs",
    text: INSERT_RUNS,
    values: [
      ...runColumns(wanted),
      timeParam(now),
      skippedColumn(wanted),
      wanted.map((run) => timeParam(run.startBy)),
      wanted.map((run) => run.singleton?.key ?? null),
    ],
  });
  const createdIds = new Set(created.rows.map((row) => row.id));
  await insertRunWaits(client, wanted, [...createdIds], now);
  return {
    events: answer,
    runs: [
      ...wanted
        .filter((run) => createdIds.has(run.id))
        .map((run) => ({ id: run.id, functionId: run.functionId, eventId: run.eventId, ...(run.singleton && run.skipped && { skipped: run.skipped }) })),
      ...pending,
    ],
    ...(cancelled && { cancelled }),
  };
}

/** Opens the waits of the runs created ({@link INSERT_RUN_WAITS}); nothing when none carries any. */
async function insertRunWaits(client: pg.PoolClient, runs: IngestInput["runs"], createdIds: string[], now: number): Promise<void> {
  const waits = runs.flatMap((run) => (run.waits ?? []).map((wait) => ({ runId: run.id, ...wait })));
  if (waits.length === 0 || createdIds.length === 0) return;
  await client.query({
    name: "stepwise_insert_run_waits",
    text: INSERT_RUN_WAITS,
    values: [
      waits.map((wait) => wait.runId),
      waits.map((wait) => wait.stepKey),
      waits.map((wait) => wait.stepId),
      waits.map((wait) => wait.kind ?? "step"),
      waits.map((wait) => wait.eventName),
      waits.map((wait) => wait.expression ?? null),
      waits.map((wait) => (Number.isFinite(wait.timeoutAt) ? new Date(wait.timeoutAt).toISOString() : "infinity")),
      waits.map((wait) => wait.matchPath ?? null),
      waits.map((wait) => wait.matchValue ?? null),
      timeParam(now),
      createdIds,
    ],
  });
}

/**
 * The runs to create once their idempotency keys are claimed: runs without a key, and runs that
 * got theirs (the first of a batch per function and key; a key held by a run of the last 24 h
 * leaves its run out).
 */
async function claimIdempotencyKeys(client: pg.PoolClient, runs: IngestInput["runs"], now: number): Promise<IngestInput["runs"]> {
  const keyed = new Map<string, IngestInput["runs"][number]>();
  for (const run of runs) {
    if (run.idempotencyKey === undefined) continue;
    const id = JSON.stringify([run.functionId, run.idempotencyKey]);
    if (!keyed.has(id)) keyed.set(id, run);
  }
  if (keyed.size === 0) return runs;
  // Sorted, so that concurrent batches lock their keys in one order and cannot deadlock.
  const claims = [...keyed.keys()].sort().map((key) => keyed.get(key) as IngestInput["runs"][number]);
  const claimed = await client.query<{ run_id: string }>({
    name: "stepwise_claim_idempotency_keys",
    text: CLAIM_IDEMPOTENCY_KEYS,
    values: [
      claims.map((run) => run.functionId),
      claims.map((run) => run.idempotencyKey),
      claims.map((run) => run.id),
      timeParam(now + IDEMPOTENCY_WINDOW_MS),
      timeParam(now),
    ],
  });
  const winners = new Set(claimed.rows.map((row) => row.run_id));
  return runs.filter((run) => run.idempotencyKey === undefined || winners.has(run.id));
}

/** {@link ingestEvents} for a batch without keys: {@link INSERT_EVENTS_AND_RUNS}, with the same answers. */
async function ingestWithoutKeys(client: pg.PoolClient, input: IngestInput): Promise<IngestResult> {
  const { events, runs, now } = input;
  if (events.length === 0 && runs.length === 0) return { events: [], runs: [] };
  // A second event with an id already in the batch is a duplicate of the first, and, as in the
  // keyed path, no run of that id is created.
  const seen = new Set<string>();
  const repeated = new Set<string>();
  for (const event of events) {
    if (seen.has(event.id)) repeated.add(event.id);
    seen.add(event.id);
  }
  const wanted = repeated.size === 0 ? runs : runs.filter((run) => !repeated.has(run.eventId));
  const result = await client.query<{ kind: "event" | "run"; id: string; match_waits: boolean | null }>({
    name: "stepwise_insert_events_and_runs",
    text: INSERT_EVENTS_AND_RUNS,
    values: [
      events.map((event) => event.id),
      events.map((event) => event.name),
      events.map((event) => JSON.stringify(event.data ?? {})),
      events.map((event) => timeParam(event.ts)),
      ...runColumns(wanted),
      timeParam(now),
      skippedColumn(wanted),
      wanted.map((run) => timeParam(run.startBy)),
      wanted.map((run) => run.singleton?.key ?? null),
    ],
  });
  const insertedIds = new Map<string, boolean>();
  const createdIds = new Set<string>();
  for (const row of result.rows) {
    if (row.kind === "event") insertedIds.set(row.id, row.match_waits === true);
    else createdIds.add(row.id);
  }
  const answer = events.map((event): IngestResult["events"][number] => {
    const matchWaits = insertedIds.get(event.id);
    // Taken once: a later event with the same id is a duplicate of the first.
    if (matchWaits === undefined) return { id: event.id, duplicate: true };
    insertedIds.delete(event.id);
    return matchWaits ? { id: event.id, duplicate: false, matchWaits: true } : { id: event.id, duplicate: false };
  });
  return {
    events: answer,
    runs: wanted.filter((run) => createdIds.has(run.id)).map((run) => ({ id: run.id, functionId: run.functionId, eventId: run.eventId })),
  };
}

/** Most events an ingest may carry to be grouped with others (a larger batch is a statement of its own). */
export const GROUPED_INGEST_MAX_EVENTS = 50;

/**
 * Several ingests without keys in one statement (group commit): their events and runs merged
 * into one {@link ingestWithoutKeys}, the answer split back per ingest. Times are the latest
 * `now` of the group (so no run becomes due before its own ingest's time). An event id found
 * in two ingests of a group is a duplicate in the later one, as within one batch. @internal
 */
export async function ingestManyWithoutKeys(client: pg.PoolClient, inputs: IngestInput[]): Promise<IngestResult[]> {
  const merged: IngestInput = {
    events: inputs.flatMap((input) => input.events),
    runs: inputs.flatMap((input) => input.runs),
    now: Math.max(...inputs.map((input) => input.now)),
  };
  const result = await ingestWithoutKeys(client, merged);
  const created = new Map(result.runs.map((run) => [run.id, run]));
  let offset = 0;
  return inputs.map((input) => {
    const events = result.events.slice(offset, offset + input.events.length);
    offset += input.events.length;
    return { events, runs: input.runs.flatMap((run) => created.get(run.id) ?? []) };
  });
}

/** The `skipped` column of new runs (JSON text of the error, or NULL), passed after `now`. */
function skippedColumn(runs: IngestInput["runs"]): Array<string | null> {
  return runs.map((run) => jsonParam(run.skipped));
}

/** The columns of new runs as arrays, in the order the run inserts unnest them. */
function runColumns(runs: IngestInput["runs"]): Array<Array<string | Date | null>> {
  return [
    runs.map((run) => run.id),
    runs.map((run) => run.functionId),
    runs.map((run) => run.eventId),
    runs.map((run) => run.parentRunId ?? null),
    runs.map((run) => run.parentStepKey ?? null),
    runs.map((run) => run.lease?.workerId ?? null),
    runs.map((run) => timeParam(run.lease?.expiresAt)),
    runs.map((run) => jsonParam(run.flow)),
  ];
}
