import { ErrorCode } from "@stepwise/core";
import type { FinishResult, RunStore } from "@stepwise/engine";
import type pg from "pg";
import { ingestEvents } from "./ingest-events.js";
import { jsonParam, timeParam } from "./map-rows.js";
import { FINISH_CLOSE_WAITS, FINISH_RESOLVE_PARENT, FINISH_RUN } from "./sql/finish-run.js";
import { Rollback, withTransaction } from "./with-client.js";

/**
 * {@link RunStore.finishRun}: the run's end, its parent's invoke step and its follow-up
 * events, in one transaction; nothing at all when the lease was lost.
 * @internal
 */
export function finishRun(pool: pg.Pool, input: Parameters<RunStore["finishRun"]>[0]): Promise<FinishResult> {
  const { runId, now } = input;
  return withTransaction<FinishResult>(pool, async (client) => {
    const ended = await client.query<{ function_id: string; parent_run_id: string | null; parent_step_key: string | null }>({
      name: "stepwise_finish_run",
      text: FINISH_RUN,
      values: [runId, input.leaseEpoch, input.status, jsonParam(input.output), jsonParam(input.error), timeParam(now)],
    });
    const run = ended.rows[0];
    if (!run) return new Rollback({ ok: false, followUpRuns: [] });
    await client.query({ name: "stepwise_finish_close_waits", text: FINISH_CLOSE_WAITS, values: [runId] });

    const result: FinishResult = { ok: true, followUpRuns: [] };
    if (run.parent_run_id !== null && run.parent_step_key !== null) {
      // What the parent's `step.invoke` sees: the child's output, or a final StepError.
      const error =
        input.status === "failed"
          ? {
              name: "StepError",
              code: ErrorCode.StepFailed,
              message: `invoked function ${run.function_id} failed: ${input.error?.message ?? "unknown error"}`,
              nonRetriable: true,
            }
          : undefined;
      const parent = await client.query<{ id: string }>({
        name: "stepwise_finish_resolve_parent",
        text: FINISH_RESOLVE_PARENT,
        values: [run.parent_run_id, run.parent_step_key, input.status, error ? null : jsonParam(input.output ?? null), jsonParam(error), timeParam(now)],
      });
      if (parent.rows[0]) result.parentRunId = parent.rows[0].id;
    }
    if (input.followUp) result.followUpRuns = (await ingestEvents(client, input.followUp)).runs;
    return result;
  });
}
