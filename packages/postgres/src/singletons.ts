import { ErrorCode } from "@stepwise/core";
import { type IngestInput, type IngestResult, type RunRecord, SINGLETON_CANCELLED } from "@stepwise/engine";
import type pg from "pg";
import { cancelRunOn } from "./cancel-and-rerun.js";
import { functionKeyId, lockFunctionKeys } from "./function-key-locks.js";

/** Open runs of (function, singleton key) pairs. $1 function ids, $2 keys. */
const OPEN_SINGLETON_RUNS = `
SELECT runs.id, runs.function_id, runs.singleton_key FROM unnest($1::text[], $2::text[]) AS input (function_id, key)
JOIN runs ON runs.function_id = input.function_id AND runs.singleton_key = input.key
WHERE runs.singleton_key IS NOT NULL AND runs.status IN ('queued', 'running', 'sleeping', 'waiting')`;

type Run = IngestInput["runs"][number];

/**
 * `singleton` for the runs of one ingest, inside its transaction: at most one open run per
 * function and key. `skip` marks a run `skipped` when a run of its key is open or comes first
 * in the batch; `cancel` cancels the open ones (as `cancelRun` does, in this transaction) and
 * keeps the last run of the batch per key, marking the earlier ones skipped. Answers the runs
 * to create and what was cancelled. Runs of other functions pass unchanged, with no statement.
 * @internal
 */
export async function applySingletons(
  client: pg.PoolClient,
  runs: Run[],
  now: number,
): Promise<{ runs: Run[]; cancelled?: NonNullable<IngestResult["cancelled"]> }> {
  // Under the key's lock, an ingest that sees no open run of a key creates the only one.
  const locked = await lockFunctionKeys(client, runs, (run) => (run.skipped ? undefined : run.singleton?.key), "");
  if (!locked) return { runs };
  const byKey = locked.groups;
  const open = await client.query<{ id: string; function_id: string; singleton_key: string }>({
    name: "stepwise_open_singleton_runs",
    text: OPEN_SINGLETON_RUNS,
    values: [locked.functionIds, locked.keys],
  });
  const openByKey = new Map<string, string[]>();
  for (const row of open.rows) {
    const id = functionKeyId(row.function_id, row.singleton_key);
    openByKey.set(id, [...(openByKey.get(id) ?? []), row.id]);
  }
  const skipped = new Map<string, string>();
  const toCancel: string[] = [];
  for (const [id, batch] of byKey) {
    const running = openByKey.get(id) ?? [];
    const key = JSON.stringify(batch[0]?.singleton?.key);
    if (batch[0]?.singleton?.mode === "skip") {
      const holder = running[0] ?? batch[0]?.id;
      for (const run of running.length > 0 ? batch : batch.slice(1))
        skipped.set(run.id, `singleton: run ${holder} of key ${key} has not ended; the event started no run`);
    } else {
      toCancel.push(...running);
      const last = batch.at(-1)?.id;
      for (const run of batch.slice(0, -1)) skipped.set(run.id, `singleton: a later event of key ${key} in the same send replaces it (run ${last})`);
    }
  }
  const marked = runs.map((run) => {
    const reason = skipped.get(run.id);
    return reason === undefined ? run : { ...run, skipped: { name: "StepwiseError", code: ErrorCode.RunSkipped, message: reason } };
  });
  if (toCancel.length === 0) return { runs: marked };
  const cancelled: RunRecord[] = [];
  const parents: Array<{ runId: string; functionId: string }> = [];
  const error = { name: "StepwiseError", code: ErrorCode.RunCancelled, message: SINGLETON_CANCELLED };
  for (const runId of toCancel) {
    const result = await cancelRunOn(client, { runId, error, now });
    cancelled.push(...result.cancelled);
    if (result.parent) parents.push(result.parent);
  }
  return { runs: marked, cancelled: { runs: cancelled, parents } };
}
