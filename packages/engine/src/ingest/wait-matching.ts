import type { StepwiseEvent } from "@stepwise/core";
import { matchesExpression } from "@stepwise/core/internal";
import type { RunToQueue } from "../flow/flow-keys.js";
import { eventMatchValues, valueAtPath } from "../flow/match-values.js";
import type { NewWait, RunStore, StoredEvent, WaitRecord } from "../ports/run-store.js";

/** Options of {@link createWaitMatcher}. */
export interface WaitMatcherOptions {
  store: RunStore;
  now(): number;
  /** Queues the runs whose waits the events resolved. */
  enqueue(items: RunToQueue[]): Promise<void>;
  /** Cancels a run whose `cancelOn` wait an event matched. */
  cancel(runId: string, reason: string): Promise<unknown>;
}

/** Most recent events a `lookback` reads per wait condition. */
const LOOKBACK_EVENTS = 1000;

/** What {@link createWaitMatcher} answers. */
export interface WaitMatcher {
  /**
   * Matches stored events against the open waits, then marks them matched. Ingest calls it for
   * events the store flagged (`matchWaits`); the reconciler for events a crash left unmatched.
   */
  matchEvents(events: StoredEvent[]): Promise<void>;
  /** Matches events received since `sinceMs` against waits a run just recorded (`lookback`). */
  matchRecentEvents(runId: string, trigger: StoredEvent, waits: NewWait[], sinceMs: number): Promise<void>;
}

/** Whether `event` meets the wait: its `match` value (when keyed) and its CEL expression. */
function meets(wait: Pick<WaitRecord, "matchPath" | "matchValue" | "expression">, trigger: StepwiseEvent, event: StepwiseEvent): boolean {
  if (wait.matchPath !== undefined) {
    if (wait.matchValue === undefined) return false;
    if (JSON.stringify(valueAtPath(event, wait.matchPath)) !== wait.matchValue) return false;
  }
  return wait.expression === undefined || matchesExpression(wait.expression, { event: trigger, async: event });
}

/**
 * Creates the matcher of events against open waits: `step.waitForEvent` / `step.waitForAny`
 * conditions (the first event that meets one resolves the step and closes its other
 * conditions, and the run is queued) and `cancelOn` entries (the run is cancelled). The store
 * answers only the waits an event can meet by its `match` value, plus those without one, so
 * matching costs the waits an event matches, not every open wait of its name.
 */
export function createWaitMatcher(options: WaitMatcherOptions): WaitMatcher {
  const { store } = options;

  /** Resolves (or, for `cancelOn`, acts on) one wait with `event`; answers whether it took effect. */
  async function resolve(wait: Pick<WaitRecord, "runId" | "stepKey" | "kind">, event: StoredEvent): Promise<boolean> {
    if (wait.kind === "cancel") {
      await options.cancel(wait.runId, `cancelled by event ${event.name} (${event.id})`);
      return true;
    }
    const functionId = await store.resolveWait({ runId: wait.runId, stepKey: wait.stepKey, event, now: options.now() });
    if (functionId === null) return false;
    await options.enqueue([{ runId: wait.runId, functionId, availableAt: options.now() }]);
    return true;
  }

  /** Matches each event in turn against the waits it can meet, then marks them all matched. */
  async function matchInOrder(events: StoredEvent[]): Promise<void> {
    for (const event of events) {
      const now = options.now();
      const waits = await store.findWaits(event.name, { matchValues: eventMatchValues(event), now });
      // A run's step resolves once: its other conditions met by this event are skipped.
      const done = new Set<string>();
      for (const wait of waits) {
        const step = `${wait.runId}\u0000${wait.kind === "cancel" ? "" : wait.stepKey}`;
        if (done.has(step) || !meets(wait, wait.triggerEvent, event)) continue;
        if (await resolve(wait, event)) done.add(step);
      }
    }
    await store.markWaitsMatched({ eventIds: events.map((event) => event.id), now: options.now() });
  }

  // One match at a time, in the order ingests hand their events over (their commit order):
  // of two events that meet one step's conditions (approved, then rejected), the first stored
  // resolves it, as it would with one ingest of both.
  let tail: Promise<unknown> = Promise.resolve();

  return {
    matchEvents(events) {
      if (events.length === 0) return Promise.resolve();
      const match = tail.then(() => matchInOrder(events));
      tail = match.catch(() => undefined);
      return match;
    },

    async matchRecentEvents(runId, trigger, waits, sinceMs) {
      // Writes in flight when the waits were recorded may carry a matching event: let them land
      // (twice: an ingest whose statement began just before the commit gets its transaction id
      // only once it writes), then read what arrived in the window.
      for (let round = 0; round < 2; round++) {
        await store.settleConcurrentWrites?.();
        const candidates: Array<StoredEvent & { receivedAt: number }> = [];
        for (const name of new Set(waits.map((wait) => wait.eventName))) {
          const recent = await store.listEvents({ name, since: sinceMs, limit: LOOKBACK_EVENTS });
          candidates.push(...recent.filter((event) => event.id !== trigger.id));
        }
        // The first to arrive wins, as it would have had the wait been open before it.
        candidates.sort((a, b) => a.receivedAt - b.receivedAt || (a.id < b.id ? -1 : 1));
        for (const event of candidates) {
          const wait = waits.find((entry) => entry.eventName === event.name && meets(entry, trigger, event));
          if (!wait) continue;
          // Resolved, or resolved first by another event: the step is closed either way.
          await resolve({ runId, stepKey: wait.stepKey, kind: wait.kind }, event);
          return;
        }
      }
    },
  };
}
