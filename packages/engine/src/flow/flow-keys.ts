import { type AnyStepwiseFunction, MAX_PRIORITY_SECONDS, type ResolvedFunctionConfig, type StepwiseEvent } from "@stepwise/core";
import { compileExpression } from "@stepwise/core/internal";
import type { ConcurrencySlot, QueueItem } from "../ports/queue.js";
import type { RunFlow } from "../ports/run-store.js";

/**
 * The value of a key expression for an event, as a string: a string as it is, anything else
 * as JSON, and `""` when the expression fails (a missing field): events are untrusted input,
 * so such runs share one key rather than fail.
 */
export function keyValue(source: string, event: StepwiseEvent): string {
  try {
    const value = compileExpression(source, "key")({ event });
    if (typeof value === "string") return value;
    if (value === undefined || value === null) return "";
    return JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item));
  } catch {
    return "";
  }
}

/**
 * Seconds of advance from `priority.run` for an event, within ±{@link MAX_PRIORITY_SECONDS}
 * (a failing expression, or one that is not a number, gives 0).
 */
export function priorityOf(source: string, event: StepwiseEvent): number {
  let value: unknown;
  try {
    value = compileExpression(source, "priority.run")({ event });
  } catch {
    return 0;
  }
  const seconds = typeof value === "bigint" ? Number(value) : typeof value === "number" ? value : Number.NaN;
  if (!Number.isFinite(seconds)) return 0;
  return Math.max(-MAX_PRIORITY_SECONDS, Math.min(MAX_PRIORITY_SECONDS, Math.trunc(seconds)));
}

/** What a run of a function with these controls stores (see {@link RunFlow}); `undefined` when none applies. */
export function runFlow(config: ResolvedFunctionConfig, event: StepwiseEvent): RunFlow | undefined {
  const flow: RunFlow = {};
  if (config.concurrency.some((rule) => rule.key !== undefined)) {
    flow.concurrency = config.concurrency.map((rule) => (rule.key === undefined ? "" : keyValue(rule.key, event)));
  }
  if (config.throttle?.key !== undefined) flow.throttle = keyValue(config.throttle.key, event);
  if (config.priority) {
    const seconds = priorityOf(config.priority.run, event);
    if (seconds !== 0) flow.priority = seconds;
  }
  if (config.timeouts?.finishMs !== undefined) flow.finishMs = config.timeouts.finishMs;
  return Object.keys(flow).length === 0 ? undefined : flow;
}

/**
 * The slots a run must hold, one per concurrency rule: `<function>#<rule>` (plus `:<key value>`
 * for a keyed rule) for scope `fn`, `env:<key value>` for scope `env`, shared by every function.
 */
export function concurrencySlots(fn: AnyStepwiseFunction, flow: RunFlow | undefined): ConcurrencySlot[] {
  return fn.config.concurrency.map((rule, index) => {
    const value = flow?.concurrency?.[index] ?? "";
    if (rule.scope === "env") return { key: `env:${value}`, limit: rule.limit };
    return { key: rule.key === undefined ? `${fn.qualifiedId}#${index}` : `${fn.qualifiedId}#${index}:${value}`, limit: rule.limit };
  });
}

/** Whether queueing a run of `fn` needs its stored {@link RunFlow} (keyed slots, or a priority). */
export function needsRunFlow(fn: AnyStepwiseFunction): boolean {
  const { concurrency, priority, throttle } = fn.config;
  return concurrency.some((rule) => rule.key !== undefined) || priority !== undefined || throttle !== undefined;
}

/** A run to queue, as the engine's parts hand it over: the item, and what flow control needs. */
export interface RunToQueue extends QueueItem {
  /** The run's stored flow keys; `null` when known to have none, `undefined` when not known here. */
  flow?: RunFlow | null;
  /** The run never started: its start is what `priority` moves and `throttle` paces. */
  fresh?: boolean;
}

/**
 * The queue item for a run of `fn` (or of a function this process does not have): its slots,
 * and for a fresh start its throttle (per function: two functions with the same key value do
 * not share a pace) and its priority (earlier by the advance, or later when negative).
 */
export function toQueueItem(fn: AnyStepwiseFunction | undefined, run: RunToQueue): QueueItem {
  const { flow, fresh, ...item } = run;
  if (!fn) return item;
  if (fn.config.concurrency.length > 0 && item.concurrency === undefined) item.concurrency = concurrencySlots(fn, flow ?? undefined);
  const { throttle } = fn.config;
  if (fresh && throttle && item.throttle === undefined) {
    item.throttle = { key: `${fn.qualifiedId}:${flow?.throttle ?? ""}`, limit: throttle.limit, periodMs: throttle.periodMs, burst: throttle.burst };
  }
  if (fresh && flow?.priority) item.availableAt -= flow.priority * 1000;
  return item;
}
