import type { IngestResult, RunStore, SuspendInput } from "@stepwise/engine";
import type pg from "pg";
import { ingestEvents } from "./ingest-events.js";
import { jsonParam, timeParam } from "./map-rows.js";
import { SUSPEND_INSERT_WAITS, SUSPEND_LOCK_RUN, SUSPEND_SET_WAKE, SUSPEND_UPSERT_STEPS } from "./sql/suspend-run.js";
import { Rollback, withTransaction } from "./with-client.js";

type SuspendResult = Awaited<ReturnType<RunStore["suspendRun"]>>;

/**
 * {@link RunStore.suspendRun}: open steps, waits and child runs, then the run's wake-up, in
 * one transaction that holds the run row from the epoch check to the end.
 * @internal
 */
export function suspendRun(pool: pg.Pool, input: SuspendInput): Promise<SuspendResult> {
  const { runId, steps, waits, now } = input;
  return withTransaction<SuspendResult>(pool, async (client) => {
    const locked = await client.query<{ lease_epoch: string; status: string }>({ name: "stepwise_suspend_lock_run", text: SUSPEND_LOCK_RUN, values: [runId] });
    const run = locked.rows[0];
    if (!run || Number(run.lease_epoch) !== input.leaseEpoch || run.status !== "running") return new Rollback({ ok: false, childRuns: [] });

    if (steps.length > 0) {
      await client.query({
        name: "stepwise_suspend_upsert_steps",
        text: SUSPEND_UPSERT_STEPS,
        values: [
          runId,
          steps.map((step) => step.key),
          steps.map((step) => step.id),
          steps.map((step) => step.kind),
          steps.map((step) => step.status),
          steps.map((step) => step.attempt),
          steps.map((step) => jsonParam(step.error)),
          steps.map((step) => timeParam(step.wakeAt)),
          timeParam(now),
        ],
      });
    }
    if (waits.length > 0) {
      await client.query({
        name: "stepwise_suspend_insert_waits",
        text: SUSPEND_INSERT_WAITS,
        values: [
          runId,
          waits.map((wait) => wait.stepKey),
          waits.map((wait) => wait.stepId),
          waits.map((wait) => wait.eventName),
          waits.map((wait) => wait.expression ?? null),
          waits.map((wait) => timeParam(wait.timeoutAt)),
          timeParam(now),
          waits.map((wait) => wait.alternative ?? 0),
          waits.map((wait) => wait.matchPath ?? null),
          waits.map((wait) => wait.matchValue ?? null),
        ],
      });
    }
    let childRuns: IngestResult["runs"] = [];
    let cancelled: IngestResult["cancelled"];
    if (input.invokes.events.length > 0 || input.invokes.runs.length > 0) ({ runs: childRuns, cancelled } = await ingestEvents(client, input.invokes));

    const watched = [...new Set([...input.pendingKeys, ...steps.map((step) => step.key)])];
    const woken = await client.query<{ wake_at: Date | null }>({
      name: "stepwise_suspend_set_wake",
      text: SUSPEND_SET_WAKE,
      values: [runId, watched, timeParam(now)],
    });
    const wakeAt = woken.rows[0]?.wake_at;
    return { ok: true, ...(wakeAt && { wakeAt: wakeAt.getTime() }), childRuns, ...(cancelled && { cancelled }) };
  });
}
