import type { ClaimedRun, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { type GroupLimits, groupedWrite } from "./group-commit.js";
import {
  columnArrays,
  EVENT_COLUMNS,
  type EventRow,
  type RunRow,
  STEP_COLUMNS,
  type StepRow,
  timeParam,
  toRunRecord,
  toStepRecord,
  toStoredEvent,
} from "./map-rows.js";
import { CLAIM_RUN, CLAIM_RUNS } from "./sql/claim-run.js";
import { withClient } from "./with-client.js";

type ClaimInput = Parameters<RunStore["claimRun"]>[0];

/** Steps in the order they were first recorded, so a replay reads them as they happened. */
const LOAD_STEPS = `SELECT ${STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY created_at, step_key`;

/** {@link LOAD_STEPS} for several runs, grouped by run. */
const LOAD_STEPS_OF_RUNS = `SELECT run_id, ${STEP_COLUMNS} FROM steps WHERE run_id = ANY($1::text[]) ORDER BY run_id, created_at, step_key`;

/** The events of batched runs (`runs.event_ids`), read after their claim. */
const LOAD_BATCH_EVENTS = `SELECT ${EVENT_COLUMNS} FROM events WHERE id = ANY($1::text[])`;

/** A row of {@link CLAIM_RUN}: the run, and its event's columns (null only if the event is missing). */
interface ClaimedRunRow extends RunRow {
  event_key: string | null;
  event_name: string | null;
  event_data: EventRow["data"] | null;
  event_ts: number | null;
}

/**
 * {@link RunStore.claimRun}. The claim, the settling of due sleeps, waits and invokes, and the
 * read of the run's event are one statement (atomic on its own, see `sql/claim-run.ts`), which
 * saves the BEGIN/COMMIT round trips; claims of many runs arriving together are one statement
 * (group commit). The steps are read after it: the new epoch fences off every earlier owner,
 * and commits lock the run row, so every result recorded before the claim is visible to that
 * read. A first claim (epoch 0 → 1) skips it: every step write carries the epoch of a claim, so
 * a run never claimed before has no steps. A fresh run thus costs one round trip.
 * @internal
 */
export function createClaimRun(pool: pg.Pool, limits: GroupLimits | undefined): RunStore["claimRun"] {
  return groupedWrite(
    limits,
    (input: ClaimInput) => withClient(pool, (client) => claimAlone(client, input)),
    (inputs) => claimMany(pool, inputs),
  );
}

async function claimAlone(client: pg.PoolClient, input: ClaimInput): Promise<ClaimedRun | null> {
  const claimed = await client.query<ClaimedRunRow>({
    name: "stepwise_claim_run",
    text: CLAIM_RUN,
    values: [input.runId, input.workerId, timeParam(input.now), timeParam(input.now + input.leaseMs)],
  });
  const row = claimed.rows[0];
  if (!row) return null;
  const { run, event } = toClaimed(row);
  const steps = run.leaseEpoch === 1 ? [] : (await loadSteps(client, input.runId)).rows.map(toStepRecord);
  const claimedRun: ClaimedRun = { run, event, steps };
  await loadBatchEvents(client, [claimedRun]);
  return claimedRun;
}

function claimMany(pool: pg.Pool, inputs: ClaimInput[]): Promise<Array<ClaimedRun | null>> {
  return withClient(pool, async (client) => {
    const sorted = [...inputs].sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
    const claimed = await client.query<ClaimedRunRow>({
      name: "stepwise_claim_runs",
      text: CLAIM_RUNS,
      values: columnArrays(sorted.map((input) => [input.runId, input.workerId, input.now, input.now + input.leaseMs])),
    });
    const byRun = new Map<string, ClaimedRun>();
    for (const row of claimed.rows) byRun.set(row.id, { ...toClaimed(row), steps: [] });
    const replays = [...byRun.values()].filter((entry) => entry.run.leaseEpoch > 1).map((entry) => entry.run.id);
    if (replays.length > 0) {
      const steps = await client.query<StepRow & { run_id: string }>({ name: "stepwise_load_steps_of_runs", text: LOAD_STEPS_OF_RUNS, values: [replays] });
      for (const row of steps.rows) byRun.get(row.run_id)?.steps.push(toStepRecord(row));
    }
    await loadBatchEvents(client, [...byRun.values()]);
    // Two claims of one run in one batch: the statement claimed it once, for the first of them.
    const answered = new Set<string>();
    return inputs.map((input) => {
      const entry = byRun.get(input.runId);
      if (!entry || answered.has(input.runId)) return null;
      answered.add(input.runId);
      return entry;
    });
  });
}

function toClaimed(row: ClaimedRunRow): Omit<ClaimedRun, "steps"> {
  // runs.event_id references events, so the event is there unless the schema was bypassed.
  if (row.event_name === null || row.event_data === null || row.event_ts === null) {
    throw new Error(`run ${row.id} refers to event ${row.event_id}, which is not stored`);
  }
  const event = toStoredEvent({ id: row.event_id, key: row.event_key, name: row.event_name, data: row.event_data, ts: row.event_ts });
  return { run: toRunRecord(row), event };
}

/**
 * Fills in `events` of the claimed runs that are batches, in their order, with one read for
 * all of them; a run of one event is left as it is. The events were committed with (or before)
 * the `event_ids` the claim returned, so the read sees every one.
 */
async function loadBatchEvents(client: pg.PoolClient, claimed: ClaimedRun[]): Promise<void> {
  const batches = claimed.filter((entry) => (entry.run.eventIds?.length ?? 0) > 1);
  if (batches.length === 0) return;
  const ids = batches.flatMap((entry) => entry.run.eventIds ?? []);
  const rows = await client.query<EventRow>({ name: "stepwise_load_batch_events", text: LOAD_BATCH_EVENTS, values: [ids] });
  const byId = new Map(rows.rows.map((row) => [row.id, toStoredEvent(row)]));
  for (const entry of batches) {
    entry.events = (entry.run.eventIds ?? []).map((id) => {
      const event = byId.get(id);
      if (!event) throw new Error(`run ${entry.run.id} refers to event ${id} of its batch, which is not stored`);
      return event;
    });
  }
}

/** The steps of a run, in recorded order. @internal */
export function loadSteps(client: pg.PoolClient, runId: string): Promise<pg.QueryResult<StepRow>> {
  return client.query<StepRow>({ name: "stepwise_load_steps", text: LOAD_STEPS, values: [runId] });
}
