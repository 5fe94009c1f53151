import { ErrorCode } from "@stepwise/core";
import type { FinishResult, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { type GroupLimits, groupedWrite } from "./group-commit.js";
import { ingestEvents } from "./ingest-events.js";
import { columnArrays, jsonParam, timeParam } from "./map-rows.js";
import { FINISH_RUN, FINISH_RUNS } from "./sql/finish-run.js";
import { Rollback, withClient, withTransaction } from "./with-client.js";

type FinishInput = Parameters<RunStore["finishRun"]>[0];

const NOT_ENDED: FinishResult = { ok: false, followUpRuns: [] };

/**
 * {@link RunStore.finishRun}: the run's end and its parent's invoke step in one autocommitted
 * statement (one round trip), and the ends of many runs arriving together in one statement
 * (group commit); with follow-up events (a failure's `onFailure` run), that statement and their
 * ingest in one transaction, which writes nothing when the lease was lost.
 * @internal
 */
export function createFinishRun(pool: pg.Pool, limits: GroupLimits | undefined): RunStore["finishRun"] {
  const finishOne = (input: FinishInput) => withClient(pool, async (client) => (await endRun(client, input)) ?? { ...NOT_ENDED });
  const finishPlain = groupedWrite(limits, finishOne, (inputs) => finishMany(pool, inputs));
  return (input) => {
    const { followUp } = input;
    if (!followUp) return finishPlain(input);
    return withTransaction<FinishResult>(pool, async (client) => {
      const result = await endRun(client, input);
      if (!result) return new Rollback({ ...NOT_ENDED });
      const ingested = await ingestEvents(client, followUp);
      result.followUpRuns = ingested.runs;
      if (ingested.cancelled) result.cancelled = ingested.cancelled;
      return result;
    });
  };
}

/** Columns of one uncommitted step in {@link FINISH_RUN}'s step arrays. */
const STEP_COLUMNS = 8;

/** The uncommitted steps of a run's end as rows of the finish statements' step arrays. */
function stepRows(input: FinishInput): unknown[][] {
  return (input.steps ?? []).map((step) => [
    step.key,
    step.id,
    step.kind,
    step.status,
    jsonParam(step.output),
    jsonParam(step.error),
    step.attempt,
    step.startedAt ?? input.now,
  ]);
}

/** Runs {@link FINISH_RUN}; null when the lease was lost. */
async function endRun(client: pg.PoolClient, input: FinishInput): Promise<FinishResult | null> {
  const ended = await client.query<{ woken_parent_id: string | null; woken_parent_function_id: string | null }>({
    name: "stepwise_finish_run",
    text: FINISH_RUN,
    values: [
      input.runId,
      input.leaseEpoch,
      input.status,
      jsonParam(input.output),
      jsonParam(input.error),
      timeParam(input.now),
      ErrorCode.StepFailed,
      ...columnArrays(stepRows(input), STEP_COLUMNS),
    ],
  });
  const row = ended.rows[0];
  if (!row) return null;
  const result: FinishResult = { ok: true, followUpRuns: [] };
  if (row.woken_parent_id !== null && row.woken_parent_function_id !== null)
    result.parent = { runId: row.woken_parent_id, functionId: row.woken_parent_function_id };
  return result;
}

/** Runs {@link FINISH_RUNS}, then {@link FINISH_RUN} for each run it left (a child, a lost lease). */
function finishMany(pool: pg.Pool, inputs: FinishInput[]): Promise<FinishResult[]> {
  return withClient(pool, async (client) => {
    const ended = await client.query<{ id: string }>({
      name: "stepwise_finish_runs",
      text: FINISH_RUNS,
      values: [
        ...columnArrays(inputs.map((input) => [input.runId, input.leaseEpoch, input.status, jsonParam(input.output), jsonParam(input.error), input.now])),
        ...columnArrays(
          inputs.flatMap((input) => stepRows(input).map((row) => [input.runId, ...row])),
          STEP_COLUMNS + 1,
        ),
      ],
    });
    const done = new Set(ended.rows.map((row) => row.id));
    const results: FinishResult[] = [];
    for (const input of inputs) results.push(done.has(input.runId) ? { ok: true, followUpRuns: [] } : ((await endRun(client, input)) ?? { ...NOT_ENDED }));
    return results;
  });
}
