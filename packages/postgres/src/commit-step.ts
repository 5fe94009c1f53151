import type { StepRecord } from "@stepwise/core/internal";
import type { RunStore } from "@stepwise/engine";
import type pg from "pg";
import { jsonParam, type StepRow, timeParam, toStepRecord } from "./map-rows.js";
import { COMMIT_NEW_STEP, COMMIT_STEP, COMMIT_STEP_READBACK } from "./sql/commit-step.js";
import { withClient } from "./with-client.js";

type CommitStepInput = Parameters<RunStore["commitStep"]>[0];
type CommitStepResult = Awaited<ReturnType<RunStore["commitStep"]>>;

/**
 * {@link RunStore.commitStep}: one autocommitted, prepared statement when the commit lands
 * (the common case), a second read only when it did not.
 * @internal
 */
export function commitStep(pool: pg.Pool, input: CommitStepInput): Promise<CommitStepResult> {
  const { runId, leaseEpoch, step, now } = input;
  return withClient(pool, async (client) => {
    const values = [runId, leaseEpoch, step.key, step.id, step.kind, step.status, jsonParam(step.output), jsonParam(step.error), step.attempt];
    const written = step.fresh
      ? await client.query({ name: "stepwise_commit_new_step", text: COMMIT_NEW_STEP, values: [...values, now] }).catch((error: { code?: string }) => {
          // Unique violation: another worker recorded this step first; read back what stands.
          if (error.code === "23505") return { rowCount: 0 };
          throw error;
        })
      : await client.query({ name: "stepwise_commit_step", text: COMMIT_STEP, values: [...values, timeParam(now)] });
    if (written.rowCount === 1) {
      const record: StepRecord = { key: step.key, id: step.id, kind: step.kind, status: step.status, attempt: step.attempt };
      if (step.output !== undefined) record.output = step.output;
      if (step.error !== undefined) record.error = step.error;
      return { ok: true, record };
    }
    const readback = await client.query<StepRow & { lease_epoch: string }>({
      name: "stepwise_commit_step_readback",
      text: COMMIT_STEP_READBACK,
      values: [runId, step.key],
    });
    const row = readback.rows[0];
    // Another worker claimed the run since: this worker must stop, whatever the step holds.
    if (!row || Number(row.lease_epoch) !== leaseEpoch) return { ok: false };
    // Same epoch and nothing written: the step was already final (a second commit of it).
    if (row.status === "completed" || row.status === "failed") return { ok: true, record: toStepRecord(row) };
    // Unreachable while epochs only grow; answering "lease lost" makes the worker back off safely.
    return { ok: false };
  });
}
