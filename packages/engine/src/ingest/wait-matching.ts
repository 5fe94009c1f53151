import { matchesExpression } from "@stepwise/core/internal";
import type { QueueItem } from "../ports/queue.js";
import type { RunStore, StoredEvent, WaitRecord } from "../ports/run-store.js";

/** Options of {@link createWaitMatcher}. */
export interface WaitMatcherOptions {
  store: RunStore;
  now(): number;
  /** Queues the runs whose waits the events resolved. */
  enqueue(items: QueueItem[]): Promise<void>;
}

/**
 * Matches stored events against the open `step.waitForEvent` calls: each wait an event matches
 * (by name, then its CEL expression over `event` and `async`) is resolved with the event and
 * its run queued, then the events are marked matched. Ingest calls it for events the store
 * flagged (`matchWaits`); the reconciler for events a crash left unmatched.
 */
export function createWaitMatcher(options: WaitMatcherOptions): (events: StoredEvent[]) => Promise<void> {
  const { store } = options;
  return async (events) => {
    if (events.length === 0) return;
    const byName = new Map<string, WaitRecord[]>();
    for (const event of events) {
      let waits = byName.get(event.name);
      if (!waits) {
        waits = await store.findWaits(event.name);
        byName.set(event.name, waits);
      }
      for (const wait of waits) {
        if (wait.expression !== undefined && !matchesExpression(wait.expression, { event: wait.triggerEvent, async: event })) continue;
        const functionId = await store.resolveWait({ runId: wait.runId, stepKey: wait.stepKey, event, now: options.now() });
        if (functionId !== null) await options.enqueue([{ runId: wait.runId, functionId, availableAt: options.now() }]);
      }
    }
    await store.markWaitsMatched({ eventIds: events.map((event) => event.id), now: options.now() });
  };
}
