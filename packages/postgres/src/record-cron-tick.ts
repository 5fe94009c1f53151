import type { CronTickRun, IngestInput } from "@stepwise/engine";
import type pg from "pg";
import { ingestEvents } from "./ingest-events.js";
import { timeParam } from "./map-rows.js";
import { Rollback, withTransaction } from "./with-client.js";

/**
 * The tick's row is the lock: a concurrent scheduler's insert waits for this transaction and
 * then finds the row, so a tick starts at most one run whatever the number of schedulers.
 */
const INSERT_CRON_TICK = `
INSERT INTO cron_ticks (function_id, scheduled_for) VALUES ($1, $2)
ON CONFLICT (function_id, scheduled_for) DO NOTHING
RETURNING function_id`;

const SET_CRON_TICK_RUN = "UPDATE cron_ticks SET run_id = $3 WHERE function_id = $1 AND scheduled_for = $2";

/** {@link RunStore.recordCronTick}. @internal */
export function recordCronTick(pool: pg.Pool, input: { functionId: string; scheduledFor: number; ingest: IngestInput }): Promise<CronTickRun | null> {
  const scheduledFor = timeParam(input.scheduledFor);
  return withTransaction<CronTickRun | null>(pool, async (client) => {
    const tick = await client.query({ name: "stepwise_insert_cron_tick", text: INSERT_CRON_TICK, values: [input.functionId, scheduledFor] });
    if (tick.rowCount === 0) return new Rollback(null);
    const ingested = await ingestEvents(client, input.ingest);
    // The tick's own function's run; the ingest may carry no other, but be exact about it.
    const run = ingested.runs.find((candidate) => candidate.functionId === input.functionId) ?? ingested.runs[0];
    if (!run) return null;
    await client.query({ name: "stepwise_set_cron_tick_run", text: SET_CRON_TICK_RUN, values: [input.functionId, scheduledFor, run.id] });
    return ingested.cancelled ? { ...run, cancelled: ingested.cancelled } : run;
  });
}
