import type { ClaimedRun, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { type EventRow, type RunRow, STEP_COLUMNS, type StepRow, timeParam, toRunRecord, toStepRecord, toStoredEvent } from "./map-rows.js";
import { CLAIM_RUN } from "./sql/claim-run.js";
import { withClient } from "./with-client.js";

/** Steps in the order they were first recorded, so a replay reads them as they happened. */
const LOAD_STEPS = `SELECT ${STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY created_at, step_key`;

/** A row of {@link CLAIM_RUN}: the run, and its event's columns (null only if the event is missing). */
interface ClaimedRunRow extends RunRow {
  event_key: string | null;
  event_name: string | null;
  event_data: EventRow["data"] | null;
  event_ts: Date | null;
}

/**
 * {@link RunStore.claimRun}. The claim, the settling of due sleeps, waits and invokes, and the
 * read of the run's event are one statement (atomic on its own, see `sql/claim-run.ts`), which
 * saves the BEGIN/COMMIT round trips. The steps are read after it: the new epoch fences off
 * every earlier owner, and commits lock the run row, so every result recorded before the claim
 * is visible to that read. A first claim (epoch 0 → 1) skips it: every step write carries the
 * epoch of a claim, so a run never claimed before has no steps. A fresh run thus costs one
 * round trip.
 * @internal
 */
export function claimRun(pool: pg.Pool, input: Parameters<RunStore["claimRun"]>[0]): Promise<ClaimedRun | null> {
  return withClient(pool, async (client) => {
    const claimed = await client.query<ClaimedRunRow>({
      name: "stepwise_claim_run",
      text: CLAIM_RUN,
      values: [input.runId, input.workerId, timeParam(input.now), timeParam(input.now + input.leaseMs)],
    });
    const row = claimed.rows[0];
    if (!row) return null;
    // runs.event_id references events, so the event is there unless the schema was bypassed.
    if (row.event_name === null || row.event_data === null || row.event_ts === null) {
      throw new Error(`run ${input.runId} refers to event ${row.event_id}, which is not stored`);
    }
    const event = toStoredEvent({ id: row.event_id, key: row.event_key, name: row.event_name, data: row.event_data, ts: row.event_ts });
    const run = toRunRecord(row);
    const steps = run.leaseEpoch === 1 ? [] : (await loadSteps(client, input.runId)).rows.map(toStepRecord);
    return { run, event, steps };
  });
}

/** The steps of a run, in recorded order. @internal */
export function loadSteps(client: pg.PoolClient, runId: string): Promise<pg.QueryResult<StepRow>> {
  return client.query<StepRow>({ name: "stepwise_load_steps", text: LOAD_STEPS, values: [runId] });
}
