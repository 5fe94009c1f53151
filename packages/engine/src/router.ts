import { randomFillSync } from "node:crypto";
import { type AnyStepwiseFunction, INVOKE_EVENT_NAME, isEventTrigger, type StepwiseEvent } from "@stepwise/core";
import { matchesExpression } from "@stepwise/core/internal";
import { ulid } from "ulid";
import { keyValue, runFlow } from "./flow/flow-keys.js";
import { storedMatch } from "./flow/match-values.js";
import type { NewRun, NewWait } from "./ports/run-store.js";

/** Finds the functions an event starts: by name, then by each trigger's `if`. */
export class Router {
  private readonly byEvent = new Map<string, Array<{ fn: AnyStepwiseFunction; condition?: string }>>();
  private readonly byId = new Map<string, AnyStepwiseFunction>();

  /**
   * @param now The engine's clock, for the deadlines of `cancelOn` waits a new run opens.
   *   (Default: `Date.now`)
   */
  constructor(
    functions: Iterable<AnyStepwiseFunction>,
    private readonly now: () => number = Date.now,
  ) {
    for (const fn of functions) this.add(fn);
  }

  /** The function of a qualified id, if this router has it. */
  functionOf(functionId: string): AnyStepwiseFunction | undefined {
    return this.byId.get(functionId);
  }

  /**
   * What a new run of the function (by qualified id) for `event` carries besides its ids (its
   * flow keys and idempotency key), for runs created outside routing: invokes and replays. Such
   * a run is never batched: its caller waits for this run's own result.
   */
  runFields(functionId: string, event: StepwiseEvent): Omit<NewRunFields, "batch"> {
    const fn = this.byId.get(functionId);
    if (!fn) return {};
    const { batch: _batch, ...fields } = newRunFields(fn, event, this.now());
    return fields;
  }

  add(fn: AnyStepwiseFunction): void {
    this.byId.set(fn.qualifiedId, fn);
    for (const trigger of fn.config.triggers) {
      if (!isEventTrigger(trigger)) continue;
      const list = this.byEvent.get(trigger.event) ?? [];
      list.push({ fn, condition: trigger.if });
      this.byEvent.set(trigger.event, list);
    }
  }

  /** New runs for `event`: one per subscribed function whose trigger matches. */
  route(event: StepwiseEvent): NewRun[] {
    // Invoked events target one function, chosen by the caller, never by name.
    if (event.name === INVOKE_EVENT_NAME) return [];
    const runs: NewRun[] = [];
    const started = new Set<string>();
    for (const { fn, condition } of this.byEvent.get(event.name) ?? []) {
      if (started.has(fn.qualifiedId)) continue;
      if (condition !== undefined && !matchesExpression(condition, { event })) continue;
      started.add(fn.qualifiedId);
      runs.push({ id: newRunId(), functionId: fn.qualifiedId, eventId: event.id, ...newRunFields(fn, event, this.now()) });
    }
    return runs;
  }
}

/** What a new run carries besides its ids. */
type NewRunFields = Pick<NewRun, "flow" | "idempotencyKey" | "waits" | "startBy" | "singleton" | "debounce" | "batch">;

/**
 * A new run's flow keys, idempotency key and `cancelOn` waits, evaluated from its event;
 * absent when none apply (most runs: then nothing more is written). An idempotency key that
 * evaluates to nothing (a missing field) gives the run no key, rather than one key shared by
 * every such event.
 */
function newRunFields(fn: AnyStepwiseFunction, event: StepwiseEvent, now: number): NewRunFields {
  const flow = runFlow(fn.config, event);
  const idempotencyKey = fn.config.idempotency === undefined ? "" : keyValue(fn.config.idempotency, event);
  const waits = fn.config.cancelOn.map(
    (entry, index): NewWait => ({
      stepKey: `cancel:${index}`,
      stepId: `cancelOn[${index}]`,
      kind: "cancel",
      eventName: entry.event,
      timeoutAt: entry.timeoutMs === undefined ? Number.POSITIVE_INFINITY : now + entry.timeoutMs,
      ...storedMatch(event, entry.match, entry.if),
    }),
  );
  const startMs = fn.config.timeouts?.startMs;
  const { singleton, debounce, batchEvents } = fn.config;
  // An event that fails the batch's `if` runs on its own, as it would without batching.
  const batched = batchEvents !== undefined && (batchEvents.if === undefined || matchesExpression(batchEvents.if, { event }));
  return {
    ...(batched && {
      batch: { key: batchEvents.key === undefined ? "" : keyValue(batchEvents.key, event), maxSize: batchEvents.maxSize, wakeAt: now + batchEvents.timeoutMs },
    }),
    ...(debounce && {
      debounce: {
        key: debounce.key === undefined ? "" : keyValue(debounce.key, event),
        wakeAt: now + debounce.periodMs,
        ...(debounce.timeoutMs !== undefined && { capAt: now + debounce.timeoutMs }),
      },
    }),
    ...(singleton && { singleton: { key: singleton.key === undefined ? "" : keyValue(singleton.key, event), mode: singleton.mode } }),
    ...(flow && { flow }),
    ...(idempotencyKey !== "" && { idempotencyKey }),
    ...(waits.length > 0 && { waits }),
    ...(startMs !== undefined && { startBy: now + startMs }),
  };
}

/** A sortable, unique run id. */
export function newRunId(): string {
  return `run_${ulid(undefined, randomUnit)}`;
}

/** A sortable, unique event id. */
export function newEventId(): string {
  return `evt_${ulid(undefined, randomUnit)}`;
}

// ulid's own generator asks the OS for one byte per character (16 calls per id, ~50 µs);
// drawing the same cryptographic bytes from a refilled buffer costs one call per 256 ids.
const randomBytes = Buffer.alloc(4096);
let randomOffset = randomBytes.length;

/** A uniform fraction in [0, 1) from a cryptographic byte, as ulid's own generator makes. */
function randomUnit(): number {
  if (randomOffset === randomBytes.length) {
    randomFillSync(randomBytes);
    randomOffset = 0;
  }
  return (randomBytes[randomOffset++] as number) / 256;
}
