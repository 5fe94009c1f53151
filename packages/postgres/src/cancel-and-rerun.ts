import { ErrorCode } from "@stepwise/core";
import type { RunStore } from "@stepwise/engine";
import type pg from "pg";
import { jsonParam, type RunRow, timeParam, toRunRecord } from "./map-rows.js";
import { CANCEL_RUN, CREATE_RUNS } from "./sql/cancel-and-rerun.js";
import { withClient } from "./with-client.js";

/** {@link RunStore.cancelRun}: one statement (see {@link CANCEL_RUN}). @internal */
export function cancelRun(pool: pg.Pool, input: Parameters<RunStore["cancelRun"]>[0]): ReturnType<RunStore["cancelRun"]> {
  return withClient(pool, (client) => cancelRunOn(client, input));
}

/** {@link CANCEL_RUN} on `client`, inside whatever transaction it is in (a singleton's ingest cancels there). @internal */
export async function cancelRunOn(client: pg.PoolClient, input: Parameters<RunStore["cancelRun"]>[0]): ReturnType<RunStore["cancelRun"]> {
  const result = await client.query<{ kind: "cancelled" | "woken"; id: string; function_id: string; run: RunRow | null }>({
    name: "stepwise_cancel_run",
    text: CANCEL_RUN,
    values: [input.runId, jsonParam(input.error), timeParam(input.now), ErrorCode.RunCancelled],
  });
  const answer: Awaited<ReturnType<RunStore["cancelRun"]>> = { cancelled: [] };
  for (const row of result.rows) {
    if (row.kind === "woken") answer.parent = { runId: row.id, functionId: row.function_id };
    else if (row.run) answer.cancelled.push(toRunRecord(row.run));
  }
  return answer;
}

/** {@link RunStore.createRuns}: one statement (see {@link CREATE_RUNS}). @internal */
export function createRuns(pool: pg.Pool, input: Parameters<RunStore["createRuns"]>[0]): ReturnType<RunStore["createRuns"]> {
  if (input.runs.length === 0) return Promise.resolve([]);
  return withClient(pool, async (client) => {
    const { runs } = input;
    const result = await client.query<{ id: string; function_id: string; event_id: string }>({
      name: "stepwise_create_runs",
      text: CREATE_RUNS,
      values: [
        runs.map((run) => run.id),
        runs.map((run) => run.functionId),
        runs.map((run) => run.eventId),
        runs.map((run) => run.rerunOf ?? null),
        runs.map((run) => run.reuseStepsBefore ?? null),
        timeParam(input.now),
        runs.map((run) => jsonParam(run.flow)),
      ],
    });
    return result.rows.map((row) => ({ id: row.id, functionId: row.function_id, eventId: row.event_id }));
  });
}
