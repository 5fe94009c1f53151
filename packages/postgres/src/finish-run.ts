import { ErrorCode } from "@stepwise/core";
import type { FinishResult, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { ingestEvents } from "./ingest-events.js";
import { jsonParam, timeParam } from "./map-rows.js";
import { FINISH_RUN } from "./sql/finish-run.js";
import { Rollback, withClient, withTransaction } from "./with-client.js";

type FinishInput = Parameters<RunStore["finishRun"]>[0];

/**
 * {@link RunStore.finishRun}: the run's end and its parent's invoke step in one autocommitted
 * statement (one round trip); with follow-up events (a failure's `onFailure` run), that
 * statement and their ingest in one transaction, which writes nothing when the lease was lost.
 * @internal
 */
export function finishRun(pool: pg.Pool, input: FinishInput): Promise<FinishResult> {
  const { followUp } = input;
  if (!followUp) return withClient(pool, async (client) => (await endRun(client, input)) ?? { ok: false, followUpRuns: [] });
  return withTransaction<FinishResult>(pool, async (client) => {
    const result = await endRun(client, input);
    if (!result) return new Rollback({ ok: false, followUpRuns: [] });
    result.followUpRuns = (await ingestEvents(client, followUp)).runs;
    return result;
  });
}

/** Runs {@link FINISH_RUN}; null when the lease was lost. */
async function endRun(client: pg.PoolClient, input: FinishInput): Promise<FinishResult | null> {
  const ended = await client.query<{ woken_parent_id: string | null }>({
    name: "stepwise_finish_run",
    text: FINISH_RUN,
    values: [input.runId, input.leaseEpoch, input.status, jsonParam(input.output), jsonParam(input.error), timeParam(input.now), ErrorCode.StepFailed],
  });
  const row = ended.rows[0];
  if (!row) return null;
  const result: FinishResult = { ok: true, followUpRuns: [] };
  if (row.woken_parent_id !== null) result.parentRunId = row.woken_parent_id;
  return result;
}
