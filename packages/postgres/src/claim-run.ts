import type { ClaimedRun, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { EVENT_COLUMNS, type EventRow, type RunRow, STEP_COLUMNS, type StepRow, timeParam, toRunRecord, toStepRecord, toStoredEvent } from "./map-rows.js";
import { CLAIM_RUN } from "./sql/claim-run.js";
import { withClient } from "./with-client.js";

/** Steps in the order they were first recorded, so a replay reads them as they happened. */
const LOAD_STEPS = `SELECT ${STEP_COLUMNS} FROM steps WHERE run_id = $1 ORDER BY created_at, step_key`;
const LOAD_EVENT = `SELECT ${EVENT_COLUMNS} FROM events WHERE id = $1`;

/**
 * {@link RunStore.claimRun}. The claim and the settling of due sleeps, waits and invokes are
 * one statement (atomic on its own, see `sql/claim-run.ts`), which saves the BEGIN/COMMIT
 * round trips. The steps and the event are read after it: the new epoch fences off every
 * earlier owner, and commits lock the run row, so every result recorded before the claim
 * is visible to these reads.
 * @internal
 */
export function claimRun(pool: pg.Pool, input: Parameters<RunStore["claimRun"]>[0]): Promise<ClaimedRun | null> {
  return withClient(pool, async (client) => {
    const claimed = await client.query<RunRow>({
      name: "stepwise_claim_run",
      text: CLAIM_RUN,
      values: [input.runId, input.workerId, timeParam(input.now), timeParam(input.now + input.leaseMs)],
    });
    const row = claimed.rows[0];
    if (!row) return null;
    const steps = await loadSteps(client, input.runId);
    const event = await client.query<EventRow>({ name: "stepwise_load_event", text: LOAD_EVENT, values: [row.event_id] });
    const eventRow = event.rows[0];
    // runs.event_id references events, so the event is there unless the schema was bypassed.
    if (!eventRow) throw new Error(`run ${input.runId} refers to event ${row.event_id}, which is not stored`);
    return { run: toRunRecord(row), event: toStoredEvent(eventRow), steps: steps.rows.map(toStepRecord) };
  });
}

/** The steps of a run, in recorded order. @internal */
export function loadSteps(client: pg.PoolClient, runId: string): Promise<pg.QueryResult<StepRow>> {
  return client.query<StepRow>({ name: "stepwise_load_steps", text: LOAD_STEPS, values: [runId] });
}
