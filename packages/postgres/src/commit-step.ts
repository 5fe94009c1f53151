import { recordOf, type StepCommit } from "@stepwise/core/internal";
import type { RunStore } from "@stepwise/engine";
import type pg from "pg";
import { type GroupLimits, groupedWrite } from "./group-commit.js";
import { columnArrays, jsonParam, type StepRow, timeParam, toStepRecord } from "./map-rows.js";
import { COMMIT_NEW_STEP, COMMIT_NEW_STEPS, COMMIT_STEP, COMMIT_STEP_READBACK } from "./sql/commit-step.js";
import { withClient } from "./with-client.js";

type CommitStepInput = Parameters<RunStore["commitStep"]>[0];
type CommitStepResult = Awaited<ReturnType<RunStore["commitStep"]>>;

/**
 * {@link RunStore.commitStep}. A step with a row already (a retry, a sleep) is one upsert; a fresh
 * step is one plain insert, and fresh steps of many runs arriving together are one statement
 * (group commit). Either is one autocommitted, prepared statement when the commit lands (the
 * common case), and a second read only when it did not.
 * @internal
 */
export function createCommitStep(pool: pg.Pool, limits: GroupLimits | undefined): RunStore["commitStep"] {
  const commitFresh = groupedWrite(
    limits,
    (input: CommitStepInput) => commitOne(pool, input),
    (inputs) => commitMany(pool, inputs),
  );
  return (input) => (input.step.fresh ? commitFresh(input) : commitOne(pool, input));
}

function stepValues(input: CommitStepInput): unknown[] {
  const { step } = input;
  return [input.runId, input.leaseEpoch, step.key, step.id, step.kind, step.status, jsonParam(step.output), jsonParam(step.error), step.attempt];
}

function commitOne(pool: pg.Pool, input: CommitStepInput): Promise<CommitStepResult> {
  const { step, now } = input;
  return withClient(pool, async (client) => {
    const values = stepValues(input);
    const written = step.fresh
      ? await client
          .query({ name: "stepwise_commit_new_step", text: COMMIT_NEW_STEP, values: [...values, now, step.startedAt ?? now] })
          .catch((error: { code?: string }) => {
            // Unique violation: another worker recorded this step first; read back what stands.
            if (error.code === "23505") return { rowCount: 0 };
            throw error;
          })
      : await client.query({ name: "stepwise_commit_step", text: COMMIT_STEP, values: [...values, timeParam(now), timeParam(step.startedAt ?? now)] });
    return written.rowCount === 1 ? committed(step) : readBack(client, input);
  });
}

function commitMany(pool: pg.Pool, inputs: CommitStepInput[]): Promise<CommitStepResult[]> {
  return withClient(pool, async (client) => {
    const written = await client.query<{ run_id: string; step_key: string }>({
      name: "stepwise_commit_new_steps",
      text: COMMIT_NEW_STEPS,
      values: columnArrays(inputs.map((input) => [...stepValues(input), input.now, input.step.startedAt ?? input.now])),
    });
    const landed = new Set(written.rows.map((row) => `${row.run_id}\u0000${row.step_key}`));
    const results: CommitStepResult[] = [];
    for (const input of inputs) {
      results.push(landed.has(`${input.runId}\u0000${input.step.key}`) ? committed(input.step) : await readBack(client, input));
    }
    return results;
  });
}

function committed(step: StepCommit): CommitStepResult {
  return { ok: true, record: recordOf(step) };
}

/** After a commit wrote nothing: whether the step stands (same epoch, final) or the lease is gone. */
async function readBack(client: pg.PoolClient, input: CommitStepInput): Promise<CommitStepResult> {
  const readback = await client.query<StepRow & { lease_epoch: string }>({
    name: "stepwise_commit_step_readback",
    text: COMMIT_STEP_READBACK,
    values: [input.runId, input.step.key],
  });
  const row = readback.rows[0];
  // Another worker claimed the run since: this worker must stop, whatever the step holds.
  if (!row || Number(row.lease_epoch) !== input.leaseEpoch) return { ok: false };
  // Same epoch and nothing written: the step was already final (a second commit of it).
  if (row.status === "completed" || row.status === "failed") return { ok: true, record: toStepRecord(row) };
  // Unreachable while epochs only grow; answering "lease lost" makes the worker back off safely.
  return { ok: false };
}
