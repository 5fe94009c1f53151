import { INVOKE_EVENT_NAME } from "@stepwise/core";
import type { SuspendOp } from "@stepwise/core/internal";
import type { RunToQueue } from "../flow/flow-keys.js";
import { storedMatch } from "../flow/match-values.js";
import type { ClaimedRun, NewWait, StoredEvent, SuspendedStep, SuspendInput } from "../ports/run-store.js";
import { newEventId, newRunId } from "../router.js";
import type { ProcessContext } from "./process-run.js";

// How a pass ends when it suspends: split from process-run.ts, which runs the pass.

/**
 * Records how a pass suspended (sleeps, waits, invokes, retries), then queues what it made
 * runnable (the run at its wake time, invoked child runs) and matches `lookback` waits against
 * the events received before them.
 */
export async function suspend(context: ProcessContext, claimed: ClaimedRun, ops: SuspendOp[]): Promise<void> {
  const { store, clock } = context.options;
  const { run } = claimed;
  const now = clock.now();
  const input: SuspendInput = { runId: run.id, leaseEpoch: run.leaseEpoch, steps: [], waits: [], invokes: { events: [], runs: [], now }, pendingKeys: [], now };
  // Waits that also accept events received before they began (`lookback`): matched once recorded.
  const lookbacks: Array<{ waits: NewWait[]; sinceMs: number }> = [];
  const reasons: string[] = [];
  for (const op of ops) {
    reasons.push(describe(op));
    if (op.kind === "pending") {
      input.pendingKeys.push(op.key);
      continue;
    }
    input.steps.push(suspendedStep(op));
    if (op.kind === "wait") {
      const waits = op.conditions.map((condition, alternative) => ({
        stepKey: op.key,
        stepId: op.id,
        alternative,
        eventName: condition.event,
        timeoutAt: op.timeoutAt,
        ...storedMatch(claimed.event, condition.match, condition.expression),
      }));
      input.waits.push(...waits);
      if (op.lookbackMs !== undefined) lookbacks.push({ waits, sinceMs: now - op.lookbackMs });
    } else if (op.kind === "invoke") {
      const child: StoredEvent = { id: newEventId(), key: `invoke-${run.id}-${op.key}`, name: INVOKE_EVENT_NAME, data: op.data, ts: now };
      input.invokes.events.push(child);
      input.invokes.runs.push({
        id: newRunId(),
        functionId: op.functionId,
        eventId: child.id,
        parentRunId: run.id,
        parentStepKey: op.key,
        ...context.router.runFields(op.functionId, child),
      });
    }
  }
  const result = await store.suspendRun(input);
  if (!result.ok) {
    context.lifecycle.emit({ type: "run-aborted", runId: run.id, functionId: run.functionId, reason: "lease lost before the suspension was recorded" });
    return;
  }
  context.lifecycle.emit({ type: "run-suspended", runId: run.id, functionId: run.functionId, reasons, wakeAt: result.wakeAt });
  if (result.cancelled) await context.announceSingletons(result.cancelled);
  const routed = new Map(input.invokes.runs.map((child) => [child.id, child]));
  const wake: RunToQueue[] = result.childRuns.map((child) => ({
    runId: child.id,
    functionId: child.functionId,
    availableAt: now,
    flow: routed.get(child.id)?.flow ?? null,
    fresh: true,
  }));
  if (result.wakeAt !== undefined) wake.push({ runId: run.id, functionId: run.functionId, availableAt: result.wakeAt, flow: run.flow ?? null });
  if (wake.length > 0) await context.enqueue(wake);
  for (const lookback of lookbacks) await context.matchRecentEvents(run.id, claimed.event, lookback.waits, lookback.sinceMs);
}

function suspendedStep(op: Exclude<SuspendOp, { kind: "pending" }>): SuspendedStep {
  switch (op.kind) {
    case "sleep":
      return { key: op.key, id: op.id, kind: "sleep", status: "waiting", attempt: 0, wakeAt: op.wakeAt };
    case "wait":
      return { key: op.key, id: op.id, kind: "wait", status: "waiting", attempt: 0, wakeAt: op.timeoutAt };
    case "invoke":
      return { key: op.key, id: op.id, kind: "invoke", status: "waiting", attempt: 0, wakeAt: op.timeoutAt };
    case "retry":
      return { key: op.key, id: op.id, kind: "run", status: "retrying", attempt: op.attempt, error: op.error, wakeAt: op.retryAt };
  }
}

function describe(op: SuspendOp): string {
  switch (op.kind) {
    case "sleep":
      return `sleep "${op.id}" until ${new Date(op.wakeAt).toISOString()}`;
    case "wait":
      return `wait "${op.id}" for ${op.conditions.map((condition) => condition.event).join(" or ")}`;
    case "invoke":
      return `invoke "${op.id}" → ${op.functionId}`;
    case "retry":
      return `retry "${op.id}" (attempt ${op.attempt + 2}) at ${new Date(op.retryAt).toISOString()}`;
    case "pending":
      return `still waiting on "${op.id}"`;
  }
}
